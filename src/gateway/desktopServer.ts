/**
 * The WebSocket listener desktops connect to: accepts connections (up to a total), admits
 * authenticated ones into the registry (up to a per-user cap), delivers notifications to a
 * user's connections, and closes connections on demand (revoked or expired tokens, shutdown).
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
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
}

/** How long shutdown waits for desktops to acknowledge the close. */
const SHUTDOWN_GRACE_MS = 2000;

/** The desktop side of the gateway. */
export class DesktopServer {
  readonly registry: ConnectionRegistry<DesktopConnection>;
  private readonly connections = new Set<DesktopConnection>();
  private wss: WebSocketServer | null = null;

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
      const wss = new WebSocketServer({
        host: this.opts.host,
        port: this.opts.port,
        maxPayload: this.opts.maxMessageBytes,
        clientTracking: false,
        perMessageDeflate: false,
      });
      this.wss = wss;
      const onStartError = (err: Error): void => {
        this.wss = null;
        reject(new Error(`cannot listen for desktops on ${this.opts.host}:${this.opts.port}: ${err.message}`, { cause: err }));
      };
      wss.once('error', onStartError);
      wss.once('listening', () => {
        wss.off('error', onStartError);
        wss.on('error', (err) => this.logger.error({ err: err.message }, 'desktop listener error'));
        resolve(wss.address() as AddressInfo);
      });
      wss.on('connection', (ws, req) => {
        const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
        if (this.connections.size >= this.opts.maxConnections) {
          this.logger.warn({ remote, limit: this.opts.maxConnections }, 'refusing a desktop connection: gateway at capacity');
          ws.close(CloseCode.overloaded, 'gateway at capacity; retry later');
          return;
        }
        const conn = new DesktopConnection(ws, remote, this.opts, {
          authenticate: this.authenticate,
          admit: (c) => this.admit(c),
          release: (c) => {
            this.connections.delete(c);
            this.registry.remove(c);
          },
        }, this.logger);
        this.connections.add(conn);
      });
    });
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
    if (!wss) return;
    this.wss = null;
    const closing = [...this.connections];
    for (const conn of closing) conn.close(CloseCode.goingAway, 'gateway shutting down');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, SHUTDOWN_GRACE_MS);
      wss.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
