/**
 * How the five programs start (`bin/<program>.js`): load the compiled program and run it.
 * A program that cannot load or start says why in one line on standard error, and under
 * systemd everything it writes there reaches the journal at priority "err", so
 * `journalctl -p warning` finds a service that fails to start or crashes.
 */
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

/** Loads and runs program `name`; a failure to load or start, or a crash, is one clear line. */
export async function launch(name: string, load: () => Promise<Program>, argv: string[] = process.argv.slice(2)): Promise<void> {
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
