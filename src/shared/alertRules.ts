/**
 * Analysts' rules for fewer, better alerts, kept in the data directory so the bot (which
 * applies them) and the dashboard (which shows and changes them) share one truth:
 * snoozes and mutes per script, a mute of everything, and a daily quiet window in the
 * analyst's time zone. Also the last sent `data` per script (for only-if-changed) and the
 * alerts held during quiet hours (for the digest).
 *
 *   alert_rules.json   {"<user>": {"muted_until"?, "scripts": {"<script>": {"snoozed_until"?, "muted"?}}, "quiet_hours"?}}
 *   alert_data/<user>.json  {"<script>": {"data": "<the data as compact JSON text>", "at": "<ISO>"}}
 *                      one file per analyst, so what one analyst stores can never make
 *                      another's unreadable; the data is kept as text, so the file's own
 *                      structure stays flat whatever the data (bounded by DATA_LIMITS), and
 *                      the analyst's file by ALERT_DATA_MAX_BYTES, oldest scripts first out
 *   held_alerts.json   {"<user>": [{"id", "at", "title", "message", "script"?}]}
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import type { Clock } from './clock.js';
import { type SharedDocument, sharedDocument } from './documents.js';
import { JsonFile } from './jsonFile.js';

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** A daily quiet window in a time zone; start after end means it spans midnight. */
export const QuietHoursSchema = z.object({
  start: z.string().regex(HHMM, 'must be a time such as 22:00'),
  end: z.string().regex(HHMM, 'must be a time such as 07:00'),
  tz: z.string().refine(isTimeZone, 'must be a time zone such as Europe/Prague or UTC'),
});
export type QuietHours = z.infer<typeof QuietHoursSchema>;

const ScriptRuleSchema = z.looseObject({
  snoozed_until: z.string().optional(),
  muted: z.boolean().optional(),
});
const UserRulesSchema = z.looseObject({
  muted_until: z.string().optional(),
  scripts: z.record(z.string(), ScriptRuleSchema).default({}),
  quiet_hours: QuietHoursSchema.optional(),
});
const RulesSchema = z.record(z.string(), UserRulesSchema);
export type UserRules = z.infer<typeof UserRulesSchema>;
type Rules = z.infer<typeof RulesSchema>;

/** One analyst's only-if-changed state: per script, the last sent data (JSON text) and when. */
const UserDataSchema = z.record(z.string(), z.looseObject({ data: z.string(), at: z.string() }));
type UserDataFile = z.infer<typeof UserDataSchema>;

/** The most one analyst's only-if-changed state may hold (bytes of JSON); the oldest scripts' go first. */
export const ALERT_DATA_MAX_BYTES = 1024 * 1024;

/** One analyst's only-if-changed state cannot be read: that analyst's feature fails, nothing else. */
export class AlertDataUnreadableError extends Error {
  constructor(user: string, cause: unknown) {
    super(`the only_if_changed state of '${user}' cannot be read (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
    this.name = 'AlertDataUnreadableError';
  }
}

/** An alert held back during quiet hours. */
export const HeldAlertSchema = z.looseObject({
  id: z.string(),
  at: z.string(),
  title: z.string(),
  message: z.string(),
  script: z.string().optional(),
  had_image: z.boolean().optional(),
});
export type HeldAlert = z.infer<typeof HeldAlertSchema>;
const HeldSchema = z.record(z.string(), z.array(HeldAlertSchema));
type HeldFile = z.infer<typeof HeldSchema>;

/** JSON with object keys sorted, so equal data compares equal whatever its key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** True when the runtime knows the IANA time zone. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function minutesOf(hhmm: string): number {
  const m = HHMM.exec(hhmm);
  return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
}

/** Local wall-clock minutes since midnight at instant `ms` in `tz`. */
export function localMinutes(ms: number, tz: string): number {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(ms));
  const h = Number(parts.find((p) => p.type === 'hour')?.value ?? 0);
  const min = Number(parts.find((p) => p.type === 'minute')?.value ?? 0);
  return h * 60 + min;
}

/** Is the instant inside the quiet window? */
export function inQuietHours(q: QuietHours | undefined, ms: number): boolean {
  if (!q) return false;
  const s = minutesOf(q.start);
  const e = minutesOf(q.end);
  if (s === e) return false;
  const m = localMinutes(ms, q.tz);
  return s < e ? m >= s && m < e : m >= s || m < e;
}

/** The next instant (to the minute) after `ms` when the quiet window ends. */
export function quietHoursEnd(q: QuietHours, ms: number): number {
  // Walk forward minute by minute from an estimate; DST shifts move the wall clock by up to an hour.
  const e = minutesOf(q.end);
  let t = Math.floor(ms / 60_000) * 60_000;
  const ahead = (e - localMinutes(t, q.tz) + 1440) % 1440;
  t += Math.max(0, ahead - 90) * 60_000;
  for (let i = 0; i < 240; i += 1) {
    t += 60_000;
    if (!inQuietHours(q, t)) return t;
  }
  return ms + ((e - localMinutes(ms, q.tz) + 1440) % 1440) * 60_000;
}

/** Wall-clock "HH:MM" of an instant in a time zone (UTC when none). */
export function formatLocalTime(ms: number, tz = 'UTC'): string {
  const s = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(ms));
  return tz === 'UTC' ? `${s} UTC` : s;
}

/** Why a notification is not sent now. */
export type Suppression =
  | { kind: 'muted'; until?: string; scope: 'script' | 'all' }
  | { kind: 'snoozed'; until: string };

/** The rule that stops a script's alert now, if any (expired rules count as absent). */
export function suppressionFor(rules: UserRules | undefined, script: string | undefined, now: number): Suppression | null {
  if (!rules) return null;
  if (rules.muted_until && Date.parse(rules.muted_until) > now) return { kind: 'muted', until: rules.muted_until, scope: 'all' };
  if (!script) return null;
  const r = rules.scripts[script];
  if (r?.muted) return { kind: 'muted', scope: 'script' };
  if (r?.snoozed_until && Date.parse(r.snoozed_until) > now) return { kind: 'snoozed', until: r.snoozed_until };
  return null;
}

/** How a data object changed: keys added, removed, numbers old -> new, other values changed. */
export function describeChanges(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const lines: string[] = [];
  const show = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v)).slice(0, 60);
  for (const k of Object.keys(after)) {
    if (!(k in before)) lines.push(`+ ${k}: ${show(after[k])}`);
    else if (canonicalJson(before[k]) !== canonicalJson(after[k])) {
      const a = before[k];
      const b = after[k];
      if (typeof a === 'number' && typeof b === 'number') {
        const pct = a !== 0 ? ` (${b >= a ? '+' : ''}${(((b - a) / Math.abs(a)) * 100).toFixed(1)}%)` : '';
        lines.push(`${k}: ${a} -> ${b}${pct}`);
      } else lines.push(`${k}: ${show(a)} -> ${show(b)}`);
    }
  }
  for (const k of Object.keys(before)) if (!(k in after)) lines.push(`- ${k} (removed)`);
  return lines;
}

/** The shared rule files of one data directory. */
export class AlertRulesStore {
  readonly rules: SharedDocument<Rules>;
  readonly held: SharedDocument<HeldFile>;
  private readonly dataDocs = new Map<string, SharedDocument<UserDataFile>>();

  constructor(
    readonly dataDir: string,
    private readonly clock: Clock,
  ) {
    this.rules = sharedDocument(dataDir, 'alert_rules.json', RulesSchema, () => ({}));
    this.held = sharedDocument(dataDir, 'held_alerts.json', HeldSchema, () => ({}));
  }

  /** A user's rules with expired snoozes and mutes dropped. */
  async forUser(user: string): Promise<UserRules> {
    return this.prune(await this.rules.pick((all) => all[user]));
  }

  private prune(r: UserRules | undefined): UserRules {
    const now = this.clock.now();
    const out: UserRules = { ...(r ?? {}), scripts: {} };
    if (out.muted_until && Date.parse(out.muted_until) <= now) delete out.muted_until;
    for (const [name, s] of Object.entries(r?.scripts ?? {})) {
      const keep = { ...s };
      if (keep.snoozed_until && Date.parse(keep.snoozed_until) <= now) delete keep.snoozed_until;
      if (keep.muted || keep.snoozed_until) out.scripts[name] = keep;
    }
    return out;
  }

  /** Changes a user's rules under the lock; returns the new rules. */
  async change(user: string, fn: (r: UserRules) => void): Promise<UserRules> {
    return this.rules.update((all) => {
      const r = this.prune(all[user]);
      fn(r);
      const next = { ...all };
      if (Object.keys(r.scripts).length === 0 && !r.muted_until && !r.quiet_hours) delete next[user];
      else next[user] = r;
      return { next, result: r };
    });
  }

  /** Snoozes a script until `untilMs`. */
  snooze(user: string, script: string, untilMs: number): Promise<UserRules> {
    return this.change(user, (r) => {
      r.scripts[script] = { ...r.scripts[script], snoozed_until: new Date(untilMs).toISOString() };
    });
  }

  /** Mutes a script until unmuted. */
  mute(user: string, script: string): Promise<UserRules> {
    return this.change(user, (r) => {
      r.scripts[script] = { ...r.scripts[script], muted: true };
    });
  }

  /** Clears a script's snooze and mute. */
  unmuteScript(user: string, script: string): Promise<UserRules> {
    return this.change(user, (r) => {
      delete r.scripts[script];
    });
  }

  /** Mutes everything until `untilMs`. */
  muteAll(user: string, untilMs: number): Promise<UserRules> {
    return this.change(user, (r) => {
      r.muted_until = new Date(untilMs).toISOString();
    });
  }

  /** Clears every mute and snooze (quiet hours stay). */
  unmuteAll(user: string): Promise<UserRules> {
    return this.change(user, (r) => {
      delete r.muted_until;
      r.scripts = {};
    });
  }

  /** Sets (or, with null, clears) the quiet window. */
  setQuietHours(user: string, q: QuietHours | null): Promise<UserRules> {
    return this.change(user, (r) => {
      if (q) r.quiet_hours = QuietHoursSchema.parse(q);
      else delete r.quiet_hours;
    });
  }

  /** The analyst's own only-if-changed document (user names are login names: no '/'). */
  private dataOf(user: string): SharedDocument<UserDataFile> {
    let doc = this.dataDocs.get(user);
    if (!doc) {
      doc = sharedDocument(this.dataDir, `alert_data/${user}.json`, UserDataSchema, () => ({}));
      if (doc instanceof JsonFile) mkdirSync(dirname(doc.path), { recursive: true, mode: 0o770 });
      this.dataDocs.set(user, doc);
    }
    return doc;
  }

  /**
   * For only-if-changed: compares `data` with the last one sent for the script. Returns
   * null when unchanged, else the change lines (empty for the first one). Records nothing:
   * call recordData once the notification is accepted, so a refused send is tried again.
   * Throws AlertDataUnreadableError when the analyst's state cannot be read.
   */
  async changesSince(user: string, script: string, data: Record<string, unknown>): Promise<string[] | null> {
    let prev: Record<string, unknown> | undefined;
    try {
      const text = (await this.dataOf(user).read())[script]?.data;
      prev = text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
    } catch (err) {
      throw new AlertDataUnreadableError(user, err);
    }
    if (prev && canonicalJson(prev) === canonicalJson(data)) return null;
    return prev ? describeChanges(prev, data) : [];
  }

  /** Records `data` as the last sent one of the script, keeping the analyst's state within ALERT_DATA_MAX_BYTES. */
  async recordData(user: string, script: string, data: Record<string, unknown>): Promise<void> {
    await this.dataOf(user).update((all) => {
      const next: UserDataFile = { ...all, [script]: { data: JSON.stringify(data), at: new Date(this.clock.now()).toISOString() } };
      const oldestFirst = Object.keys(next)
        .filter((k) => k !== script)
        .sort((a, b) => (next[a]!.at < next[b]!.at ? -1 : 1));
      let bytes = Buffer.byteLength(JSON.stringify(next));
      while (oldestFirst.length > 0 && bytes > ALERT_DATA_MAX_BYTES) {
        const k = oldestFirst.shift()!;
        bytes -= Buffer.byteLength(JSON.stringify({ [k]: next[k] })) - 1;
        delete next[k];
      }
      return { next, result: undefined };
    });
  }

  /** Holds an alert for the digest. */
  async hold(user: string, alert: HeldAlert): Promise<void> {
    await this.held.update((all) => ({ next: { ...all, [user]: [...(all[user] ?? []), alert] }, result: undefined }));
  }

  /** The ids of a user's held alerts (an id leaves once its digest is queued). */
  async heldIds(user: string): Promise<Set<string>> {
    return new Set(((await this.held.read())[user] ?? []).map((a) => a.id));
  }

  /** Users with held alerts. */
  async heldUsers(): Promise<string[]> {
    const all = await this.held.read();
    return Object.keys(all).filter((u) => (all[u] ?? []).length > 0);
  }

  /**
   * Takes a user's held alerts for a digest: `deliver` gets them and must resolve once the
   * digest is safely queued; only then are they removed (a crash in between sends the
   * digest again rather than losing it).
   */
  async releaseHeld(user: string, deliver: (alerts: HeldAlert[]) => Promise<void>): Promise<number> {
    const alerts = (await this.held.read())[user] ?? [];
    if (alerts.length === 0) return 0;
    await deliver(alerts);
    const ids = new Set(alerts.map((a) => a.id));
    await this.held.update((all) => {
      const rest = (all[user] ?? []).filter((a) => !ids.has(a.id));
      const next = { ...all };
      if (rest.length > 0) next[user] = rest;
      else delete next[user];
      return { next, result: undefined };
    });
    return alerts.length;
  }
}
