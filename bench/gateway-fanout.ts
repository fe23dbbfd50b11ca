/**
 * Benchmark of the desktop gateway's fan-out: the real `notify-gateway` runs as a child
 * process (so its memory is its own); 1,000 WebSocket desktops connect for 200 users (5
 * each); 1,000 dispatches go through the unix socket, spread across the users; the
 * dispatch-to-receive latency of every delivery, the delivered count and the gateway's RSS
 * are printed. Aborts after 120 s.
 *
 * Usage: node dist/bench/gateway-fanout.js [--users 200] [--per-user 5] [--dispatches 1000] [--concurrency 20]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { DesktopTokenStore } from '../src/shared/desktopTokens.js';
import { GatewayClient } from '../src/gateway/client.js';

const ABORT_AFTER_MS = 120_000;
const ROOT = new URL('../../', import.meta.url).pathname;

const { values: args } = parseArgs({
  options: {
    users: { type: 'string', default: '200' },
    'per-user': { type: 'string', default: '5' },
    dispatches: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '20' },
  },
});
const USERS = Number(args.users);
const PER_USER = Number(args['per-user']);
const DISPATCHES = Number(args.dispatches);
const CONCURRENCY = Number(args.concurrency);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function rssOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await work(items[i]!, i);
    }
  });
  await Promise.all(workers);
}

async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'notify-gw-bench-'));
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  const socketPath = join(dir, 'gw.sock');
  const secret = 'bench-secret-0123456789abcdef0123456789';

  const child = spawn(process.execPath, [join(ROOT, 'bin', 'notify-gateway.js')], {
    env: {
      ...process.env,
      DESKTOP_JWT_SECRET: secret,
      NOTIFY_GATEWAY_PORT: '0',
      NOTIFY_GATEWAY_SOCKET: socketPath,
      NOTIFY_DATA_DIR: dataDir,
      NOTIFY_LOG_LEVEL: 'info',
      // Every desktop of the bench connects from 127.0.0.1, up to 100 at once: more than the
      // default cap of unauthenticated sockets from one address.
      NOTIFY_GATEWAY_MAX_UNAUTHENTICATED_PER_ADDRESS: '1000',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const clients: WebSocket[] = [];
  const abort = setTimeout(() => {
    console.error(`gateway-fanout: aborted after ${ABORT_AFTER_MS / 1000} s`);
    child.kill('SIGKILL');
    process.exit(1);
  }, ABORT_AFTER_MS);
  abort.unref();

  try {
    const port = await new Promise<number>((resolve, reject) => {
      let text = '';
      // Keep draining stdout all along, or a full pipe would stall the gateway.
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        const m = /"port":(\d+)[^\n]*"msg":"notify-gateway listening"/.exec(text);
        if (m) resolve(Number(m[1]));
        if (text.length > 1_000_000) text = text.slice(-10_000);
      });
      child.once('exit', (code) => reject(new Error(`gateway exited (${code}) before listening:\n${text}`)));
    });
    const pid = child.pid!;
    const idle = rssOf(pid);

    const store = new DesktopTokenStore(dataDir);
    const users = Array.from({ length: USERS }, (_, i) => `user${String(i).padStart(3, '0')}`);
    const tokens = new Map<string, string>();
    const issueStart = performance.now();
    for (const u of users) tokens.set(u, (await store.issue(secret, u, 3600, { label: 'bench' })).token);
    const issueMs = performance.now() - issueStart;

    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    let delivered = 0;
    let onDelivered: () => void = () => {};

    const connectStart = performance.now();
    const slots = users.flatMap((u) => Array.from({ length: PER_USER }, () => u));
    await pool(slots, 100, async (user) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
      clients.push(ws);
      await new Promise<void>((resolve, reject) => {
        ws.on('error', reject);
        ws.on('close', (code: number, reason: Buffer) => reject(new Error(`closed before authentication: ${code} ${reason.toString('utf8')}`)));
        ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token: tokens.get(user) })));
        ws.on('message', (data: Buffer) => {
          const now = performance.now();
          const msg = JSON.parse(data.toString('utf8')) as { type: string; id?: string; message?: string };
          if (msg.type === 'auth_ok') resolve();
          else if (msg.type === 'auth_error') reject(new Error(msg.message));
          else if (msg.type === 'ping') ws.send('{"type":"pong"}');
          else if (msg.type === 'notification') {
            const t0 = sentAt.get(msg.id ?? '');
            if (t0 !== undefined) latencies.push(now - t0);
            delivered += 1;
            onDelivered();
          }
        });
      });
    });
    const connectMs = performance.now() - connectStart;
    const connected = rssOf(pid);

    const client = new GatewayClient(socketPath, 5000);
    const health = await client.health();
    const roundTrips: number[] = [];
    let sentTotal = 0;
    let failures = 0;
    const expected = DISPATCHES * PER_USER;
    const allDelivered = new Promise<void>((resolve) => {
      onDelivered = () => {
        if (delivered >= expected) resolve();
      };
    });

    const dispatchStart = performance.now();
    await pool(
      Array.from({ length: DISPATCHES }, (_, i) => i),
      CONCURRENCY,
      async (i) => {
        const id = `bench-${i}`;
        const t0 = performance.now();
        sentAt.set(id, t0);
        const result = await client.dispatch(users[i % USERS]!, {
          id,
          title: `Bench ${i}`,
          message: `Notification number ${i} of the fan-out benchmark.`,
          script: 'bench.py',
          timestamp: new Date().toISOString(),
        });
        roundTrips.push(performance.now() - t0);
        if ('error' in result) failures += 1;
        else sentTotal += result.sent;
      },
    );
    const dispatchMs = performance.now() - dispatchStart;
    let straggle: NodeJS.Timeout | undefined;
    await Promise.race([allDelivered, new Promise((r) => (straggle = setTimeout(r, 10_000)))]);
    clearTimeout(straggle);
    const afterDispatch = rssOf(pid);

    latencies.sort((a, b) => a - b);
    roundTrips.sort((a, b) => a - b);
    const f = (n: number): string => n.toFixed(2);
    console.log('gateway fan-out benchmark');
    console.log(`  tokens issued        ${USERS} through desktop_tokens.json in ${f(issueMs)} ms`);
    console.log(`  desktops             ${clients.length} (${USERS} users x ${PER_USER}), connected+authenticated in ${f(connectMs)} ms`);
    console.log(`  health               ${JSON.stringify(health)}`);
    console.log(`  dispatches           ${DISPATCHES} (concurrency ${CONCURRENCY}) in ${f(dispatchMs)} ms = ${f((DISPATCHES / dispatchMs) * 1000)}/s; failures ${failures}`);
    console.log(`  sent (gateway said)  ${sentTotal} / ${expected}`);
    console.log(`  delivered (received) ${delivered} / ${expected}`);
    console.log(`  dispatch->receive    p50 ${f(percentile(latencies, 50))} ms   p99 ${f(percentile(latencies, 99))} ms   max ${f(latencies.at(-1) ?? Number.NaN)} ms`);
    console.log(`  dispatch round trip  p50 ${f(percentile(roundTrips, 50))} ms   p99 ${f(percentile(roundTrips, 99))} ms`);
    console.log(`  gateway RSS          idle ${f(idle.rssMiB)} MiB, ${clients.length} desktops ${f(connected.rssMiB)} MiB, after dispatches ${f(afterDispatch.rssMiB)} MiB (peak ${f(afterDispatch.peakMiB)} MiB)`);
    if (delivered !== expected || failures > 0) process.exitCode = 1;
  } finally {
    for (const ws of clients) ws.terminate();
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    clearTimeout(abort);
    rmSync(dir, { recursive: true, force: true });
  }
}

run().catch((err: Error) => {
  console.error(`gateway-fanout: ${err.stack ?? err.message}`);
  process.exit(1);
});
