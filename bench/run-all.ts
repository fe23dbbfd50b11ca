/**
 * Runs every benchmark in turn (each in its own process, so one's memory does not colour
 * another's) and prints their figures. Usage: npm run bench
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const benches = ['delivery.js', 'startup.js', 'runner.js', 'runner-telegram.js', 'gateway-fanout.js', 'group-burst.js', 'fleet.js', 'start-flood.js', 'connection-floods.js'];
const failed: string[] = [];
for (const b of benches) {
  console.log(`\n=== ${b.replace(/\.js$/, '')} ===`);
  const r = spawnSync(process.execPath, [join(here, b)], { stdio: 'inherit', timeout: 300_000 });
  if (r.status !== 0) {
    failed.push(b.replace(/\.js$/, ''));
    console.log(`(${b} failed: exit ${r.status ?? r.signal})`);
  }
}
console.log(failed.length === 0 ? '\nEvery benchmark met its targets.' : `\nTargets missed in: ${failed.join(', ')} (the rows marked MISSED above)`);
process.exit(failed.length > 0 ? 1 : 0);
