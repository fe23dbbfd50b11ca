/**
 * Priorities in the journal. systemd stores each line a service writes to standard output
 * or error at priority 6 (info) unless the line starts with a syslog prefix such as `<4>`
 * (warning) or `<3>` (err), which it strips (the units' default `SyslogLevelPrefix=yes`).
 * The prefix is added only when the stream really is the journal, so a terminal, a pipe or
 * a file never sees it.
 */
import { fstatSync } from 'node:fs';

/** Whether file descriptor `fd` is the journal stream systemd connected to the service. */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  // systemd sets JOURNAL_STREAM to "<device>:<inode>" of the stream it connected.
  const want = env.JOURNAL_STREAM;
  if (!want) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return `${st.dev}:${st.ino}` === want;
  } catch {
    return false;
  }
}

/** The syslog priority of a pino level: fatal 2 (crit), error 3, warn 4, info 6, debug and trace 7. */
export function priorityOfLevel(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/** The priority prefix for one JSON log line, from its `"level"` (pino writes it first). */
export function prefixForLogLine(line: string): string {
  const level = /^\{"level":(\d+)/.exec(line)?.[1];
  return `<${priorityOfLevel(level === undefined ? 30 : Number(level))}>`;
}

/** `text` with every line starting with the prefix of `priority`. */
export function withPriority(text: string, priority: number): string {
  return text.replace(/^(?=.)/gm, `<${priority}>`);
}
