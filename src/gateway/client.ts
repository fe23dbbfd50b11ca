/**
 * The desktop gateway's dispatch API (HTTP/1.1 on the unix socket `NOTIFY_GATEWAY_SOCKET`):
 * its request and answer shapes, declared once here as schemas (the gateway validates with
 * them, the bot builds requests from their types), and the client the bot dispatches with.
 */
import { statSync } from 'node:fs';
import http from 'node:http';
import { z } from 'zod';
import { IMAGE_URL_PREFIX, imageNameOf } from '../shared/desktopImages.js';
import { UserNameSchema } from '../shared/userName.js';

/**
 * A time as desktops receive it: `YYYY-MM-DDTHH:MM:SSZ`, whole seconds. The original desktop
 * app parses it with Foundation's ISO8601DateFormatter, whose default options refuse
 * fractional seconds.
 */
export function desktopTimestamp(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** An image is an absolute http(s) or data: URL, or the dashboard's image path (fetched from the dashboard's origin). */
function isImageUrl(text: string): boolean {
  if (imageNameOf(text) !== null) return true;
  try {
    const u = new URL(text);
    return u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'data:';
  } catch {
    return false;
  }
}

/** A notification as desktops receive it (the `notification` fields of the desktop protocol, gateway/protocol.ts). */
export const DesktopNotificationSchema = z.strictObject({
  id: z.string({ error: 'must be a string' }).min(1, 'must not be empty').max(200, 'is too long (200 characters at most)'),
  title: z.string({ error: 'must be a string (may be empty)' }).max(1024, 'is too long (1024 characters at most)'),
  message: z.string({ error: 'must be a string' }).max(65536, 'is too long (65536 characters at most)'),
  script: z.string({ error: 'must be a string (may be empty)' }).max(255, 'is too long (255 characters at most)'),
  // Any ISO-8601 UTC time is accepted; desktops always get whole seconds.
  timestamp: z.iso.datetime({ error: 'must be an ISO-8601 UTC time such as 2025-01-31T08:00:00Z' }).transform((t) => desktopTimestamp(Date.parse(t))),
  image_url: z
    .string({ error: 'must be a string' })
    .max(512 * 1024, 'is too long')
    .refine(isImageUrl, `must be an http://, https:// or data: URL, or ${IMAGE_URL_PREFIX}<name>.png`)
    .optional(),
});
export type DesktopNotification = z.input<typeof DesktopNotificationSchema>;

/** Body of `POST /dispatch`. */
export const DispatchRequestSchema = z.strictObject({
  user: UserNameSchema,
  notification: DesktopNotificationSchema,
});
export type DispatchRequest = z.infer<typeof DispatchRequestSchema>;

/** Answer of `POST /dispatch`: how many of the user's desktop connections were reached. */
export interface DispatchResponse {
  sent: number;
}

/** Answer of `GET /health`. */
export interface GatewayHealth {
  status: 'ok';
  /** Authenticated desktop connections. */
  connections: number;
  /** Authenticated connections per user (only users with at least one). */
  users: Record<string, number>;
}

/** Why a call did not get a usable answer, in words for a log line. */
export interface GatewayFailure {
  error: string;
}

/** Largest answer the client reads; the gateway's answers are a few bytes. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * Talks to the gateway's dispatch API. Never throws and never holds the caller longer than
 * `timeoutMs` per call, whatever the gateway does (down, slow, accepting and silent):
 * desktop delivery is best effort beside Telegram and must not stall it.
 */
export class GatewayClient {
  /**
   * Connections are kept open between calls: a connection per notification cost the bot
   * more CPU than accepting the notification did (and the gateway a peer-credential
   * lookup each). A kept connection found dead (the gateway restarted) is retried once on
   * a fresh one.
   */
  private readonly agent = new http.Agent({ keepAlive: true, maxFreeSockets: 8 });
  /**
   * The socket as it was when the gateway was last found not running (absent: null
   * identity, or refusing connections): while the path is unchanged, calls fail at once
   * with that reason instead of connecting. A gateway that starts creates a new socket
   * file, so the next call after its start tries again.
   */
  private down: { identity: string | null; error: string } | null = null;

  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 1000,
  ) {}

  /** Sends a notification to every desktop connection of `user`. */
  async dispatch(user: string, notification: DesktopNotification): Promise<DispatchResponse | GatewayFailure> {
    // Known to be down: answered before the body is built (every send asks).
    const down = this.knownDown();
    if (down) return down;
    let body: string;
    try {
      body = JSON.stringify({ user, notification });
    } catch (err) {
      return { error: `cannot encode the notification: ${(err as Error).message}` };
    }
    const res = await this.request('POST', '/dispatch', body);
    if ('error' in res) return res;
    const sent = (res.body as { sent?: unknown } | null)?.sent;
    if (res.status === 200 && typeof sent === 'number') return { sent };
    return { error: describeAnswer(res) };
  }

  /** The gateway's connection counts, or why they could not be read. */
  async health(): Promise<GatewayHealth | GatewayFailure> {
    const res = await this.request('GET', '/health');
    if ('error' in res) return res;
    const b = res.body as Partial<GatewayHealth> | null;
    if (res.status === 200 && b?.status === 'ok' && typeof b.connections === 'number' && isCountMap(b.users)) {
      return { status: 'ok', connections: b.connections, users: b.users };
    }
    return { error: describeAnswer(res) };
  }

  /** Lets go of the kept connections. */
  close(): void {
    this.agent.destroy();
  }

  /** The socket file's identity (null: there is none). */
  private socketIdentity(): string | null {
    try {
      const st = statSync(this.socketPath, { throwIfNoEntry: false });
      return st ? `${st.dev}:${st.ino}:${st.ctimeMs}` : null;
    } catch {
      return null;
    }
  }

  /** The failure of the last try while the socket is as it was then; null: try again. */
  private knownDown(): GatewayFailure | null {
    if (!this.down) return null;
    if (this.socketIdentity() === this.down.identity) return { error: this.down.error };
    this.down = null;
    return null;
  }

  private request(method: string, path: string, body?: string, retry = true): Promise<{ status: number; body: unknown } | GatewayFailure> {
    const down = this.knownDown();
    if (down) return Promise.resolve(down);
    return new Promise((resolve) => {
      let settled = false;
      const finish = (value: { status: number; body: unknown } | GatewayFailure): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        resolve(value);
      };
      const headers: Record<string, string> = { host: 'localhost' };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = String(Buffer.byteLength(body));
      }
      const req = http.request({ socketPath: this.socketPath, method, path, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) {
            req.destroy();
            finish({ error: `the gateway's answer to ${method} ${path} is too large` });
            return;
          }
          chunks.push(c);
        });
        res.on('error', (err) => finish({ error: this.describeError(err) }));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // Not JSON: described as text below.
          }
          finish({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      // A hard deadline for the whole exchange (an idle timeout alone lets a trickling
      // server hold the caller indefinitely).
      const deadline = setTimeout(() => {
        finish({ error: `the desktop gateway did not answer within ${this.timeoutMs} ms (${this.socketPath})` });
        req.destroy();
      }, this.timeoutMs);
      req.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code;
        if (!settled && retry && req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) {
          // A kept connection the gateway had closed (it restarted): once more on a new one.
          settled = true;
          clearTimeout(deadline);
          resolve(this.request(method, path, body, false));
          return;
        }
        if (code === 'ENOENT' || code === 'ECONNREFUSED') this.down = { identity: this.socketIdentity(), error: this.describeError(err) };
        finish({ error: this.describeError(err) });
      });
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  private describeError(err: Error): string {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `the desktop gateway is not running (no socket at ${this.socketPath})`;
    if (code === 'ECONNREFUSED') return `the desktop gateway is not accepting connections on ${this.socketPath}`;
    if (code === 'EACCES' || code === 'EPERM') {
      return `permission denied on ${this.socketPath}: this account must be in NOTIFY_GATEWAY_SOCKET_GROUP`;
    }
    return `cannot reach the desktop gateway on ${this.socketPath}: ${err.message}`;
  }
}

function isCountMap(x: unknown): x is Record<string, number> {
  return x !== null && typeof x === 'object' && !Array.isArray(x) && Object.values(x).every((n) => typeof n === 'number');
}

function describeAnswer(res: { status: number; body: unknown }): string {
  const b = res.body as { error?: unknown } | string | null;
  if (b && typeof b === 'object' && typeof b.error === 'string') return `gateway answered ${res.status}: ${b.error}`;
  return `unexpected answer from the gateway: HTTP ${res.status}${typeof b === 'string' && b ? ` ${b.slice(0, 200)}` : ''}`;
}
