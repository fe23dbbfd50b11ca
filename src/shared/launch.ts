/**
 * How the five programs start (`bin/<program>.js`): load the compiled program and run it.
 * A program that cannot load or start says why in one line on standard error, and under
 * systemd everything it writes there reaches the journal at priority "err", so
 * `journalctl -p warning` finds a service that fails to start or crashes.
 */
import { existsSync, lstatSync, mkdirSync } from 'node:fs';
import nodeModule from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { isJournalStream, withPriority } from './journal.js';

/** A program's entry point. */
export interface Program {
  main(argv: string[]): Promise<void>;
}

/** The first line of an error's message (the line that says why). */
function reason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n', 1)[0] || (err instanceof Error ? err.name : 'unknown error');
}

/** Prefixes every line written to standard error with the journal's "err" priority. */
function stderrAtErrPriority(): void {
  const write = process.stderr.write.bind(process.stderr) as (chunk: string | Uint8Array, ...rest: unknown[]) => boolean;
  const prefixed = (chunk: string | Uint8Array, ...rest: unknown[]): boolean =>
    write(withPriority(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'), 3), ...rest);
  process.stderr.write = prefixed;
}

/** How launch runs a program. */
export interface LaunchOptions {
  /** The command line [process.argv after the script]. */
  argv?: string[];
  /** Keep compiled code in the user's cache directory (see enableCompileCache). */
  compileCache?: boolean;
}

/**
 * Turns on Node's module compile cache (Node 22.1 and later; nothing on older Node) in
 * `$XDG_CACHE_HOME/notify-engine` or `~/.cache/notify-engine`, for the commands started
 * thousands of times a day (notify-runner from every crontab, notify-scripts for every
 * Run button), which then compile their code once per version instead of at every start.
 * The cache holds code the user's next start runs, so it is used only when it and the
 * directory holding it are the user's own and nobody else may write them; anything else
 * (no home, a home of someone else's after sudo) starts without it. Returns the directory
 * used, or null.
 */
export function enableCompileCache(env: NodeJS.ProcessEnv = process.env): string | null {
  // Typed here: the declarations of the oldest Node supported (20) have neither.
  const node = nodeModule as unknown as { enableCompileCache?: (dir: string) => { status: number }; constants?: { compileCacheStatus?: { ENABLED: number } } };
  if (!node.enableCompileCache || env.NODE_DISABLE_COMPILE_CACHE || env.NODE_COMPILE_CACHE || typeof process.getuid !== 'function') return null;
  const base = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  const dir = join(base, 'notify-engine');
  const uid = process.getuid();
  const ours = (d: string): boolean => {
    const st = lstatSync(d);
    return st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0;
  };
  try {
    // The holding directory is checked before anything is made in it: root running a command
    // with an analyst's HOME must not leave a root-owned cache there that locks the analyst out.
    // (~/.cache is made only in a home of the user's own.)
    if (!existsSync(base)) {
      if (lstatSync(dirname(base)).uid !== uid) return null;
      mkdirSync(base, { mode: 0o700 });
    }
    if (!ours(base)) return null;
    if (!existsSync(dir)) mkdirSync(dir, { mode: 0o700 });
    if (!ours(dir)) return null;
  } catch {
    return null;
  }
  return node.enableCompileCache(dir).status === node.constants?.compileCacheStatus?.ENABLED ? dir : null;
}

/** Loads and runs program `name`; a failure to load or start, or a crash, is one clear line. */
export async function launch(name: string, load: () => Promise<Program>, opts: LaunchOptions = {}): Promise<void> {
  const argv = opts.argv ?? process.argv.slice(2);
  if (opts.compileCache) enableCompileCache();
  if (isJournalStream(2)) stderrAtErrPriority();
  process.on('uncaughtException', (err) => {
    process.stderr.write(`${name}: stopped on an unexpected error: ${reason(err)}\n`);
    if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  });
  let program: Program;
  try {
    program = await load();
  } catch (err) {
    process.stderr.write(`${name}: cannot start: ${reason(err)} (is the package complete? reinstall it with deploy/install.sh)\n`);
    process.exitCode = 1;
    return;
  }
  try {
    await program.main(argv);
  } catch (err) {
    process.stderr.write(`${name}: cannot start: ${reason(err)}\n`);
    if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
}
