/**
 * The WebSocket listener desktops connect to: accepts connections (up to a total), admits
 * authenticated ones into the registry (up to a per-user cap), delivers notifications to a
 * user's connections, and closes connections on demand (revoked or expired tokens, shutdown).
 * Connections that have not authenticated yet are bounded per client address and in total,
 * below the overall cap, so a flood of them never keeps a desktop with a token out; the
 * HTTP upgrade itself must arrive within the auth timeout.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { guardConnections } from '../shared/connectionGuard.js';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { VerifiedDesktopToken } from '../shared/desktopTokens.js';
import type { DesktopNotification } from './client.js';
import { DesktopConnection, type ConnectionLimits } from './connection.js';
import { CloseCode, type ServerMessage } from './protocol.js';
import { ConnectionRegistry } from './registry.js';

/** Where to listen and the limits to apply. */
export interface DesktopServerOptions extends ConnectionLimits {
  host: string;
  port: number;
  maxConnectionsPerUser: number;
  maxConnections: number;
  maxMessageBytes: number;
  maxUnauthenticatedPerAddress: number;
  maxUnauthenticated: number;
  trustProxy: boolean;
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

/** The client's address: the peer's, or behind the local proxy, the last X-Forwarded-For hop. */
export function clientAddress(req: http.IncomingMessage, trustProxy: boolean): string {
  const peer = req.socket.remoteAddress ?? '?';
  if (!trustProxy || !LOOPBACK.test(peer)) return peer;
  const header = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map((s) => s.trim()).filter((s) => s !== '');
  return hops.at(-1) ?? peer;
}

/** How long shutdown waits for desktops to acknowledge the close. */
const SHUTDOWN_GRACE_MS = 2000;

/** The desktop side of the gateway. */
export class DesktopServer {
  readonly registry: ConnectionRegistry<DesktopConnection>;
  private readonly connections = new Set<DesktopConnection>();
  /** Connections not yet authenticated, with their client address. */
  private readonly unauthenticated = new Map<DesktopConnection, string>();
  private readonly unauthenticatedPerAddress = new Map<string, number>();
  /** Refusals since start, for health and benchmarks. */
  readonly refusals = { unauthenticatedPerAddress: 0, unauthenticatedTotal: 0, capacity: 0 };
  private wss: WebSocketServer | null = null;
  private server: http.Server | null = null;

  constructor(
    private readonly opts: DesktopServerOptions,
    private readonly authenticate: (token: string) => Promise<VerifiedDesktopToken>,
    private readonly logger: Logger,
  ) {
    this.registry = new ConnectionRegistry(opts.maxConnectionsPerUser);
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const server = http.createServer((_req, res) => {
        res.writeHead(426, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'this is a WebSocket endpoint; connect with a WebSocket client' }));
      });
      // The upgrade request (headers) must arrive within the auth timeout; no per-caller cap
      // here: unauthenticated connections are bounded below, authenticated ones per user.
      guardConnections(server, {
        requestTimeoutMs: this.opts.authTimeoutMs,
        perCallerMax: 0,
        totalMax: 0,
        callerOf: () => null,
        describeCaller: (c) => c,
        settings: { requestTimeout: 'NOTIFY_GATEWAY_AUTH_TIMEOUT', perCaller: '', total: '' },
      });
      const wss = new WebSocketServer({
        server,
        maxPayload: this.opts.maxMessageBytes,
        clientTracking: false,
        perMessageDeflate: false,
      });
      this.wss = wss;
      this.server = server;
      const onStartError = (err: Error): void => {
        this.wss = null;
        this.server = null;
        reject(new Error(`cannot listen for desktops on ${this.opts.host}:${this.opts.port}: ${err.message}`, { cause: err }));
      };
      server.once('error', onStartError);
      server.once('listening', () => {
        server.off('error', onStartError);
        server.on('error', (err) => this.logger.error({ err }, 'desktop listener error'));
        resolve(server.address() as AddressInfo);
      });
      wss.on('error', (err) => this.logger.error({ err }, 'desktop listener error'));
      wss.on('connection', (ws, req) => this.accept(ws, req));
      server.listen(this.opts.port, this.opts.host);
    });
  }

  private accept(ws: WebSocket, req: http.IncomingMessage): void {
    const address = clientAddress(req, this.opts.trustProxy);
    const remote = `${address}:${req.socket.remotePort ?? '?'}`;
    if (this.connections.size >= this.opts.maxConnections) {
      this.refusals.capacity += 1;
      this.logger.warn({ remote, limit: this.opts.maxConnections }, 'refusing a desktop connection: gateway at capacity');
      ws.close(CloseCode.overloaded, 'gateway at capacity; retry later');
      return;
    }
    if (this.unauthenticated.size >= this.opts.maxUnauthenticated) {
      this.refusals.unauthenticatedTotal += 1;
      this.logger.warn({ remote, limit: this.opts.maxUnauthenticated }, 'refusing a desktop connection: too many connections waiting to authenticate');
      ws.close(CloseCode.overloaded, 'too many connections waiting to authenticate; retry later');
      return;
    }
    const fromAddress = this.unauthenticatedPerAddress.get(address) ?? 0;
    if (fromAddress >= this.opts.maxUnauthenticatedPerAddress) {
      this.refusals.unauthenticatedPerAddress += 1;
      if (this.refusals.unauthenticatedPerAddress % 100 === 1) {
        this.logger.warn({ remote, limit: this.opts.maxUnauthenticatedPerAddress, refused: this.refusals.unauthenticatedPerAddress }, 'refusing desktop connections: too many unauthenticated ones from one address');
      }
      ws.close(CloseCode.overloaded, 'too many connections from your address waiting to authenticate');
      return;
    }
    const conn = new DesktopConnection(ws, remote, this.opts, {
      authenticate: this.authenticate,
      admit: (c) => {
        this.authenticated(c);
        return this.admit(c);
      },
      release: (c) => {
        this.authenticated(c);
        this.connections.delete(c);
        this.registry.remove(c);
      },
    }, this.logger);
    this.connections.add(conn);
    this.unauthenticated.set(conn, address);
    this.unauthenticatedPerAddress.set(address, fromAddress + 1);
  }

  /** The connection no longer waits to authenticate (it did, or it is gone). */
  private authenticated(conn: DesktopConnection): void {
    const address = this.unauthenticated.get(conn);
    if (address === undefined) return;
    this.unauthenticated.delete(conn);
    const n = (this.unauthenticatedPerAddress.get(address) ?? 1) - 1;
    if (n <= 0) this.unauthenticatedPerAddress.delete(address);
    else this.unauthenticatedPerAddress.set(address, n);
  }

  /** Connections waiting to authenticate now. */
  get waitingToAuthenticate(): number {
    return this.unauthenticated.size;
  }

  private admit(conn: DesktopConnection): string | null {
    if (this.registry.tryAdd(conn)) return null;
    const max = this.opts.maxConnectionsPerUser;
    return `too many connections for user ${conn.username} (at most ${max}); close another desktop session first`;
  }

  /** Sends a notification to every authenticated connection of `user`; returns how many got it. */
  deliver(user: string, notification: DesktopNotification): number {
    const conns = this.registry.ofUser(user);
    if (conns.length === 0) return 0;
    const message: ServerMessage = { type: 'notification', ...notification };
    const text = JSON.stringify(message);
    let sent = 0;
    for (const conn of conns) if (conn.sendText(text)) sent += 1;
    return sent;
  }

  /** Closes every authenticated connection `condemn` picks; returns how many. */
  closeWhere(condemn: (conn: DesktopConnection) => boolean, code: number, reason: string): number {
    let closed = 0;
    for (const conn of this.registry.all()) {
      if (!condemn(conn)) continue;
      conn.close(code, reason);
      closed += 1;
    }
    return closed;
  }

  /** Stops accepting, closes every connection (waiting briefly for the handshakes), and stops. */
  async close(): Promise<void> {
    const wss = this.wss;
    const server = this.server;
    if (!wss || !server) return;
    this.wss = null;
    this.server = null;
    const closing = [...this.connections];
    for (const conn of closing) conn.close(CloseCode.goingAway, 'gateway shutting down');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, SHUTDOWN_GRACE_MS);
      wss.close(() => {
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeAllConnections();
      });
    });
  }
}
