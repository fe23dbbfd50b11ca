/**
 * Two notify-bot replicas on one PostgreSQL and one (fake) Telegram, as real processes:
 * one holds the Telegram lease and polls, the other accepts only; a command is answered
 * once; sends through either socket are delivered; no 409 from Telegram; when the leader is
 * killed with SIGKILL the other takes over polling within 10 s and goes on from the stored
 * update offset. The delivery history (what the dashboard and each replica's delivery status
 * read) is the database's. The per-analyst image quota counts what the analyst keeps over
 * the whole fleet; an unreadable outbox row becomes one dead letter that `notify-bot queue
 * list` shows, logged once.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openDatabase } from '../src/shared/db/database.js';
import { OUTCOME_LOG, readOutcomes } from '../src/shared/outcomeLog.js';
import { openSharedState } from '../src/shared/sharedState.js';
import type { BotHarness } from './support/botHarness.js';
import { pollConflicts, roleOf, startFleet, waitForLeader } from './support/fleet.js';
import { postgresForFile } from './support/postgres.js';
import { pngOf } from './support/png.js';
import { scrape, value } from './support/prometheus.js';

const { skip, server } = postgresForFile();


void describe('two bot replicas on PostgreSQL', { skip: skip ?? false }, () => {
  void it('one polls, both accept and deliver, a command is answered once, and a SIGKILLed leader is replaced within 10 s', async (t) => {
    const fleet = await startFleet(server(), { replicas: 2, users: ['alice'], firstChatId: 5150, env: { NOTIFY_METRICS_ADDR: '127.0.0.1:0' } });
    const [a, b] = fleet.replicas as [BotHarness, BotHarness];
    // Each replica's metrics say whether it holds the Telegram lease.
    const leaseHeld = async (r: BotHarness): Promise<number> => {
      const line = await r.waitForLog((l) => l.msg === 'metrics endpoint listening at /metrics', 60_000, 'the metrics endpoint to listen');
      return value((await scrape(Number(line.port))).samples, 'notify_telegram_lease_held');
    };
    const chat = 5150;
    try {
      const leader = await waitForLeader([a, b], 20_000);
      const follower = leader === a ? b : a;
      assert.equal(await roleOf(follower), 'follower');
      assert.deepEqual([await leaseHeld(leader), await leaseHeld(follower)], [1, 0], 'the metrics of the leader and the follower');
      assert.equal(((await follower.health()).body as { instance: string }).instance, follower === a ? 'host-1' : 'host-2');

      const viaA = await a.client.send({ user: 'alice', text: 'through host-a' }, { waitSeconds: 10 });
      const viaB = await b.client.send({ user: 'alice', text: 'through host-b' }, { waitSeconds: 10 });
      assert.ok(viaA.status === 200 || viaA.status === 202, JSON.stringify(viaA.body));
      assert.ok(viaB.status === 200 || viaB.status === 202, JSON.stringify(viaB.body));
      await a.fake.waitForMessages(chat, 2, 60_000);

      // The delivery history is the database's: the dashboard's reader (on a host of its own)
      // and the follower's delivery status find what the leader delivered; no host keeps a log file.
      const ids = new Set([viaA, viaB].map((r) => (r.body as { id: string }).id));
      const dashboard = mkdtempSync(join(tmpdir(), 'notify-fleet-dashboard-'));
      const state = await openSharedState(dashboard, fleet.url);
      try {
        const outcomes = await leader.waitUntil(async () => {
          const found = await readOutcomes(dashboard, ids);
          return found.size === 2 ? found : undefined;
        }, 60_000, () => 'both outcomes in the database');
        assert.deepEqual([...outcomes.values()].map((o) => [o.user, o.status]), [['alice', 'delivered'], ['alice', 'delivered']]);
      } finally {
        await state.close();
        rmSync(dashboard, { recursive: true, force: true });
      }
      const status = (await follower.client.channels('alice')).body as { telegram: { last?: { status: string } } };
      assert.equal(status.telegram.last?.status, 'delivered', `the follower's delivery status comes from the database: ${JSON.stringify(status)}`);
      for (const r of [a, b]) assert.equal(existsSync(join(r.dataDir, OUTCOME_LOG)), false, 'no delivery log file on a host of the fleet');

      a.fake.sendUserMessage(chat, '/whoami');
      const afterWhoami = await a.fake.waitForMessages(chat, 3, 60_000);
      // The answer to a later command comes after any second answer to the first would have.
      a.fake.sendUserMessage(chat, '/help');
      await a.fake.waitForMessages(chat, 4, 60_000);
      const texts = a.fake.sentMessages(chat).map((m) => m.text ?? '');
      assert.equal(texts.filter((t) => t.startsWith('This chat is linked')).length, 1, `one answer to /whoami: ${JSON.stringify(texts)}`);
      assert.ok(afterWhoami.length >= 3);

      const killedAt = Date.now();
      await leader.kill('SIGKILL');
      const next = await waitForLeader([follower], 20_000);
      const takeoverMs = Date.now() - killedAt;
      assert.equal(next, follower);
      assert.equal(await leaseHeld(follower), 1, 'the new leader says so in its metrics');
      t.diagnostic(`take-over after SIGKILL of the leader: ${takeoverMs} ms`);
      assert.ok(takeoverMs < 10_000, `take-over took ${takeoverMs} ms (target: under 10 s)`);

      const before = a.fake.sentMessages(chat).length;
      a.fake.sendUserMessage(chat, '/whoami');
      await a.fake.waitForMessages(chat, before + 1, 60_000);
      a.fake.sendUserMessage(chat, '/help');
      await a.fake.waitForMessages(chat, before + 2, 60_000);
      const later = a.fake.sentMessages(chat).slice(before).map((m) => m.text ?? '');
      assert.equal(later.filter((t) => t.startsWith('This chat is linked')).length, 1, `the new leader answers the new command once and no old one again: ${JSON.stringify(later)}`);
      assert.equal(pollConflicts([a, b]), 0, 'no two replicas polled at once (no 409 from Telegram)');
    } finally {
      await fleet.cleanup();
    }
  });

  void it("the stored-images quota is the analyst's over every replica: a photo beyond it through another replica gets the same 429, texts and others go on", async () => {
    const fleet = await startFleet(server(), { replicas: 2, users: ['alice', 'bob'], firstChatId: 5250, env: { NOTIFY_USER_IMAGE_BYTES: String(300 * 1024) } });
    const [a, b] = fleet.replicas as [BotHarness, BotHarness];
    const photo = pngOf(120 * 1024);
    const sendPhoto = (r: BotHarness, user: string, caption: string): ReturnType<BotHarness['client']['sendPhoto']> =>
      r.client.sendPhoto({ user, caption }, { bytes: photo, filename: 'c.png', contentType: 'image/png' }, 'respond-async');
    try {
      await waitForLeader([a, b], 20_000);
      for (let i = 0; i < 2; i += 1) {
        const r = await sendPhoto(a, 'alice', `kept ${i}`);
        assert.equal(r.status, 202, `photo ${i} fits: ${JSON.stringify(r.body)}`);
      }
      await a.fake.waitForMessages(5250, 2, 30_000);
      // The other replica accepted none of them, yet counts what alice keeps.
      const over = await sendPhoto(b, 'alice', 'one too many');
      assert.equal(over.status, 429, `the third photo passes the stored-images quota: ${JSON.stringify(over.body)}`);
      assert.match(String((over.body as { error?: string }).error), /'alice' keeps 0\.2 MiB of images for desktop apps .*NOTIFY_USER_IMAGE_BYTES.*nothing was stored\. Send it without the image/);
      const retry = Number(over.headers['retry-after']);
      assert.ok(retry > 6 * 86_400, `Retry-After points at the oldest image's expiry, about a week away (${retry} s)`);
      const db = await openDatabase(fleet.url);
      try {
        const kept = await db.sql<{ username: string }[]>`SELECT username FROM desktop_images ORDER BY username`;
        assert.deepEqual(kept.map((r) => r.username), ['alice', 'alice'], 'no image was stored for the refused photo');
      } finally {
        await db.close();
      }
      const text = await b.client.send({ user: 'alice', message: 'text still goes' }, 'respond-async');
      assert.equal(text.status, 202, JSON.stringify(text.body));
      const bob = await sendPhoto(b, 'bob', 'bob chart');
      assert.equal(bob.status, 202, `another analyst sends photos: ${JSON.stringify(bob.body)}`);
      const texts = (await a.fake.waitForMessages(5250, 3, 30_000)).map((m) => m.caption ?? m.text ?? '');
      assert.ok(!texts.some((x) => x.includes('one too many')), 'the refused photo was never delivered');
    } finally {
      await fleet.cleanup();
    }
  });

  void it('an unreadable outbox row becomes one dead letter: `queue list` and `queue show` show it, it cannot be re-queued, it is logged once across a change of leader, and the rest is delivered', async () => {
    const fleet = await startFleet(server(), { replicas: 2, users: ['alice'], firstChatId: 5350 });
    const [a, b] = fleet.replicas as [BotHarness, BotHarness];
    const id = 'torn-0001';
    const torn = `{"id":"${id}","user":"alice","chat_id":5350,"parts":[{"te`;
    const moved = (l: { msg?: unknown; id?: unknown }): boolean => l.msg === 'an unreadable outbox record was moved to the dead letters' && l.id === id;
    try {
      const leader = await waitForLeader([a, b], 20_000);
      const db = await openDatabase(fleet.url);
      try {
        await db.sql`INSERT INTO outbox (id, seq, user_name, body, bytes) VALUES (${id}, 1, 'alice', ${torn}, ${torn.length})`;
      } finally {
        await db.close();
      }
      await leader.waitForLog(moved, 20_000, 'the leader moving the unreadable row to the dead letters');
      const after = await a.client.send({ user: 'alice', message: 'after the torn row' }, 'respond-async');
      assert.equal(after.status, 202, JSON.stringify(after.body));
      await a.fake.waitForMessages(5350, 1, 30_000);

      const list = await b.cli(['queue', 'list']);
      assert.equal(list.status, 0, list.stderr);
      assert.match(list.stdout, new RegExp(`^${id}  \\d{4}-\\d\\d-\\d\\dT\\S+  unreadable record from outbox row ${id} \\(moved to the dead letters\\)\\n    reason: `, 'm'));
      assert.match(list.stdout, /1 record\(s\) that could not be read; they cannot be re-queued/);
      const show = await a.cli(['queue', 'show', id]);
      assert.equal(show.status, 0, show.stderr);
      assert.equal((JSON.parse(show.stdout) as { text: string }).text, torn, 'queue show prints what was read');
      const requeue = await a.cli(['queue', 'requeue', id]);
      assert.equal(requeue.status, 1);
      assert.match(requeue.stderr, new RegExp(`${id} is a record that could not be read; it cannot be re-queued`));

      // Another leader takes the whole queue afresh: the dead row is not taken (or logged) again.
      await leader.kill('SIGKILL');
      const next = await waitForLeader([a, b].filter((r) => r !== leader), 20_000);
      const again = await next.client.send({ user: 'alice', message: 'after the new leader' }, 'respond-async');
      assert.equal(again.status, 202, JSON.stringify(again.body));
      await a.fake.waitForMessages(5350, 2, 30_000);
      assert.equal([a, b].reduce((n, r) => n + r.logs.filter(moved).length, 0), 1, 'the damaged row was logged once');
      const texts = a.fake.sentMessages(5350).map((m) => m.text ?? '');
      assert.ok(texts.includes('after the torn row') && texts.includes('after the new leader'), JSON.stringify(texts));
    } finally {
      await fleet.cleanup();
    }
  });
});
