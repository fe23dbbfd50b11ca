/**
 * A crash loses nothing: the bot is killed with SIGKILL in the middle of delivering a burst
 * of 300 accepted notifications (100 users, Telegram's limits, 100 ms Telegram latency so
 * requests are in flight at the kill), restarted, and every one of the 300 arrives. The
 * only duplicates allowed are messages Telegram had taken whose acceptance the bot had not
 * yet recorded when it died; the test finds those from the spool and reports both counts.
 * The same holds when the kill lands in the middle of a compaction of the outbox journal.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, watch } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SocketUnavailableError, type UnixResponse } from '../src/shared/sendClient.js';
import { BotHarness, burst, compareDelivery, describeReport, expectedByChat, sendInOrder, textOf } from './support/botHarness.js';

/** Texts the outbox (frozen on disk once the bot is dead) still lists as the next part to send. */
function nextParts(h: BotHarness): Set<string> {
  const out = new Set<string>();
  for (const r of h.queuedRecords()) {
    const parts = r.parts as Array<{ text: string }>;
    const sent = r.sent_parts as number;
    const next = parts[sent];
    if (next) out.add(next.text);
  }
  return out;
}

/** When a run of the bot printed its first line (ms). */
function startedAt(h: BotHarness, run: number): number {
  const at = Date.parse(String(h.logs.find((l) => l.run === run)?.time));
  assert.ok(Number.isFinite(at), `run ${run} of the bot logged when it started`);
  return at;
}

/** The test sends for 100 users from one uid, 50 requests at once. */
const MANY_SENDERS = { NOTIFY_MAX_CONNECTIONS_PER_UID: '256' };

void describe('a crash of the bot', () => {
  void it('SIGKILL in the middle of a burst of 300 accepted messages: after a restart all 300 are delivered', async (t) => {
    const h = await BotHarness.start({ users: 100, env: MANY_SENDERS });
    t.after(() => h.cleanup());
    h.fake.setFault({ kind: 'latency', ms: 100 });
    const items = burst(h.users, 3, 'crash');
    const answers = await sendInOrder(items, 50, ({ user, text }) => h.client.send({ user: user.name, message: text }, 'respond-async'));
    assert.ok(answers.every((a) => a.status === 202), 'all 300 are accepted');

    await h.fake.waitFor(() => (h.fake.sentMessages().length >= 100 ? true : undefined), 60_000, () => 'a third of the burst delivered');
    const code = await h.kill('SIGKILL');
    assert.equal(code, -1, 'the bot died of the signal');
    // The dead bot's outbox does not change any more; what Telegram holds still may for a
    // moment (requests it was handling), so it is judged by when each message arrived.
    const pending = nextParts(h);
    const before = h.fake.sentMessages().length;
    t.diagnostic(`killed with about ${before} of 300 in Telegram, ${h.queuedIds().length} still queued`);
    assert.ok(before < 300, 'the kill came before the burst was delivered');

    await h.startBot();
    const restartedAt = startedAt(h, 2);
    const expected = expectedByChat(items);
    await h.waitForDelivery(expected, 120_000);
    await h.waitUntil(() => h.queuedIds().length === 0, 60_000, () => 'the queue drains after the restart');
    await sleep(300);
    const report = compareDelivery(h.fake, expected);
    const inFlight = new Set(h.fake.sentMessages().filter((m) => m.receivedAt < restartedAt && pending.has(textOf(m))).map(textOf));
    t.diagnostic(`after restart: ${describeReport(report)}; duplicates: ${report.duplicates.length} (messages in flight at the kill: ${inFlight.size})`);
    assert.deepEqual(report.missing, [], describeReport(report));
    assert.deepEqual(report.outOfOrder, [], describeReport(report));
    assert.deepEqual(report.unexpected, [], describeReport(report));
    // Taken by Telegram from the dead bot (before the restarted one printed anything) while
    // the outbox still listed them as next to send.
    const unjustified = report.duplicates.filter((d) => !inFlight.has(d));
    assert.deepEqual(unjustified, [], 'only messages in flight at the kill may arrive twice');
    assert.ok(h.logs.some((l) => l.run === 2 && l.msg === 'resuming delivery of notifications queued before the restart'), 'the restarted bot says it resumes the queue');
  });

  void it('SIGKILL while requests are still arriving: every request answered 2xx before the kill is delivered', async (t) => {
    const h = await BotHarness.start({ users: 100, env: MANY_SENDERS });
    t.after(() => h.cleanup());
    const items = burst(h.users, 3, 'midaccept');
    let answered = 0;
    const killing: { done: Promise<unknown> | null } = { done: null };
    const results = await sendInOrder(items, 50, async ({ user, text }): Promise<UnixResponse | 'no answer'> => {
      if (killing.done) return 'no answer';
      try {
        const res = await h.client.send({ user: user.name, message: text }, 'respond-async');
        answered += 1;
        if (answered === 150) killing.done = h.kill('SIGKILL');
        return res;
      } catch (err) {
        if (err instanceof SocketUnavailableError) return 'no answer';
        throw err;
      }
    });
    await killing.done;
    const accepted = items.filter((_, i) => {
      const r = results[i];
      return r !== undefined && r !== 'no answer' && r.status === 202;
    });
    const other = results.filter((r) => r !== 'no answer' && r.status !== 202);
    assert.deepEqual(other, [], 'every answered request was a 202');
    t.diagnostic(`${accepted.length} accepted before the kill, ${items.length - accepted.length} without an answer`);
    assert.ok(accepted.length >= 150, 'at least the 150 answered before the kill');

    await h.startBot();
    const expected = expectedByChat(accepted);
    await h.waitForDelivery(expected, 120_000);
    await h.waitUntil(() => h.queuedIds().length === 0, 60_000, () => 'the queue drains after the restart');
    const report = compareDelivery(h.fake, expected);
    t.diagnostic(`after restart: ${describeReport(report)}`);
    assert.deepEqual(report.missing, [], describeReport(report));
    assert.deepEqual(report.outOfOrder, [], describeReport(report));
    // Requests the bot had put on disk but not answered yet may arrive too; nothing else may.
    const sent = new Set(items.map((i) => i.text));
    const foreign = h.fake.sentMessages().map(textOf).filter((x) => !sent.has(x));
    assert.deepEqual(foreign, [], 'nothing arrives that was never sent');
  });

  void it('SIGKILL in the middle of a compaction of the outbox journal: nothing lost, nothing sent twice', async (t) => {
    const h = await BotHarness.start({
      users: 100,
      fake: { botRateLimit: false, chatRateLimit: false },
      env: { ...MANY_SENDERS, NOTIFY_TELEGRAM_RATE: '100000', NOTIFY_CHAT_BURST: '1000', NOTIFY_CHAT_INTERVAL: '1ms', NOTIFY_OUTBOX_SEGMENT_SIZE: '4096' },
    });
    t.after(() => h.cleanup());
    // Telegram is down while 2,000 are accepted, so all of them are in the journal.
    h.fake.setFault({ kind: 'outage' });
    const items = burst(h.users, 20, 'compaction');
    const answers = await sendInOrder(items, 50, ({ user, text }) => h.client.send({ user: user.name, message: text }, 'respond-async'));
    assert.ok(answers.every((a) => a.status === 202), 'all 2,000 are accepted');

    // Every start compacts what the previous run left; kill the bot while that is under way.
    const dir = join(h.dataDir, 'outbox', 'journal');
    mkdirSync(dir, { recursive: true });
    const compacting = (): boolean => {
      const names = readdirSync(dir);
      const snaps = names.filter((n) => /^snap-\d+\.log$/.test(n)).sort();
      const newest = snaps.at(-1);
      const stale = newest !== undefined && names.some((n) => /^(seg|snap)-\d+\.log$/.test(n) && n.slice(-16) < newest.slice(-16));
      return names.some((n) => n.endsWith('.tmp')) || stale;
    };
    let midCompaction = 0;
    for (let attempt = 0; attempt < 10 && midCompaction < 2; attempt += 1) {
      await h.kill('SIGKILL');
      const watcher = watch(dir, (_event, name) => {
        if (name?.startsWith('snap-')) void h.kill('SIGKILL');
      });
      try {
        await h.startBot();
      } catch {
        // Killed while starting: what we wanted.
      } finally {
        watcher.close();
      }
      await h.kill('SIGKILL');
      if (compacting()) midCompaction += 1;
    }
    t.diagnostic(`${midCompaction} kill(s) landed in the middle of a compaction`);
    assert.ok(midCompaction >= 1, 'at least one kill came in the middle of a compaction');
    assert.equal(h.queuedIds().length, 2000, 'the killed compactions lost no record');

    h.fake.setFault(null);
    await h.startBot();
    const expected = expectedByChat(items);
    await h.waitForDelivery(expected, 120_000);
    await h.waitUntil(() => h.queuedIds().length === 0, 60_000, () => 'the queue drains after the restart');
    await sleep(300);
    const report = compareDelivery(h.fake, expected);
    t.diagnostic(`after restart: ${describeReport(report)}`);
    assert.deepEqual(report.missing, [], describeReport(report));
    assert.deepEqual(report.duplicates, [], 'Telegram was down: nothing can have been taken twice');
    assert.deepEqual(report.outOfOrder, [], describeReport(report));
  });
});
