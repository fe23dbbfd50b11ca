/**
 * Client for the bot's send API on its unix socket (used by the runner and the dashboard),
 * plus a small HTTP-over-unix-socket helper other clients share.
 */
import http from 'node:http';

/** An HTTP answer read whole. */
export interface UnixResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
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

/** One HTTP/1.1 request over a unix socket. */
export function unixRequest(
  socketPath: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<UnixResponse> {
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
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined || v === null) continue;
      form.append(k, typeof v === 'string' ? v : JSON.stringify(v));
    }
    form.append('photo', new Blob([photo.bytes], { type: photo.contentType }), photo.filename);
    // Let the platform encode the multipart body, then send it over the socket.
    const encoded = new Request('http://localhost/', { method: 'POST', body: form });
    const bytes = Buffer.from(await encoded.arrayBuffer());
    return unixRequest(this.socketPath, 'POST', '/send_photo', {
      headers: { 'content-type': encoded.headers.get('content-type') ?? 'multipart/form-data', ...preferHeader(prefer) },
      body: bytes,
      timeoutMs: this.timeoutMs,
    });
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
