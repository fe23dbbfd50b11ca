/**
 * Delivery benchmark: the real bot process against the fake Telegram with Telegram's
 * default limits (30 messages/s per bot; per chat a burst of 3, then 1/s), 100 linked users.
 *
 *   npx tsc -p . && node dist/bench/delivery.js
 *
 * Prints: the time to deliver a burst of 300 messages (3 per user, 50 concurrent senders),
 * how many arrived, how many 429s Telegram answered; p50/p99 latency of an accepted
 * `Prefer: respond-async` /send at low load (one request at a time); accepted requests/s at
 * saturation (64 keep-alive connections, below the queue bound); the bot's resident memory
 * (VmRSS) idle and after the burst. Exits non-zero if a target is missed. Bounded: every
 * phase has a deadline.
 */
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { BotHarness, burst, launcherNodeArgs, runConcurrently } from '../test/support/botHarness.js';
import { saturate } from './saturation.js';

const TARGETS = { burstSeconds: 11, lost: 0, rate429: 0.01, p99Ms: 20, reqPerSec: 5000, syncsPerAccepted: 0.05, bytesPerAccepted: 1536, idleMb: 65, afterMb: 90 };

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const misses: string[] = [];
function report(label: string, value: string, ok: boolean, target: string): void {
  process.stdout.write(`${label.padEnd(46)} ${value.padStart(12)}   target ${target.padEnd(10)} ${ok ? 'ok' : 'MISSED'}\n`);
  if (!ok) misses.push(label);
}

async function main(): Promise<void> {
  // To try settings on the bot process alone: BENCH_BOT_ENV='{"UV_THREADPOOL_SIZE": "16"}',
  // BENCH_BOT_NODE_ARGS='--cpu-prof --max-semi-space-size=4'.
  const extra = JSON.parse(process.env.BENCH_BOT_ENV ?? '{}') as Record<string, string>;
  const nodeArgs = (process.env.BENCH_BOT_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
  const h = await BotHarness.start({ users: 100, prefix: 'notify-bench-', nodeArgs, env: { NODE_OPTIONS: undefined, NOTIFY_MAX_CONNECTIONS_PER_UID: '256', ...extra } });
  const deadline = setTimeout(() => {
    process.stderr.write('benchmark took too long; giving up\n');
    void h.cleanup().then(() => process.exit(2));
  }, 300_000);
  try {
    await sleep(5000);
    const idleKb = h.rssKb() ?? NaN;
    await sleep(25_000);
    const idle30Kb = h.rssKb() ?? NaN;

    // 1. A burst of 300 for 100 users, 50 concurrent senders.
    const items = burst(h.users, 3, 'bench');
    const sendsBefore = h.fake.stats.requests.sendMessage ?? 0;
    const t0 = performance.now();
    const answers = await runConcurrently(items, 50, ({ user, text }) => h.client.send({ user: user.name, message: text }, 'respond-async'));
    const acceptedMs = performance.now() - t0;
    const accepted = answers.filter((a) => a.status === 202).length;
    let deliveredAt = NaN;
    const burstDeadline = Date.now() + 60_000;
    while (Date.now() < burstDeadline) {
      if (h.fake.sentMessages().length >= accepted) {
        deliveredAt = performance.now();
        break;
      }
      await sleep(5);
    }
    const burstMs = deliveredAt - t0;
    const delivered = h.fake.sentMessages().length;
    const sends = (h.fake.stats.requests.sendMessage ?? 0) - sendsBefore;
    const tooMany = h.fake.stats.tooManyRequests;
    await sleep(1000);
    const afterKb = h.rssKb() ?? NaN;

    // 2. Latency of one respond-async /send at a time.
    const latencies: number[] = [];
    for (let i = 0; i < 400; i++) {
      const user = h.users[i % h.users.length]!;
      const s = performance.now();
      const res = await h.client.send({ user: user.name, message: `latency ${i}` }, 'respond-async');
      const ms = performance.now() - s;
      if (res.status !== 202) throw new Error(`latency probe answered ${res.status}: ${JSON.stringify(res.body)}`);
      if (i >= 20) latencies.push(ms); // the first ones warm up connections and JIT
      await sleep(5);
    }
    latencies.sort((a, b) => a - b);

    // 3. Saturation: 64 keep-alive connections, 6000 requests (below NOTIFY_QUEUE_MAX,
    // 20000), from a load generator that costs little, so the figure is the bot's.
    const n = 6000;
    const sat = await saturate(h, n, 64);
    const { botCpu: satCpu, seconds: satSeconds, accepted: satAccepted, bytes: satIo, syncs: satSyncs } = sat;
    if (sat.failures.length > 0) process.stdout.write(`  (answers other than 202 at saturation, e.g. ${sat.failures.join(' | ')})\n`);
    const peakKb = h.rssKb() ?? NaN;

    process.stdout.write(`\nnotify-bot delivery benchmark (fake Telegram with Telegram's limits; 100 linked users)\n`);
    process.stdout.write(`bot: node ${[...launcherNodeArgs(), ...nodeArgs].join(' ') || '(no flags)'}; ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n\n`);
    report('burst of 300: time to deliver all', `${(burstMs / 1000).toFixed(2)} s`, burstMs <= TARGETS.burstSeconds * 1000, `<= ${TARGETS.burstSeconds} s`);
    process.stdout.write(`  (all 300 accepted in ${acceptedMs.toFixed(0)} ms; ${accepted} answered 202)\n`);
    report('burst of 300: delivered', `${delivered}/300`, delivered === 300 && accepted === 300, '300');
    report('burst of 300: 429s received', `${tooMany} (${((tooMany / Math.max(1, sends)) * 100).toFixed(2)}%)`, tooMany / Math.max(1, sends) < TARGETS.rate429, '< 1%');
    report('respond-async /send latency p50 (low load)', `${percentile(latencies, 50).toFixed(2)} ms`, true, '-');
    report('respond-async /send latency p99 (low load)', `${percentile(latencies, 99).toFixed(2)} ms`, percentile(latencies, 99) < TARGETS.p99Ms, `< ${TARGETS.p99Ms} ms`);
    report('accepted requests/s at saturation (64 conns)', `${(satAccepted / satSeconds).toFixed(0)}/s`, satAccepted === n && satAccepted / satSeconds >= TARGETS.reqPerSec, `>= ${TARGETS.reqPerSec}`);
    process.stdout.write(`  (${satAccepted} of ${n} accepted in ${satSeconds.toFixed(2)} s; the bot used ${satCpu.toFixed(2)} s of CPU, ${((satCpu * 1e6) / Math.max(1, satAccepted)).toFixed(0)} us per request: ${(satAccepted / Math.max(0.01, satCpu)).toFixed(0)}/s for a core of its own; the load generator and fake Telegram beside it ${((sat.clientCpu * 1e6) / Math.max(1, satAccepted)).toFixed(0)} us per request)\n`);
    report('outbox fsyncs per accepted (saturation)', (satSyncs / satAccepted).toFixed(3), satSyncs / satAccepted <= TARGETS.syncsPerAccepted, `<= ${TARGETS.syncsPerAccepted}`);
    report('bytes written per accepted (saturation)', `${(satIo / satAccepted).toFixed(0)} B`, satIo / satAccepted <= TARGETS.bytesPerAccepted, `<= ${TARGETS.bytesPerAccepted} B`);
    process.stdout.write(`  (${satSyncs} syncs counted by the outbox; ${(satIo / 1024).toFixed(0)} KiB write_bytes of the bot process, deliveries during the phase included)\n`);
    report('bot RSS idle (5 s after start)', `${(idleKb / 1024).toFixed(1)} MB`, true, '-');
    report('bot RSS idle (30 s after start)', `${(idle30Kb / 1024).toFixed(1)} MB`, idle30Kb / 1024 <= TARGETS.idleMb, `<= ${TARGETS.idleMb} MB`);
    report('bot RSS after the burst', `${(afterKb / 1024).toFixed(1)} MB`, afterKb / 1024 <= TARGETS.afterMb, `<= ${TARGETS.afterMb} MB`);
    process.stdout.write(`  (RSS with ${n} more queued after saturation: ${(peakKb / 1024).toFixed(1)} MB)\n`);
    process.stdout.write(misses.length === 0 ? '\nAll targets met.\n' : `\nMissed: ${misses.join('; ')}\n`);
    process.exitCode = misses.length === 0 ? 0 : 1;
  } finally {
    clearTimeout(deadline);
    await h.stopBot(); // gracefully, so a --cpu-prof profile gets written
    await h.cleanup();
  }
}

await main();
