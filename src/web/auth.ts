/**
 * Sign-in and sign-out: `GET /login` sends the browser to the issuer, `GET /auth/callback`
 * completes the code flow and starts a session for an allowed, verified address,
 * `POST /logout` ends it. What must survive the round trip (state, nonce, PKCE verifier)
 * rides in a short-lived signed cookie.
 */
import type { WebMetrics } from './metrics.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { decideAccount, type AccountDecision } from './accounts.js';
import { IssuerUnavailableError, type OidcClient, type PendingSignIn } from './oidc.js';
import { html, type SafeHtml } from '../shared/html.js';
import { messagePage } from './pages.js';
import { cookieNames, csrfOk, type Sessions } from './session.js';
import type { Assets } from './static.js';

/** How long a started sign-in may take, in seconds. */
const SIGN_IN_TTL_SECONDS = 600;

const PendingSchema = z.object({ state: z.string().min(8), nonce: z.string().min(8), verifier: z.string().min(43), exp: z.number(), next: z.string().optional() });

/**
 * Where a sign-in may return to (`/login?next=...`, e.g. the desktop app's link page): a
 * plain path on this dashboard, never another host (`//host`) or anything with a query.
 */
export function safeReturnPath(next: unknown): string {
  return typeof next === 'string' && /^\/[A-Za-z0-9_/-]{0,100}$/.test(next) && !next.includes('//') ? next : '/';
}

/** What the auth routes need. */
export interface AuthPluginOptions {
  oidc: OidcClient;
  sessions: Sessions;
  assets: Assets;
  allowedDomains: readonly string[];
  allowedEmails: readonly string[];
  secureCookies: boolean;
  metrics?: WebMetrics | undefined;
  /** Why a name is not an analyst's account (system, service); null when it is. */
  whyNotAnalyst: (username: string) => string | null;
}

function refusalParagraphs(decision: Extract<AccountDecision, { ok: false }>, allowedDomains: readonly string[]): Array<string | SafeHtml> {
  const who = decision.email ? html`<strong>${decision.email}</strong>` : 'The account you chose';
  const hint =
    allowedDomains.length > 0
      ? html`Sign in with your ${allowedDomains.map((d, i) => html`${i > 0 ? ' or ' : ''}<strong>@${d}</strong>`)} account, or ask an administrator to allow your address.`
      : 'Ask an administrator to allow your address.';
  switch (decision.reason) {
    case 'unverified':
      return [html`${who} is not verified by your sign-in provider, so it cannot be used here.`, 'Verify the address with your provider, or sign in with another account.'];
    case 'no_account_name':
      return [html`${who} is allowed, but it does not make a valid server account name.`, 'Ask an administrator which account to sign in with.'];
    case 'name_of_another':
      return [
        html`${who} would sign in as <strong>${decision.username}</strong>, but that account name stands for ${decision.owner ? html`<strong>${decision.owner}</strong>` : 'more than one allowed address'}, so it cannot be yours here.`,
        'Ask an administrator which account to sign in with.',
      ];
    case 'not_an_analyst':
      return [html`${who} would sign in as <strong>${decision.username}</strong>: ${decision.why}, not an analyst's account, so it cannot sign in here.`, 'Sign in with your own account.'];
    default:
      return [decision.email ? html`${who} is not allowed to sign in to this dashboard.` : 'Your sign-in provider did not share an e-mail address, so this dashboard cannot tell who you are.', hint];
  }
}

/** The sign-in routes as a plugin. */
export async function authPlugin(app: FastifyInstance, opts: AuthPluginOptions): Promise<void> {
  const { oidc, sessions, assets } = opts;
  const signInCookie = cookieNames(opts.secureCookies).signIn;

  function failure(reply: FastifyReply, status: number, heading: string, paragraphs: Array<string | SafeHtml>): FastifyReply {
    return reply
      .code(status)
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(messagePage({ assets, title: heading, heading, paragraphs, action: { href: '/login', label: 'Try again' }, tone: 'error' }));
  }

  function readPending(request: FastifyRequest): (PendingSignIn & { next: string }) | null {
    const raw = request.cookies[signInCookie];
    if (!raw) return null;
    const unsigned = request.unsignCookie(raw);
    if (!unsigned.valid || unsigned.value === null) return null;
    try {
      const p = PendingSchema.parse(JSON.parse(Buffer.from(unsigned.value, 'base64url').toString('utf8')));
      if (p.exp * 1000 <= Date.now()) return null;
      return { state: p.state, nonce: p.nonce, verifier: p.verifier, next: safeReturnPath(p.next) };
    } catch {
      return null;
    }
  }

  app.get<{ Querystring: { prompt?: string; next?: string } }>('/login', async (request, reply) => {
    const next = safeReturnPath(request.query.next);
    if (request.identity) return reply.redirect(next, 303);
    let started: Awaited<ReturnType<OidcClient['begin']>>;
    try {
      started = await oidc.begin(request.query.prompt === 'select_account' ? { prompt: 'select_account' } : {});
    } catch (err) {
      if (!(err instanceof IssuerUnavailableError)) throw err;
      request.log.error({ err }, 'sign-in provider unavailable');
      return failure(reply, 502, 'Sign-in is unavailable', ['The sign-in provider could not be reached. Try again in a minute; if it keeps failing, tell an administrator.']);
    }
    const value = { ...started.pending, exp: Math.floor(Date.now() / 1000) + SIGN_IN_TTL_SECONDS, ...(next !== '/' ? { next } : {}) };
    reply.setCookie(signInCookie, Buffer.from(JSON.stringify(value)).toString('base64url'), {
      signed: true,
      httpOnly: true,
      sameSite: 'lax',
      secure: opts.secureCookies,
      path: '/',
      maxAge: SIGN_IN_TTL_SECONDS,
    });
    return reply.header('cache-control', 'no-store').redirect(started.url.href, 302);
  });

  app.get<{ Querystring: Record<string, string | undefined> }>('/auth/callback', async (request, reply) => {
    const pending = readPending(request);
    reply.clearCookie(signInCookie, { path: '/', secure: opts.secureCookies, httpOnly: true, sameSite: 'lax' });
    const providerError = request.query.error;
    if (providerError !== undefined) {
      request.log.info({ error: providerError.slice(0, 64) }, 'sign-in ended by the provider');
      opts.metrics?.signIn('failed');
      return failure(
        reply,
        400,
        'Sign-in was not completed',
        [providerError === 'access_denied' ? 'Sign-in was cancelled.' : 'The sign-in provider did not complete the sign-in.', 'You can start again when you are ready.'],
      );
    }
    if (!pending) {
      request.log.warn('sign-in callback without a valid pending sign-in');
      opts.metrics?.signIn('failed');
      return failure(reply, 400, 'Sign-in expired', ['This sign-in took too long, or it was started in another browser. Start again.']);
    }
    const search = request.url.slice(request.url.indexOf('?') === -1 ? request.url.length : request.url.indexOf('?'));
    let decision: AccountDecision;
    try {
      const claims = await oidc.complete(search, pending);
      decision = decideAccount(claims, opts.allowedDomains, opts.allowedEmails, opts.whyNotAnalyst);
    } catch (err) {
      // openid-client's messages say which check failed (state, nonce, PKCE); none holds a secret.
      request.log.warn({ err }, 'sign-in callback refused');
      opts.metrics?.signIn('failed');
      if (err instanceof IssuerUnavailableError) {
        return failure(reply, 502, 'Sign-in is unavailable', ['The sign-in provider could not be reached. Try again in a minute.']);
      }
      return failure(reply, 400, 'Sign-in could not be completed', ['The answer from the sign-in provider did not match this sign-in (it may be stale, or it was altered). Start again.']);
    }
    if (!decision.ok) {
      sessions.clear(reply);
      request.log.warn({ email: decision.email, reason: decision.reason, ...('username' in decision ? { user: decision.username } : {}) }, 'sign-in refused');
      opts.metrics?.signIn('refused');
      return reply
        .code(403)
        .header('cache-control', 'no-store')
        .type('text/html; charset=utf-8')
        .send(
          messagePage({
            assets,
            title: 'Access not allowed',
            heading: 'This account cannot sign in here',
            paragraphs: refusalParagraphs(decision, opts.allowedDomains),
            action: { href: '/login?prompt=select_account', label: 'Use another account' },
            tone: 'error',
          }),
        );
    }
    sessions.start(reply, { username: decision.username, email: decision.email });
    request.log.info({ user: decision.username }, 'signed in');
    opts.metrics?.signIn('ok');
    return reply.header('cache-control', 'no-store').redirect(pending.next, 303);
  });

  app.post<{ Body: unknown }>('/logout', async (request, reply) => {
    const identity = request.identity;
    if (identity) {
      const body = request.body as { _csrf?: unknown } | null | undefined;
      const supplied = request.headers['x-csrf-token'] ?? (body && typeof body === 'object' ? body._csrf : undefined);
      if (!csrfOk(identity, supplied)) {
        request.log.warn({ user: identity.username }, 'sign-out refused: missing or wrong anti-forgery token');
        return failure(reply, 403, 'Sign-out refused', ['This sign-out request did not come from the dashboard page. Go back to the dashboard and use its Sign out button.']);
      }
      await sessions.revoke(identity, reply);
      request.log.info({ user: identity.username }, 'signed out');
    }
    return reply.header('cache-control', 'no-store').redirect('/signed-out', 303);
  });

  app.get('/signed-out', async (request, reply) => {
    return reply
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(
        messagePage({
          assets,
          title: 'Signed out',
          heading: 'You are signed out',
          paragraphs: ['Your session on this dashboard has ended.'],
          action: { href: '/login', label: 'Sign in again' },
        }),
      );
  });
}
