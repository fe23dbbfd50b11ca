/**
 * Logging for every program: pino, JSON lines, to stdout and optionally to a file.
 * Secrets are redacted in one place, on the serialized line, so a token inside an error
 * message or a request URL (grammY's HttpError carries one) never reaches a log.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';
import { isJournalStream, prefixForLogLine } from './journal.js';
import { LogFile, type LogFileState } from './logFile.js';

export type { Logger } from 'pino';

/** Anything shaped like a Telegram bot token (`<digits>:<35 url-safe chars>`). */
const TOKEN_SHAPE = /\b\d{5,}:[A-Za-z0-9_-]{30,}\b/g;

/** Replaces each known secret and anything shaped like a bot token. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= 6) out = out.split(s).join('[REDACTED]');
  }
  return out.replace(TOKEN_SHAPE, '[REDACTED]');
}

/** Where and how a program logs. */
export interface LoggerOptions {
  name: string;
  /** Also append to this file (created with mode 0660 if missing); see LogFile: never blocks. */
  file?: string;
  /** Values that must never appear in a log line. */
  secrets?: readonly string[];
  /** NOTIFY_LOG_LEVEL, as the program's settings read it [info]. */
  level?: string;
  /** Write to stdout as well (default true). */
  stdout?: boolean;
}

/** Builds a pino logger with central redaction. */
export function createLogger(opts: LoggerOptions): Logger {
  const secrets = (opts.secrets ?? []).filter((s) => s.length > 0);
  const streams: pino.StreamEntry[] = [];
  let file: LogFile | undefined;
  if (opts.stdout !== false) streams.push({ stream: journalPriorities(pino.destination({ dest: 1, sync: false })) });
  if (opts.file) {
    mkdirSync(dirname(opts.file), { recursive: true });
    file = new LogFile(opts.file);
    streams.push({ stream: file });
  }
  const logger = pino(
    {
      name: opts.name,
      level: opts.level ?? 'info',
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: { streamWrite: (line: string) => redact(line, secrets) },
    },
    streams.length === 1 ? streams[0]!.stream : pino.multistream(streams),
  );
  if (file) logFiles.set(logger, file);
  return logger;
}

const logFiles = new WeakMap<Logger, LogFile>();

/** How the log file of a logger made by createLogger fares (undefined: it has none). */
export function logFileState(logger: Logger): LogFileState | undefined {
  return logFiles.get(logger)?.state;
}

/** Under systemd, each line on standard output carries its level as a journal priority. */
function journalPriorities(out: pino.DestinationStream & { flush?: () => void }): pino.DestinationStream {
  if (!isJournalStream(1)) return out;
  return { write: (line: string) => out.write(prefixForLogLine(line) + line), flush: () => out.flush?.() } as pino.DestinationStream;
}

/** A logger that writes nothing (tests and library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
