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
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { type DeliveryOutcome, readOutcomes } from '../shared/outcomeLog.js';
import type { AlertRulesStore } from '../shared/alertRules.js';
import type { Clock } from '../shared/clock.js';
import { withUsage } from '../shared/httpBody.js';
import { FAILED_OUTCOMES, lastedText, OUTCOME_LOOK, outcomeLabel } from '../shared/history.js';
import { type RunRecord, type ScriptInfo, type ScriptsHelper, scriptNameProblem } from '../scripts/client.js';
import { listFailure, type RunNow } from '../scripts/runNow.js';
import type { DashboardPanel } from './pages.js';
import { html, raw, type SafeHtml } from '../shared/html.js';
import { registerRules, renderRulesCard } from './rules.js';
import { STATIC_DIR } from './static.js';

/** What the scripts feature needs. */
export interface ScriptsPluginOptions {
  /** The script helper (built on first use, so a bad NOTIFY_SCRIPTS_COMMAND shows as an error here). */
  helper: () => ScriptsHelper;
  /** Runs a script now and delivers it (shared with the desktop app's endpoint). */
  runNow: RunNow;
  rules: AlertRulesStore;
  dataDir: string;
  clock: Clock;
  panels: DashboardPanel[];
  /** How many recent runs the panel shows [20]. */
  runLimit?: number;
}

const DELIVERY_LABEL: Record<string, string> = { delivered: 'Delivered', refused: 'Refused by Telegram', given_up: 'Given up' };

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

const RunBodySchema = withUsage(z.object({ name: z.string() }).strict(), 'Give the script to run as {"name": "report.py"}.');


function sendError(reply: FastifyReply, p: { status: number; error: string }): FastifyReply {
  return reply.code(p.status).send({ error: p.error });
}

const ICON = raw(
  '<svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2Zm0 4v10h16V8H4Zm2.3 2.3 1.4-1.4L11.8 13l-4.1 4.1-1.4-1.4 2.7-2.7-2.7-2.7ZM12 15h6v2h-6v-2Z"/></svg>',
);

/** The "My scripts" card; the page's script fills the list from GET /api/scripts. */
export function renderScriptsCard(assets: { css: string; js: string }): SafeHtml {
  return html`<link rel="stylesheet" href="${assets.css}">
<script src="${assets.js}" defer></script>
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
    last_outcome_label: outcome ? outcomeLabel(outcome) : 'Never ran',
    tone: outcome ? (OUTCOME_LOOK[outcome]?.tone ?? 'idle') : 'idle',
    ...(err && outcome && (FAILED_OUTCOMES.has(outcome) || s.state_error) ? { last_error: errorExcerpt(err) } : {}),
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

/**
 * What became of a run's resolved notice: sent; held for the quiet-hours digest (while its
 * id is among the analyst's held alerts); sent with the digest; or not sent at all.
 */
function noticeState(r: RunRecord, held: ReadonlySet<string>): 'sent' | 'held_for_digest' | 'sent_in_digest' | 'not_sent' {
  if (r.resolved_notice === undefined) return 'not_sent';
  if (!r.resolved_notice_held) return 'sent';
  return held.has(r.resolved_notice) ? 'held_for_digest' : 'sent_in_digest';
}

function runView(r: RunRecord, delivery: { status: string; at: string; detail?: string | undefined } | undefined, held: ReadonlySet<string>): Record<string, unknown> {
  return {
    time: r.time,
    script: r.script,
    trigger: r.trigger,
    outcome: r.outcome,
    outcome_label: outcomeLabel(r.outcome),
    tone: OUTCOME_LOOK[r.outcome]?.tone ?? 'idle',
    duration_ms: r.duration_ms,
    ...(r.title ? { title: r.title } : {}),
    ...(r.error ? { error: errorExcerpt(r.error) } : {}),
    ...(r.held_until ? { held_until: r.held_until } : {}),
    ...(r.id ? { id: r.id } : {}),
    ...(r.resolved_at !== undefined || r.resolved_alert !== undefined ? { resolved_after_ms: r.resolved_after_ms ?? 0, resolved_after: lastedText(r.resolved_after_ms ?? 0) } : {}),
    ...(r.resolved_at !== undefined ? { resolved_at: r.resolved_at } : {}),
    ...(r.resolved_alert !== undefined ? { resolved_alert: r.resolved_alert, resolved_notice: noticeState(r, held) } : {}),
    ...(r.resolved_alert !== undefined && noticeState(r, held) === 'held_for_digest' && r.resolved_notice_until ? { resolved_notice_until: r.resolved_notice_until } : {}),
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

  opts.panels.push({ id: 'scripts', order: 20, render: async () => renderScriptsCard({ css: css.url, js: js.url }) });
  opts.panels.push({
    id: 'alert-rules',
    order: 30,
    render: async (identity) => {
      try {
        return renderRulesCard(await rules.forUser(identity.username), false);
      } catch (err) {
        app.log.error({ err }, 'could not read alert_rules.json');
        return renderRulesCard({ scripts: {} }, true);
      }
    },
  });

  app.addHook('onSend', async (request, reply, payload) => {
    if (request.url.startsWith('/api/')) reply.header('cache-control', 'no-store');
    return payload;
  });

  app.get('/api/scripts', async (request, reply) => {
    const user = request.caller.username;
    let scripts: ScriptInfo[];
    let runs: RunRecord[];
    try {
      const helper = opts.helper();
      [scripts, runs] = await Promise.all([helper.list(user), helper.history(user, { limit: runLimit })]);
    } catch (err) {
      const p = listFailure(err, user);
      request.log.warn({ user, err }, 'could not read the scripts');
      return sendError(reply, p);
    }
    const userRules = await rules.forUser(user);
    const ids = new Set(runs.map((r) => r.id).filter((id): id is string => id !== undefined));
    const outcomes = ids.size > 0 ? await readOutcomes(opts.dataDir, ids) : new Map<string, DeliveryOutcome>();
    const held = runs.some((r) => r.resolved_notice_held) ? await rules.heldIds(user) : new Set<string>();
    return {
      scripts: scripts.map((s) => scriptView(s, userRules.scripts[s.name])),
      runs: runs.map((r) => runView(r, r.id ? outcomes.get(r.id) : undefined, held)),
      rules: userRules,
    };
  });

  app.post<{ Body: z.infer<typeof RunBodySchema> }>('/api/scripts/run', { schema: { body: RunBodySchema } }, async (request, reply) => {
    const user = request.caller.username;
    const name = request.body.name;
    const problem = scriptNameProblem(name);
    if (problem) return sendError(reply, { status: 400, error: `${problem[0]?.toUpperCase() ?? ''}${problem.slice(1)}.` });
    const result = await opts.runNow.run(user, name);
    if (!result.ok) return sendError(reply, { status: result.status, error: result.text });
    return { ok: true, outcome: result.outcome, ...(result.outcome !== 'nothing_to_send' ? { id: result.handover.id } : {}), message: result.text };
  });

  registerRules(app, rules, opts.clock);
}
