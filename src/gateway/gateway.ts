/**
 * The gateway assembled: the desktop WebSocket server, the dispatch API on its unix
 * socket, and the revocation sweep that ends connections whose token was revoked or has
 * expired. `start` and `stop` are all a caller (main, a test, the benchmark) needs.
 */
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../shared/clock.js';
import { DesktopTokenStore, verifyDesktopToken } from '../shared/desktopTokens.js';
import type { DesktopNotification, GatewayHealth } from './client.js';
import type { GatewayConfig } from './config.js';
import { DesktopServer } from './desktopServer.js';
import { buildDispatchApi } from './dispatchApi.js';
import { PeerPolicy } from './peerPolicy.js';
import { CloseCode } from './protocol.js';
import { RevocationWatcher } from './revocation.js';
import { claimSocketPath, listenSecurely } from '../shared/unixSocket.js';
import { type MetricsServer, startMetrics } from '../shared/metrics.js';
import type { GatewayMetrics } from './metrics.js';
import { DesktopFanout } from './fanout.js';
import type { Sql } from '../shared/db/database.js';

/** What the gateway is given besides its configuration. */
export interface GatewayDeps {
  logger: Logger;
  clock?: Clock;
  /** A fleet's database (NOTIFY_DATABASE_URL): notifications reach the desktops of every replica. */
  database?: { sql: Sql } | null;
}

/** A running (or stopped) gateway. */
export class Gateway {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly revocations: RevocationWatcher;
  private readonly desktops: DesktopServer;
  private dispatchApi: FastifyInstance | null = null;
  private sweepTimer: NodeJS.Timeout | undefined;
  private address: AddressInfo | null = null;
  /** Built (and prom-client loaded) at start, only when the endpoint is configured. */
  private metrics: GatewayMetrics | null = null;
  private metricsServer: MetricsServer | null = null;
  private readonly fanout: DesktopFanout | null;

  constructor(
    readonly config: GatewayConfig,
    deps: GatewayDeps,
  ) {
    this.clock = deps.clock ?? systemClock;
    this.logger = deps.logger;
    const store = new DesktopTokenStore(config.dataDir, this.clock);
    this.revocations = new RevocationWatcher(store, this.logger.child({ component: 'revocations' }), (revoked) =>
      this.closeRevoked(revoked),
    );
    this.desktops = new DesktopServer(
      config,
      (token) => verifyDesktopToken(config.jwtSecret, token, this.revocations, { clock: this.clock }),
      this.logger.child({ component: 'desktops' }),
    );
    this.fanout = deps.database
      ? new DesktopFanout(deps.database.sql, config.instance ?? hostname(), (user, n) => this.deliverHere(user, n), () => this.desktops.registry.perUser(), this.logger.child({ component: 'fanout' }))
      : null;
    if (this.fanout) {
      const fanout = this.fanout;
      this.desktops.registry.onChange = () => fanout.presenceChanged();
    }
  }

  /** Starts everything; on failure, stops what had started and rethrows. */
  async start(): Promise<void> {
    try {
      // Counting from before anything listens.
      if (this.config.metricsAddr) this.metrics = new (await import('./metrics.js')).GatewayMetrics(this.desktops.registry);
      await this.revocations.refresh();
      await this.fanout?.start();
      await claimSocketPath(this.config.socketPath, 'notify-gateway');
      this.address = await this.desktops.listen();
      const api = buildDispatchApi({
        deliver: (user, n) => this.deliver(user, n),
        health: () => this.health(),
        logger: this.logger.child({ component: 'dispatch' }),
        peerPolicy: new PeerPolicy(process.getuid?.() ?? 0, this.config.socketGid, this.config.socketGroupName),
      });
      this.dispatchApi = api;
      await api.ready();
      await listenSecurely(this.config.socketPath, this.config.socketGid, () => api.listen({ path: this.config.socketPath }), 'NOTIFY_GATEWAY_SOCKET_GROUP');
      if (this.metrics) this.metricsServer = await startMetrics(this.metrics.registry, this.config.metricsAddr, this.logger);
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.sweepTimer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.logger.error({ err }, 'revocation sweep failed'));
    }, this.config.revocationIntervalMs);
    this.logger.info(
      {
        host: this.address.address,
        port: this.address.port,
        socket: this.config.socketPath,
        group: this.config.socketGroupName,
      },
      'notify-gateway listening',
    );
  }

  /** The WebSocket port actually bound (useful with port 0). */
  get port(): number {
    if (!this.address) throw new Error('the gateway is not listening');
    return this.address.port;
  }

  /**
   * Sends a notification to every desktop of `user` (in a fleet, on every replica); returns
   * how many connections got it.
   */
  async deliver(user: string, notification: DesktopNotification): Promise<number> {
    return this.fanout ? this.fanout.dispatch(user, notification) : this.deliverHere(user, notification);
  }

  private deliverHere(user: string, notification: DesktopNotification): number {
    const sent = this.desktops.deliver(user, notification);
    this.metrics?.dispatched(sent);
    return sent;
  }

  /** Connection counts for /health. */
  health(): GatewayHealth {
    return {
      status: 'ok',
      connections: this.desktops.registry.connectionCount,
      users: this.desktops.registry.perUser(),
    };
  }

  /** Re-reads revocations and closes connections whose token was revoked or has expired. */
  async sweep(): Promise<void> {
    await this.revocations.refresh({ remind: true });
    const now = this.clock.now();
    const expired = this.desktops.closeWhere((c) => c.expiresAtMs <= now, CloseCode.tokenRevoked, 'token expired');
    if (expired > 0) this.logger.info({ closed: expired }, 'closed desktop connections whose token expired');
  }

  private closeRevoked(revoked: ReadonlySet<string>): void {
    const closed = this.desktops.closeWhere(
      (c) => c.jti !== undefined && revoked.has(c.jti),
      CloseCode.tokenRevoked,
      'token revoked',
    );
    if (closed > 0) this.logger.info({ closed }, 'closed desktop connections whose token was revoked');
  }

  /** Stops accepting, closes every desktop, removes the socket. Safe to call twice. */
  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    const api = this.dispatchApi;
    this.dispatchApi = null;
    const metricsServer = this.metricsServer;
    this.metricsServer = null;
    await Promise.allSettled([this.desktops.close(), api?.close(), metricsServer?.close(), this.fanout?.stop()]);
  }
}
