/**
 * A load generator for the send API that costs the machine little, so a saturation figure
 * measures the bot and not the client: a few keep-alive HTTP/1.1 connections on the unix
 * socket, each sending its next request as soon as the previous answer is in, with the
 * request bytes built once per body and answers read by their status line and
 * Content-Length alone (Node's HTTP client costs about as much per request as the server).
 */
import { connect, type Socket } from 'node:net';

/** What a run of the generator saw. */
export interface LoadResult {
  /** Answers by HTTP status. */
  statuses: Map<number, number>;
  /** Wall time from the first request to the last answer (ms). */
  ms: number;
  /** Bodies of the first few answers that were not `okStatus`, for a diagnosis. */
  failures: string[];
}

/** Options of runLoad. */
export interface LoadOptions {
  socketPath: string;
  /** Connections used at once (each has one request in flight). */
  connections: number;
  /** Requests in all. */
  requests: number;
  /** The path of every request. */
  path: string;
  /** Headers besides Host, Content-Type and Content-Length. */
  headers?: Record<string, string>;
  /** The JSON body of request i. */
  body: (i: number) => unknown;
  /** The status counted as success (others are kept in `failures`). */
  okStatus: number;
  /** Gives up after this long (ms). */
  timeoutMs: number;
}

function requestBytes(opts: LoadOptions, i: number): Buffer {
  const body = Buffer.from(JSON.stringify(opts.body(i)));
  const extra = Object.entries(opts.headers ?? {})
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const head = `POST ${opts.path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n${extra}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/**
 * Sends `requests` requests over `connections` keep-alive connections and counts the
 * answers. A connection the server closes is replaced; its request in flight is counted
 * as status 0.
 */
export function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const statuses = new Map<number, number>();
  const failures: string[] = [];
  let next = 0;
  let done = 0;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const sockets = new Set<Socket>();
    const deadline = setTimeout(() => {
      for (const s of sockets) s.destroy();
      reject(new Error(`the load of ${opts.requests} requests did not finish within ${opts.timeoutMs} ms (${done} answered)`));
    }, opts.timeoutMs);
    const count = (status: number, body: string): void => {
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status !== opts.okStatus && failures.length < 5) failures.push(`${status} ${body.slice(0, 300)}`);
      done += 1;
      if (done === opts.requests) {
        clearTimeout(deadline);
        for (const s of sockets) s.end();
        resolve({ statuses, ms: performance.now() - started, failures });
      }
    };
    const open = (): void => {
      if (next >= opts.requests) return;
      const socket = connect(opts.socketPath);
      sockets.add(socket);
      let buffered: Buffer = Buffer.alloc(0);
      let inFlight = false;
      const sendNext = (): void => {
        if (next >= opts.requests) {
          socket.end();
          return;
        }
        inFlight = true;
        socket.write(requestBytes(opts, next++));
      };
      socket.on('connect', sendNext);
      socket.on('data', (chunk: Buffer) => {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        for (;;) {
          const headEnd = buffered.indexOf('\r\n\r\n');
          if (headEnd < 0) return;
          const head = buffered.toString('latin1', 0, headEnd);
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (buffered.length < headEnd + 4 + length) return;
          const body = buffered.toString('utf8', headEnd + 4, headEnd + 4 + length);
          buffered = buffered.subarray(headEnd + 4 + length);
          inFlight = false;
          count(status, body);
          if (/\r\nconnection: *close/i.test(head)) {
            socket.end();
            return;
          }
          sendNext();
        }
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        if (inFlight) count(0, 'connection closed before the answer');
        if (done < opts.requests) open();
      });
    };
    for (let c = 0; c < Math.min(opts.connections, opts.requests); c++) open();
  });
}
