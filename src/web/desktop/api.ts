/**
 * The desktop app's REST endpoints (desktop bearer token, or the browser session):
 * `GET /api/desktop/scripts` and `POST /api/desktop/scripts/run`.
 */
import type { FastifyInstance } from 'fastify';
import { type ScriptsHelper, ScriptsHelperError, type ScriptsHelperErrorKind } from '../../scripts/client.js';
import { type SendClient, SocketUnavailableError, errorText } from '../../shared/sendClient.js';
import { ruleOutcome } from '../scripts.js';
import { errors, field, who } from './common.js';

/** What the desktop REST needs. */
export interface DesktopApiOptions {
  /** The script helper, made on first use (its configuration comes from the environment). */
  helper: () => ScriptsHelper;
  /** The bot's send API (the dashboard's account is a trusted service there). */
  send: SendClient;
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
