/**
 * Saturation of the send API alone: the real bot process, 100 linked users, and the load
 * generator (bench/loadgen.ts) sending `Prefer: respond-async` /send requests over keep-alive
 * connections as fast as the bot answers. Prints accepted requests/s, the CPU per request of
 * the bot and of this process (the load generator and the fake Telegram share the machine's
 * cores with the bot), outbox fsyncs and bytes written per accepted notification.
 *
 *   npm run build && node dist/bench/saturation.js
 *
 * SATURATION_REQUESTS (default 6000, below NOTIFY_QUEUE_MAX) and SATURATION_CONNECTIONS
 * (default 64) change the load; BENCH_BOT_NODE_ARGS='--cpu-prof' profiles the bot (the
 * profile is written when it stops, in the current directory).
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { BotHarness, launcherNodeArgs } from '../test/support/botHarness.js';
import { runLoad } from './loadgen.js';

/** Bytes the process made the kernel write to storage (/proc/<pid>/io write_bytes). */
export function writeBytes(pid: number): number {
  const m = /^write_bytes:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** CPU seconds (user + system) the process has used, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** fsync/fdatasync calls the bot's outbox has made, from /health. */
async function outboxSyncs(h: BotHarness): Promise<number> {
  const body = (await h.health()).body as { outbox?: { syncs?: number } };
  return body.outbox?.syncs ?? NaN;
}

/** What one saturation run saw. */
export interface Saturation {
  requests: number;
  accepted: number;
  seconds: number;
  /** CPU seconds of the bot process during the run. */
  botCpu: number;
  /** CPU seconds of this process (load generator, fake Telegram) during the run. */
  clientCpu: number;
  syncs: number;
  bytes: number;
  /** A few answers other than 202. */
  failures: string[];
}

/** Drives `requests` respond-async sends over `connections` keep-alive connections. */
export async function saturate(h: BotHarness, requests: number, connections: number): Promise<Saturation> {
  const io0 = writeBytes(h.pid);
  const syncs0 = await outboxSyncs(h);
  const cpu0 = cpuSeconds(h.pid);
  const own0 = process.cpuUsage();
  const load = await runLoad({
    socketPath: h.socketPath,
    connections,
    requests,
    path: '/send',
    headers: { prefer: 'respond-async' },
    body: (i) => ({ user: h.users[i % h.users.length]!.name, message: `saturation ${i}` }),
    okStatus: 202,
    timeoutMs: 120_000,
  });
  const own = process.cpuUsage(own0);
  return {
    requests,
    accepted: load.statuses.get(202) ?? 0,
    seconds: load.ms / 1000,
    botCpu: cpuSeconds(h.pid) - cpu0,
    clientCpu: (own.user + own.system) / 1e6,
    syncs: (await outboxSyncs(h)) - syncs0,
    bytes: writeBytes(h.pid) - io0,
    failures: load.failures,
  };
}

/** One line per figure of a saturation run. */
export function describeSaturation(s: Saturation): string {
  const per = (x: number): string => `${((x * 1e6) / Math.max(1, s.accepted)).toFixed(0)} us`;
  return [
    `accepted ${s.accepted} of ${s.requests} in ${s.seconds.toFixed(2)} s: ${(s.accepted / s.seconds).toFixed(0)}/s`,
    `bot CPU ${s.botCpu.toFixed(2)} s (${per(s.botCpu)} per request); load generator and fake Telegram ${s.clientCpu.toFixed(2)} s (${per(s.clientCpu)} per request)`,
    `outbox fsyncs per accepted ${(s.syncs / Math.max(1, s.accepted)).toFixed(3)} (${s.syncs}); bytes written per accepted ${(s.bytes / Math.max(1, s.accepted)).toFixed(0)} B`,
    ...(s.failures.length > 0 ? [`answers other than 202, e.g. ${s.failures.join(' | ')}`] : []),
  ].join('\n');
}

async function main(): Promise<void> {
  const requests = Number(process.env.SATURATION_REQUESTS ?? 6000);
  const connections = Number(process.env.SATURATION_CONNECTIONS ?? 64);
  const nodeArgs = (process.env.BENCH_BOT_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
  const h = await BotHarness.start({ users: 100, prefix: 'notify-bench-', nodeArgs, env: { NODE_OPTIONS: undefined, NOTIFY_MAX_CONNECTIONS_PER_UID: '256' } });
  try {
    // A short warm-up (JIT, connections), then the measured run.
    await saturate(h, 1000, connections);
    const s = await saturate(h, requests, connections);
    process.stdout.write(`send API saturation (${connections} keep-alive connections, respond-async)\n`);
    process.stdout.write(`bot: node ${[...launcherNodeArgs(), ...nodeArgs].join(' ') || '(no flags)'}; ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
    process.stdout.write(`${describeSaturation(s)}\n`);
  } finally {
    await h.stopBot();
    await h.cleanup();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
