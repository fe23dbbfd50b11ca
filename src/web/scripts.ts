/**
 * The "My scripts" feature of the dashboard: the analyst's scripts with their last outcome
 * and mute/snooze state, a Run now button each, and the recent runs with each
 * notification's final delivery outcome. Scripts are read and run through the script
 * helper as the signed-in analyst (`NOTIFY_SCRIPTS_COMMAND`); an on-demand result is
 * delivered through the bot's send API and its id recorded in the analyst's history.
 *
 *   GET  /api/scripts          {"scripts": [...], "runs": [...], "rules": {...}}
 *   POST /api/scripts/run      {"name"} -> {"ok", "outcome", "id"?, "message"}
 *
 * The alert settings (rules.ts) share the panel's static script and stylesheet.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { type DeliveryOutcome, readOutcomes } from '../bot/delivery/outbox.js';
import { type AlertRulesStore, formatLocalTime } from '../shared/alertRules.js';
import type { Clock } from '../shared/clock.js';
import type { RuleOutcome } from '../shared/history.js';
import { type RunRecord, type ScriptInfo, type ScriptsHelper, ScriptsHelperError, scriptNameProblem } from '../scripts/client.js';
import { type SendClient, SocketUnavailableError, errorText } from '../shared/sendClient.js';
import { type DashboardPanel, esc } from './pages.js';
import { registerRules, renderRulesCard } from './rules.js';
import type { Identity } from './session.js';
import { STATIC_DIR } from './static.js';

/** What the scripts feature needs. */
export interface ScriptsPluginOptions {
  /** The script helper (built on first use, so a bad NOTIFY_SCRIPTS_COMMAND shows as an error here). */
  helper: () => ScriptsHelper;
  send: SendClient;
  rules: AlertRulesStore;
  dataDir: string;
  clock: Clock;
  panels: DashboardPanel[];
  /** How many recent runs the panel shows [20]. */
  runLimit?: number;
}

/** Readable labels of run outcomes (the same words as the bot's /status). */
export const OUTCOME_LABEL: Record<string, string> = {
  sent: 'Sent',
  held_by_cooldown: 'Held by cooldown',
  nothing_to_send: 'Nothing to send',
  failed: 'Failed',
  timed_out: 'Timed out',
  invalid_output: 'Invalid output',
  delivery_failed: 'Delivery failed',
  pending_delivery: 'Sent (on demand)',
  snoozed: 'Not sent: snoozed',
  muted: 'Not sent: muted',
  unchanged: 'Not sent: unchanged',
  held_quiet_hours: 'Held for quiet hours',
};

/** Outcome tone for the icon and colour: ok, idle, warn, bad. */
export const OUTCOME_TONE: Record<string, 'ok' | 'idle' | 'warn' | 'bad'> = {
  sent: 'ok',
  pending_delivery: 'ok',
  held_by_cooldown: 'idle',
  nothing_to_send: 'idle',
  snoozed: 'idle',
  muted: 'idle',
  unchanged: 'idle',
  held_quiet_hours: 'idle',
  invalid_output: 'warn',
  failed: 'bad',
  timed_out: 'bad',
  delivery_failed: 'bad',
};

const DELIVERY_LABEL: Record<string, string> = { delivered: 'Delivered', refused: 'Refused by Telegram', given_up: 'Given up' };

const FAILED = new Set(['failed', 'timed_out', 'invalid_output', 'delivery_failed']);

/** The last lines of an error, short enough for a table cell. */
export function errorExcerpt(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const lines = text.trim().split('\n').filter((l) => l.trim() !== '');
  const tail = lines.slice(-3).join('\n');
  return tail.length > 400 ? `…${tail.slice(-400)}` : tail;
}

/** A served static file with a content hash in its URL. */
interface OwnAsset {
  url: string;
  body: Buffer;
  type: string;
  hash: string;
}

function ownAsset(name: string, type: string): OwnAsset {
  const body = readFileSync(`${STATIC_DIR}${name}`);
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
  return { url: `/static/${name}?v=${hash}`, body, type, hash };
}

function serveAsset(app: FastifyInstance, name: string, asset: OwnAsset): void {
  // A static route wins over the shared /static/:name route for this one file.
  app.get<{ Querystring: { v?: string } }>(`/static/${name}`, async (request, reply) =>
    reply
      .type(asset.type)
      .header('cache-control', request.query.v === asset.hash ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('etag', `"${asset.hash}"`)
      .send(asset.body),
  );
}

/** Why the helper failed, in words for the analyst, and the HTTP status to answer with. */
export function helperProblem(err: unknown, user: string, name?: string): { status: number; error: string } {
  if (!(err instanceof ScriptsHelperError)) {
    return { status: 500, error: `${name ? `${name} could not be run` : 'Your scripts could not be read'}: ${err instanceof Error ? err.message : String(err)}` };
  }
  const withName = (m: string): string => (name && !m.includes(name) ? `${name}: ${m}` : m);
  switch (err.kind) {
    case 'invalid_request':
      return { status: 400, error: withName(err.message) };
    case 'not_found':
      return { status: 404, error: name ? `${name} is not in ~/user/notifications/ (any more).` : err.message };
    case 'timed_out':
    case 'script_failed':
    case 'invalid_output':
      return { status: 422, error: withName(err.message) };
    case 'sudo_refused':
    case 'helper_missing':
      return {
        status: 503,
        error: `The server is not set up to run scripts as ${user}, so ${name ? `${name} could not be run` : 'your scripts cannot be shown'} (${err.message}). Tell an administrator.`,
      };
    default:
      return { status: 502, error: withName(`the script helper failed: ${err.message}`) };
  }
}

const RunBodySchema = z.object({ name: z.string({ error: 'name: give the script file name, such as report.py' }) }).strict();

function who(request: FastifyRequest): Identity {
  const identity = request.identity;
  if (!identity) throw new Error('identity missing behind the session guard');
  return identity;
}

function sendError(reply: FastifyReply, p: { status: number; error: string }): FastifyReply {
  return reply.code(p.status).send({ error: p.error });
}

const ICON =
  '<svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2Zm0 4v10h16V8H4Zm2.3 2.3 1.4-1.4L11.8 13l-4.1 4.1-1.4-1.4 2.7-2.7-2.7-2.7ZM12 15h6v2h-6v-2Z"/></svg>';

/** The "My scripts" card; the page's script fills the list from GET /api/scripts. */
export function renderScriptsCard(assets: { css: string; js: string }): string {
  return `<link rel="stylesheet" href="${esc(assets.css)}">
<script src="${esc(assets.js)}" defer></script>
<section class="card" id="scripts-card" aria-labelledby="sc-title" aria-busy="true">
  <div class="card-head">
    <div class="card-icon card-icon-scripts">${ICON}</div>
    <div class="card-titles">
      <h2 id="sc-title">My scripts</h2>
      <p class="card-sub">Your scripts in <code>~/user/notifications/</code>, how they last ran, and their recent runs.</p>
    </div>
    <button type="button" class="btn btn-quiet" id="sc-refresh">Refresh</button>
  </div>
  <div class="live" id="sc-live" role="status" aria-live="polite" aria-atomic="true"></div>
  <div class="card-body">
    <p class="hint" id="sc-loading">Loading your scripts…</p>
    <noscript><p class="notice notice-warn">This panel needs JavaScript.</p></noscript>
    <div class="notice notice-error" id="sc-error" hidden><p id="sc-error-text"></p></div>
    <p id="sc-empty" hidden>No scripts yet. Put Python scripts in <code>~/user/notifications/</code> on the server; each prints one JSON object such as <code>{"notify": true, "title": "...", "message": "..."}</code>.</p>
    <ul class="script-list" id="sc-list" aria-label="Your scripts"></ul>
  </div>
  <div class="card-body" id="sc-runs-section" hidden>
    <h3 class="section-title" id="sc-runs-title">Recent runs</h3>
    <div class="table-wrap">
      <table class="runs" aria-labelledby="sc-runs-title">
        <thead><tr><th scope="col">When</th><th scope="col">Script</th><th scope="col">Outcome</th><th scope="col">Delivery</th></tr></thead>
        <tbody id="sc-runs"></tbody>
      </table>
    </div>
  </div>
</section>`;
}

/** A script as the API shows it: the helper's fields plus labels and its mute/snooze state. */
function scriptView(s: ScriptInfo, rule: { muted?: boolean | undefined; snoozed_until?: string | undefined } | undefined): Record<string, unknown> {
  const outcome = s.last_outcome ?? null;
  const err = s.last_error ?? s.state_error;
  return {
    name: s.name,
    stem: s.stem,
    last_run: s.last_run,
    last_outcome: outcome,
    last_outcome_label: outcome ? (OUTCOME_LABEL[outcome] ?? outcome) : 'Never ran',
    tone: outcome ? (OUTCOME_TONE[outcome] ?? 'idle') : 'idle',
    ...(err && outcome && (FAILED.has(outcome) || s.state_error) ? { last_error: errorExcerpt(err) } : {}),
    ...(s.last_warning ? { last_warning: errorExcerpt(s.last_warning) } : {}),
    last_sent: s.last_sent ?? null,
    ...(s.cooldown_until ? { cooldown_until: s.cooldown_until } : {}),
    muted: rule?.muted === true,
    ...(rule?.snoozed_until ? { snoozed_until: rule.snoozed_until } : {}),
    ...(s.schedule !== undefined ? { schedule: s.schedule } : {}),
    ...(s.schedule_zone !== undefined ? { schedule_zone: s.schedule_zone } : {}),
    ...(s.next_run !== undefined ? { next_run: s.next_run } : {}),
    ...(s.schedule_due !== undefined ? { schedule_due: s.schedule_due } : {}),
    ...(s.schedule_error !== undefined ? { schedule_error: s.schedule_error } : {}),
  };
}

function runView(r: RunRecord, delivery: { status: string; at: string; detail?: string | undefined } | undefined): Record<string, unknown> {
  return {
    time: r.time,
    script: r.script,
    trigger: r.trigger,
    outcome: r.outcome,
    outcome_label: OUTCOME_LABEL[r.outcome] ?? r.outcome,
    tone: OUTCOME_TONE[r.outcome] ?? 'idle',
    duration_ms: r.duration_ms,
    ...(r.title ? { title: r.title } : {}),
    ...(r.error ? { error: errorExcerpt(r.error) } : {}),
    ...(r.held_until ? { held_until: r.held_until } : {}),
    ...(r.id ? { id: r.id } : {}),
    ...(r.resolved_at !== undefined ? { resolved_at: r.resolved_at, resolved_after_ms: r.resolved_after_ms ?? 0 } : {}),
    ...(r.resolved_alert !== undefined ? { resolved_alert: r.resolved_alert, resolved_after_ms: r.resolved_after_ms ?? 0, resolved_notice_sent: r.resolved_notice !== undefined } : {}),
    ...(delivery ? { delivery: { status: delivery.status, label: DELIVERY_LABEL[delivery.status] ?? delivery.status, at: delivery.at, ...(delivery.detail ? { detail: delivery.detail } : {}) } } : {}),
  };
}

/** The scripts panel, the alert-settings panel and their API, as a Fastify plugin. */
export async function scriptsPlugin(app: FastifyInstance, opts: ScriptsPluginOptions): Promise<void> {
  const { rules } = opts;
  const runLimit = opts.runLimit ?? 20;
  const css = ownAsset('scripts.css', 'text/css; charset=utf-8');
  const js = ownAsset('scripts.js', 'text/javascript; charset=utf-8');
  serveAsset(app, 'scripts.css', css);
  serveAsset(app, 'scripts.js', js);
  const running = new Set<string>();

  opts.panels.push({ id: 'scripts', order: 20, render: async () => renderScriptsCard({ css: css.url, js: js.url }) });
  opts.panels.push({
    id: 'alert-rules',
    order: 30,
    render: async (identity) => {
      try {
        return renderRulesCard(await rules.forUser(identity.username), false);
      } catch (err) {
        app.log.error({ err: err instanceof Error ? err.message : String(err) }, 'could not read alert_rules.json');
        return renderRulesCard({ scripts: {} }, true);
      }
    },
  });

  app.addHook('onSend', async (request, reply, payload) => {
    if (request.url.startsWith('/api/')) reply.header('cache-control', 'no-store');
    return payload;
  });

  app.get('/api/scripts', async (request, reply) => {
    const user = who(request).username;
    let scripts: ScriptInfo[];
    let runs: RunRecord[];
    try {
      const helper = opts.helper();
      [scripts, runs] = await Promise.all([helper.list(user), helper.history(user, { limit: runLimit })]);
    } catch (err) {
      const p = helperProblem(err, user);
      request.log.warn({ user, reason: err instanceof Error ? err.message : String(err) }, 'could not read the scripts');
      return sendError(reply, p);
    }
    const userRules = await rules.forUser(user);
    const ids = new Set(runs.map((r) => r.id).filter((id): id is string => id !== undefined));
    const outcomes = ids.size > 0 ? await readOutcomes(opts.dataDir, ids) : new Map<string, DeliveryOutcome>();
    return {
      scripts: scripts.map((s) => scriptView(s, userRules.scripts[s.name])),
      runs: runs.map((r) => runView(r, r.id ? outcomes.get(r.id) : undefined)),
      rules: userRules,
    };
  });

  app.post<{ Body: unknown }>('/api/scripts/run', async (request, reply) => {
    const user = who(request).username;
    const parsed = RunBodySchema.safeParse(request.body ?? {});
    if (!parsed.success) return sendError(reply, { status: 400, error: 'Give the script to run as {"name": "report.py"}.' });
    const name = parsed.data.name;
    const problem = scriptNameProblem(name);
    if (problem) return sendError(reply, { status: 400, error: `${problem[0]?.toUpperCase() ?? ''}${problem.slice(1)}.` });
    const key = `${user}/${name}`;
    if (running.has(key)) return sendError(reply, { status: 409, error: `${name} is already running. Wait for it to finish.` });
    running.add(key);
    try {
      let run;
      let helper: ScriptsHelper;
      try {
        helper = opts.helper();
        run = await helper.run(user, name);
      } catch (err) {
        request.log.warn({ user, script: name, reason: err instanceof Error ? err.message : String(err) }, 'on-demand run failed');
        return sendError(reply, helperProblem(err, user, name));
      }
      if (run.outcome === 'nothing_to_send') {
        return { ok: true, outcome: 'nothing_to_send', message: `${name} ran: nothing to report right now (it printed "notify": false).` };
      }
      const out = run.output;
      const fields = { user, title: out.title ?? undefined, message: out.message ?? undefined, script: name, data: out.data ?? undefined };
      let res;
      try {
        res = run.image ? await opts.send.sendPhoto(fields, run.image, 'respond-async') : await opts.send.send(fields, 'respond-async');
      } catch (err) {
        const why = err instanceof SocketUnavailableError ? 'the notifications bot is not running' : err instanceof Error ? err.message : String(err);
        await helper.recordDelivery(user, run.runId, { error: why }).catch(() => undefined);
        request.log.warn({ user, script: name, reason: why }, 'could not hand the on-demand result to the bot');
        return sendError(reply, { status: 503, error: `${name} ran, but its notification could not be sent: ${why}. Try again later.` });
      }
      const body = (res.body ?? {}) as { id?: unknown; suppressed?: unknown; held?: unknown; until?: unknown };
      if (res.status < 200 || res.status >= 300 || typeof body.id !== 'string') {
        const why = errorText(res);
        await helper.recordDelivery(user, run.runId, { error: why }).catch(() => undefined);
        const hint = res.status === 404 ? ' Link Telegram (or a desktop client) to receive notifications.' : '';
        return sendError(reply, { status: res.status === 404 ? 409 : 502, error: `${name} ran, but its notification was not accepted: ${why}.${hint}` });
      }
      const id = body.id;
      await helper.recordDelivery(user, run.runId, { id, queued: res.status === 202, ...ruleOutcome(body) }).catch((err: unknown) => {
        request.log.warn({ user, reason: err instanceof Error ? err.message : String(err) }, 'could not record the delivery in the run history');
      });
      const tz = (await rules.forUser(user).catch(() => null))?.quiet_hours?.tz ?? 'UTC';
      const until = typeof body.until === 'string' && !Number.isNaN(Date.parse(body.until)) ? ` until ${formatLocalTime(Date.parse(body.until), tz)}` : '';
      const imageNote = run.imageError ? ` (its image was not attached: ${run.imageError})` : '';
      if (body.suppressed === 'muted' || body.suppressed === 'snoozed') {
        return { ok: true, outcome: body.suppressed, id, message: `${name} ran, but its alert is ${body.suppressed}${until}, so it was not sent. Unmute it to get it.` };
      }
      if (body.suppressed === 'unchanged') {
        return { ok: true, outcome: 'unchanged', id, message: `${name} ran; its data has not changed since the last alert, so nothing was sent.` };
      }
      if (body.held === 'quiet_hours') {
        return { ok: true, outcome: 'held_quiet_hours', id, message: `${name} ran; it is quiet hours, so the alert comes in the digest${until}.` };
      }
      const title = out.title ? `: "${out.title}"` : '';
      return { ok: true, outcome: 'sent', id, message: `${name} ran and its notification is on its way${title}${imageNote}.` };
    } finally {
      running.delete(key);
    }
  });

  registerRules(app, rules, opts.clock);
}

/** The history outcome of a send API answer that held a notification back, if it did. */
export function ruleOutcome(body: { suppressed?: unknown; held?: unknown; until?: unknown }): { outcome?: RuleOutcome; until?: string } {
  const until = typeof body.until === 'string' ? { until: body.until } : {};
  if (body.suppressed === 'snoozed' || body.suppressed === 'muted' || body.suppressed === 'unchanged') return { outcome: body.suppressed, ...until };
  if (body.held === 'quiet_hours') return { outcome: 'held_quiet_hours', ...until };
  return {};
}
