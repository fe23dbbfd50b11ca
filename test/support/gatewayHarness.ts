/**
 * Test support for the desktop gateway: a gateway started in-process (or as the real
 * `bin/notify-gateway.js` process) in a fresh temporary directory, desktops that connect
 * to it and record what they receive, token minting, and requests on the dispatch socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import pino, { type Logger } from 'pino';
import WebSocket from 'ws';
import type { GatewayConfig } from '../../src/gateway/config.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { unixRequest, type UnixResponse } from '../../src/shared/sendClient.js';

export const TEST_SECRET = 'test-secret-for-desktop-tokens-0123456789';
export const PROJECT_ROOT = process.env.NOTIFY_PROJECT_ROOT ?? new URL('../../../', import.meta.url).pathname;

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix = 'notify-gw-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A logger whose lines (parsed JSON) the test can inspect. */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

/** Test-speed settings: short timers, an isolated socket and data directory. */
export function testConfig(dir: string, overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  return {
    host: '127.0.0.1',
    port: 0,
    jwtSecret: TEST_SECRET,
    dataDir: join(dir, 'data'),
    socketPath: join(dir, 'run', 'gw.sock'),
    socketGid: process.getgid?.() ?? 0,
    socketGroupName: 'test',
    // Long: a loaded machine may be slow to send a desktop's auth message (tests of the timeout set their own).
    authTimeoutMs: 30_000,
    pingIntervalMs: 60_000,
    maxMissedPings: 3,
    maxConnectionsPerUser: 5,
    maxConnections: 1000,
    maxMessageBytes: 16_384,
    revocationIntervalMs: 60_000,
    maxUnauthenticatedPerAddress: 50,
    maxUnauthenticated: 1000,
    trustProxy: false,
    logLevel: 'info',
    secrets: [TEST_SECRET],
    ...overrides,
  };
}

/** A gateway running in this process. */
export interface TestGateway {
  gateway: Gateway;
  config: GatewayConfig;
  url: string;
  logLines: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Starts a gateway in-process in `dir` with test-speed settings. */
export async function startTestGateway(dir: string, overrides: Partial<GatewayConfig> = {}): Promise<TestGateway> {
  const config = testConfig(dir, overrides);
  const { logger, lines } = captureLogger();
  const gateway = new Gateway(config, { logger });
  await gateway.start();
  return { gateway, config, url: `ws://127.0.0.1:${gateway.port}/`, logLines: lines, stop: () => gateway.stop() };
}

/** Claims for a test token; `exp` defaults to an hour from now. */
export interface TokenClaims {
  sub?: string;
  exp?: number;
  jti?: string;
}

/** Signs an HS256 token (with another secret to make a forged one). */
export async function signToken(claims: TokenClaims, secret = TEST_SECRET): Promise<string> {
  const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt();
  if (claims.sub !== undefined) jwt.setSubject(claims.sub);
  jwt.setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 3600);
  if (claims.jti !== undefined) jwt.setJti(claims.jti);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** An unsigned (`alg: none`) token, which must never be accepted. */
export function unsignedToken(payload: Record<string, unknown>): string {
  const part = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(payload)}.`;
}

/** A message a desktop received. */
export type Received = { type: string } & Record<string, unknown>;

/** A desktop client that records every message and, by default, answers pings. */
export class TestDesktop {
  readonly received: Received[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];
  private closeInfo: { code: number; reason: string } | null = null;

  private constructor(
    readonly ws: WebSocket,
    autoPong: boolean,
  ) {
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString('utf8')) as Received;
      this.received.push(msg);
      if (autoPong && msg.type === 'ping') ws.send(JSON.stringify({ type: 'pong' }));
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        resolve(this.closeInfo);
        this.wake();
      });
    });
  }

  /** Opens a connection to `url` (from `localAddress`, e.g. another loopback address, if given). */
  static async connect(url: string, opts: { autoPong?: boolean; localAddress?: string } = {}): Promise<TestDesktop> {
    const ws = new WebSocket(url, opts.localAddress ? { localAddress: opts.localAddress } : {});
    const desktop = new TestDesktop(ws, opts.autoPong ?? true);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return desktop;
  }

  /** Connects and authenticates; returns the desktop and the gateway's answer. */
  static async authenticated(url: string, token: string, opts: { autoPong?: boolean } = {}): Promise<TestDesktop> {
    const desktop = await TestDesktop.connect(url, opts);
    const answer = await desktop.auth(token);
    if (answer.type !== 'auth_ok') throw new Error(`expected auth_ok, got ${JSON.stringify(answer)}`);
    return desktop;
  }

  /** Sends an auth message and returns the answer (auth_ok or auth_error). */
  async auth(token: string): Promise<Received> {
    this.send({ type: 'auth', token });
    return this.nextOfType(['auth_ok', 'auth_error']);
  }

  send(value: unknown): void {
    this.ws.send(typeof value === 'string' ? value : JSON.stringify(value));
  }

  /** Whether the connection has closed. */
  get isClosed(): boolean {
    return this.closeInfo !== null;
  }

  /** The first message of one of `types` not yet consumed, waiting up to timeoutMs. */
  async nextOfType(types: string | string[], timeoutMs = 20_000): Promise<Received> {
    const wanted = Array.isArray(types) ? types : [types];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex((m) => wanted.includes(m.type) && !consumed.has(m));
      if (i >= 0) {
        const m = this.received[i]!;
        consumed.add(m);
        return m;
      }
      if (this.closeInfo) throw new Error(`connection closed (${this.closeInfo.code} ${this.closeInfo.reason}) before a ${wanted.join('/')} message`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${wanted.join('/')} message within ${timeoutMs} ms; got ${JSON.stringify(this.received)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Messages of a type received so far. */
  ofType(type: string): Received[] {
    return this.received.filter((m) => m.type === type);
  }

  /** The close code and reason, waiting up to timeoutMs. */
  async closedWithin(timeoutMs: number): Promise<{ code: number; reason: string }> {
    return Promise.race([
      this.closed,
      sleep(timeoutMs).then(() => {
        throw new Error(`connection still open after ${timeoutMs} ms`);
      }),
    ]);
  }

  close(): void {
    this.ws.close();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

const consumed = new WeakSet<object>();

/** A valid notification body with a given id. */
export function notification(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    title: `Title ${id}`,
    message: `Message ${id}`,
    script: 'check.py',
    timestamp: '2025-01-31T08:00:00Z',
    ...extra,
  };
}

/** POST /dispatch on the socket with a raw or JSON body. */
export function postDispatch(socketPath: string, body: unknown): Promise<UnixResponse> {
  return unixRequest(socketPath, 'POST', '/dispatch', {
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    timeoutMs: 30_000,
  });
}

/** GET /health on the socket. */
export function getHealth(socketPath: string): Promise<UnixResponse> {
  return unixRequest(socketPath, 'GET', '/health', { timeoutMs: 30_000 });
}

/** Polls `check` until it is true, or fails with `what`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** The real `notify-gateway` program running as a child process. */
export interface GatewayProcess {
  child: ChildProcess;
  port: number;
  output: () => string;
  /** Resolves with the exit code (or signal) once the process ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `bin/notify-gateway.js` with `env` added to the environment. */
export function spawnGateway(env: Record<string, string>, args: string[] = []): Omit<GatewayProcess, 'port'> & { ready: Promise<number> } {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'notify-gateway.js'), ...args], {
    env: { ...process.env, NOTIFY_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const ready = new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const m = /"port":(\d+)[^\n]*"msg":"notify-gateway listening"/.exec(text);
      if (m) resolve(Number(m[1]));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
    });
    void exited.then(({ code }) => reject(new Error(`notify-gateway exited (${code}) before listening:\n${text}`)));
  });
  ready.catch(() => {});
  return { child, output: () => text, exited, ready };
}

/** WebSockets opened without ever authenticating, and what became of them. */
export interface UnauthenticatedFlood {
  /** Those the gateway kept open. */
  open: WebSocket[];
  /** Those it closed at once, with the close code and reason. */
  refused: Array<{ code: number; reason: string }>;
  /** Every socket opened (to terminate afterwards). */
  all: WebSocket[];
  /** How a socket closed (recorded from the start, so no close is missed). */
  closeCode: (ws: WebSocket) => Promise<number>;
}

/** Opens `count` WebSockets from `localAddress` that never authenticate; resolves once each is open or refused. */
export async function floodUnauthenticated(url: string, count: number, localAddress: string): Promise<UnauthenticatedFlood> {
  const open: WebSocket[] = [];
  const refused: Array<{ code: number; reason: string }> = [];
  const all: WebSocket[] = [];
  const closes = new WeakMap<WebSocket, Promise<number>>();
  await Promise.all(
    Array.from({ length: count }, () => {
      const ws = new WebSocket(url, { localAddress, handshakeTimeout: 20_000 });
      all.push(ws);
      closes.set(ws, new Promise((resolve) => ws.once('close', (code) => resolve(code))));
      return new Promise<void>((resolve) => {
        let settled = false;
        const settle = (): void => {
          if (!settled) {
            settled = true;
            resolve();
          }
        };
        ws.on('error', settle);
        ws.on('close', (code, reason) => {
          const i = open.indexOf(ws);
          if (i >= 0) open.splice(i, 1);
          refused.push({ code, reason: reason.toString('utf8') });
          settle();
        });
        // Open and not closed at once: the gateway kept it (a refusal closes right after opening).
        ws.on('open', () => {
          open.push(ws);
          setTimeout(settle, 1000);
        });
      });
    }),
  );
  return { open, refused, all, closeCode: (ws) => closes.get(ws)! };
}
