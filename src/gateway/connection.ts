/**
 * One desktop's WebSocket, from the first frame to the close: authentication within a
 * deadline, the ping/pong heartbeat, and sending. The server around it decides who may be
 * admitted; the connection only follows the protocol.
 */
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { DesktopTokenError, type VerifiedDesktopToken } from '../shared/desktopTokens.js';
import { CloseCode, parseClientMessage, type ServerMessage } from './protocol.js';

/** Timings and limits one connection follows. */
export interface ConnectionLimits {
  authTimeoutMs: number;
  pingIntervalMs: number;
  maxMissedPings: number;
}

/** What the connection asks of the server around it. */
export interface ConnectionHooks {
  /** Verifies a token; throws DesktopTokenError when it is refused. */
  authenticate(token: string): Promise<VerifiedDesktopToken>;
  /** Admits an authenticated connection; returns why not, or null when admitted. */
  admit(conn: DesktopConnection): string | null;
  /** The connection is gone (called once, whether or not it was admitted). */
  release(conn: DesktopConnection): void;
}

type State = 'awaiting_auth' | 'authenticating' | 'open' | 'closed';

/** Unsent bytes beyond which a desktop is considered not to be reading. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** How long a closing peer gets to complete the close handshake. */
const CLOSE_GRACE_MS = 3000;

/** One desktop connection. */
export class DesktopConnection {
  private state: State = 'awaiting_auth';
  private identity: VerifiedDesktopToken | null = null;
  private missedPings = 0;
  private authTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ws: WebSocket,
    /** The peer's address, for logs. */
    readonly remote: string,
    private readonly limits: ConnectionLimits,
    private readonly hooks: ConnectionHooks,
    private readonly logger: Logger,
  ) {
    this.authTimer = setTimeout(() => {
      this.refuse(CloseCode.authTimeout, `no auth message within ${formatMs(limits.authTimeoutMs)}`);
    }, limits.authTimeoutMs);
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', () => this.onClosed());
    ws.on('error', (err) => this.logger.debug({ remote, err }, 'desktop socket error'));
  }

  /** The authenticated user (empty before authentication). */
  get username(): string {
    return this.identity?.username ?? '';
  }

  /** The token's id, when it has one. */
  get jti(): string | undefined {
    return this.identity?.jti;
  }

  /** When the token expires (ms since the epoch); Infinity before authentication. */
  get expiresAtMs(): number {
    return this.identity?.expiresAtMs ?? Number.POSITIVE_INFINITY;
  }

  /** True once authenticated and until closed. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  /**
   * Sends an already serialized message; false when it was not sent (not open, or the
   * desktop has stopped reading and is closed for it).
   */
  sendText(text: string): boolean {
    if (this.state !== 'open' || this.ws.readyState !== WebSocket.OPEN) return false;
    if (this.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.logger.warn({ user: this.username, remote: this.remote }, 'desktop is not reading its messages; closing it');
      this.close(CloseCode.tooSlow, 'not reading messages');
      return false;
    }
    this.ws.send(text);
    return true;
  }

  /** Closes the connection with a code and a short reason; idempotent. */
  close(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.finish();
    try {
      this.ws.close(code, reason.slice(0, 120));
    } catch {
      this.ws.terminate();
      return;
    }
    // A peer that never completes the close handshake does not hold the socket.
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  private send(message: ServerMessage): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  /** Answers auth_error and closes, as the desktop protocol (protocol.ts) asks for every refused authentication. */
  private refuse(code: number, message: string): void {
    if (this.state === 'closed') return;
    this.logger.warn({ remote: this.remote, user: this.identity?.username, reason: message }, 'desktop authentication refused');
    this.send({ type: 'auth_error', message });
    this.close(code, message);
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.state === 'closed') return;
    const parsed = isBinary ? { error: 'binary frames are not accepted; send JSON text' } : parseClientMessage(rawText(data));
    if (this.state === 'awaiting_auth') {
      if ('error' in parsed || parsed.message.type !== 'auth') {
        const why = 'error' in parsed ? `${parsed.error}; ` : '';
        this.refuse(CloseCode.authFailed, `${why}the first message must be {"type":"auth","token":"<JWT>"}`);
        return;
      }
      void this.authenticate(parsed.message.token);
      return;
    }
    if ('error' in parsed) {
      this.send({ type: 'error', message: parsed.error });
      return;
    }
    if (parsed.message.type === 'pong') {
      this.missedPings = 0;
      return;
    }
    this.send({
      type: 'error',
      message: this.state === 'authenticating' ? 'authentication is in progress' : 'already authenticated',
    });
  }

  private async authenticate(token: string): Promise<void> {
    this.state = 'authenticating';
    let identity: VerifiedDesktopToken;
    try {
      identity = await this.hooks.authenticate(token);
    } catch (err) {
      if (err instanceof DesktopTokenError) {
        this.refuse(CloseCode.authFailed, err.message);
      } else {
        this.logger.error({ err, remote: this.remote }, 'cannot check a desktop token');
        this.refuse(CloseCode.authFailed, 'the token could not be checked; try again later');
      }
      return;
    }
    // The desktop may have gone, or the auth deadline passed, while the token was checked.
    if (this.state !== 'authenticating') return;
    this.identity = identity;
    const refusal = this.hooks.admit(this);
    if (refusal !== null) {
      this.refuse(CloseCode.tooManyConnections, refusal);
      return;
    }
    this.state = 'open';
    clearTimeout(this.authTimer);
    this.send({ type: 'auth_ok', username: identity.username });
    this.pingTimer = setInterval(() => this.heartbeat(), this.limits.pingIntervalMs);
    this.logger.info({ user: identity.username, jti: identity.jti, remote: this.remote }, 'desktop connected');
  }

  private heartbeat(): void {
    if (this.missedPings >= this.limits.maxMissedPings) {
      this.logger.info({ user: this.username, remote: this.remote, missed: this.missedPings }, 'desktop stopped answering pings; closing it');
      this.close(CloseCode.heartbeatTimeout, `no pong to ${this.missedPings} pings`);
      return;
    }
    this.missedPings += 1;
    this.send({ type: 'ping' });
  }

  private onClosed(): void {
    const wasOpen = this.state === 'open';
    this.finish();
    if (wasOpen) this.logger.info({ user: this.username, remote: this.remote }, 'desktop disconnected');
  }

  /** Stops timers and leaves the registry; the first call wins. */
  private finish(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.authTimer);
    clearInterval(this.pingTimer);
    this.hooks.release(this);
  }
}

function rawText(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
