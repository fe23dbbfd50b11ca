/**
 * Start-up cost of the commands paid on every cron tick and every Run button press: CPU
 * seconds (user + system, from the shell's `times`) of `notify-runner --help` and
 * `notify-scripts --help`, median of 7 runs, beside bare `node -e 0`.
 *
 *   npx tsc -p . && node dist/bench/startup.js
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TARGET_CPU_S = 0.1;
const root = fileURLToPath(new URL('../..', import.meta.url));

/** CPU seconds of one run of `node <args>` (children's user + system time reported by bash). */
function cpuOf(args: string[]): number {
  const quoted = args.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const r = spawnSync('bash', ['-c', `'${process.execPath}' ${quoted} >/dev/null 2>&1; times`], { encoding: 'utf8', cwd: root });
  // `times` prints the shell's own times, then its children's: "0m0.123s 0m0.045s".
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  const secs = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return (secs[0] ?? NaN) + (secs[1] ?? NaN);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const misses: string[] = [];
const node = median(Array.from({ length: 7 }, () => cpuOf(['-e', '0'])));
process.stdout.write(`${'bare node -e 0 (CPU)'.padEnd(46)} ${`${node.toFixed(3)} s`.padStart(12)}   target -\n`);
for (const bin of ['notify-runner', 'notify-scripts']) {
  const cpu = median(Array.from({ length: 7 }, () => cpuOf([join(root, 'bin', `${bin}.js`), '--help'])));
  const ok = cpu <= TARGET_CPU_S;
  const label = `start-up of ${bin} (CPU, --help)`;
  process.stdout.write(`${label.padEnd(46)} ${`${cpu.toFixed(3)} s`.padStart(12)}   target <= ${TARGET_CPU_S} s  ${ok ? 'ok' : 'MISSED'}\n`);
  if (!ok) misses.push(label);
}
process.stdout.write(misses.length === 0 ? '\nAll targets met.\n' : `\nMissed: ${misses.join('; ')}\n`);
process.exitCode = misses.length === 0 ? 0 : 1;
