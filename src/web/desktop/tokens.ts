/**
 * Desktop tokens on the dashboard: the "Desktop app" card where analysts create (shown once)
 * and revoke tokens, the token routes behind it (browser session and anti-forgery token
 * only: a token cannot mint or revoke tokens), and the bearer authentication the desktop
 * routes accept. The store is read on every bearer request, so a revoked token stops
 * working at once.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Clock } from '../../shared/clock.js';
import type { DesktopLink, DesktopLinkStore } from '../../shared/desktopLinks.js';
import { withUsage } from '../../shared/httpBody.js';
import { ERROR_RESPONSES } from '../../shared/httpErrors.js';
import { DesktopTokenError, type DesktopTokenInfo, type DesktopTokenStore, REFRESH_GRACE_SECONDS, verifyDesktopToken } from '../../shared/desktopTokens.js';
import type { DashboardPanel } from '../pages.js';
import { html, type SafeHtml } from '../../shared/html.js';
import type { Identity } from '../session.js';
import type { Assets } from '../static.js';
import { NOT_CONFIGURED } from './common.js';

/** Validity choices offered on the card (any whole number of days 1..365 is accepted). */
export const TOKEN_DAYS = [30, 90, 365] as const;
const MAX_LABEL = 64;
const DAYS_TEXT = 'The validity must be a whole number of days from 1 to 365.';

/** Body of POST /api/desktop/tokens: a label (control characters become spaces) and days [90]. */
const CreateTokenBody = z.object({
  label: z
    .string({ error: 'The label must be text.' })
    .nullish()
    // eslint-disable-next-line no-control-regex
    .transform((l) => (l ?? '').replace(/[\u0000-\u001f\u007f]/g, ' ').trim())
    .pipe(z.string().max(MAX_LABEL, `The label is too long (at most ${MAX_LABEL} characters).`)),
  days: z
    .union([z.number(), z.string().regex(/^\d+$/).transform(Number)], { error: DAYS_TEXT })
    .nullish()
    .transform((d) => d ?? 90)
    .pipe(z.number().int(DAYS_TEXT).min(1, DAYS_TEXT).max(365, DAYS_TEXT)),
});

/** Body of POST /api/desktop/tokens/revoke. */
const RevokeBody = withUsage(z.object({ jti: z.string().min(1).max(100) }), 'Say which token to revoke ("jti").');

/**
 * The identity of a desktop bearer token, or the error to answer 401 with. The store is the
 * revocation check, read on every request. With `refresh`, a token expired less than
 * REFRESH_GRACE_SECONDS ago is accepted too, but only one the store knows (so it can have
 * been revoked) and made for the same user.
 */
export async function identifyBearer(store: DesktopTokenStore, secret: string | undefined, clock: Clock, token: string, opts: { refresh: boolean }): Promise<Identity | { error: string }> {
  if (secret === undefined) return { error: NOT_CONFIGURED };
  if (token === '') return { error: 'The Authorization header holds no token.' };
  try {
    const v = await verifyDesktopToken(secret, token, store, { clock, ...(opts.refresh ? { graceSeconds: REFRESH_GRACE_SECONDS } : {}) });
    if (opts.refresh) {
      const record = v.jti === undefined ? null : await store.get(v.jti);
      if (!record || record.user !== v.username) return { error: 'The desktop token was refused: this token cannot be renewed; link the desktop app again from the dashboard.' };
    }
    return { username: v.username, email: '', via: 'bearer', sid: v.jti ?? '', csrf: '', exp: Math.floor(v.expiresAtMs / 1000) };
  } catch (err) {
    if (err instanceof DesktopTokenError) return { error: `The desktop token was refused: ${err.message}.` };
    throw err;
  }
}

/** What the token card and routes need. */
export interface DesktopTokensOptions {
  store: DesktopTokenStore;
  links: DesktopLinkStore;
  /** DESKTOP_JWT_SECRET; undefined disables token creation. */
  secret: string | undefined;
  assets: Assets;
  panels: DashboardPanel[];
}

/** A token as the API lists it (never the token itself). */
function tokenView(t: DesktopTokenInfo): Record<string, unknown> {
  return { jti: t.jti, label: t.label ?? '', created_at: t.created_at, expires_at: t.expires_at, revoked: t.revoked_at !== undefined, ...(t.revoked_at !== undefined ? { revoked_at: t.revoked_at } : {}) };
}

function utcText(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** One row of the token table (the page's script builds the same rows after changes). */
function tokenRow(t: DesktopTokenInfo): SafeHtml {
  const label = t.label ?? '';
  const revoked = t.revoked_at !== undefined;
  return html`<tr data-jti="${t.jti}">
      <td>${label === '' ? html`<span class="hint">(no label)</span>` : label}</td>
      <td><time datetime="${t.created_at}">${utcText(t.created_at)}</time></td>
      <td><time datetime="${t.expires_at}">${utcText(t.expires_at)}</time></td>
      <td>${revoked ? html`<span class="badge badge-off">Revoked</span>` : html`<span class="badge badge-on">Active</span>`}</td>
      <td>${revoked ? '' : html`<button type="button" class="btn btn-danger-outline btn-revoke" data-jti="${t.jti}" data-label="${label}" aria-haspopup="dialog">Revoke<span class="visually-hidden"> ${label || 'token'}</span></button>`}</td>
    </tr>`;
}

/** The card's HTML. */
export function renderDesktopCard(opts: { tokens: DesktopTokenInfo[]; link: DesktopLink | null; enabled: boolean; loadError: boolean; scriptUrl: string }): SafeHtml {
  const badge = opts.link ? html`<span id="dt-link-badge" class="badge badge-on">Linked</span>` : html`<span id="dt-link-badge" class="badge badge-off">Not linked</span>`;
  const linkState = html`<div class="status-row" id="dt-link-state">
      <p><span class="label">Desktop app:</span> ${badge}${
        opts.link ? html` <span class="hint" id="dt-link-since">since <time datetime="${opts.link.linked_at}">${utcText(opts.link.linked_at)}</time></span>` : ''
      }</p>
      <div class="actions"><button type="button" class="btn btn-danger-outline" id="dt-unlink" aria-haspopup="dialog"${opts.link ? '' : html` hidden`}>Unlink desktop app</button></div>
      <p class="hint" id="dt-link-hint"${opts.link ? html` hidden` : ''}>To sign in the desktop app, choose <em>Sign in</em> in the app: it opens <a href="/desktop/link">this dashboard's link page</a>. Or create a token below and paste it into the app.</p>
    </div>`;
  const options = TOKEN_DAYS.map((d) => html`<option value="${d}"${d === 90 ? html` selected` : ''}>${d} days</option>`);
  const form = opts.enabled
    ? html`<form id="dt-create-form" class="code-form" novalidate>
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
    : html`<div class="notice notice-warn"><p>${NOT_CONFIGURED}</p></div>`;
  const rows = opts.tokens.map(tokenRow);
  return html`<section class="card" id="desktop-card" aria-labelledby="dt-title">
  <div class="card-head">
    <div class="card-titles">
      <h2 id="dt-title">Desktop app</h2>
      <p class="card-sub">Tokens that let the desktop app show your alerts and run your scripts.</p>
    </div>
  </div>
  <div class="live" id="dt-live" role="status" aria-live="polite" aria-atomic="true"></div>
  ${opts.loadError ? html`<div class="notice notice-error"><p>Your desktop link and tokens could not be read on the server. Try again later; if it persists, tell an administrator.</p></div>` : ''}
  <div class="card-body">
    ${linkState}
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
<dialog class="dialog" id="dt-unlink-dialog" aria-labelledby="dt-unlink-title" aria-describedby="dt-unlink-desc">
  <h2 id="dt-unlink-title">Unlink the desktop app?</h2>
  <p id="dt-unlink-desc">Every desktop token of yours is revoked: the desktop app stops receiving alerts within a minute and can no longer run scripts. Sign it in again to use it.</p>
  <div class="dialog-actions">
    <button type="button" class="btn btn-secondary" id="dt-unlink-cancel">Cancel</button>
    <button type="button" class="btn btn-danger" id="dt-unlink-confirm">Unlink</button>
  </div>
</dialog>
<script src="${opts.scriptUrl}" defer></script>`;
}

/** The token card and its routes, as a Fastify plugin. */
export async function desktopTokensPlugin(app: FastifyInstance, opts: DesktopTokensOptions): Promise<void> {
  const { store } = opts;
  opts.assets.add('desktop.js');

  opts.panels.push({
    id: 'desktop',
    order: 30,
    render: async (identity) => {
      let tokens: DesktopTokenInfo[] = [];
      let link: DesktopLink | null = null;
      let loadError = false;
      try {
        [tokens, link] = await Promise.all([store.list(identity.username), opts.links.linkOf(identity.username)]);
      } catch (err) {
        loadError = true;
        app.log.error({ err }, 'could not read desktop_tokens.json or desktop_users.json');
      }
      return renderDesktopCard({ tokens, link, enabled: opts.secret !== undefined, loadError, scriptUrl: opts.assets.url('desktop.js') });
    },
  });

  // Asked before the body is checked, so a refusal is the same whatever was sent.
  async function sessionOnly(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    reply.header('cache-control', 'no-store');
    // Unreachable through the guard (bearer is accepted on other routes only); kept as a fence.
    if (request.caller.via !== 'session') return reply.code(401).send({ error: 'Sign in to the dashboard to manage desktop tokens.' });
    return undefined;
  }
  async function configured(_request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    return opts.secret === undefined ? reply.code(503).send({ error: NOT_CONFIGURED }) : undefined;
  }

  // ---- Tokens (browser session + anti-forgery token) ----
  app.get('/api/desktop/tokens', { preValidation: sessionOnly, schema: { response: ERROR_RESPONSES } }, async (request) => {
    return { tokens: (await store.list(request.caller.username)).map(tokenView) };
  });

  app.post<{ Body: z.infer<typeof CreateTokenBody> }>('/api/desktop/tokens', { preValidation: [sessionOnly, configured], schema: { body: CreateTokenBody, response: ERROR_RESPONSES } }, async (request, reply) => {
    const identity = request.caller;
    const { label, days } = request.body;
    if (opts.secret === undefined) return reply.code(503).send({ error: NOT_CONFIGURED });
    const issued = await store.issue(opts.secret, identity.username, days * 86_400, { label });
    request.log.info({ user: identity.username, jti: issued.jti, days }, 'desktop token created');
    return { ok: true, token: issued.token, jti: issued.jti, label, expires_at: issued.expiresAt };
  });

  app.post<{ Body: z.infer<typeof RevokeBody> }>('/api/desktop/tokens/revoke', { preValidation: sessionOnly, schema: { body: RevokeBody, response: ERROR_RESPONSES } }, async (request, reply) => {
    const identity = request.caller;
    const { jti } = request.body;
    const result = await store.revoke(identity.username, jti);
    if (result === 'not_found') return reply.code(404).send({ error: 'You have no such token.' });
    request.log.info({ user: identity.username, jti, result }, 'desktop token revoked');
    return { ok: true, message: result === 'revoked' ? 'The token is revoked.' : 'The token was already revoked.' };
  });
}
