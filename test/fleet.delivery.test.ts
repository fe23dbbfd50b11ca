/**
 * Delivery by a fleet of notify-bot processes on one PostgreSQL and one (fake) Telegram
 * with Telegram's limits: a burst of 300 split across three replicas' sockets is delivered
 * whole, in order per chat, once, with no 429 and no two pollers; the leader killed with
 * SIGKILL mid-burst is replaced and nothing acknowledged is lost (the only duplicates are
 * messages in flight at the kill).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LinkStore } from '../src/shared/linking.js';
import { openSharedState } from '../src/shared/sharedState.js';
import { BotHarness, burst, compareDelivery, describeReport, expectedByChat, sendInOrder } from './support/botHarness.js';
import { postgresUnavailable, TestPostgres } from './support/postgres.js';

const skip = postgresUnavailable();
let pg: TestPostgres;
before(async () => {
  if (!skip) pg = await TestPostgres.start();
});
after(async () => {
  if (!skip) await pg.cleanup();
});

interface LinkedUser {
  name: string;
  chatId: number;
}

/** n replicas on a fresh database, sharing the first one's fake Telegram; `users` linked in the database. */
async function fleet(t: TestContext, n: number, userCount: number): Promise<{ replicas: BotHarness[]; users: LinkedUser[]; url: string }> {
  const url = await pg.createDatabase();
  const replicas: BotHarness[] = [];
  t.after(async () => {
    for (const r of replicas) await r.cleanup();
  });
  const env = { NOTIFY_DATABASE_URL: url, NOTIFY_MAX_CONNECTIONS_PER_UID: '256' };
  const first = await BotHarness.start({ users: [], start: false, env: { ...env, NOTIFY_INSTANCE: 'host-1' } });
  replicas.push(first);
  for (let i = 2; i <= n; i++) {
    replicas.push(await BotHarness.start({ users: [], start: false, env: { ...env, NOTIFY_INSTANCE: `host-${i}`, TELEGRAM_API_ROOT: first.fake.apiRoot, TELEGRAM_BOT_TOKEN: first.fake.token } }));
  }
  const scratch = mkdtempSync(join(tmpdir(), 'notify-fleet-links-'));
  const state = await openSharedState(scratch, url);
  const users: LinkedUser[] = [];
  try {
    const links = new LinkStore(scratch);
    for (let i = 0; i < userCount; i++) {
      const user = { name: `f${i + 1}`, chatId: 200_001 + i };
      await links.linkChat(user.name, user.chatId);
      first.fake.registerChat(user.chatId, { first_name: user.name });
      users.push(user);
    }
  } finally {
    await state.close();
    rmSync(scratch, { recursive: true, force: true });
  }
  await Promise.all(replicas.map((r) => r.startBot()));
  return { replicas, users, url };
}

async function roleOf(h: BotHarness): Promise<string | null> {
  if (!h.proc) return null;
  try {
    return ((await h.health()).body as { role?: string }).role ?? null;
  } catch {
    return null;
  }
}

async function waitForLeader(replicas: BotHarness[], timeoutMs: number): Promise<BotHarness> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const r of replicas) if ((await roleOf(r)) === 'leader') return r;
    if (Date.now() > deadline) throw new Error(`no replica took the Telegram lease within ${timeoutMs} ms`);
    await sleep(100);
  }
}

function conflicts(replicas: BotHarness[]): number {
  return replicas.reduce((n, h) => n + h.logs.filter((l) => /409|another process polling/.test(String(l.msg))).length, 0);
}

void describe('a fleet of bots delivering on PostgreSQL', { skip: skip ?? false }, () => {
  void it('a burst of 300 split across three replicas: all delivered once, in order per chat, paced by one sender, one poller', async (t) => {
    const { replicas, users } = await fleet(t, 3, 100);
    const fake = replicas[0]!.fake;
    await waitForLeader(replicas, 20_000);
    const items = burst(users, 3, 'split');
    const answers = await sendInOrder(items, 30, ({ user, text }, i) => replicas[i % 3]!.client.send({ user: user.name, message: text }, 'respond-async'));
    assert.ok(answers.every((a) => a.status === 202), `all accepted: ${JSON.stringify(answers.find((a) => a.status !== 202)?.body)}`);
    const expected = expectedByChat(items);
    await replicas[0]!.waitForDelivery(expected, 90_000);
    await sleep(500);
    const report = compareDelivery(fake, expected);
    t.diagnostic(describeReport(report));
    assert.deepEqual(report.missing, []);
    assert.deepEqual(report.duplicates, []);
    assert.deepEqual(report.outOfOrder, []);
    assert.deepEqual(report.unexpected, []);
    // One sender paces for the one bot; two senders at full pace would draw about half as 429s.
    t.diagnostic(`429s: ${fake.stats.tooManyRequests} of ${fake.stats.requests.sendMessage ?? 0} sendMessage requests`);
    assert.ok(fake.stats.tooManyRequests < 60, `${fake.stats.tooManyRequests} 429s: more than one sender's pacing would explain`);
    assert.equal(conflicts(replicas), 0, 'never two pollers');
    const delivering = [];
    for (const r of replicas) if (((await r.health()).body as { outbox: { delivering?: boolean } }).outbox.delivering) delivering.push(r);
    assert.equal(delivering.length, 1, 'exactly one replica delivers');
  });

  void it('the leader killed with SIGKILL mid-burst: another takes over and every acknowledged notification arrives', async (t) => {
    const { replicas, users } = await fleet(t, 2, 100);
    const fake = replicas[0]!.fake;
    // Requests are in flight at the kill.
    fake.setFault({ kind: 'latency', ms: 100 });
    const leader = await waitForLeader(replicas, 20_000);
    const follower = replicas.find((r) => r !== leader)!;
    const items = burst(users, 3, 'kill');
    const answers = await sendInOrder(items, 30, ({ user, text }, i) => replicas[i % 2]!.client.send({ user: user.name, message: text }, 'respond-async'));
    assert.ok(answers.every((a) => a.status === 202), 'all 300 accepted');
    await fake.waitFor(() => (fake.sentMessages().length >= 60 ? true : undefined), 30_000, () => 'a fifth of the burst delivered');
    const killedAt = Date.now();
    await leader.kill('SIGKILL');
    const atKill = fake.sentMessages().length;
    assert.ok(atKill < 300, 'the kill came before the burst was delivered');
    assert.equal(await waitForLeader([follower], 20_000), follower);
    t.diagnostic(`take-over after the kill: ${Date.now() - killedAt} ms; ${atKill} of 300 in Telegram at the kill`);
    const expected = expectedByChat(items);
    await replicas[0]!.waitForDelivery(expected, 90_000);
    await sleep(500);
    const report = compareDelivery(fake, expected);
    t.diagnostic(`${describeReport(report)} (duplicates are messages in flight at the kill)`);
    assert.deepEqual(report.missing, [], describeReport(report));
    assert.deepEqual(report.outOfOrder, [], describeReport(report));
    assert.deepEqual(report.unexpected, []);
    // At most what the dead leader had in flight (its concurrency) may arrive twice.
    assert.ok(report.duplicates.length <= 32, `${report.duplicates.length} duplicates`);
    assert.equal(conflicts(replicas), 0, 'never two pollers');
  });
});
