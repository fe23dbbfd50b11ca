/**
 * The runner's log, `~/.notifications/logs/runner.log`: plain lines, one per event, time
 * first, because the reader is an analyst running `tail -f` on it, not a log pipeline.
 * Each line is appended with one write (O_APPEND), so lines of two processes never mix.
 */
import { appendFileSync, renameSync, statSync } from 'node:fs';

/** Where log lines go. */
export interface RunLog {
  line(text: string): void;
}

/** `2025-05-01T12:00:01+02:00`: local time with its offset (readable, still unambiguous). */
export function localTimestamp(date: Date): string {
  const pad = (n: number, w = 2): string => String(Math.trunc(Math.abs(n))).padStart(w, '0');
  const off = -date.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${sign}${pad(off / 60)}:${pad(off % 60)}`
  );
}

/** Appends to a file (and echoes to `echo`, e.g. a terminal, when given). */
export function fileRunLog(path: string, echo?: (line: string) => void, now: () => Date = () => new Date()): RunLog {
  return {
    line(text: string) {
      const line = `${localTimestamp(now())} ${text.replace(/\n/g, ' ')}\n`;
      try {
        appendFileSync(path, line, { mode: 0o600 });
      } catch (err) {
        process.stderr.write(`notify-runner: cannot write ${path}: ${(err as Error).message}\n${line}`);
      }
      echo?.(line);
    },
  };
}

/** Keeps the log bounded: past maxBytes it becomes `runner.log.1` (one old file kept). */
export function rotateIfLarge(path: string, maxBytes: number): void {
  try {
    if (statSync(path).size > maxBytes) renameSync(path, `${path}.1`);
  } catch {
    // No log yet, or it cannot be moved: appending still works.
  }
}

/** A log that only collects lines (tests, dry runs). */
export function memoryRunLog(): RunLog & { lines: string[] } {
  const lines: string[] = [];
  return { lines, line: (text) => lines.push(text) };
}
