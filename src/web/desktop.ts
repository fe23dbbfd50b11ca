/**
 * The desktop channel on the dashboard: the "Desktop app" card where analysts create (shown
 * once) and revoke desktop tokens, the images the bot keeps for desktop notifications
 * (`GET /api/images/:id`, owner only), and the desktop app's REST endpoints
 * (`GET /api/desktop/scripts`, `POST /api/desktop/scripts/run`).
 *
 * Desktop tokens are accepted as `Authorization: Bearer` on the image and REST routes only
 * (never on the token routes: a token cannot mint or revoke tokens). The store is read on
 * every bearer request, so a revoked token stops working there at once.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../shared/clock.js';
import { DesktopTokenError, type DesktopTokenInfo, type DesktopTokenStore, verifyDesktopToken } from '../shared/desktopTokens.js';
import { type ScriptsHelper, ScriptsHelperError, type ScriptsHelperErrorKind } from '../scripts/client.js';
import { type SendClient, SocketUnavailableError, errorText } from '../shared/sendClient.js';
import { ruleOutcome } from './scripts.js';
import { type DashboardPanel, esc } from './pages.js';
import type { BearerAuth, Identity } from './session.js';
import type { Assets } from './static.js';

/** The bot's image ids (`<base36 time>-<6 hex>`): nothing else reaches the file system. */
export const IMAGE_ID_RE = /^[a-z0-9]+-[0-9a-f]{6}$/;

/** Validity choices offered on the card (any whole number of days 1..365 is accepted). */
export const TOKEN_DAYS = [30, 90, 365] as const;
const MAX_LABEL = 64;

const NOT_CONFIGURED = 'Desktop tokens are not enabled on this server (DESKTOP_JWT_SECRET is not set). Tell an administrator.';

/** The routes that accept a desktop bearer token. */
function bearerRoute(method: string, path: string): boolean {
  if (method === 'GET' || method === 'HEAD') return path === '/api/desktop/scripts' || path.startsWith('/api/images/');
  return method === 'POST' && path === '/api/desktop/scripts/run';
}

/** Desktop tokens as the session guard's bearer authentication. */
export function desktopBearer(store: DesktopTokenStore, secret: string | undefined, clock: Clock): BearerAuth {
  return {
    accepts: bearerRoute,
    async identify(token) {
      if (secret === undefined) return { error: NOT_CONFIGURED };
      if (token === '') return { error: 'The Authorization header holds no token.' };
      try {
        // The store is the revocation check: read on every request.
        const v = await verifyDesktopToken(secret, token, store, { clock });
        const who: Identity = { username: v.username, email: '', via: 'bearer', sid: v.jti ?? '', csrf: '', exp: Math.floor(v.expiresAtMs / 1000) };
        return who;
      } catch (err) {
        if (err instanceof DesktopTokenError) return { error: `The desktop token was refused: ${err.message}.` };
        throw err;
      }
    },
  };
}

/** What the desktop feature needs. */
export interface DesktopPluginOptions {
  store: DesktopTokenStore;
  /** DESKTOP_JWT_SECRET; undefined disables token creation. */
  secret: string | undefined;
  dataDir: string;
  /** The script helper, made on first use (its configuration comes from the environment). */
  helper: () => ScriptsHelper;
  /** The bot's send API (the dashboard's account is a trusted service there). */
  send: SendClient;
  assets: Assets;
  panels: DashboardPanel[];
}

const ErrorSchema = { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] } as const;
const errors = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 422: ErrorSchema, 500: ErrorSchema, 502: ErrorSchema, 503: ErrorSchema };

/** A token as the API lists it (never the token itself). */
function tokenView(t: DesktopTokenInfo): Record<string, unknown> {
  return { jti: t.jti, label: t.label ?? '', created_at: t.created_at, expires_at: t.expires_at, revoked: t.revoked_at !== undefined, ...(t.revoked_at !== undefined ? { revoked_at: t.revoked_at } : {}) };
}

function who(request: FastifyRequest): Identity {
  const identity = request.identity;
  if (!identity) throw new Error('identity missing behind the session guard');
  return identity;
}

function field(body: unknown, name: string): unknown {
  return body !== null && typeof body === 'object' && name in body ? (body as Record<string, unknown>)[name] : undefined;
}

/** HTTP status of a helper failure. */
function helperStatus(kind: ScriptsHelperErrorKind): 400 | 404 | 422 | 502 {
  switch (kind) {
    case 'invalid_request':
      return 400;
    case 'not_found':
      return 404;
    case 'script_failed':
    case 'invalid_output':
    case 'timed_out':
      return 422;
    default:
      return 502;
  }
}

function utcText(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** One row of the token table (the page's script builds the same rows after changes). */
function tokenRow(t: DesktopTokenInfo): string {
  const label = t.label ?? '';
  const revoked = t.revoked_at !== undefined;
  return `<tr data-jti="${esc(t.jti)}">
      <td>${label === '' ? '<span class="hint">(no label)</span>' : esc(label)}</td>
      <td><time datetime="${esc(t.created_at)}">${esc(utcText(t.created_at))}</time></td>
      <td><time datetime="${esc(t.expires_at)}">${esc(utcText(t.expires_at))}</time></td>
      <td>${revoked ? '<span class="badge badge-off">Revoked</span>' : '<span class="badge badge-on">Active</span>'}</td>
      <td>${revoked ? '' : `<button type="button" class="btn btn-danger-outline btn-revoke" data-jti="${esc(t.jti)}" data-label="${esc(label)}" aria-haspopup="dialog">Revoke<span class="visually-hidden"> ${esc(label || 'token')}</span></button>`}</td>
    </tr>`;
}

/** The card's HTML. */
export function renderDesktopCard(opts: { tokens: DesktopTokenInfo[]; enabled: boolean; loadError: boolean; scriptUrl: string }): string {
  const options = TOKEN_DAYS.map((d) => `<option value="${d}"${d === 90 ? ' selected' : ''}>${d} days</option>`).join('');
  const form = opts.enabled
    ? `<form id="dt-create-form" class="code-form" novalidate>
        <label for="dt-label">Name of the device</label>
        <input id="dt-label" name="label" type="text" maxlength="${MAX_LABEL}" autocomplete="off" placeholder="Work laptop" aria-describedby="dt-label-error">
        <label for="dt-days">Valid for</label>
        <select id="dt-days" name="days">${options}</select>
        <p id="dt-label-error" class="field-error" hidden></p>
        <div class="actions"><button type="submit" class="btn btn-primary" id="dt-create">Create token</button></div>
      </form>
      <div class="notice notice-ok" id="dt-new" hidden tabindex="-1">
        <p><strong>Your new token.</strong> Copy it into the desktop app now: it is shown only once.</p>
        <label for="dt-token" class="visually-hidden">New desktop token</label>
        <textarea id="dt-token" readonly rows="3" spellcheck="false"></textarea>
        <div class="actions"><button type="button" class="btn btn-secondary" id="dt-copy">Copy token</button> <button type="button" class="btn btn-quiet" id="dt-done">Done</button></div>
      </div>`
    : `<div class="notice notice-warn"><p>${esc(NOT_CONFIGURED)}</p></div>`;
  const rows = opts.tokens.map(tokenRow).join('\n');
  return `<section class="card" id="desktop-card" aria-labelledby="dt-title">
  <div class="card-head">
    <div class="card-titles">
      <h2 id="dt-title">Desktop app</h2>
      <p class="card-sub">Tokens that let the desktop app show your alerts and run your scripts.</p>
    </div>
  </div>
  <div class="live" id="dt-live" role="status" aria-live="polite" aria-atomic="true"></div>
  ${opts.loadError ? '<div class="notice notice-error"><p>Your tokens could not be read on the server. Try again later; if it persists, tell an administrator.</p></div>' : ''}
  <div class="card-body">
    ${form}
    <h3 id="dt-list-title">Your tokens</h3>
    <p id="dt-empty" class="hint"${opts.tokens.length > 0 ? ' hidden' : ''}>You have no desktop tokens.</p>
    <table id="dt-table" aria-labelledby="dt-list-title"${opts.tokens.length > 0 ? '' : ' hidden'}>
      <thead><tr><th scope="col">Name</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Status</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody id="dt-rows">${rows}</tbody>
    </table>
  </div>
</section>
<dialog class="dialog" id="dt-revoke-dialog" aria-labelledby="dt-revoke-title" aria-describedby="dt-revoke-desc">
  <h2 id="dt-revoke-title">Revoke this token?</h2>
  <p id="dt-revoke-desc">The desktop app using <strong id="dt-revoke-name"></strong> stops receiving alerts within a minute and can no longer run scripts. This cannot be undone.</p>
  <div class="dialog-actions">
    <button type="button" class="btn btn-secondary" id="dt-revoke-cancel">Cancel</button>
    <button type="button" class="btn btn-danger" id="dt-revoke-confirm">Revoke</button>
  </div>
</dialog>
<script src="${esc(opts.scriptUrl)}" defer></script>`;
}

/** The desktop card, its token API, the images and the desktop REST, as a Fastify plugin. */
export async function desktopPlugin(app: FastifyInstance, opts: DesktopPluginOptions): Promise<void> {
  const { store } = opts;
  const imageDir = join(opts.dataDir, 'images');
  const running = new Set<string>();
  opts.assets.add('desktop.js');

  opts.panels.push({
    id: 'desktop',
    order: 30,
    render: async (identity) => {
      let tokens: DesktopTokenInfo[] = [];
      let loadError = false;
      try {
        tokens = await store.list(identity.username);
      } catch (err) {
        loadError = true;
        app.log.error({ err: err instanceof Error ? err.message : String(err) }, 'could not read desktop_tokens.json');
      }
      return renderDesktopCard({ tokens, enabled: opts.secret !== undefined, loadError, scriptUrl: opts.assets.url('desktop.js') });
    },
  });

  function sessionOnly(request: FastifyRequest, reply: FastifyReply): Identity | null {
    const identity = who(request);
    if (identity.via === 'session') return identity;
    // Unreachable through the guard (bearer is accepted on other routes only); kept as a fence.
    void reply.code(401).send({ error: 'Sign in to the dashboard to manage desktop tokens.' });
    return null;
  }

  // ---- Tokens (browser session + anti-forgery token) ----
  app.get('/api/desktop/tokens', { schema: { response: errors } }, async (request, reply) => {
    const identity = sessionOnly(request, reply);
    if (!identity) return reply;
    reply.header('cache-control', 'no-store');
    return { tokens: (await store.list(identity.username)).map(tokenView) };
  });

  app.post<{ Body: unknown }>('/api/desktop/tokens', { schema: { response: errors } }, async (request, reply) => {
    const identity = sessionOnly(request, reply);
    if (!identity) return reply;
    reply.header('cache-control', 'no-store');
    if (opts.secret === undefined) return reply.code(503).send({ error: NOT_CONFIGURED });
    const rawLabel = field(request.body, 'label') ?? '';
    if (typeof rawLabel !== 'string') return reply.code(400).send({ error: 'The label must be text.' });
    // eslint-disable-next-line no-control-regex
    const label = rawLabel.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
    if (label.length > MAX_LABEL) return reply.code(400).send({ error: `The label is too long (at most ${MAX_LABEL} characters).` });
    const rawDays = field(request.body, 'days') ?? 90;
    const days = typeof rawDays === 'string' && /^\d+$/.test(rawDays) ? Number(rawDays) : rawDays;
    if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > 365) {
      return reply.code(400).send({ error: 'The validity must be a whole number of days from 1 to 365.' });
    }
    const issued = await store.issue(opts.secret, identity.username, days * 86_400, label === '' ? undefined : label);
    request.log.info({ user: identity.username, jti: issued.jti, days }, 'desktop token created');
    return { ok: true, token: issued.token, jti: issued.jti, label, expires_at: issued.expiresAt };
  });

  app.post<{ Body: unknown }>('/api/desktop/tokens/revoke', { schema: { response: errors } }, async (request, reply) => {
    const identity = sessionOnly(request, reply);
    if (!identity) return reply;
    reply.header('cache-control', 'no-store');
    const jti = field(request.body, 'jti');
    if (typeof jti !== 'string' || jti === '' || jti.length > 100) return reply.code(400).send({ error: 'Say which token to revoke ("jti").' });
    const result = await store.revoke(identity.username, jti);
    if (result === 'not_found') return reply.code(404).send({ error: 'You have no such token.' });
    request.log.info({ user: identity.username, jti, result }, 'desktop token revoked');
    return { ok: true, message: result === 'revoked' ? 'The token is revoked.' : 'The token was already revoked.' };
  });

  // ---- Images of desktop notifications (session or bearer; owner only) ----
  app.get<{ Params: { id: string } }>('/api/images/:id', async (request, reply) => {
    const identity = who(request);
    const id = request.params.id;
    if (!IMAGE_ID_RE.test(id)) return reply.code(400).header('cache-control', 'no-store').send({ error: 'That is not an image id.' });
    const notFound = (): FastifyReply => reply.code(404).header('cache-control', 'no-store').send({ error: 'There is no such image.' });
    let meta: unknown;
    try {
      meta = JSON.parse(await fsp.readFile(join(imageDir, `${id}.json`), 'utf8'));
    } catch {
      return notFound();
    }
    const owner = field(meta, 'user');
    // Another user's image is "not found" too, so ids cannot be probed.
    if (typeof owner !== 'string' || owner !== identity.username) return notFound();
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(join(imageDir, `${id}.img`));
    } catch {
      return notFound();
    }
    const declared = field(meta, 'content_type');
    const type = typeof declared === 'string' && /^image\/(png|jpeg|gif|webp)$/.test(declared) ? declared : 'application/octet-stream';
    return reply.type(type).header('cache-control', 'private').header('x-content-type-options', 'nosniff').send(bytes);
  });

  // ---- Desktop REST (bearer or session) ----
  app.get('/api/desktop/scripts', { schema: { response: errors } }, async (request, reply) => {
    const identity = who(request);
    reply.header('cache-control', 'no-store');
    try {
      return { scripts: await opts.helper().list(identity.username) };
    } catch (err) {
      if (!(err instanceof ScriptsHelperError)) throw err;
      request.log.warn({ user: identity.username, kind: err.kind, reason: err.message }, 'could not list scripts for the desktop app');
      return reply.code(helperStatus(err.kind)).send({ error: `Could not list your scripts: ${err.message}` });
    }
  });

  app.post<{ Body: unknown }>('/api/desktop/scripts/run', { schema: { response: errors } }, async (request, reply) => {
    const identity = who(request);
    const user = identity.username;
    reply.header('cache-control', 'no-store');
    const name = field(request.body, 'name');
    if (typeof name !== 'string' || name === '') return reply.code(400).send({ error: 'Say which script to run ("name", e.g. "report.py").' });
    const key = `${user}/${name}`;
    if (running.has(key)) return reply.code(409).send({ error: `${name} is already running.` });
    running.add(key);
    try {
      let run;
      try {
        run = await opts.helper().run(user, name);
      } catch (err) {
        if (!(err instanceof ScriptsHelperError)) throw err;
        request.log.warn({ user, script: name, kind: err.kind, reason: err.message }, 'desktop run failed');
        return await reply.code(helperStatus(err.kind)).send({ error: err.message });
      }
      const base = { ok: true, script: name, run_id: run.runId, ...(run.warning ? { warning: run.warning } : {}) };
      if (run.outcome === 'nothing_to_send') return { ...base, notified: false, message: `${name} ran: nothing to report right now.` };
      const out = run.output;
      const fields: Record<string, unknown> = { user, script: name };
      if (typeof out.title === 'string') fields.title = out.title;
      if (typeof out.message === 'string') fields.message = out.message;
      if (out.data !== undefined && out.data !== null) fields.data = out.data;
      let failure: string;
      try {
        const res = run.image ? await opts.send.sendPhoto(fields, run.image, 'respond-async') : await opts.send.send(fields, 'respond-async');
        const body = res.body as { id?: unknown; suppressed?: unknown; held?: unknown; until?: unknown } | null;
        if (res.status >= 200 && res.status < 300 && body && typeof body.id === 'string') {
          await opts.helper().recordDelivery(user, run.runId, { id: body.id, queued: res.status === 202, ...ruleOutcome(body) }).catch((err: unknown) => {
            request.log.warn({ user, reason: err instanceof Error ? err.message : String(err) }, 'could not record the delivery in the run history');
          });
          request.log.info({ user, script: name, id: body.id }, 'desktop run delivered to the bot');
          return { ...base, notified: true, id: body.id, delivery: res.body, ...(run.imageError ? { image_error: run.imageError } : {}) };
        }
        failure = errorText(res);
      } catch (err) {
        failure = err instanceof SocketUnavailableError ? err.message : err instanceof Error ? err.message : String(err);
      }
      await opts.helper().recordDelivery(user, run.runId, { error: failure }).catch(() => undefined);
      request.log.warn({ user, script: name, reason: failure }, 'desktop run: the notification could not be handed to the bot');
      return await reply.code(502).send({ error: `${name} ran, but its notification could not be sent: ${failure}` });
    } finally {
      running.delete(key);
    }
  });
}
