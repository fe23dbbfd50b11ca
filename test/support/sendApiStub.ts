/**
 * A recording stand-in for the bot's send API on a unix socket, for runner-level tests and
 * the benchmark: it keeps every request (JSON bodies parsed, multipart fields and file
 * bytes decoded) and answers what the test tells it to (202 queued by default).
 */
import { rmSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';

/** A file part of a multipart request. */
export interface RecordedFile {
  field: string;
  filename: string;
  contentType: string;
  bytes: Buffer;
}

/** One request the stub received. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The parsed JSON body (JSON requests). */
  json?: unknown;
  /** Text fields (multipart requests). */
  fields?: Record<string, string>;
  files?: RecordedFile[];
  /** When it arrived (ms since the epoch). */
  at: number;
}

/** What the stub answers. */
export interface StubAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export type Responder = (req: RecordedRequest, index: number) => StubAnswer | Promise<StubAnswer>;

/** Answers like the real API under `Prefer: respond-async`: 202, queued, a fresh id. */
export const queuedResponder: Responder = (req, index) =>
  req.path === '/health'
    ? { status: 200, body: { status: 'ok' } }
    : { status: 202, body: { ok: true, queued: true, id: `n${index + 1}`, telegram: 'queued', desktop: 'pending' } };

/** A running stub. */
export interface SendApiStub {
  socketPath: string;
  requests: RecordedRequest[];
  /** The POST /send and /send_photo requests. */
  sends(): RecordedRequest[];
  respondWith(responder: Responder): void;
  close(): Promise<void>;
}

async function parseBody(req: RecordedRequest, body: Buffer): Promise<void> {
  const type = req.headers['content-type'] ?? '';
  if (type.includes('application/json')) {
    try {
      req.json = JSON.parse(body.toString('utf8'));
    } catch {
      req.json = body.toString('utf8');
    }
  } else if (type.includes('multipart/form-data')) {
    const form = await new Request('http://stub/', { method: 'POST', headers: { 'content-type': type }, body }).formData();
    req.fields = {};
    req.files = [];
    for (const [key, value] of form.entries()) {
      if (typeof value === 'string') req.fields[key] = value;
      else req.files.push({ field: key, filename: value.name, contentType: value.type, bytes: Buffer.from(await value.arrayBuffer()) });
    }
  }
}

/** Starts a stub listening on `<dir>/bot.sock`. */
export async function startSendApiStub(dir: string, responder: Responder = queuedResponder): Promise<SendApiStub> {
  const socketPath = join(dir, 'bot.sock');
  rmSync(socketPath, { force: true });
  const requests: RecordedRequest[] = [];
  let respond = responder;
  let sendCount = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const rec: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, at: Date.now() };
        await parseBody(rec, Buffer.concat(chunks));
        requests.push(rec);
        const index = rec.path === '/send' || rec.path === '/send_photo' ? sendCount++ : -1;
        const answer = await respond(rec, index);
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
        res.end(JSON.stringify(answer.body));
      })().catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: `stub failure: ${String(err)}` }));
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    socketPath,
    requests,
    sends: () => requests.filter((r) => r.method === 'POST' && (r.path === '/send' || r.path === '/send_photo')),
    respondWith(r) {
      respond = r;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
