/**
 * Two notify-bot replicas on one PostgreSQL and one (fake) Telegram, as real processes:
 * one holds the Telegram lease and polls, the other accepts only; a command is answered
 * once; sends through either socket are delivered; no 409 from Telegram; when the leader is
 * killed with SIGKILL the other takes over polling within 10 s and goes on from the stored
 * update offset. The delivery history (what the dashboard and each replica's delivery status
 * read) is the database's.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { OUTCOME_LOG, readOutcomes } from '../src/shared/outcomeLog.js';
import { openSharedState } from '../src/shared/sharedState.js';
import type { BotHarness } from './support/botHarness.js';
import { pollConflicts, roleOf, startFleet, waitForLeader } from './support/fleet.js';
import { postgresForFile } from './support/postgres.js';
import { scrape, value } from './support/prometheus.js';

const { skip, server } = postgresForFile();

void describe('two bot replicas on PostgreSQL', { skip: skip ?? false }, () => {
  void it('one polls, both accept and deliver, a command is answered once, and a SIGKILLed leader is replaced within 10 s', async (t) => {
    const fleet = await startFleet(server(), { replicas: 2, users: ['alice'], firstChatId: 5150, env: { NOTIFY_METRICS_ADDR: '127.0.0.1:0' } });
    const [a, b] = fleet.replicas as [BotHarness, BotHarness];
    // Each replica's metrics say whether it holds the Telegram lease.
    const leaseHeld = async (r: BotHarness): Promise<number> => {
      const line = await r.waitForLog((l) => l.msg === 'metrics endpoint listening at /metrics', 15_000, 'the metrics endpoint to listen');
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
      await a.fake.waitForMessages(chat, 2, 15_000);

      // The delivery history is the database's: the dashboard's reader (on a host of its own)
      // and the follower's delivery status find what the leader delivered; no host keeps a log file.
      const ids = new Set([viaA, viaB].map((r) => (r.body as { id: string }).id));
      const dashboard = mkdtempSync(join(tmpdir(), 'notify-fleet-dashboard-'));
      const state = await openSharedState(dashboard, fleet.url);
      try {
        const outcomes = await leader.waitUntil(async () => {
          const found = await readOutcomes(dashboard, ids);
          return found.size === 2 ? found : undefined;
        }, 15_000, () => 'both outcomes in the database');
        assert.deepEqual([...outcomes.values()].map((o) => [o.user, o.status]), [['alice', 'delivered'], ['alice', 'delivered']]);
      } finally {
        await state.close();
        rmSync(dashboard, { recursive: true, force: true });
      }
      const status = (await follower.client.channels('alice')).body as { telegram: { last?: { status: string } } };
      assert.equal(status.telegram.last?.status, 'delivered', `the follower's delivery status comes from the database: ${JSON.stringify(status)}`);
      for (const r of [a, b]) assert.equal(existsSync(join(r.dataDir, OUTCOME_LOG)), false, 'no delivery log file on a host of the fleet');

      a.fake.sendUserMessage(chat, '/whoami');
      const afterWhoami = await a.fake.waitForMessages(chat, 3, 15_000);
      // The answer to a later command comes after any second answer to the first would have.
      a.fake.sendUserMessage(chat, '/help');
      await a.fake.waitForMessages(chat, 4, 15_000);
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
      await a.fake.waitForMessages(chat, before + 1, 15_000);
      a.fake.sendUserMessage(chat, '/help');
      await a.fake.waitForMessages(chat, before + 2, 15_000);
      const later = a.fake.sentMessages(chat).slice(before).map((m) => m.text ?? '');
      assert.equal(later.filter((t) => t.startsWith('This chat is linked')).length, 1, `the new leader answers the new command once and no old one again: ${JSON.stringify(later)}`);
      assert.equal(pollConflicts([a, b]), 0, 'no two replicas polled at once (no 409 from Telegram)');
    } finally {
      await fleet.cleanup();
    }
  });
});
