/**
 * The runner's and the script helper's settings, from `NOTIFY_*` environment variables.
 * Both run scripts the same way, so they share these.
 */
import { type EnvReader, parseDurationMs } from '../shared/config.js';
import { DEFAULT_HISTORY_LIMITS, type HistoryLimits } from '../shared/history.js';

/** How scripts are run and their results sent. */
export interface RunnerConfig {
  /** The send API's unix socket. */
  socketPath: string;
  /** How long a script may run. */
  timeoutMs: number;
  /** Between SIGTERM and SIGKILL of a script's process group. */
  killGraceMs: number;
  /** Most bytes a script may print on stdout. */
  maxOutputBytes: number;
  /** Scripts run at once. */
  concurrency: number;
  /** How long to wait for the send API's answer. */
  sendTimeoutMs: number;
  /** Largest image uploaded. */
  maxImageBytes: number;
  history: HistoryLimits;
  /** Failed scheduled runs in a row that make a "script is failing" alert; 0 = no health alerts. */
  healthFailures: number;
}

const MIB = 1024 * 1024;

/** Documented variables with defaults (for `--help`). */
export const RUNNER_ENV_HELP: ReadonlyArray<[string, string, string]> = [
  ['NOTIFY_SOCKET', '/run/notify-bot/bot.sock', 'the send API socket'],
  ['NOTIFY_SCRIPT_TIMEOUT', '60s', 'how long a script may run (e.g. 500ms, 2s, 5m)'],
  ['NOTIFY_SCRIPT_KILL_GRACE', '2s', 'after the timeout, wait between SIGTERM and SIGKILL of the script\'s processes'],
  ['NOTIFY_SCRIPT_MAX_OUTPUT', '1MiB', 'most a script may print on stdout (bytes, or e.g. 512KiB, 2MiB)'],
  ['NOTIFY_RUNNER_CONCURRENCY', '4', 'scripts run at once'],
  ['NOTIFY_SEND_TIMEOUT', '30s', 'how long to wait for the send API to answer'],
  ['NOTIFY_HISTORY_MAX_LINES', '2000', 'runs kept in ~/.notifications/history.jsonl'],
  ['NOTIFY_HISTORY_MAX_BYTES', '1MiB', 'size bound of ~/.notifications/history.jsonl'],
  ['NOTIFY_HEALTH_FAILURES', '3', 'failed runs in a row after which you get one "script is failing" alert (0: never)'],
];

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i;

/** Parses `1048576`, `512k`, `512KiB`, `1MiB`, `2M` (binary units) into bytes; null if invalid. */
export function parseByteSize(text: string): number | null {
  const m = SIZE_RE.exec(text.trim());
  if (!m) return null;
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  const factor = unit === 'k' ? 1024 : unit === 'm' ? MIB : unit === 'g' ? 1024 * MIB : 1;
  return Math.floor(Number(m[1]) * factor);
}

function byteSize(r: EnvReader, name: string, fallback: number): number {
  const v = r.optional(name);
  if (v === undefined) return fallback;
  const n = parseByteSize(v);
  if (n === null || n < 1) {
    r.problem(`${name} must be a size such as 1048576, 512KiB or 1MiB (got '${v}')`);
    return fallback;
  }
  return n;
}

function positiveDuration(r: EnvReader, name: string, fallbackMs: number): number {
  const v = r.optional(name);
  if (v === undefined) return fallbackMs;
  const ms = parseDurationMs(v);
  if (ms === null || ms <= 0) {
    r.problem(`${name} must be a duration above zero such as 500ms, 30s or 5m (got '${v}')`);
    return fallbackMs;
  }
  return ms;
}

/** Reads the runner's settings; problems are collected in the reader. */
export function readRunnerConfig(r: EnvReader): RunnerConfig {
  return {
    socketPath: r.string('NOTIFY_SOCKET', '/run/notify-bot/bot.sock'),
    timeoutMs: positiveDuration(r, 'NOTIFY_SCRIPT_TIMEOUT', 60_000),
    killGraceMs: r.durationMs('NOTIFY_SCRIPT_KILL_GRACE', 2_000),
    maxOutputBytes: byteSize(r, 'NOTIFY_SCRIPT_MAX_OUTPUT', MIB),
    concurrency: r.int('NOTIFY_RUNNER_CONCURRENCY', 4, 1, 64),
    sendTimeoutMs: positiveDuration(r, 'NOTIFY_SEND_TIMEOUT', 30_000),
    maxImageBytes: 10 * MIB,
    history: {
      maxLines: r.int('NOTIFY_HISTORY_MAX_LINES', DEFAULT_HISTORY_LIMITS.maxLines, 10, 1_000_000),
      maxBytes: byteSize(r, 'NOTIFY_HISTORY_MAX_BYTES', DEFAULT_HISTORY_LIMITS.maxBytes),
    },
    healthFailures: r.int('NOTIFY_HEALTH_FAILURES', 3, 0, 1000),
  };
}
