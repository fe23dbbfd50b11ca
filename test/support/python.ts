/**
 * Pythons for tests that run analysts' scripts: Debian's (which has python3-matplotlib),
 * a `~/.venv` made from it as analysts make theirs, and a Python that lacks a given
 * library. The `python3` first on root's PATH here is a pyenv build that cannot see
 * Debian's packages, which makes it the natural "library missing" case.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Debian's interpreter, the one python3-matplotlib installs for. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

/** A Python to run: the executable and the arguments that come before the script. */
export interface PythonCommand {
  exe: string;
  args: string[];
  /** How it was chosen, for test messages. */
  label: string;
}

/** True when `python` can import `module`. */
export function canImport(python: PythonCommand, module: string): boolean {
  const r = spawnSync(python.exe, [...python.args, '-c', `import ${module}`], { stdio: 'ignore', timeout: 60_000 });
  return r.status === 0;
}

/** Debian's Python, or an error naming the package to install. */
export function debianPython(): PythonCommand {
  if (!existsSync(DEBIAN_PYTHON)) throw new Error(`${DEBIAN_PYTHON} is missing: apt-get install python3`);
  return { exe: DEBIAN_PYTHON, args: [], label: DEBIAN_PYTHON };
}

/**
 * Makes `<home>/.venv` exactly as docs/notifications.md tells analysts to
 * (`/usr/bin/python3 -m venv --system-site-packages ~/.venv`) and returns its Python.
 */
export function makeVenv(home: string): PythonCommand {
  const venv = join(home, '.venv');
  const r = spawnSync(DEBIAN_PYTHON, ['-m', 'venv', '--system-site-packages', venv], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    throw new Error(`${DEBIAN_PYTHON} -m venv --system-site-packages failed (apt-get install python3-venv?): ${r.stderr}`);
  }
  return { exe: join(venv, 'bin', 'python'), args: [], label: '~/.venv (Debian python3, system site packages)' };
}

/**
 * A Python 3 that cannot import `module`: the first `python3` on PATH other than
 * Debian's that lacks it, else Debian's own with `-S` (no site-packages at all).
 */
export function pythonWithout(module: string): PythonCommand {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const exe = join(dir, 'python3');
    if (dir === '' || exe === DEBIAN_PYTHON || exe === '/bin/python3' || !existsSync(exe)) continue;
    // A pyenv shim needs pyenv's environment: use the interpreter it stands for.
    const real = spawnSync(exe, ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', timeout: 60_000 });
    const resolved = real.status === 0 ? real.stdout.trim() : '';
    if (resolved === '' || resolved === DEBIAN_PYTHON) continue;
    const candidate = { exe: resolved, args: [], label: `${resolved} (no ${module})` };
    if (!canImport(candidate, module)) return candidate;
  }
  const isolated = { exe: DEBIAN_PYTHON, args: ['-S'], label: `${DEBIAN_PYTHON} -S (no site-packages)` };
  if (canImport(isolated, module)) throw new Error(`found no Python 3 without ${module}`);
  return isolated;
}

/** What a script run printed. */
export interface ScriptRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a script as the runner would (cwd = home, a small environment, TZ=UTC so that
 * "today" is the same day for the test and the script), plus `env`.
 */
export function runScript(
  python: PythonCommand,
  script: string,
  opts: { home: string; env?: Record<string, string>; args?: string[] },
): ScriptRun {
  const r = spawnSync(python.exe, [...python.args, script, ...(opts.args ?? [])], {
    cwd: opts.home,
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      HOME: opts.home,
      LANG: 'C.UTF-8',
      TZ: 'UTC',
      ...opts.env,
    },
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The one JSON object a script must print, or an error saying what it printed instead.
 */
export function onlyJsonObject(run: ScriptRun): Record<string, unknown> {
  const lines = run.stdout.split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== 1) {
    throw new Error(`expected exactly one line of JSON on stdout, got ${lines.length}:\n${run.stdout}\nstderr:\n${run.stderr}`);
  }
  const value: unknown = JSON.parse(lines[0]!);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`expected a JSON object, got: ${lines[0]}`);
  }
  return value as Record<string, unknown>;
}
