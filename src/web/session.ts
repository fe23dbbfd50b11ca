/**
 * Browser sessions: a signed (HMAC-SHA256, @fastify/cookie) HttpOnly cookie carrying who
 * signed in, until when, and the session's anti-forgery token. Logging out revokes the
 * session id, persisted in the data directory so a restart does not bring it back.
 *
 * The guard hook answers every `/api/` request without an identity with 401 before
 * anything else runs, and every state-changing `/api/` request made with the browser
 * session without the right `X-CSRF-Token` with 403.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { type Clock, unixSeconds } from '../shared/clock.js';
import { type SharedDocument, sharedDocument } from '../shared/documents.js';

/** Who is making a request. */
export interface Identity {
  username: string;
  email: string;
  /**
   * How the request proved it: the browser session cookie (needs the anti-forgery token on
   * state-changing requests), or a desktop bearer token (no cookie, no anti-forgery token).
   */
  via: 'session' | 'bearer';
  /** Session id (revocable); for a bearer token, its `jti` (or ''). */
  sid: string;
  /** The session's anti-forgery token; '' for a bearer token (never matches). */
  csrf: string;
  /** Expiry, unix seconds. */
  exp: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the session guard; null when nobody is signed in. */
    identity: Identity | null;
    /** Who is calling, on the routes behind the guard (`/api/`); throws where nobody is signed in. */
    readonly caller: Identity;
  }
}

const PayloadSchema = z.object({
  v: z.literal(1),
  sid: z.string().min(16),
  u: z.string().min(1),
  e: z.string(),
  csrf: z.string().min(16),
  iat: z.number(),
  exp: z.number(),
});

const RevokedSchema = z.record(z.string(), z.number());

/** Methods that change state and so need the anti-forgery token. */
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Cookie names; `__Host-` pins them to this host and path / when served over https. */
export function cookieNames(secure: boolean): { session: string; signIn: string } {
  return secure ? { session: '__Host-notify_session', signIn: '__Host-notify_signin' } : { session: 'notify_session', signIn: 'notify_signin' };
}

/** Constant-time comparison of two strings. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Options of the session layer. */
export interface SessionOptions {
  dataDir: string;
  ttlMs: number;
  secure: boolean;
  clock: Clock;
}

/** Issues, reads and revokes sessions. */
export class Sessions {
  readonly cookieName: string;
  private readonly revokedFile: SharedDocument<Record<string, number>>;

  constructor(private readonly opts: SessionOptions) {
    this.cookieName = cookieNames(opts.secure).session;
    this.revokedFile = sharedDocument(opts.dataDir, 'web_revoked_sessions.json', RevokedSchema, () => ({}));
  }

  /** Read each time (the file read is stat-cached): another dashboard replica may have revoked it. */
  private async isRevoked(sid: string): Promise<boolean> {
    return Object.hasOwn(await this.revokedFile.read(), sid);
  }

  /** Starts a session: sets the signed cookie on the reply and returns the identity. */
  start(reply: FastifyReply, who: { username: string; email: string }): Identity {
    const now = unixSeconds(this.opts.clock);
    const identity: Identity = {
      username: who.username,
      email: who.email,
      via: 'session',
      sid: randomBytes(18).toString('base64url'),
      csrf: randomBytes(24).toString('base64url'),
      exp: now + Math.floor(this.opts.ttlMs / 1000),
    };
    const payload = { v: 1, sid: identity.sid, u: identity.username, e: identity.email, csrf: identity.csrf, iat: now, exp: identity.exp };
    reply.setCookie(this.cookieName, Buffer.from(JSON.stringify(payload)).toString('base64url'), {
      signed: true,
      httpOnly: true,
      sameSite: 'lax',
      secure: this.opts.secure,
      path: '/',
      maxAge: Math.floor(this.opts.ttlMs / 1000),
    });
    return identity;
  }

  /** The identity in the request's session cookie: null when absent, forged, expired or revoked. */
  async identify(request: FastifyRequest): Promise<Identity | null> {
    const raw = request.cookies[this.cookieName];
    if (raw === undefined || raw === '') return null;
    const unsigned = request.unsignCookie(raw);
    if (!unsigned.valid || unsigned.value === null) return null;
    let payload: z.infer<typeof PayloadSchema>;
    try {
      payload = PayloadSchema.parse(JSON.parse(Buffer.from(unsigned.value, 'base64url').toString('utf8')));
    } catch {
      return null;
    }
    if (payload.exp <= unixSeconds(this.opts.clock)) return null;
    if (await this.isRevoked(payload.sid)) return null;
    return { username: payload.u, email: payload.e, via: 'session', sid: payload.sid, csrf: payload.csrf, exp: payload.exp };
  }

  /** Ends a session for good (its cookie no longer works, even after a restart). */
  async revoke(identity: Identity, reply: FastifyReply): Promise<void> {
    const now = unixSeconds(this.opts.clock);
    await this.revokedFile.update((current) => {
      const next: Record<string, number> = {};
      for (const [sid, exp] of Object.entries(current)) if (exp > now) next[sid] = exp;
      next[identity.sid] = identity.exp;
      return { next, result: undefined };
    });
    this.clear(reply);
  }

  /** Removes the session cookie from the browser. */
  clear(reply: FastifyReply): void {
    reply.clearCookie(this.cookieName, { path: '/', secure: this.opts.secure, httpOnly: true, sameSite: 'lax' });
  }
}

/** True when the request carries the session's anti-forgery token (header or form field). */
export function csrfOk(identity: Identity, supplied: unknown): boolean {
  return typeof supplied === 'string' && supplied !== '' && safeEqual(supplied, identity.csrf);
}

function isApiPath(path: string): boolean {
  const p = path.toLowerCase();
  return p === '/api' || p.startsWith('/api/');
}

/**
 * The path as the router sees it. The router decodes percent-escapes before matching
 * (`/%61pi/...` reaches `/api/...` routes), so the guard must judge the decoded path; a
 * path that does not decode is treated as guarded.
 */
export function routedPath(request: FastifyRequest): { path: string; guarded: boolean } {
  const raw = request.url.split('?', 1)[0] ?? '/';
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return { path: raw, guarded: true };
  }
  const route = request.routeOptions.url;
  return { path: decoded, guarded: isApiPath(decoded) || isApiPath(raw) || (route !== undefined && isApiPath(route)) };
}

/** Bearer-token authentication for the few `/api/` routes that accept it (desktop tokens). */
export interface BearerAuth {
  /** True when `method path` accepts a bearer token instead of the session. */
  accepts(method: string, path: string): boolean;
  /** The token's identity, or the error to answer 401 with. Checked on every request. */
  identify(token: string, method: string, path: string): Promise<Identity | { error: string }>;
  /**
   * True when `method path` may also be requested with no identity at all: the URL itself
   * is the permission (unguessable and expiring). A token or session sent anyway is checked.
   */
  open?(method: string, path: string): boolean;
}

/**
 * Adds the identity to every request and guards `/api/`: 401 without an identity, then 403
 * for a state-changing request without the right anti-forgery token. Registered on the
 * root instance so it runs for every route, including unknown ones. On the routes `bearer`
 * accepts, an `Authorization: Bearer` header is the identity instead of the cookie.
 */
export function installSessionGuard(app: FastifyInstance, sessions: Sessions, bearer?: BearerAuth): void {
  app.decorateRequest('identity', null);
  app.decorateRequest('caller', {
    getter(this: FastifyRequest): Identity {
      // The guard answered 401 before any handler behind it runs without an identity.
      if (!this.identity) throw new Error('no identity behind the session guard');
      return this.identity;
    },
  });
  app.addHook('onRequest', async (request, reply) => {
    const { path, guarded } = routedPath(request);
    const authorization = request.headers.authorization;
    if (bearer && guarded && authorization !== undefined && /^bearer\s/i.test(authorization) && bearer.accepts(request.method, path)) {
      const found = await bearer.identify(authorization.slice(7).trim(), request.method, path);
      if ('error' in found) {
        reply.header('cache-control', 'no-store').header('www-authenticate', 'Bearer');
        return reply.code(401).send({ error: found.error });
      }
      request.identity = found;
      return;
    }
    request.identity = await sessions.identify(request);
    if (!guarded) return;
    if (request.identity === null && !STATE_CHANGING.has(request.method) && bearer?.open?.(request.method, path)) return;
    if (request.identity === null) {
      reply.header('cache-control', 'no-store');
      return reply.code(401).send({ error: 'You are not signed in (or your session has ended). Sign in again.' });
    }
    if (STATE_CHANGING.has(request.method) && request.identity.via === 'session' && !csrfOk(request.identity, request.headers['x-csrf-token'])) {
      request.log.warn({ user: request.identity.username, path }, 'request refused: missing or wrong anti-forgery token');
      reply.header('cache-control', 'no-store');
      return reply.code(403).send({ error: 'This request is missing its anti-forgery token. Reload the page and try again.' });
    }
  });
}
