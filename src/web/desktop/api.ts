/**
 * The desktop app's REST endpoints, in the shapes the original macOS app reads:
 * `POST /api/desktop/refresh` (a new token for the bearer one, which may have expired up to
 * seven days ago), `GET /api/desktop/scripts` (the bare `notify-scripts list` array) and
 * `POST /api/desktop/scripts/run` (`{"ok": true}` once the run has started; the result
 * arrives over the WebSocket like any notification). They take the desktop bearer token,
 * or the browser session. Each call by the app marks it linked.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ScriptsHelper, ScriptsHelperError, type ScriptsHelperErrorKind, scriptNameProblem } from '../../scripts/client.js';
import type { DesktopLinkStore } from '../../shared/desktopLinks.js';
import { APP_TOKEN_TTL_SECONDS, type DesktopTokenStore } from '../../shared/desktopTokens.js';
import { type SendClient, SocketUnavailableError, errorText } from '../../shared/sendClient.js';
import { ruleOutcome } from '../scripts.js';
import type { Identity } from '../session.js';
import { errors, field, NOT_CONFIGURED, who } from './common.js';

/** The path whose bearer token may have expired (within the refresh grace). */
export const REFRESH_PATH = '/api/desktop/refresh';

/** The routes of this file that accept a desktop bearer token. */
export function isDesktopApiRoute(method: string, path: string): boolean {
  if (method === 'GET' || method === 'HEAD') return path === '/api/desktop/scripts';
  return method === 'POST' && (path === '/api/desktop/scripts/run' || path === REFRESH_PATH);
}

/** What the desktop REST needs. */
export interface DesktopApiOptions {
  /** The script helper, made on first use (its configuration comes from the environment). */
  helper: () => ScriptsHelper;
  /** The bot's send API (the dashboard's account is a trusted service there). */
  send: SendClient;
  store: DesktopTokenStore;
  links: DesktopLinkStore;
  /** DESKTOP_JWT_SECRET; undefined disables tokens. */
  secret: string | undefined;
  /** The `iss` of the tokens (the dashboard's public URL). */
  issuer: string;
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

/** The desktop REST, as a Fastify plugin. */
export async function desktopApiPlugin(app: FastifyInstance, opts: DesktopApiOptions): Promise<void> {
  const running = new Set<string>();
  const runs = new Set<Promise<void>>();
  // A run the app started finishes (and is delivered) before the dashboard stops.
  app.addHook('onClose', async () => {
    await Promise.allSettled([...runs]);
  });

  /** The app is linked once it makes an authenticated call (as the original recorded it). */
  async function seen(identity: Identity, request: FastifyRequest): Promise<void> {
    if (identity.via !== 'bearer') return;
    await opts.links.mark(identity.username).catch((err: unknown) => {
      request.log.warn({ user: identity.username, err: err instanceof Error ? err.message : String(err) }, 'could not record the desktop app as linked');
    });
  }

  app.post(REFRESH_PATH, { schema: { response: errors } }, async (request, reply) => {
    const identity = who(request);
    reply.header('cache-control', 'no-store');
    if (opts.secret === undefined) return reply.code(503).send({ error: NOT_CONFIGURED });
    // The guard let the token in within its grace; only a token it can revoke is renewed.
    if (identity.via !== 'bearer') return reply.code(401).send({ error: 'Send the desktop token to renew as "Authorization: Bearer <token>".' });
    const issued = await opts.store.issue(opts.secret, identity.username, APP_TOKEN_TTL_SECONDS, { kind: 'app', label: 'Desktop app', issuer: opts.issuer });
    await seen(identity, request);
    request.log.info({ user: identity.username, old: identity.sid, jti: issued.jti }, 'desktop token refreshed');
    return { token: issued.token };
  });

  app.get('/api/desktop/scripts', { schema: { response: errors } }, async (request, reply) => {
    const identity = who(request);
    reply.header('cache-control', 'no-store');
    await seen(identity, request);
    try {
      return await opts.helper().list(identity.username);
    } catch (err) {
      if (!(err instanceof ScriptsHelperError)) throw err;
      request.log.warn({ user: identity.username, kind: err.kind, reason: err.message }, 'could not list scripts for the desktop app');
      return reply.code(helperStatus(err.kind)).send({ error: `Could not list your scripts: ${err.message}` });
    }
  });

  app.post<{ Body: unknown }>('/api/desktop/scripts/run', { schema: { response: errors } }, async (request, reply): Promise<FastifyReply | { ok: true }> => {
    const identity = who(request);
    const user = identity.username;
    reply.header('cache-control', 'no-store');
    const name = field(request.body, 'name');
    if (name === undefined || name === null || name === '') return reply.code(400).send({ error: "Missing 'name' field" });
    if (typeof name !== 'string') return reply.code(400).send({ error: "The 'name' field must be a script file name such as report.py." });
    const problem = scriptNameProblem(name);
    if (problem !== null) return reply.code(400).send({ error: problem });
    await seen(identity, request);
    const key = `${user}/${name}`;
    if (running.has(key)) return reply.code(409).send({ error: `${name} is already running.` });
    // Checked before answering, so a wrong name is an error here and not a silent nothing.
    let scripts;
    try {
      scripts = await opts.helper().list(user);
    } catch (err) {
      if (!(err instanceof ScriptsHelperError)) throw err;
      return reply.code(helperStatus(err.kind)).send({ error: `Could not list your scripts: ${err.message}` });
    }
    if (!scripts.some((s) => s.name === name)) return reply.code(404).send({ error: `You have no script called ${name} in ~/user/notifications/.` });
    running.add(key);
    const run = runAndSend(user, name, request.log).finally(() => {
      running.delete(key);
      runs.delete(run);
    });
    runs.add(run);
    request.log.info({ user, script: name }, 'desktop app started a run');
    return { ok: true };
  });

  /** Runs the script as `user` and hands its notification to the bot (which reaches the desktops). */
  async function runAndSend(user: string, name: string, log: FastifyBaseLogger): Promise<void> {
    let run;
    try {
      run = await opts.helper().run(user, name);
    } catch (err) {
      log.warn({ user, script: name, kind: err instanceof ScriptsHelperError ? err.kind : 'error', reason: err instanceof Error ? err.message : String(err) }, 'desktop run failed');
      return;
    }
    if (run.outcome === 'nothing_to_send') {
      log.info({ user, script: name }, 'desktop run: nothing to send');
      return;
    }
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
          log.warn({ user, reason: err instanceof Error ? err.message : String(err) }, 'could not record the delivery in the run history');
        });
        log.info({ user, script: name, id: body.id }, 'desktop run delivered to the bot');
        return;
      }
      failure = errorText(res);
    } catch (err) {
      failure = err instanceof SocketUnavailableError ? err.message : err instanceof Error ? err.message : String(err);
    }
    await opts.helper().recordDelivery(user, run.runId, { error: failure }).catch(() => undefined);
    log.warn({ user, script: name, reason: failure }, 'desktop run: the notification could not be handed to the bot');
  }
}
