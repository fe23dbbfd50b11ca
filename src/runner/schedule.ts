/**
 * A script's own schedule: a comment `# schedule: <cron expression> [time zone]` among its
 * first lines, so the schedule travels with the script. The expression is standard 5-field
 * cron (minute hour day-of-month month day-of-week, or @hourly/@daily/@weekly/@monthly/
 * @yearly), read by croner; the time zone is a tz database name, the server's zone when
 * none is named (the runner runs as the analyst and cannot read the services' settings).
 *
 * The runner runs a scheduled script when a scheduled time passed since the script's last
 * scheduled run: once, however many times were missed while nothing ran.
 */
import { promises as fsp } from 'node:fs';
import { Cron } from 'croner';

/** Lines of a script searched for the schedule comment. */
export const SCHEDULE_HEADER_LINES = 30;
/** Bytes of a script read to find it. */
const HEADER_BYTES = 16 * 1024;
const HEADER_RE = /^\s*#\s*schedule\s*:(.*)$/i;

/** A valid schedule. */
export interface Schedule {
  /** The cron expression as written. */
  expression: string;
  /** The time zone as written, when one was. */
  timezone?: string;
  /** The zone the expression is read in (the named one, else the server's). */
  effectiveZone: string;
  cron: Cron;
}

/** What a script's text says about its schedule. */
export type ScheduleRead = { kind: 'none' } | { kind: 'ok'; schedule: Schedule } | { kind: 'invalid'; text: string; error: string };

/** The server's time zone name (as the runner's process sees it). */
export function serverZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

function zoneProblem(zone: string): string | null {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return null;
  } catch {
    return `unknown time zone '${zone}' (use a tz database name such as Europe/Prague, America/New_York or UTC)`;
  }
}

const USAGE = 'write 5 cron fields (minute hour day-of-month month day-of-week) and optionally a time zone, e.g. "# schedule: 0 9 * * 1-5 Europe/Prague"';

/** Parses the text after `schedule:`. */
export function parseSchedule(text: string): { ok: true; schedule: Schedule } | { ok: false; error: string } {
  const tokens = text.trim().split(/\s+/).filter((t) => t !== '');
  if (tokens.length === 0) return { ok: false, error: `the schedule is empty; ${USAGE}` };
  const fields = tokens[0]!.startsWith('@') ? 1 : 5;
  if (tokens.length !== fields && tokens.length !== fields + 1) {
    const what = fields === 1 ? `${tokens[0]} takes only an optional time zone after it` : `expected 5 cron fields, got ${Math.min(tokens.length, 5)}${tokens.length > 6 ? ' and more after the time zone' : ''}`;
    return { ok: false, error: `'${text.trim()}': ${what}; ${USAGE}` };
  }
  const expression = tokens.slice(0, fields).join(' ');
  const timezone = tokens[fields];
  if (timezone !== undefined) {
    const problem = zoneProblem(timezone);
    if (problem) return { ok: false, error: problem };
  }
  let cron: Cron;
  try {
    cron = new Cron(expression, { mode: '5-part', ...(timezone !== undefined ? { timezone } : {}) });
  } catch (err) {
    return { ok: false, error: `invalid cron expression '${expression}': ${(err as Error).message.replace(/^CronPattern:\s*/, '')}; ${USAGE}` };
  }
  if (cron.nextRun(new Date()) === null) return { ok: false, error: `the cron expression '${expression}' matches no date` };
  return { ok: true, schedule: { expression, ...(timezone !== undefined ? { timezone } : {}), effectiveZone: timezone ?? serverZone(), cron } };
}

/** Finds and parses the schedule comment in a script's first lines. */
export function scheduleFromSource(source: string): ScheduleRead {
  const lines = source.split('\n', SCHEDULE_HEADER_LINES);
  for (const line of lines) {
    const m = HEADER_RE.exec(line.replace(/\r$/, ''));
    if (!m) continue;
    const text = m[1]!.trim();
    const parsed = parseSchedule(text);
    return parsed.ok ? { kind: 'ok', schedule: parsed.schedule } : { kind: 'invalid', text, error: `invalid schedule: ${parsed.error}` };
  }
  return { kind: 'none' };
}

/** Reads a script's schedule (its first bytes only). Throws when the file cannot be read. */
export async function readSchedule(path: string): Promise<ScheduleRead> {
  const fh = await fsp.open(path, 'r');
  try {
    const buf = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await fh.read(buf, 0, HEADER_BYTES, 0);
    return scheduleFromSource(buf.subarray(0, bytesRead).toString('utf8'));
  } finally {
    await fh.close();
  }
}

/** The first scheduled time strictly after `afterMs`, or null. */
export function nextTime(schedule: Schedule, afterMs: number): Date | null {
  return schedule.cron.nextRun(new Date(afterMs));
}

/** Whether a scheduled time passed after `sinceMs` (the last scheduled run) and by `nowMs`. */
export function isDue(schedule: Schedule, sinceMs: number, nowMs: number): boolean {
  const next = nextTime(schedule, sinceMs);
  return next !== null && next.getTime() <= nowMs;
}

/** What the runner knows of a script's schedule at a moment, for lists and status pages. */
export interface ScheduleStatus {
  /** The schedule as written (expression and zone). */
  schedule: string;
  /** The zone it is read in. */
  schedule_zone: string;
  /** The next scheduled time the runner will act on (ISO-8601 UTC); when due, the next runner pass runs it. */
  next_run: string | null;
  /** A scheduled time passed since the last scheduled run: the next runner pass runs it. */
  due: boolean;
}

/**
 * The schedule's status, given when the script last ran on schedule (or, never run, since
 * when it is in place: its file's modification time).
 */
export function scheduleStatus(schedule: Schedule, sinceMs: number, nowMs: number): ScheduleStatus {
  const due = isDue(schedule, sinceMs, nowMs);
  const next = due ? nextTime(schedule, sinceMs) : nextTime(schedule, nowMs);
  return {
    schedule: schedule.timezone !== undefined ? `${schedule.expression} ${schedule.timezone}` : schedule.expression,
    schedule_zone: schedule.effectiveZone,
    next_run: next ? next.toISOString() : null,
    due,
  };
}

/** The state key holding when the script last ran on its schedule (unix seconds). */
export const LAST_SCHEDULED_RUN = 'last_scheduled_run';

/** When the script last ran on schedule (ms), else since when it is in place (file mtime). */
export function scheduleReference(state: Record<string, unknown>, mtimeMs: number): number {
  const last = state[LAST_SCHEDULED_RUN];
  return typeof last === 'number' && Number.isFinite(last) ? last * 1000 : mtimeMs;
}
