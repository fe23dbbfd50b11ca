/**
 * The runner's and the script helper's settings, from `NOTIFY_*` environment variables
 * (declared in shared/settings.ts). Both run scripts the same way, so they share these.
 */
import type { EnvReader } from '../shared/config.js';
import type { HistoryLimits } from '../shared/history.js';

import { SETTINGS } from '../shared/settings.js';
import { parseByteSize } from '../shared/units.js';

/** Largest image a script may attach: the bot's default NOTIFY_MAX_PHOTO. */
const MAX_IMAGE_BYTES = parseByteSize(SETTINGS.NOTIFY_MAX_PHOTO.default) ?? 0;

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

/** Reads the runner's (and the script helper's) settings; problems are collected in the reader. */
export function readRunnerConfig(r: EnvReader): RunnerConfig {
  return {
    socketPath: r.get('NOTIFY_SOCKET'),
    timeoutMs: r.get('NOTIFY_SCRIPT_TIMEOUT'),
    killGraceMs: r.get('NOTIFY_SCRIPT_KILL_GRACE'),
    maxOutputBytes: r.get('NOTIFY_SCRIPT_MAX_OUTPUT'),
    concurrency: r.get('NOTIFY_RUNNER_CONCURRENCY'),
    sendTimeoutMs: r.get('NOTIFY_SEND_TIMEOUT'),
    maxImageBytes: MAX_IMAGE_BYTES,
    history: {
      maxLines: r.get('NOTIFY_HISTORY_MAX_LINES'),
      maxBytes: r.get('NOTIFY_HISTORY_MAX_BYTES'),
    },
    healthFailures: r.get('NOTIFY_HEALTH_FAILURES'),
  };
}
