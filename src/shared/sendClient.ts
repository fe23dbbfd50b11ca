/**
 * Client for the bot's send API on its unix socket (used by the runner and the dashboard),
 * plus a small HTTP-over-unix-socket helper other clients share.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** An HTTP answer read whole. */
export interface UnixResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Parsed JSON when the answer was JSON, else the text. */
  body: unknown;
}

/** The socket could not be reached or the exchange broke; no answer was read. */
export class SocketUnavailableError extends Error {
  constructor(readonly socketPath: string, cause: Error) {
    super(`Cannot reach ${socketPath}: ${cause.message}`, { cause });
    this.name = 'SocketUnavailableError';
  }
}

let httpModule: Promise<typeof import('node:http')> | undefined;

/**
 * node:http, loaded by the first request: the runner and the script helper import this
 * file on every start, and most of their starts send nothing (a pass whose scripts are
 * held by their cooldown, `notify-scripts run` for a service), while loading node:http
 * costs Node 24 about 0.07 s of CPU.
 */
function loadHttp(): Promise<typeof import('node:http')> {
  return (httpModule ??= import('node:http'));
}

/** One HTTP/1.1 request over a unix socket. */
export async function unixRequest(
  socketPath: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<UnixResponse> {
  const http = await loadHttp();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, method, path, headers: { host: 'localhost', ...opts.headers }, timeout: opts.timeoutMs ?? 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new SocketUnavailableError(socketPath, err)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          if ((res.headers['content-type'] ?? '').includes('json')) {
            try {
              body = JSON.parse(text);
            } catch {
              body = text;
            }
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeoutMs ?? 30_000} ms`)));
    req.on('error', (err) => reject(new SocketUnavailableError(socketPath, err)));
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** How long the send API should wait for delivery before answering. */
export type Prefer = 'respond-async' | { waitSeconds: number } | undefined;

function preferHeader(prefer: Prefer): Record<string, string> {
  if (prefer === undefined) return {};
  if (prefer === 'respond-async') return { prefer: 'respond-async' };
  return { prefer: `wait=${prefer.waitSeconds}` };
}

/** An image to upload as bytes. */
export interface PhotoUpload {
  bytes: Uint8Array;
  filename: string;
  contentType: string;
}

/**
 * A multipart/form-data body of the text fields (non-strings as JSON) and the image in
 * field `photo`. Encoded here rather than with FormData: the HTML form encoding FormData
 * follows turns every `\n` of a value into `\r\n`, and a caption must arrive byte for byte
 * as the script printed it.
 */
export function encodeMultipart(fields: Record<string, unknown>, photo: PhotoUpload): { contentType: string; body: Buffer } {
  const boundary = `----notify${randomBytes(16).toString('hex')}`;
  const parts: Buffer[] = [];
  const quoted = (s: string): string => s.replace(/["\r\n\\]/g, (c) => encodeURIComponent(c));
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === null) continue;
    const value = Buffer.from(typeof v === 'string' ? v : JSON.stringify(v), 'utf8');
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${quoted(k)}"\r\n\r\n`, 'utf8'), value, Buffer.from('\r\n'));
  }
  parts.push(
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="photo"; filename="${quoted(photo.filename)}"\r\nContent-Type: ${photo.contentType}\r\n\r\n`,
      'utf8',
    ),
    Buffer.from(photo.bytes),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  );
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: Buffer.concat(parts) };
}

/** Talks to the send API at socketPath. */
export class SendClient {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 30_000,
  ) {}

  /** POST /send with a JSON body. */
  async send(body: Record<string, unknown>, prefer?: Prefer): Promise<UnixResponse> {
    return unixRequest(this.socketPath, 'POST', '/send', {
      headers: { 'content-type': 'application/json', ...preferHeader(prefer) },
      body: JSON.stringify(body),
      timeoutMs: this.timeoutMs,
    });
  }

  /** POST /send_photo as multipart: the text fields plus the image bytes in field `photo`. */
  async sendPhoto(fields: Record<string, unknown>, photo: PhotoUpload, prefer?: Prefer): Promise<UnixResponse> {
    const { contentType, body } = encodeMultipart(fields, photo);
    return unixRequest(this.socketPath, 'POST', '/send_photo', {
      headers: { 'content-type': contentType, ...preferHeader(prefer) },
      body,
      timeoutMs: this.timeoutMs,
    });
  }

  /** GET /channels: what `user`'s channels are doing (Telegram delivery, desktop connections). */
  async channels(user: string): Promise<UnixResponse> {
    return unixRequest(this.socketPath, 'GET', `/channels?user=${encodeURIComponent(user)}`, { timeoutMs: this.timeoutMs });
  }

  /** GET /health. */
  async health(): Promise<UnixResponse> {
    return unixRequest(this.socketPath, 'GET', '/health', { timeoutMs: this.timeoutMs });
  }
}

/** The `error` of an error body, or a description of an unexpected answer. */
export function errorText(res: UnixResponse): string {
  const b = res.body as { error?: unknown } | string | null;
  if (b && typeof b === 'object' && typeof b.error === 'string') return b.error;
  return `HTTP ${res.status}${typeof b === 'string' && b ? `: ${b.slice(0, 200)}` : ''}`;
}
