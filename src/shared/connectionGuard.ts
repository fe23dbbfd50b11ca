/**
 * Keeps one client from holding a server's connections: each request must arrive whole
 * (headers and body) within a deadline, or its connection is closed with a 408; each
 * caller (a uid from the socket's peer credentials, or a remote address) holds at most so
 * many connections at once, and all callers together at most so many. A connection over a
 * limit gets a 503 saying which limit, and is closed before its request is read, so a
 * flood costs the server one short write per connection, never a file descriptor kept.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';

/** Limits of one listener. */
export interface ConnectionLimits {
  /** A request (headers and body) must have arrived this long after the connection opened or the previous answer went out. */
  requestTimeoutMs: number;
  /** Connections one caller may hold open at once (0: no limit). */
  perCallerMax: number;
  /** Connections all callers may hold open at once (0: no limit). */
  totalMax: number;
  /** Who a connection belongs to (null: unknown, counted in the total only). */
  callerOf: (socket: Socket) => string | null;
  /** How a caller is named in an error ("uid 1001", "address 10.0.0.1"). */
  describeCaller: (caller: string) => string;
  /** The settings that set the limits, named in the errors. */
  settings: { requestTimeout: string; perCaller: string; total: string };
}

/** What a guard has seen, for /health and benchmarks. */
export interface ConnectionStats {
  open: number;
  /** The most connections one caller holds now. */
  largestCaller: number;
  refusedPerCaller: number;
  refusedTotal: number;
  timedOut: number;
}

function rawAnswer(socket: Socket, status: number, reason: string, message: string, retryAfter?: number): void {
  const body = JSON.stringify({ error: message });
  const head = [
    `HTTP/1.1 ${status} ${reason}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...(retryAfter !== undefined ? [`Retry-After: ${retryAfter}`] : []),
  ].join('\r\n');
  socket.end(`${head}\r\n\r\n${body}`);
  // A peer that does not read must not keep the socket: give the answer a moment, then drop it.
  setTimeout(() => socket.destroy(), 2000).unref();
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * Applies `limits` to an HTTP server. Call it after anything else that listens for
 * 'connection' and that `callerOf` relies on (e.g. reading peer credentials).
 */
export function guardConnections(server: http.Server, limits: ConnectionLimits): { stats: () => ConnectionStats } {
  const perCaller = new Map<string, number>();
  let open = 0;
  const counters = { refusedPerCaller: 0, refusedTotal: 0, timedOut: 0 };

  server.on('connection', (socket: Socket) => {
    const caller = limits.callerOf(socket);
    if (limits.totalMax > 0 && open >= limits.totalMax) {
      counters.refusedTotal += 1;
      rawAnswer(socket, 503, 'Service Unavailable', `the server holds its maximum of ${limits.totalMax} connections (${limits.settings.total}); try again shortly`, 1);
      return;
    }
    const held = caller === null ? 0 : (perCaller.get(caller) ?? 0);
    if (caller !== null && limits.perCallerMax > 0 && held >= limits.perCallerMax) {
      counters.refusedPerCaller += 1;
      rawAnswer(
        socket,
        503,
        'Service Unavailable',
        `${limits.describeCaller(caller)} already holds ${held} open connections, the most one caller may (${limits.settings.perCaller}); finish or close some first`,
        1,
      );
      return;
    }
    open += 1;
    if (caller !== null) perCaller.set(caller, held + 1);

    let timer: NodeJS.Timeout | null = null;
    let current: { req: http.IncomingMessage; res: http.ServerResponse } | null = null;
    let answered = 0;
    const arm = (): void => {
      disarm();
      timer = setTimeout(() => {
        counters.timedOut += 1;
        const c = current;
        // A request under way, or the first one still arriving, is told why; an idle
        // keep-alive connection is simply closed.
        if (c ? !c.res.headersSent : answered === 0) {
          rawAnswer(socket, 408, 'Request Timeout', `the request did not arrive within ${seconds(limits.requestTimeoutMs)} (${limits.settings.requestTimeout})`);
        } else socket.destroy();
      }, limits.requestTimeoutMs);
      timer.unref();
    };
    const disarm = (): void => {
      if (timer) clearTimeout(timer);
      timer = null;
    };
    socketRequests.set(socket, {
      started: (req, res) => {
        current = { req, res };
        if (req.complete) disarm();
        else req.once('end', disarm);
        res.once('finish', () => {
          current = null;
          answered += 1;
          if (!socket.destroyed) arm();
        });
      },
    });
    arm();
    socket.once('close', () => {
      disarm();
      open -= 1;
      if (caller !== null) {
        const n = (perCaller.get(caller) ?? 1) - 1;
        if (n <= 0) perCaller.delete(caller);
        else perCaller.set(caller, n);
      }
    });
  });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    socketRequests.get(req.socket)?.started(req, res);
  });
  // The upgrade of a WebSocket is the end of the HTTP request: its deadline no longer applies.
  server.on('upgrade', (req: http.IncomingMessage) => {
    socketRequests.get(req.socket)?.started(req, { headersSent: true, once: () => undefined } as unknown as http.ServerResponse);
  });

  return {
    stats: () => ({ open, largestCaller: Math.max(0, ...perCaller.values()), ...counters }),
  };
}

const socketRequests = new WeakMap<Socket, { started: (req: http.IncomingMessage, res: http.ServerResponse) => void }>();
