/**
 * CPU seconds of a command and everything it starts (user + system of the process and its
 * waited-for children, from bash's `times`): what a command costs the machine, which on a
 * loaded host says more than its wall time.
 */
import { spawnSync } from 'node:child_process';

/** CPU seconds of one run of `argv` (its output discarded), with `env` and `cwd` if given. */
export function cpuSecondsOf(argv: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): number {
  const quoted = argv.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const r = spawnSync('bash', ['-c', `${quoted} >/dev/null 2>&1; times`], { encoding: 'utf8', ...opts });
  // `times` prints the shell's own times, then its children's: "0m0.123s 0m0.045s".
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  const secs = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return (secs[0] ?? NaN) + (secs[1] ?? NaN);
}
