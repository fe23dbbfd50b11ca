/**
 * Runs every benchmark in turn (each in its own process, so one's memory does not colour
 * another's), prints their figures, and ends with every row that missed its target (the
 * rows report.ts prints with MISSED); exits non-zero when one did or a benchmark failed.
 * Usage: npm run bench
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { machine } from './report.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const benches = ['delivery', 'startup', 'runner', 'run-button', 'runner-telegram', 'gateway-fanout', 'group-burst', 'fleet', 'start-flood', 'connection-floods'];
const TIME_LIMIT_MS = 300_000;

/** Runs one benchmark, echoing its output; resolves with its exit status and the rows it marked MISSED. */
function runBench(name: string): Promise<{ status: string; missed: string[] }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(here, `${name}.js`)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const missed: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      process.stdout.write(`${line}\n`);
      if (/\sMISSED\s*$/.test(line)) missed.push(line.replace(/\s+MISSED\s*$/, '').replace(/\s{2,}/g, '  ').trim());
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), TIME_LIMIT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ status: code === 0 ? 'ok' : signal ? `killed by ${signal}` : `exit ${code}`, missed });
    });
  });
}

const missedRows: string[] = [];
const failed: string[] = [];
for (const name of benches) {
  console.log(`\n=== ${name} ===`);
  const r = await runBench(name);
  for (const row of r.missed) missedRows.push(`${name}: ${row}`);
  if (r.status !== 'ok') {
    failed.push(name);
    if (r.missed.length === 0) {
      missedRows.push(`${name}: ${r.status} (its output is above)`);
      console.log(`(${name} failed: ${r.status})`);
    }
  }
}
console.log(`\n=== summary (${machine()}) ===`);
console.log(missedRows.length === 0 && failed.length === 0 ? 'Every benchmark met its targets.' : `Targets missed:\n${missedRows.map((r) => `  ${r}`).join('\n')}`);
process.exit(failed.length > 0 || missedRows.length > 0 ? 1 : 0);
