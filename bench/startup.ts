/**
 * Start-up cost of the commands paid on every cron tick and every Run button press: CPU
 * seconds (user + system) of `notify-runner --help` and `notify-scripts --help`, median of
 * 7 runs, beside bare `node -e 0`.
 *
 *   npx tsc -p . && node dist/bench/startup.js
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSecondsOf } from './cpu.js';
import { machine, median, Report } from './report.js';

const TARGET_CPU_S = 0.1;
const root = fileURLToPath(new URL('../..', import.meta.url));

/** Median CPU seconds of 7 runs of `node <args>`. */
function cpuOf(args: string[]): number {
  return median(Array.from({ length: 7 }, () => cpuSecondsOf([process.execPath, ...args], { cwd: root })));
}

process.stdout.write(`start-up CPU, median of 7 (node ${process.version}; ${machine()})\n\n`);
const report = new Report();
report.row('bare node -e 0 (CPU)', `${cpuOf(['-e', '0']).toFixed(3)} s`, true, '-');
for (const bin of ['notify-runner', 'notify-scripts']) {
  const cpu = cpuOf([join(root, 'bin', `${bin}.js`), '--help']);
  report.row(`start-up of ${bin} (CPU, --help)`, `${cpu.toFixed(3)} s`, cpu <= TARGET_CPU_S, `<= ${TARGET_CPU_S} s`);
}
report.finish();
