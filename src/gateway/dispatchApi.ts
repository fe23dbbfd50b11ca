/**
 * The dispatch API the bot calls on the gateway's unix socket: `POST /dispatch` hands a
 * notification to every desktop of one user, `GET /health` reports the counts. The body is
 * the route's schema (the protocol's, gateway/client.ts), checked at the edge; every error
 * answer is `{"error": "..."}`; callers are checked by their kernel peer credentials before
 * any route runs.
 */
import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { describeZodError } from '../shared/contract.js';
import { errorPlugin } from '../shared/httpErrors.js';
import { zodSchemaController, zodValidator } from '../shared/httpBody.js';
import { DispatchRequestSchema, type DesktopNotification, type DispatchRequest, type GatewayHealth } from './client.js';
import { peerCredentials } from '../shared/posix.js';
import type { PeerDecision, PeerPolicy } from './peerPolicy.js';

/** Largest request body accepted (a notification's message is at most 64 KiB of text). */
export const DISPATCH_BODY_LIMIT = 1024 * 1024;

/** What the API serves from. */
export interface DispatchApiOptions {
  deliver(user: string, notification: DesktopNotification): number | Promise<number>;
  health(): GatewayHealth;
  logger: Logger;
  /**
   * Who may call. `'unchecked'` skips the peer check and is meant only for `inject()`
   * tests, whose requests have no real socket.
   */
  peerPolicy: PeerPolicy | 'unchecked';
}

function fdOf(socket: Socket): number | undefined {
  // Node keeps the descriptor on its internal handle; there is no public accessor.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Builds the Fastify app (not listening yet). */
export function buildDispatchApi(opts: DispatchApiOptions): FastifyInstance {
  // Typed as Fastify's logger so the app keeps Fastify's default logger type parameter.
  const fastifyLogger: FastifyBaseLogger = opts.logger;
  const app = Fastify({
    loggerInstance: fastifyLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: DISPATCH_BODY_LIMIT,
    forceCloseConnections: true,
    return503OnClosing: true,
    schemaController: zodSchemaController(
      zodValidator((err, input) => `invalid dispatch request: ${describeZodError(err, input)}`),
      { responses: false },
    ),
  });

  // JSON only: Fastify would otherwise parse text/plain bodies into strings.
  app.removeContentTypeParser('text/plain');

  const policy = opts.peerPolicy;
  if (policy !== 'unchecked') {
    const decisions = new WeakMap<Socket, PeerDecision>();
    // Credentials are read once per connection, while the descriptor is certainly open.
    app.server.on('connection', (socket: Socket) => {
      const fd = fdOf(socket);
      let decision: PeerDecision;
      try {
        if (fd === undefined) throw new Error('no file descriptor');
        decision = policy.decide(peerCredentials(fd));
      } catch (err) {
        decision = { allowed: false, uid: -1, pid: -1, name: 'unknown caller', reason: `peer credentials unavailable (${(err as Error).message})` };
      }
      decisions.set(socket, decision);
    });
    app.addHook('onRequest', async (request, reply) => {
      const decision = decisions.get(request.raw.socket);
      if (decision?.allowed) return;
      opts.logger.warn(
        { caller: decision?.name, uid: decision?.uid, pid: decision?.pid, method: request.method, url: request.url, reason: decision?.reason },
        `refused dispatch API call from ${decision?.name ?? 'an unknown caller'}`,
      );
      await reply.code(403).send({ error: `not allowed: ${decision?.reason ?? 'caller unknown'}` });
    });
  }

  void app.register(errorPlugin, {
    limits: { bodyBytes: DISPATCH_BODY_LIMIT },
    serverError: 'internal error in the gateway; see its log',
    notFound: (request) => `no such endpoint: ${request.method} ${request.url} (use POST /dispatch or GET /health)`,
    log: (request, err) => opts.logger.error({ err, url: request.url }, 'dispatch API failure'),
  });

  app.post<{ Body: DispatchRequest }>('/dispatch', { schema: { body: DispatchRequestSchema } }, async (request) => {
    const { user, notification } = request.body;
    const sent = await opts.deliver(user, notification);
    opts.logger.debug({ user, id: notification.id, sent }, 'dispatched');
    return { sent };
  });

  app.get('/health', async () => opts.health());

  return app;
}
