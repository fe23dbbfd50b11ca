/**
 * Signing the desktop app in, as the original macOS app expects: the app opens
 * `/desktop/link` in the browser; after sign-in the page's "Authorize Desktop App" button
 * calls `POST /api/desktop/authorize` (session and anti-forgery token), which issues an app
 * token (30 days, revocable) and answers `{"url": "<scheme>://auth?token=<JWT>"}`; the page
 * then opens that URL, which the operating system hands to the app. `POST
 * /api/desktop/unlink` forgets the link and revokes every desktop token of the user, so a
 * lost laptop is cut off.
 */
import type { FastifyInstance } from 'fastify';
import type { DesktopLinkStore } from '../../shared/desktopLinks.js';
import { APP_TOKEN_TTL_SECONDS, type DesktopTokenStore } from '../../shared/desktopTokens.js';
import { html, type SafeHtml } from '../../shared/html.js';
import { frame, messagePage } from '../pages.js';
import type { Assets } from '../static.js';
import { NOT_CONFIGURED } from './common.js';
import { ERROR_RESPONSES } from '../../shared/httpErrors.js';

/** The page the desktop app opens. */
export const LINK_PAGE = '/desktop/link';

/** What linking needs. */
export interface DesktopLinkOptions {
  store: DesktopTokenStore;
  links: DesktopLinkStore;
  /** DESKTOP_JWT_SECRET; undefined disables linking. */
  secret: string | undefined;
  /** The desktop app's URL scheme (NOTIFY_DESKTOP_URL_SCHEME). */
  urlScheme: string;
  /** The `iss` of the tokens (the dashboard's public URL). */
  issuer: string;
  assets: Assets;
}

/** The Authorize page's body. */
function linkPageBody(username: string, scheme: string): SafeHtml {
  return html`<div class="container">
  <section class="card" id="desktop-link" aria-labelledby="dl-title" data-scheme="${scheme}">
    <div class="card-head"><div class="card-titles">
      <h1 id="dl-title">Sign in the desktop app</h1>
      <p class="card-sub">The desktop app will show the alerts of <strong>${username}</strong> and can run your scripts.</p>
    </div></div>
    <div class="card-body">
      <p>Press the button, then allow your browser to open the desktop app.</p>
      <div class="actions"><button type="button" class="btn btn-primary" id="dl-authorize">Authorize Desktop App</button></div>
      <div class="live" id="dl-live" role="status" aria-live="polite" aria-atomic="true"></div>
      <p class="hint">Not you? Sign out at the top right and sign in with your own account. You can unlink the app at any time on the <a href="/">dashboard</a>.</p>
    </div>
  </section>
</div>`;
}

/** The link page and the authorize and unlink routes, as a Fastify plugin. */
export async function desktopLinkPlugin(app: FastifyInstance, opts: DesktopLinkOptions): Promise<void> {
  opts.assets.add('desktop-link.js');

  app.get(LINK_PAGE, async (request, reply) => {
    reply.header('cache-control', 'no-store');
    const identity = request.identity;
    if (!identity) return reply.redirect(`/login?next=${encodeURIComponent(LINK_PAGE)}`, 302);
    if (opts.secret === undefined) {
      return reply.code(503).type('text/html; charset=utf-8').send(messagePage({ assets: opts.assets, title: 'Desktop app', heading: 'The desktop app cannot sign in here yet', paragraphs: [NOT_CONFIGURED], tone: 'error', action: { href: '/', label: 'Go to the dashboard' } }));
    }
    const body = html`${linkPageBody(identity.username, opts.urlScheme)}\n<script src="${opts.assets.url('desktop-link.js')}" defer></script>`;
    return reply.type('text/html; charset=utf-8').send(frame({ title: 'Sign in the desktop app', assets: opts.assets, body, identity, variant: 'app' }));
  });

  app.post('/api/desktop/authorize', { schema: { response: ERROR_RESPONSES } }, async (request, reply) => {
    const identity = request.caller;
    reply.header('cache-control', 'no-store');
    if (identity.via !== 'session') return reply.code(401).send({ error: 'Authorize the desktop app from the dashboard in your browser.' });
    if (opts.secret === undefined) return reply.code(503).send({ error: NOT_CONFIGURED });
    const issued = await opts.store.issue(opts.secret, identity.username, APP_TOKEN_TTL_SECONDS, { kind: 'app', label: 'Desktop app', issuer: opts.issuer });
    await opts.links.mark(identity.username);
    request.log.info({ user: identity.username, jti: issued.jti }, 'desktop app authorized');
    return { url: `${opts.urlScheme}://auth?token=${encodeURIComponent(issued.token)}` };
  });

  app.post('/api/desktop/unlink', { schema: { response: ERROR_RESPONSES } }, async (request, reply) => {
    const identity = request.caller;
    reply.header('cache-control', 'no-store');
    if (identity.via !== 'session') return reply.code(401).send({ error: 'Unlink the desktop app from the dashboard in your browser.' });
    const user = identity.username;
    // Tokens first: once this answers, no token of the user works anywhere.
    const revoked = await opts.store.revokeAll(user);
    const wasLinked = await opts.links.unlink(user);
    if (!wasLinked && revoked === 0) return reply.code(400).send({ error: 'Desktop app is not linked.' });
    request.log.info({ user, revoked }, 'desktop app unlinked');
    return { ok: true, message: `Desktop app unlinked.${revoked > 0 ? ` ${revoked === 1 ? 'Its token is' : `${revoked} desktop tokens are`} revoked: it stops receiving alerts within a minute.` : ''}` };
  });
}
