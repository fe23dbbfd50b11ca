/**
 * Fleet benchmark: notify-bot replicas on a real PostgreSQL (Debian's server, fsync on, a
 * unix socket in a temporary directory) against the fake Telegram with Telegram's limits.
 *
 *   npx tsc -p . && node dist/bench/fleet.js      (as root: the server runs as an unprivileged account)
 *   node dist/bench/fleet.js --accepted-only      (the accepted sends/s alone)
 *
 * Prints: accepted sends/s through two replicas on PostgreSQL next to one bot on the data
 * files, on the same machine (64 keep-alive connections of bench/loadgen.ts, `Prefer: respond-async`); the take-over
 * time after a SIGKILL of the leader (median of 5 kills, from the kill until another
 * replica's /health says leader); duplicates per kill (messages sent by the dead leader
 * and sent again by the next, because the kill came between Telegram taking them and
 * their mark). Exits non-zero if a target is missed; prints why and exits 0 when no
 * PostgreSQL can be started here.
 */
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { BotHarness, burst, compareDelivery, expectedByChat, runConcurrently } from '../test/support/botHarness.js';
import { startFleet, waitForLeader as leaderOf } from '../test/support/fleet.js';
import { postgresUnavailable, TestPostgres } from '../test/support/postgres.js';
import { runLoad } from './loadgen.js';

const TARGETS = { takeoverMs: 10_000, pgPerSec: 500, duplicatesPerKill: 30 };
const SENDS = 3000;
const KILLS = 5;
/** `--accepted-only`: measure the accepted sends and skip the kills. */
const ACCEPTED_ONLY = process.argv.includes('--accepted-only');

const misses: string[] = [];
function report(label: string, value: string, ok: boolean, target: string): void {
  process.stdout.write(`${label.padEnd(52)} ${value.padStart(12)}   target ${target.padEnd(10)} ${ok ? 'ok' : 'MISSED'}\n`);
  if (!ok) misses.push(label);
}

interface User {
  name: string;
  chatId: number;
}

const ENV = { NODE_OPTIONS: undefined, NOTIFY_MAX_CONNECTIONS_PER_UID: '256' };

/**
 * Accepted sends per second through `replicas`, 64 keep-alive connections split between
 * them, from the load generator that costs little (loadgen.ts), so the figure is the bots'.
 */
async function acceptedPerSecond(replicas: BotHarness[], users: User[], tag: string): Promise<{ perSec: number; accepted: number }> {
  const t0 = performance.now();
  const per = Math.ceil(SENDS / replicas.length);
  const loads = await Promise.all(
    replicas.map((r, k) =>
      runLoad({
        socketPath: r.socketPath,
        connections: Math.ceil(64 / replicas.length),
        requests: Math.min(per, SENDS - k * per),
        path: '/send',
        headers: { prefer: 'respond-async' },
        body: (i) => ({ user: users[(k * per + i) % users.length]!.name, message: `${tag} ${k * per + i}` }),
        okStatus: 202,
        timeoutMs: 200_000,
      }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  for (const l of loads) if (l.failures.length > 0) process.stdout.write(`  (${tag}: answers other than 202, e.g. ${l.failures.join(' | ')})\n`);
  const accepted = loads.reduce((n, l) => n + (l.statuses.get(202) ?? 0), 0);
  return { perSec: accepted / seconds, accepted };
}

/** n replicas on a fresh database, sharing the first one's fake Telegram, 100 users linked there. */
async function fleetOf(pg: TestPostgres, n: number): Promise<{ replicas: BotHarness[]; users: User[] }> {
  return startFleet(pg, { replicas: n, users: 100, userPrefix: 'b', firstChatId: 300_001, prefix: 'notify-bench-fleet-', instancePrefix: 'bench-', env: ENV });
}

function reportAccepted(onFiles: { perSec: number; accepted: number }, onPg: { perSec: number; accepted: number }): void {
  report('accepted sends/s, one bot on the data files', `${onFiles.perSec.toFixed(0)}/s`, onFiles.accepted === SENDS, '-');
  report('accepted sends/s, two replicas on PostgreSQL', `${onPg.perSec.toFixed(0)}/s`, onPg.accepted === SENDS && onPg.perSec >= TARGETS.pgPerSec, `>= ${TARGETS.pgPerSec}`);
  process.stdout.write(`  (${SENDS} sends on 64 keep-alive connections, respond-async; ${onFiles.accepted} and ${onPg.accepted} accepted)\n`);
}

async function main(): Promise<void> {
  const why = postgresUnavailable();
  if (why) {
    process.stdout.write(`fleet benchmark skipped: ${why}\n`);
    return;
  }
  const pg = await TestPostgres.start({ durable: true });
  const harnesses: BotHarness[] = [];
  const deadline = setTimeout(() => {
    process.stderr.write('benchmark took too long; giving up\n');
    void Promise.all(harnesses.map((h) => h.cleanup())).then(() => pg.cleanup()).then(() => process.exit(2));
  }, 280_000);
  try {
    // 1. Accepted/s: one bot on the files, then two replicas on PostgreSQL.
    const files = await BotHarness.start({ users: 100, prefix: 'notify-bench-files-', env: ENV });
    harnesses.push(files);
    await acceptedPerSecond([files], files.users, 'warm-up');
    const onFiles = await acceptedPerSecond([files], files.users, 'files');
    await files.cleanup();

    const acc = await fleetOf(pg, 2);
    harnesses.push(...acc.replicas);
    await leaderOf(acc.replicas, 20_000);
    await acceptedPerSecond(acc.replicas, acc.users, 'warm-up');
    const onPg = await acceptedPerSecond(acc.replicas, acc.users, 'postgres');
    for (const r of acc.replicas) await r.cleanup();
    if (ACCEPTED_ONLY) {
      process.stdout.write(`\nnotify-bot fleet benchmark, accepted sends only (PostgreSQL ${pg.version} with fsync on, over a unix socket; 100 users)\n`);
      process.stdout.write(`${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n\n`);
      reportAccepted(onFiles, onPg);
      return;
    }

    // 2. Take-over and duplicates: 5 kills of the leader in the middle of delivering.
    const kill = await fleetOf(pg, 2);
    harnesses.push(...kill.replicas);
    const fake = kill.replicas[0]!.fake;
    fake.setFault({ kind: 'latency', ms: 100 });
    const takeovers: number[] = [];
    const duplicates: number[] = [];
    for (let k = 1; k <= KILLS; k++) {
      const leader = await leaderOf(kill.replicas, 30_000);
      const others = kill.replicas.filter((r) => r !== leader);
      const items = burst(kill.users.slice(0, 40), 2, `kill${k}`);
      const before = fake.sentMessages().length;
      await runConcurrently(items, 20, ({ user, text }) => others[0]!.client.send({ user: user.name, message: text }, 'respond-async'));
      await fake.waitFor(() => (fake.sentMessages().length >= before + 20 ? true : undefined), 30_000, () => 'deliveries before the kill');
      const killedAt = performance.now();
      await leader.kill('SIGKILL');
      await leaderOf(others, 30_000);
      takeovers.push(performance.now() - killedAt);
      const expected = expectedByChat(items);
      await kill.replicas[0]!.waitForDelivery(expected, 60_000);
      await sleep(1000);
      duplicates.push(compareDelivery(fake, expected).duplicates.length);
      await leader.startBot();
    }
    for (const r of kill.replicas) await r.cleanup();

    const sorted = [...takeovers].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    const meanDup = duplicates.reduce((a, b) => a + b, 0) / duplicates.length;
    process.stdout.write(`\nnotify-bot fleet benchmark (PostgreSQL ${pg.version} with fsync on, over a unix socket; fake Telegram with Telegram's limits; 100 users)\n`);
    process.stdout.write(`${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n\n`);
    reportAccepted(onFiles, onPg);
    report(`take-over after SIGKILL of the leader, median of ${KILLS}`, `${(median / 1000).toFixed(2)} s`, median < TARGETS.takeoverMs, `< ${TARGETS.takeoverMs / 1000} s`);
    process.stdout.write(`  (each: ${takeovers.map((t) => (t / 1000).toFixed(2)).join(', ')} s; NOTIFY_LEASE_TTL 6 s)\n`);
    report('duplicates per kill (mean)', meanDup.toFixed(1), Math.max(...duplicates) <= TARGETS.duplicatesPerKill, `<= ${TARGETS.duplicatesPerKill}`);
    process.stdout.write(`  (each: ${duplicates.join(', ')}; 80 messages per round, 100 ms Telegram latency so sends are in flight at the kill; none lost)\n`);
    process.stdout.write(misses.length === 0 ? '\nAll targets met.\n' : `\nMissed: ${misses.join('; ')}\n`);
    process.exitCode = misses.length === 0 ? 0 : 1;
  } finally {
    clearTimeout(deadline);
    for (const h of harnesses) await h.cleanup();
    await pg.cleanup();
  }
}

await main();
