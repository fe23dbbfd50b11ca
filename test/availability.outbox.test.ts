/**
 * A corrupt outbox record stops nothing and is reported once: the real bot process, a
 * record damaged on disk (a flipped byte in the journal, a re-queued file cut short), and
 * the bot restarted and rescanning. The damaged record becomes one dead letter that
 * `notify-bot queue list` shows, one error line in the log, and every other record is
 * delivered.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BotHarness, textOf } from './support/botHarness.js';

const MOVED = /unreadable outbox record was moved to the dead letters/;

/** The damaged letters kept in outbox/dead. */
function damagedFiles(h: BotHarness): string[] {
  return readdirSync(h.deadDir).filter((n) => n.endsWith('.damaged'));
}

void describe('a corrupt outbox record', () => {
  void it('a damaged journal line: one dead letter, one log line across restarts and rescans, and the rest is delivered', async (t) => {
    const h = await BotHarness.start({ users: 1 });
    t.after(() => h.cleanup());
    const u = h.users[0]!;
    // Telegram is away: the three stay queued in the journal.
    h.fake.setFault({ kind: 'outage' });
    for (const text of ['first of three', 'second of three', 'third of three']) {
      const r = await h.client.send({ user: u.name, message: text }, 'respond-async');
      assert.equal(r.status, 202, JSON.stringify(r.body));
    }
    await h.kill();

    // A flipped byte in the second record's line, as a failing disk would leave it.
    const journalDir = join(h.dataDir, 'outbox', 'journal');
    const seg = readdirSync(journalDir).filter((n) => n.startsWith('seg-')).sort().find((n) => readFileSync(join(journalDir, n), 'utf8').includes('second of three'));
    assert.ok(seg, 'the journal holds the second record');
    const path = join(journalDir, seg);
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.replace('second of three', 'secOnd of three'));

    h.fake.setFault(null);
    await h.startBot();
    await h.waitUntil(
      () => ['first of three', 'third of three'].every((x) => h.fake.sentMessages(u.chatId).some((m) => textOf(m).includes(x))),
      60_000,
      () => `the undamaged records were not delivered: ${JSON.stringify(h.fake.sentMessages(u.chatId).map(textOf))} (log: ${h.logTail(5)})`,
    );
    await h.waitUntil(() => h.queuedIds().length === 0, 30_000, () => `records are left in the queue: ${JSON.stringify(h.queuedRecords())}`);
    assert.ok(!h.fake.sentMessages(u.chatId).some((m) => /sec.nd of three/.test(textOf(m))), 'the damaged record is not delivered');

    // Restarted and left to rescan: the damage is not found or reported again.
    await h.restart();
    const after = await h.client.send({ user: u.name, message: 'sent after the restart' }, 'respond-async');
    assert.equal(after.status, 202, JSON.stringify(after.body));
    await h.waitUntil(() => h.fake.sentMessages(u.chatId).some((m) => textOf(m).includes('sent after the restart')), 30_000, () => 'the send after the restart was not delivered');

    const reports = h.logs.filter((l) => MOVED.test(String(l.msg)));
    assert.equal(reports.length, 1, `one log line for the damaged record, across two starts: ${JSON.stringify(reports)}`);
    assert.equal(reports[0]!.level, 50, 'logged as an error');
    assert.equal(damagedFiles(h).length, 1, `one dead letter: ${damagedFiles(h).join(', ')}`);

    const list = await h.cli(['queue', 'list']);
    assert.equal(list.status, 0, list.stderr);
    const id = damagedFiles(h)[0]!.replace(/\.damaged$/, '');
    assert.ok(list.stdout.includes(id), `queue list shows the damaged record:\n${list.stdout}`);
    assert.match(list.stdout, /unreadable record from journal seg-\d+\.log line \d+\n {4}reason: checksum mismatch/);
    assert.match(list.stdout, /1 record\(s\) that could not be read/);
    const show = await h.cli(['queue', 'show', id]);
    assert.equal(show.status, 0, show.stderr);
    assert.match(show.stdout, /secOnd of three/, 'queue show prints what was read');
    const requeue = await h.cli(['queue', 'requeue', id]);
    assert.equal(requeue.status, 1);
    assert.match(requeue.stderr, /could not be read; it cannot be re-queued/);
  });

  void it('an unreadable re-queued file: moved to the dead letters at the first rescan, reported once, the others still delivered', async (t) => {
    const h = await BotHarness.start({ users: 1 });
    t.after(() => h.cleanup());
    const u = h.users[0]!;
    writeFileSync(join(h.queueDir, 'mb0k1e9t-0a1b2c.json'), '{"id": "mb0k1e9t-0a1b2c", "user": "u1", "chat_id": 1000');
    await h.waitForLog((l) => MOVED.test(String(l.msg)), 60_000, 'the damaged re-queued file reported');
    // A good re-queued record placed after it is taken and delivered by a later rescan.
    const good = { id: 'mb0k1e9u-0d0e0f', seq: 1, user: u.name, chat_id: u.chatId, accepted_at: Date.now(), parts: [{ kind: 'text', text: 'a good re-queued one' }], sent_parts: 0, attempts: 0 };
    writeFileSync(join(h.queueDir, `${good.id}.json`), JSON.stringify(good));
    await h.waitUntil(() => h.fake.sentMessages(u.chatId).some((m) => textOf(m) === 'a good re-queued one'), 30_000, () => `the good record was not delivered (log: ${h.logTail(5)})`);
    const direct = await h.client.send({ user: u.name, message: 'and a new one' }, 'respond-async');
    assert.equal(direct.status, 202);
    await h.waitUntil(() => h.fake.sentMessages(u.chatId).some((m) => textOf(m).includes('and a new one')), 30_000, () => 'the new send was not delivered');

    assert.deepEqual(readdirSync(h.queueDir).filter((n) => !n.startsWith('.')), [], 'the damaged file left outbox/queue');
    assert.equal(damagedFiles(h).length, 1);
    assert.equal(h.logs.filter((l) => MOVED.test(String(l.msg))).length, 1, 'reported once');
    const list = await h.cli(['queue', 'list']);
    assert.match(list.stdout, /unreadable record from queue\/mb0k1e9t-0a1b2c\.json/);
  });
});
