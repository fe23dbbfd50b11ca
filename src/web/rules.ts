/**
 * The analyst's alert rules on the dashboard: a daily quiet window in a time zone, a mute
 * of everything for a while, and per-script mutes and snoozes (the buttons of the "My
 * scripts" panel). Stored through the shared AlertRulesStore, the bot's own file, so a
 * change shows at once in Telegram's /status and applies to the next alert.
 *
 *   GET    /api/rules                                 the rules
 *   PUT    /api/rules/quiet-hours  {"start", "end", "tz"}
 *   DELETE /api/rules/quiet-hours
 *   POST   /api/rules/mute         {"script"?, "duration"?}   a script until unmuted (or
 *                                                              snoozed for the duration); all: duration required
 *   POST   /api/rules/unmute       {"script"?}                one script, or every mute and snooze
 *   POST   /api/rules/snooze       {"script", "duration"}
 *
 * Every change answers `{"ok": true, "message", "rules"}`; a bad body 400 `{"error"}`.
 */
import { html, raw, type SafeHtml } from '../shared/html.js';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { type AlertRulesStore, QuietHoursSchema, type UserRules, isTimeZone } from '../shared/alertRules.js';
import type { Clock } from '../shared/clock.js';
import { parseDurationMs } from '../shared/units.js';
import { scriptNameProblem } from '../shared/history.js';
import { firstProblem } from '../shared/httpBody.js';

const MIN_MS = 60_000;
const MAX_MS = 30 * 86_400_000;

/** A duration such as 30m, 1h, 1d (at least a minute, at most 30 days) in ms, or a problem. */
export function durationOf(text: string): number | string {
  const ms = parseDurationMs(text);
  if (ms === null) return `duration: '${text.slice(0, 20)}' is not a duration such as 30m, 1h or 1d`;
  if (ms < MIN_MS) return 'duration: at least a minute (1m)';
  if (ms > MAX_MS) return 'duration: at most 30 days (30d)';
  return ms;
}

/** Words for a duration: "1 hour", "4 hours", "1 day", "90 minutes". */
export function durationWords(ms: number): string {
  const unit = (n: number, w: string): string => `${n} ${w}${n === 1 ? '' : 's'}`;
  if (ms % 86_400_000 === 0) return unit(ms / 86_400_000, 'day');
  if (ms % 3_600_000 === 0) return unit(ms / 3_600_000, 'hour');
  return unit(Math.round(ms / 60_000), 'minute');
}

const Script = z.string({ error: 'is required: a script file name such as report.py' }).refine((s) => scriptNameProblem(s) === null, { error: 'script: give a script file name such as report.py' });
const Duration = z.string({ error: 'is required: a duration such as 30m, 1h or 1d' }).max(20, { error: 'is not a duration such as 30m, 1h or 1d' });

const QuietBody = z
  .object({
    start: z.string({ error: 'start: is required (a time such as 22:00)' }),
    end: z.string({ error: 'end: is required (a time such as 07:00)' }),
    tz: z.string({ error: 'tz: is required (a time zone such as Europe/Prague)' }),
  })
  .strict();
const MuteBody = z.object({ script: Script.optional(), duration: Duration.optional() }).strict();
const UnmuteBody = z.object({ script: Script.optional() }).strict();
const SnoozeBody = z.object({ script: Script, duration: Duration }).strict();

function bad(reply: FastifyReply, error: string): FastifyReply {
  return reply.code(400).send({ error: /[.!?]$/.test(error) ? error : `${error}.` });
}

/** The rule routes. */
export function registerRules(app: FastifyInstance, rules: AlertRulesStore, clock: Clock): void {
  const now = (): number => clock.now();

  app.get('/api/rules', async (request) => rules.forUser(request.caller.username));

  app.put<{ Body: z.infer<typeof QuietBody> }>('/api/rules/quiet-hours', { schema: { body: QuietBody } }, async (request, reply) => {
    const user = request.caller.username;
    const body = request.body;
    const q = { start: body.start.trim(), end: body.end.trim(), tz: body.tz.trim() };
    if (!isTimeZone(q.tz)) return bad(reply, `'${q.tz.slice(0, 60)}' is not a time zone this server knows; use a name such as Europe/Prague, America/New_York or UTC`);
    const checked = QuietHoursSchema.safeParse(q);
    if (!checked.success) return bad(reply, firstProblem(checked.error));
    if (q.start === q.end) return bad(reply, 'The start and end of quiet hours must differ');
    const next = await rules.setQuietHours(user, checked.data);
    request.log.info({ user, quiet_hours: checked.data }, 'quiet hours set from the dashboard');
    return { ok: true, message: `Quiet hours set: ${q.start}–${q.end} (${q.tz}). Alerts in that window come as one digest when it ends.`, rules: next };
  });

  app.delete('/api/rules/quiet-hours', async (request) => {
    const user = request.caller.username;
    const next = await rules.setQuietHours(user, null);
    request.log.info({ user }, 'quiet hours cleared from the dashboard');
    return { ok: true, message: 'Quiet hours cleared. Alerts arrive at any time of day.', rules: next };
  });

  app.post<{ Body: z.infer<typeof MuteBody> }>('/api/rules/mute', { schema: { body: MuteBody } }, async (request, reply) => {
    const user = request.caller.username;
    const body = request.body;
    let ms: number | undefined;
    if (body.duration !== undefined) {
      const d = durationOf(body.duration);
      if (typeof d === 'string') return bad(reply, d.charAt(0).toUpperCase() + d.slice(1));
      ms = d;
    }
    if (body.script) {
      if (ms !== undefined) {
        const next = await rules.snooze(user, body.script, now() + ms);
        return { ok: true, message: `${body.script} is snoozed for ${durationWords(ms)}.`, rules: next };
      }
      const next = await rules.mute(user, body.script);
      request.log.info({ user, script: body.script }, 'script muted from the dashboard');
      return { ok: true, message: `${body.script} is muted until you unmute it. Its alerts are not sent but stay in the run history.`, rules: next };
    }
    if (ms === undefined) return bad(reply, 'Duration: is required to mute all alerts (such as 1h or 1d)');
    const next = await rules.muteAll(user, now() + ms);
    request.log.info({ user, ms }, 'all alerts muted from the dashboard');
    return { ok: true, message: `All alerts are muted for ${durationWords(ms)}. Muted alerts are not sent but stay in the run history.`, rules: next };
  });

  app.post<{ Body: z.infer<typeof UnmuteBody> }>('/api/rules/unmute', { schema: { body: UnmuteBody } }, async (request) => {
    const user = request.caller.username;
    const body = request.body;
    if (body.script) {
      const next = await rules.unmuteScript(user, body.script);
      return { ok: true, message: `${body.script} is unmuted: its alerts are sent again.`, rules: next };
    }
    const next = await rules.unmuteAll(user);
    request.log.info({ user }, 'all alerts unmuted from the dashboard');
    return { ok: true, message: 'Every mute and snooze is lifted: alerts are sent again.', rules: next };
  });

  app.post<{ Body: z.infer<typeof SnoozeBody> }>('/api/rules/snooze', { schema: { body: SnoozeBody } }, async (request, reply) => {
    const user = request.caller.username;
    const body = request.body;
    const d = durationOf(body.duration);
    if (typeof d === 'string') return bad(reply, d.charAt(0).toUpperCase() + d.slice(1));
    const next = await rules.snooze(user, body.script, now() + d);
    return { ok: true, message: `${body.script} is snoozed for ${durationWords(d)}.`, rules: next };
  });
}

const ICON = raw(
  '<svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M12.3 2a8.5 8.5 0 1 0 9.7 11.2A7 7 0 0 1 12.3 2Z"/></svg>',
);

/** The alert-settings card; `rules` seeds the page's script (which renders the state). */
export function renderRulesCard(rules: UserRules, loadError: boolean): SafeHtml {
  return html`<section class="card" id="rules-card" aria-labelledby="ru-title" data-rules="${JSON.stringify(rules)}">
  <div class="card-head">
    <div class="card-icon card-icon-rules">${ICON}</div>
    <div class="card-titles">
      <h2 id="ru-title">Alert settings</h2>
      <p class="card-sub">Quiet hours and mutes apply to Telegram and desktop alerts alike; <kbd>/status</kbd> in Telegram shows them too.</p>
    </div>
  </div>
  <div class="live" id="ru-live" role="status" aria-live="polite" aria-atomic="true"></div>
  ${loadError ? html`<div class="notice notice-error"><p>Your alert settings could not be read on the server. Try again later; if it persists, tell an administrator.</p></div>` : ''}
  <div class="card-body">
    <h3 class="section-title">Quiet hours</h3>
    <p class="state-line" id="ru-quiet-state"><span class="dot dot-off" aria-hidden="true"></span><span>No quiet hours: alerts arrive at any time.</span></p>
    <p class="hint">Alerts raised in this daily window are held and arrive as one digest when it ends. A script can mark a result <code>"urgent": true</code> to break through.</p>
    <form id="ru-quiet-form" class="rules-form" novalidate>
      <div class="field">
        <label for="ru-start">From</label>
        <input id="ru-start" name="start" type="time" required value="22:00">
      </div>
      <div class="field">
        <label for="ru-end">Until</label>
        <input id="ru-end" name="end" type="time" required value="07:00">
      </div>
      <div class="field field-wide">
        <label for="ru-tz">Time zone</label>
        <input id="ru-tz" name="tz" type="text" list="ru-tz-list" autocomplete="off" spellcheck="false" required aria-describedby="ru-quiet-error" placeholder="Europe/Prague">
        <datalist id="ru-tz-list"></datalist>
      </div>
      <div class="field field-actions">
        <button type="submit" class="btn btn-primary" id="ru-quiet-save">Save quiet hours</button>
        <button type="button" class="btn btn-secondary" id="ru-quiet-clear" hidden>Clear</button>
      </div>
    </form>
    <p id="ru-quiet-error" class="field-error" hidden></p>
  </div>
  <div class="card-body">
    <h3 class="section-title">Mute all alerts</h3>
    <p class="state-line" id="ru-mute-state"><span class="dot dot-on" aria-hidden="true"></span><span>Alerts are on.</span></p>
    <form id="ru-mute-form" class="rules-form" novalidate>
      <div class="field">
        <label for="ru-mute-duration">For</label>
        <select id="ru-mute-duration" name="duration">
          <option value="1h">1 hour</option>
          <option value="4h">4 hours</option>
          <option value="1d" selected>1 day</option>
          <option value="7d">1 week</option>
        </select>
      </div>
      <div class="field field-actions">
        <button type="submit" class="btn btn-secondary" id="ru-mute-all">Mute all alerts</button>
        <button type="button" class="btn btn-secondary" id="ru-unmute-all" hidden>Unmute all</button>
      </div>
    </form>
  </div>
</section>`;
}
