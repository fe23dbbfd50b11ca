/**
 * The desktop app's REST endpoints, in the shapes the original macOS app reads:
 * `POST /api/desktop/refresh` (a new token for the bearer one, which may have expired up to
 * seven days ago), `GET /api/desktop/scripts` (the bare `notify-scripts list` array) and
 * `POST /api/desktop/scripts/run` (`{"ok": true}` once the run has started; the result
 * arrives over the WebSocket like any notification). They take the desktop bearer token,
 * or the browser session. Each call by the app marks it linked.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { type ScriptsHelper, scriptNameProblem } from '../../scripts/client.js';
import { listFailure, type RunNow } from '../../scripts/runNow.js';
import type { DesktopLinkStore } from '../../shared/desktopLinks.js';
import { ERROR_RESPONSES } from '../../shared/httpErrors.js';
import { APP_TOKEN_TTL_SECONDS, type DesktopTokenStore } from '../../shared/desktopTokens.js';
import type { Identity } from '../session.js';
import { NOT_CONFIGURED } from './common.js';

/** The path whose bearer token may have expired (within the refresh grace). */
export const REFRESH_PATH = '/api/desktop/refresh';

/** The routes of this file that accept a desktop bearer token. */
export function isDesktopApiRoute(method: string, path: string): boolean {
  if (method === 'GET' || method === 'HEAD') return path === '/api/desktop/scripts';
  return method === 'POST' && (path === '/api/desktop/scripts/run' || path === REFRESH_PATH);
}

/** Body of POST /api/desktop/scripts/run (the app sends more fields; they are ignored). */
const RunBody = z.object({
  name: z
    .string({ error: (issue) => (issue.input === undefined || issue.input === null ? "Missing 'name' field" : "The 'name' field must be a script file name such as report.py.") })
    .min(1, "Missing 'name' field"),
});

/** What the desktop REST needs. */
export interface DesktopApiOptions {
  /** The script helper, made on first use. */
  helper: () => ScriptsHelper;
  /** Runs a script now and delivers it (shared with the dashboard's Run now and its busy guard). */
  runNow: RunNow;
  store: DesktopTokenStore;
  links: DesktopLinkStore;
  /** DESKTOP_JWT_SECRET; undefined disables tokens. */
  secret: string | undefined;
  /** The `iss` of the tokens (the dashboard's public URL). */
  issuer: string;
}

/** The desktop REST, as a Fastify plugin. */
export async function desktopApiPlugin(app: FastifyInstance, opts: DesktopApiOptions): Promise<void> {
  const runs = new Set<Promise<void>>();
  // A run the app started finishes (and is delivered) before the dashboard stops.
  app.addHook('onClose', async () => {
    await Promise.allSettled([...runs]);
  });

  /** The app is linked once it makes an authenticated call (as the original recorded it). */
  async function seen(identity: Identity, request: FastifyRequest): Promise<void> {
    if (identity.via !== 'bearer') return;
    await opts.links.mark(identity.username).catch((err: unknown) => {
      request.log.warn({ user: identity.username, err }, 'could not record the desktop app as linked');
    });
  }

  app.post(REFRESH_PATH, { schema: { response: ERROR_RESPONSES } }, async (request, reply) => {
    const identity = request.caller;
    reply.header('cache-control', 'no-store');
    if (opts.secret === undefined) return reply.code(503).send({ error: NOT_CONFIGURED });
    // The guard let the token in within its grace; only a token it can revoke is renewed.
    if (identity.via !== 'bearer') return reply.code(401).send({ error: 'Send the desktop token to renew as "Authorization: Bearer <token>".' });
    const issued = await opts.store.issue(opts.secret, identity.username, APP_TOKEN_TTL_SECONDS, { kind: 'app', label: 'Desktop app', issuer: opts.issuer });
    await seen(identity, request);
    request.log.info({ user: identity.username, old: identity.sid, jti: issued.jti }, 'desktop token refreshed');
    return { token: issued.token };
  });

  app.get('/api/desktop/scripts', { schema: { response: ERROR_RESPONSES } }, async (request, reply) => {
    const identity = request.caller;
    reply.header('cache-control', 'no-store');
    await seen(identity, request);
    try {
      return await opts.helper().list(identity.username);
    } catch (err) {
      request.log.warn({ user: identity.username, err }, 'could not list scripts for the desktop app');
      const p = listFailure(err, identity.username);
      return reply.code(p.status).send({ error: p.error });
    }
  });

  app.post<{ Body: z.infer<typeof RunBody> }>('/api/desktop/scripts/run', { schema: { body: RunBody, response: ERROR_RESPONSES } }, async (request, reply): Promise<FastifyReply | { ok: true }> => {
    const identity = request.caller;
    const user = identity.username;
    reply.header('cache-control', 'no-store');
    const name = request.body.name;
    const problem = scriptNameProblem(name);
    if (problem !== null) return reply.code(400).send({ error: problem });
    await seen(identity, request);
    // Checked before answering, so a wrong name is an error here and not a silent nothing.
    let scripts;
    try {
      scripts = await opts.helper().list(user);
    } catch (err) {
      const p = listFailure(err, user);
      return reply.code(p.status).send({ error: p.error });
    }
    if (!scripts.some((s) => s.name === name)) return reply.code(404).send({ error: `You have no script called ${name} in ~/user/notifications/.` });
    if (opts.runNow.isRunning(user, name)) return reply.code(409).send({ error: `${name} is already running.` });
    // The app only needs to know the run started; its result arrives like any notification
    // (the run service takes its busy guard before this handler answers).
    const run = opts.runNow
      .run(user, name)
      .then((result) => {
        if (!result.ok) request.log.warn({ user, script: name, failure: result.failure, reason: result.text }, 'desktop run did not deliver');
        else request.log.info({ user, script: name, outcome: result.outcome, ...(result.outcome !== 'nothing_to_send' ? { id: result.handover.id } : {}) }, 'desktop run finished');
      })
      .catch((err: unknown) => request.log.error({ user, script: name, err }, 'desktop run failed'))
      .finally(() => runs.delete(run));
    runs.add(run);
    request.log.info({ user, script: name }, 'desktop app started a run');
    return { ok: true };
  });
}
