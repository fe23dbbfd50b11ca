/**
 * The run history of one analyst's scripts, `~/.notifications/history.jsonl`: one JSON
 * record per run (scheduled by the runner or on demand through `notify-scripts run`),
 * oldest first. The file is bounded (newest lines kept) and every change other than a
 * plain append replaces it atomically under its lock, so readers never see half a file.
 * The record shape and the script-name rule live here because the runner, the script
 * helper and the services that read its answers all share them.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from './jsonFile.js';
import { withLock } from './lock.js';
import { SETTINGS } from './settings.js';
import { parseByteSize } from './units.js';

/** What a script file may be called: a plain file name ending in `.py`, no paths. */
const SCRIPT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*\.py$/;

/** Why a script name is refused, in words for a person; null when it is acceptable. */
export function scriptNameProblem(name: string): string | null {
  if (name.length === 0) return 'the script name is empty';
  if (name.length > 255) return 'the script name is too long (255 characters at most)';
  if (name.includes('/') || name.includes('\0')) return `'${printable(name)}' is a path; give the script's file name only, such as report.py`;
  if (name.includes('..')) return `'${printable(name)}' contains '..'; give the script's file name only, such as report.py`;
  if (!name.endsWith('.py')) return `'${printable(name)}' is not a Python script (the name must end in .py)`;
  if (!SCRIPT_NAME_RE.test(name)) {
    return `'${printable(name)}' is not a valid script name: it must start with a letter or digit and hold only letters, digits, '.', '_' and '-'`;
  }
  return null;
}

function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, 80);
}

/** A script's stem: its file name without `.py` (names its state file). */
export function scriptStem(name: string): string {
  return name.endsWith('.py') ? name.slice(0, -3) : name;
}

/** How a run was started. */
export const TRIGGERS = ['schedule', 'on_demand'] as const;
export type Trigger = (typeof TRIGGERS)[number];

/**
 * How a run ended. `pending_delivery` is an on-demand run whose notification was handed to
 * the service that asked for it; it becomes `sent` or `delivery_failed` when that service
 * records the delivery (`notify-scripts record-delivery`). `snoozed`, `muted` and
 * `unchanged` are notifications the send API accepted but did not send, by the analyst's
 * rules (a snooze or mute of the script, or `only_if_changed` with the same data as the
 * last sent one); `held_quiet_hours` is one it keeps for the digest at the end of the
 * analyst's quiet hours.
 */
export const OUTCOMES = [
  'sent',
  'held_by_cooldown',
  'nothing_to_send',
  'failed',
  'timed_out',
  'invalid_output',
  'delivery_failed',
  'pending_delivery',
  'snoozed',
  'muted',
  'unchanged',
  'held_quiet_hours',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Each outcome in words, for logs and status lists. */
export const OUTCOME_WORDS: Record<Outcome, string> = {
  sent: 'sent',
  held_by_cooldown: 'held by cooldown',
  nothing_to_send: 'nothing to send',
  failed: 'failed',
  timed_out: 'timed out',
  invalid_output: 'invalid output',
  delivery_failed: 'delivery failed',
  pending_delivery: 'handed over',
  snoozed: 'snoozed',
  muted: 'muted',
  unchanged: 'unchanged',
  held_quiet_hours: 'held for quiet hours',
};

/** How each outcome looks: the bot's icon, and the dashboard's tone (ok, idle, warn, bad). */
export const OUTCOME_LOOK: Record<Outcome, { icon: string; tone: 'ok' | 'idle' | 'warn' | 'bad' }> = {
  sent: { icon: '✅', tone: 'ok' },
  held_by_cooldown: { icon: '⏸', tone: 'idle' },
  nothing_to_send: { icon: '▫️', tone: 'idle' },
  failed: { icon: '❌', tone: 'bad' },
  timed_out: { icon: '⏱', tone: 'bad' },
  invalid_output: { icon: '⚠️', tone: 'warn' },
  delivery_failed: { icon: '📭', tone: 'bad' },
  pending_delivery: { icon: '✅', tone: 'ok' },
  snoozed: { icon: '🔕', tone: 'idle' },
  muted: { icon: '🔕', tone: 'idle' },
  unchanged: { icon: '▫️', tone: 'idle' },
  held_quiet_hours: { icon: '🌙', tone: 'idle' },
};

/** How long a resolved alert lasted, for people: `2 h 5 min`, `3 min`, `40 s`, `1 d 2 h`. */
export function lastedText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 > 0 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 > 0 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** The outcome as a label ("Held by cooldown"). */
export function outcomeLabel(outcome: string): string {
  const words = (OUTCOME_WORDS as Record<string, string>)[outcome] ?? outcome;
  return `${words[0]?.toUpperCase() ?? ''}${words.slice(1)}`;
}

/** Outcomes that are a failure of the script or of its delivery. */
export const FAILED_OUTCOMES: ReadonlySet<string> = new Set<Outcome>(['failed', 'timed_out', 'invalid_output', 'delivery_failed']);

/** One run, as a line of history.jsonl. Extra keys are kept (later versions may add some). */
export const RunRecordSchema = z.looseObject({
  /** Unique id of this run (joins an on-demand run to its notification). */
  run_id: z.string().min(1),
  /** When the run started, ISO-8601 UTC. */
  time: z.string(),
  /** The script's file name, e.g. `revenue_drop.py`. */
  script: z.string(),
  trigger: z.enum(TRIGGERS),
  outcome: z.enum(OUTCOMES),
  /** How long the script ran (until it exited or was stopped), in milliseconds. */
  duration_ms: z.number().nonnegative(),
  /** The script's exit code; null when it was killed or never started. */
  exit_code: z.number().int().nullable(),
  /** The signal that ended the script, when one did. */
  signal: z.string().optional(),
  /** What went wrong, for the analyst (validation error, stderr excerpt, delivery error). */
  error: z.string().optional(),
  /** A problem that did not stop the notification (image not attached, invalid cooldown). */
  warning: z.string().optional(),
  /** The notification's id from the send API, when it was sent. */
  id: z.string().optional(),
  /** True when the send API accepted the notification with delivery still pending (202). */
  queued: z.boolean().optional(),
  /** The notification's title (shortened), when there was a notification. */
  title: z.string().optional(),
  /** The cooldown the script asked for (or the default), when it asked to notify. */
  cooldown: z.string().optional(),
  /**
   * Until when this notification is held or suppressed, ISO-8601 UTC: the cooldown
   * (held_by_cooldown), the snooze or mute (snoozed, muted; absent for a mute with no end),
   * or the end of the quiet hours when the digest goes out (held_quiet_hours).
   */
  held_until: z.string().optional(),
  /** When the delivery of an on-demand run was recorded, ISO-8601 UTC. */
  delivered_at: z.string().optional(),
  /** A condition alert (send_resolved) that cleared: when, and how long it lasted. */
  resolved_at: z.string().optional(),
  resolved_after_ms: z.number().nonnegative().optional(),
  /** On the run that found the condition cleared: the alert it resolved and how long that lasted. */
  resolved_alert: z.string().optional(),
  /** The resolved notice's id from the send API, when it was accepted. */
  resolved_notice: z.string().optional(),
  /**
   * The resolved notice was held for the quiet-hours digest (not sent yet), which goes out
   * at resolved_notice_until; whether it has gone, the held alerts say (alertRules.ts).
   */
  resolved_notice_held: z.literal('quiet_hours').optional(),
  resolved_notice_until: z.string().optional(),
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

/** A new, unique run id: sortable by time, unguessable enough not to collide. */
export function newRunId(nowMs = Date.now()): string {
  return `${nowMs.toString(36)}-${randomBytes(5).toString('hex')}`;
}

/** Well-formed run ids (what `record-delivery` accepts). */
export const RUN_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Bounds of the history file. */
export interface HistoryLimits {
  maxLines: number;
  maxBytes: number;
}

const DEFAULT_HISTORY_LIMITS: HistoryLimits = {
  maxLines: Number(SETTINGS.NOTIFY_HISTORY_MAX_LINES.default),
  maxBytes: parseByteSize(SETTINGS.NOTIFY_HISTORY_MAX_BYTES.default) ?? 0,
};

/** What a service recorded about delivering an on-demand run's notification. */
/** Outcomes the send API can give an accepted notification instead of sending it. */
export const RULE_OUTCOMES = ['snoozed', 'muted', 'unchanged', 'held_quiet_hours'] as const;
export type RuleOutcome = (typeof RULE_OUTCOMES)[number];

/** What happened to an on-demand run's notification. */
export type DeliveryReport = { id: string; queued?: boolean; outcome?: RuleOutcome; until?: string } | { error: string };

/** The history file of one analyst. */
export class HistoryStore {
  constructor(
    readonly path: string,
    private readonly limits: HistoryLimits = DEFAULT_HISTORY_LIMITS,
  ) {}

  /** The lock guarding appends, trims and rewrites. */
  get lockPath(): string {
    return join(dirname(this.path), '.history.lock');
  }

  /** Every readable record, oldest first; lines that do not parse are skipped. */
  async readAll(): Promise<RunRecord[]> {
    return parseLines(await this.readText());
  }

  /**
   * Appends a record. When the file has grown past its bounds, it is trimmed (to 90% of
   * them, so trimming is not needed on every append) and replaced atomically.
   */
  async append(record: RunRecord): Promise<void> {
    const line = `${JSON.stringify(record)}\n`;
    await withLock(this.lockPath, async () => {
      const text = await this.readText();
      const lines = splitLines(text);
      const bytes = Buffer.byteLength(text) + Buffer.byteLength(line);
      if (lines.length + 1 <= this.limits.maxLines && bytes <= this.limits.maxBytes) {
        await fsp.appendFile(this.path, line, { mode: 0o600 });
        return;
      }
      const kept = trimNewest([...lines, line.trimEnd()], Math.floor(this.limits.maxLines * 0.9), Math.floor(this.limits.maxBytes * 0.9));
      await writeFileAtomic(this.path, kept.map((l) => `${l}\n`).join(''), 0o600);
    });
  }

  /**
   * Joins a delivery to an on-demand run: sets the notification id (outcome `sent`) or the
   * delivery error (outcome `delivery_failed`). Returns the updated record, or null when
   * no on-demand run has that id (it may have been trimmed away). Scheduled runs are the
   * runner's own record and are never changed.
   */
  async recordDelivery(runId: string, report: DeliveryReport, now = new Date()): Promise<RunRecord | null> {
    return withLock(this.lockPath, async () => {
      const lines = splitLines(await this.readText());
      let updated: RunRecord | null = null;
      for (let i = lines.length - 1; i >= 0 && updated === null; i--) {
        const rec = parseLine(lines[i]!);
        if (rec?.run_id !== runId || rec.trigger !== 'on_demand') continue;
        const next: RunRecord = { ...rec, delivered_at: now.toISOString() };
        if ('id' in report) {
          // A rule of the analyst's may have held it back: record what really happened.
          next.outcome = report.outcome ?? 'sent';
          if (report.until) next.held_until = report.until;
          next.id = report.id;
          if (report.queued) next.queued = true;
          else delete next.queued;
          delete next.error;
        } else {
          next.outcome = 'delivery_failed';
          next.error = report.error;
          delete next.id;
          delete next.queued;
        }
        lines[i] = JSON.stringify(next);
        updated = next;
      }
      if (updated !== null) await writeFileAtomic(this.path, lines.map((l) => `${l}\n`).join(''), 0o600);
      return updated;
    });
  }

  /**
   * Marks the run that sent notification `alertId` as resolved (its condition cleared).
   * Returns false when no run has that id (trimmed away).
   */
  async markResolved(alertId: string, at: Date, lastedMs: number): Promise<boolean> {
    return withLock(this.lockPath, async () => {
      const lines = splitLines(await this.readText());
      for (let i = lines.length - 1; i >= 0; i--) {
        const rec = parseLine(lines[i]!);
        if (rec?.id !== alertId) continue;
        lines[i] = JSON.stringify({ ...rec, resolved_at: at.toISOString(), resolved_after_ms: lastedMs });
        await writeFileAtomic(this.path, lines.map((l) => `${l}\n`).join(''), 0o600);
        return true;
      }
      return false;
    });
  }

  private async readText(): Promise<string> {
    try {
      return await fsp.readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw err;
    }
  }
}

function splitLines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

function parseLine(line: string): RunRecord | null {
  try {
    const r = RunRecordSchema.safeParse(JSON.parse(line));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

function parseLines(text: string): RunRecord[] {
  const out: RunRecord[] = [];
  for (const line of splitLines(text)) {
    const rec = parseLine(line);
    if (rec) out.push(rec);
  }
  return out;
}

function trimNewest(lines: string[], maxLines: number, maxBytes: number): string[] {
  const kept: string[] = [];
  let bytes = 0;
  for (let i = lines.length - 1; i >= 0 && kept.length < maxLines; i--) {
    const size = Buffer.byteLength(lines[i]!) + 1;
    if (bytes + size > maxBytes && kept.length > 0) break;
    bytes += size;
    kept.push(lines[i]!);
  }
  return kept.reverse();
}

/** The newest run of each script, by script name. */
export function lastRunPerScript(records: readonly RunRecord[]): Map<string, RunRecord> {
  const last = new Map<string, RunRecord>();
  for (const r of records) last.set(r.script, r);
  return last;
}

/** Recent runs, newest first, optionally of one script only. */
export function recentRuns(records: readonly RunRecord[], opts: { limit?: number; script?: string } = {}): RunRecord[] {
  const limit = opts.limit ?? 50;
  const out: RunRecord[] = [];
  for (let i = records.length - 1; i >= 0 && out.length < limit; i--) {
    const r = records[i]!;
    if (opts.script === undefined || r.script === opts.script) out.push(r);
  }
  return out;
}
