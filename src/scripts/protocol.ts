/**
 * The `notify-scripts` protocol, declared once for both ends: the helper (main.ts, run as
 * the analyst) answers with these shapes, the services' client (client.ts) builds its
 * command lines with these functions and reads the answers as these types.
 *
 *   list                                   -> ListedScript[]
 *   history [--limit N] [--script NAME]    -> RunRecord[] (newest first)
 *   run [--run-id ID] [--with-image] NAME  -> the script's JSON object plus "_run": RunMeta
 *   record-delivery RUN_ID NOTIFICATION_ID [--queued] [--outcome O [--until ISO]]
 *   record-delivery RUN_ID --failed REASON -> RunRecord
 *   any failure                            -> ErrorAnswer, exit status 1
 *
 * Dependency-free (no zod): the helper starts on every dashboard click.
 */
import type { DeliveryReport, Outcome, RunRecord } from '../shared/history.js';

export { RUN_ID_RE } from '../shared/history.js';

/** Codes of the `{"error", "code"}` answers. */
export const ERROR_CODES = ['usage', 'invalid_name', 'not_found', 'failed', 'timed_out', 'invalid_output', 'unknown_run', 'internal'] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** A failed call's answer on stdout (exit status 1). */
export interface ErrorAnswer {
  error: string;
  code: ErrorCode;
  /** run: the run's outcome, when the script ran. */
  outcome?: string;
  run_id?: string;
  exit_code?: number;
}

/** One script as `list` describes it. */
export type ListedScript = {
  name: string;
  stem: string;
  /** When it last ran (ISO-8601 UTC), null if never. */
  last_run: string | null;
  last_outcome: Outcome | null;
  last_trigger?: RunRecord['trigger'];
  last_error?: string;
  last_warning?: string;
  /** When the runner last sent its notification (ISO-8601 UTC), null if never. */
  last_sent: string | null;
  /** The cooldown it last asked for. */
  cooldown?: string;
  /** Until when the cooldown holds its notifications, when it does now. */
  cooldown_until?: string;
  /** Its cooldown state file is unreadable (the runner reports it as a failure). */
  state_error?: string;
  /** Scheduled runs that failed in a row, when any (script health). */
  consecutive_failures?: number;
  /** A "script is failing" alert was sent and no "recovered" yet. */
  health_failing?: true;
  /** Its `# schedule:` line as written, the zone it is read in, and the next scheduled time. */
  schedule?: string;
  schedule_zone?: string;
  next_run?: string | null;
  /** A scheduled time passed since its last scheduled run: the next runner pass runs it. */
  schedule_due?: boolean;
  /** Its `# schedule:` line is invalid (the runner records a failed run saying so). */
  schedule_error?: string;
};

/** The key `run` adds to the script's object (left out if the script printed its own). */
export const RUN_META_KEY = '_run';

/** What `run` says about the run, under RUN_META_KEY. */
export type RunMeta = {
  id: string;
  outcome: 'pending_delivery' | 'nothing_to_send';
  duration_ms: number;
  warning?: string;
  /** With --with-image: the checked image, for the service to upload. */
  image?: { filename: string; content_type: 'image/png' | 'image/jpeg'; size: number; base64: string };
  image_error?: string;
};

/** `history`'s default and largest --limit. */
export const HISTORY_LIMIT = { default: 50, max: 2000 } as const;

/** The arguments of `history`. */
export function historyArgs(opts: { limit?: number; script?: string }): string[] {
  const args = ['history'];
  if (opts.limit !== undefined) args.push('--limit', String(opts.limit));
  if (opts.script !== undefined) args.push('--script', opts.script);
  return args;
}

/** The arguments of `run`, as the services call it (their run id, the image included). */
export function runArgs(runId: string, name: string): string[] {
  return ['run', '--run-id', runId, '--with-image', name];
}

/** The arguments of `record-delivery` for a delivery report. */
export function recordDeliveryArgs(runId: string, report: DeliveryReport): string[] {
  const args = ['record-delivery', runId];
  if ('id' in report) {
    args.push(report.id);
    if (report.queued) args.push('--queued');
    if (report.outcome) args.push('--outcome', report.outcome);
    if (report.until && !Number.isNaN(Date.parse(report.until))) args.push('--until', new Date(report.until).toISOString());
  } else {
    args.push(`--failed=${report.error.slice(0, 1000)}`);
  }
  return args;
}
