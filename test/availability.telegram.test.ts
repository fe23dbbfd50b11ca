/**
 * Nobody stalls the bot through Telegram: a flood of /start from thousands of chats, one
 * chat sending thousands of messages, a stop in the middle of it all. Every chat gets its
 * answer, no update Telegram handed over is lost, and SIGTERM ends the bot within 10 s.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LinkStore } from '../src/shared/linking.js';
import { UNLINKED_REPLY } from '../src/bot/commands/linkCommands.js';
import { CANNOT_SERVE_REPLY } from '../src/bot/commands/menu.js';
import { TeamChatStore } from '../src/shared/teamChats.js';
import { BotHarness, pngBytes, textOf } from './support/botHarness.js';
import { answered, CODE_RE, codeProblems, floodChats, sendStarts } from './support/startFlood.js';


void describe('the /start flood', () => {
  void it('3,000 chats asking for a code at once each get their own, all stored in pending_codes.json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'notify-codes-'));
    try {
      const links = new LinkStore(dir);
      const chats = Array.from({ length: 3000 }, (_, i) => 700_000 + i);
      const codes = await Promise.all(chats.map((c) => links.issueCode(c)));
      assert.equal(new Set(codes).size, chats.length, 'every chat has a code of its own');
      const stored = JSON.parse(readFileSync(join(dir, 'pending_codes.json'), 'utf8')) as Record<string, { chat_id: number; created_at: number }>;
      assert.equal(Object.keys(stored).length, chats.length, 'the file holds one code per chat');
      for (const [i, code] of codes.entries()) {
        assert.match(code, /^\d{6}$/);
        assert.equal(stored[code]?.chat_id, chats[i], `code ${code} belongs to chat ${chats[i]}`);
        assert.equal(typeof stored[code]?.created_at, 'number');
      }
      // A later /start of a chat replaces its code, also within one batch.
      const [again1, again2] = await Promise.all([links.issueCode(chats[0]!), links.issueCode(chats[0]!)]);
      const after = JSON.parse(readFileSync(join(dir, 'pending_codes.json'), 'utf8')) as Record<string, { chat_id: number }>;
      const ofFirst = Object.entries(after).filter(([, e]) => e.chat_id === chats[0]).map(([c]) => c);
      assert.deepEqual(ofFirst, [again2], `only the last code of the chat stays (got ${ofFirst.join(', ')}; the first of the two was ${again1})`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void it('3,000 chats sending /start at once, the bot killed midway: every chat gets its code, paced within the limits, no update lost', async (t) => {
    // Telegram's limits scaled up tenfold (the bot paced to match) so the flood takes
    // seconds, not minutes; bench/start-flood runs it at the real limits.
    const h = await BotHarness.start({
      users: 0,
      fake: { botRateLimit: { perWindow: 300, windowMs: 1000 } },
      env: { NOTIFY_TELEGRAM_RATE: '300', NOTIFY_TELEGRAM_WINDOW: '1100ms' },
    });
    t.after(() => h.cleanup());
    const chats = floodChats(3000);
    sendStarts(h, chats);
    // Midway, the bot dies: what it fetched (and so confirmed to Telegram) is not lost.
    await h.waitUntil(() => answered(h, chats) >= chats.length / 3 || undefined, 180_000, () => `${answered(h, chats)} of ${chats.length} chats got an answer before the kill`);
    await h.kill();
    const killedAt = Date.now();
    const beforeRestart = answered(h, chats);
    assert.equal(h.fake.pendingUpdates, 0, 'Telegram handed every update to the bot before the kill');
    await h.startBot();
    await h.waitUntil(
      () => answered(h, chats) === chats.length || undefined,
      240_000,
      () => `${answered(h, chats)} of ${chats.length} chats got an answer (${beforeRestart} before the kill); log: ${h.logTail(5)}`,
    );
    t.diagnostic(`${beforeRestart} chats answered before the kill, all ${chats.length} after the restart; ${h.fake.stats.tooManyRequests} answers of 429`);
    assert.deepEqual(codeProblems(h, chats), [], 'pending_codes.json holds the code each chat was last told, in the contract\'s shape');
    // Paced under Telegram's limits; network jitter on a loaded machine may still draw a
    // rare 429, which makes every sender wait as told (the bench counts them exactly).
    assert.ok(h.fake.stats.tooManyRequests <= chats.length / 100, `Telegram said 429 ${h.fake.stats.tooManyRequests} times for ${chats.length} answers`);
    // A chat answered twice is one whose answer went out before the kill (its update not yet
    // marked handled), and again after the restart: never twice by one run, never three times.
    const perChat = new Map<number, number[]>();
    for (const m of h.fake.sentMessages()) perChat.set(m.chat_id, [...(perChat.get(m.chat_id) ?? []), m.receivedAt]);
    const twice = [...perChat].filter(([, at]) => at.length > 1);
    t.diagnostic(`${twice.length} chats answered twice`);
    assert.ok(twice.length <= 300, `${twice.length} chats were answered twice`);
    // (The dead bot's last request may reach the fake just after the kill returned, but not after
    // the new bot started.)
    const restartedAt = Date.parse(String(h.logs.find((l) => l.run === 2)?.time));
    assert.ok(Number.isFinite(restartedAt), 'the restarted bot logged when it started');
    const wrong = twice.filter(([, at]) => at.length > 2 || at[0]! > restartedAt || at[1]! <= killedAt).map(([chat, at]) => `${chat}: ${at.map((a) => a - killedAt).join(', ')} ms from the kill`);
    assert.deepEqual(wrong, [], 'chats answered twice other than once before and once after the kill');
    assert.equal(h.logs.filter((l) => l.msg === 'update handler failed; giving the update up').length, 0, 'no update was given up');
  });
});

void describe('a chat sending thousands of messages', () => {
  void it('SIGTERM with 2,000 updates waiting ends the bot within 10 s; after a restart every one is answered', async (t) => {
    const h = await BotHarness.start({
      users: 0,
      fake: { chatRateLimit: false, botRateLimit: false },
      env: { NOTIFY_TELEGRAM_RATE: '100000', NOTIFY_CHAT_INTERVAL: '1ms', NOTIFY_CHAT_BURST: '1000' },
    });
    t.after(() => h.cleanup());
    const chat = 910_001;
    const count = 2000;
    // Each answer is slow, so most of the chat's messages still wait when the stop comes.
    h.fake.setFault({ kind: 'latency', ms: 200, methods: ['sendMessage'] });
    for (let i = 0; i < count; i += 1) h.fake.sendUserMessage(chat, `message ${i}`);
    await h.waitUntil(() => h.fake.sentMessages(chat).length >= 3, 60_000, () => `the chat got ${h.fake.sentMessages(chat).length} answers`);
    await h.waitUntil(() => h.fake.pendingUpdates === 0, 60_000, () => `Telegram still holds ${h.fake.pendingUpdates} unconfirmed updates`);

    const asked = Date.now();
    const code = await h.stopBot(30_000);
    const tookMs = Date.now() - asked;
    assert.equal(code, 0, `the bot exits 0 on SIGTERM (got ${code}); log:\n${h.logTail(10)}`);
    // The bot gives a stop 9 s (then exits anyway); the bound leaves a loaded machine room for
    // its timers and still tells it from answering the 2,000 first (at 200 ms each, 16 at a
    // time, 25 s or more).
    assert.ok(tookMs < 20_000, `SIGTERM ended the bot in ${tookMs} ms`);
    const before = h.fake.sentMessages(chat).length;
    assert.ok(before < count, `most messages were still waiting at the stop (${before} answered)`);

    h.fake.setFault(null);
    await h.startBot();
    const restored = await h.waitForLog((l) => l.msg === 'handling Telegram updates received before the last stop' && l.run === 2, 30_000);
    assert.ok(Number(restored.updates) >= count - before - 16, `the updates not answered before the stop were kept (${String(restored.updates)} restored, ${before} answered)`);
    await h.waitUntil(() => h.fake.sentMessages(chat).length >= count, 180_000, () => `the chat got ${h.fake.sentMessages(chat).length} of ${count} answers`);
    const answers = h.fake.sentMessages(chat);
    assert.ok(answers.every((m) => m.text === UNLINKED_REPLY), 'every answer is the unlinked reply');
    // An answer being sent when the stop came may go twice; none is lost.
    assert.ok(answers.length <= count + 16, `${answers.length} answers for ${count} messages`);
  });

  void it('one chat flooding does not hold up another chat\'s /start', async (t) => {
    const h = await BotHarness.start({ users: 0, env: { NOTIFY_UPDATE_CONCURRENCY: '2' } });
    t.after(() => h.cleanup());
    const flooder = 920_001;
    const other = 920_002;
    h.fake.setFault({ kind: 'latency', ms: 100, methods: ['sendMessage'] });
    for (let i = 0; i < 500; i += 1) h.fake.sendUserMessage(flooder, `spam ${i}`);
    await h.waitUntil(() => h.fake.sentMessages(flooder).length >= 1, 60_000, () => 'the flooding chat got no answer at all');
    h.fake.sendUserMessage(other, '/start');
    await h.waitUntil(() => h.fake.sentMessages(other).length >= 1, 60_000, () => 'the other chat got no code');
    assert.match(h.fake.sentMessages(other)[0]?.text ?? '', CODE_RE);
    const answered = h.fake.sentMessages(flooder).length;
    assert.ok(answered < 500, `the other chat was answered while the flood was still being answered (${answered} of 500 done)`);
  });
});

void describe('an API root without long polling', () => {
  void it('getUpdates answered at once with nothing: the bot polls with pauses, and still answers', async (t) => {
    const h = await BotHarness.start({ users: 0, env: { NOTIFY_POLL_TIMEOUT: '30' }, start: false });
    t.after(() => h.cleanup());
    // From the first poll on: a poll already held open would hide the fault for 30 s.
    h.fake.setFault({ kind: 'empty', methods: ['getUpdates'] });
    await h.startBot();
    await h.waitForLog((l) => String(l.msg).startsWith('getUpdates answered at once with nothing'), 30_000);
    const from = h.fake.stats.requests.getUpdates ?? 0;
    const watched = Date.now();
    // Telegram's side sends an update only after the watch: the bot has polled throughout.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const polls = (h.fake.stats.requests.getUpdates ?? 0) - from;
    const watchedMs = Date.now() - watched;
    // Each empty answer is followed by a pause of at least 500 ms (growing to 2 s); a loop
    // would poll hundreds of times a second.
    assert.ok(polls <= Math.floor(watchedMs / 500) + 1, `${polls} getUpdates in ${watchedMs} ms`);
    assert.ok(polls >= 1, 'the bot goes on polling');
    h.fake.setFault(null);
    h.fake.sendUserMessage(930_001, '/start');
    await h.waitUntil(() => h.fake.sentMessages(930_001).length > 0, 30_000, () => 'no answer to /start after the proxy recovered');
  });
});

void describe('a damaged telegram_users.json', () => {
  void it('sends are refused with a clear 503, /health is degraded, the log has an error and a chat is told the bot cannot serve it', async (t) => {
    const h = await BotHarness.start({ users: 1 });
    t.after(() => h.cleanup());
    const u = h.users[0]!;
    const path = join(h.dataDir, 'telegram_users.json');
    const good = readFileSync(path, 'utf8');
    writeFileSync(path, '{"u1": {"chat_id": 100001, "linked_at": ');
    const res = await h.client.send({ user: u.name, message: 'hello' });
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.match(String((res.body as { error?: string }).error), /telegram_users\.json is unreadable.*nothing was accepted/);
    const health = await h.health();
    const body = health.body as { status?: string; problems?: string[] };
    assert.equal(body.status, 'degraded');
    assert.ok(body.problems?.some((p) => /telegram_users\.json is unreadable/.test(p)), JSON.stringify(body.problems));
    h.fake.sendUserMessage(u.chatId, '/status');
    const [reply] = await h.fake.waitForMessages(u.chatId, 1, 30_000);
    assert.equal(textOf(reply!), CANNOT_SERVE_REPLY);
    await h.waitForLog((l) => l.level === 50 && /data file the bot needs is unreadable/.test(String(l.msg)), 60_000);
    assert.equal(readFileSync(path, 'utf8'), '{"u1": {"chat_id": 100001, "linked_at": ', 'the damaged file is left for the operator');
    writeFileSync(path, good);
    assert.equal(((await h.health()).body as { status?: string }).status, 'ok', 'repaired: healthy again');
    assert.equal((await h.client.send({ user: u.name, message: 'after the repair' }, 'respond-async')).status, 202);
  });
});

void describe('start-up housekeeping', () => {
  void it('temporary files left by killed writers are removed at start; a live writer\'s are kept', async (t) => {
    const h = await BotHarness.start({ users: 1, start: false });
    t.after(() => h.cleanup());
    const dead = join(h.dataDir, '.telegram_users.json.999999999.0a1b2c3d.tmp');
    const deadQueue = join(h.dataDir, 'outbox');
    const live = join(h.dataDir, `.pending_codes.json.${process.pid}.deadbeef.tmp`);
    writeFileSync(dead, '{"half": ');
    writeFileSync(live, '{"being": "written"}');
    rmSync(deadQueue, { recursive: true, force: true });
    await h.startBot();
    const line = await h.waitForLog((l) => l.msg === 'removed temporary files left by interrupted writes', 60_000);
    assert.deepEqual(line.files, [dead]);
    assert.throws(() => readFileSync(dead), /ENOENT/, 'the orphan is gone');
    assert.equal(readFileSync(live, 'utf8'), '{"being": "written"}', 'the file of a live writer stays');
  });
});

void describe("Telegram's rarer answers", () => {
  void it('a message Telegram keeps refusing (500) is dead-lettered after NOTIFY_STUCK_MESSAGE with a notice; the chat\'s later messages go out', async (t) => {
    const h = await BotHarness.start({ users: 1, env: { NOTIFY_STUCK_MESSAGE: '2s' } });
    t.after(() => h.cleanup());
    const u = h.users[0]!;
    h.fake.refuseMessages({ textIncludes: 'poison', error_code: 500, description: 'Internal Server Error' });
    for (const text of ['Disk report\nwith a poison line', 'after one', 'after two']) {
      const res = await h.client.send({ user: u.name, message: text }, 'respond-async');
      assert.equal(res.status, 202, JSON.stringify(res.body));
    }
    await h.waitUntil(
      () => ['after one', 'after two'].every((x) => h.fake.sentMessages(u.chatId).some((m) => textOf(m).includes(x))),
      60_000,
      () => `the later messages are still held: ${JSON.stringify(h.fake.sentMessages(u.chatId).map(textOf))}`,
    );
    const notice = await h.waitUntil(() => h.fake.sentMessages(u.chatId).find((m) => /could not be delivered: "Disk report"/.test(textOf(m))), 60_000, () => 'no notice about the stuck message');
    assert.match(textOf(notice), /kept refusing it/);
    await h.waitUntil(() => h.deadIds().length === 1 || undefined, 30_000, () => `dead letters: ${h.deadIds().join(', ')}`);
    const dead = h.deadIds()[0]!;
    assert.ok(textOf(notice).includes(dead), 'the notice names the dead letter');
    const order = h.fake.sentMessages(u.chatId).map(textOf);
    assert.ok(order.findIndex((x) => x.includes('after one')) < order.findIndex((x) => x.includes('after two')), `later messages keep their order: ${JSON.stringify(order)}`);
  });

  void it('an unknown 400 for one message: dead-lettered at once with a notice, the rest go on', async (t) => {
    const h = await BotHarness.start({ users: 1 });
    t.after(() => h.cleanup());
    const u = h.users[0]!;
    h.fake.refuseMessages({ textIncludes: 'oddity', error_code: 400, description: 'Bad Request: MESSAGE_SOMETHING_NEW' });
    await h.client.send({ user: u.name, message: 'Odd report\nwith an oddity' }, 'respond-async');
    await h.client.send({ user: u.name, message: 'plain one' }, 'respond-async');
    await h.waitUntil(() => h.fake.sentMessages(u.chatId).length >= 2, 30_000, () => `got ${JSON.stringify(h.fake.sentMessages(u.chatId).map(textOf))}`);
    const texts = h.fake.sentMessages(u.chatId).map(textOf);
    assert.ok(texts.some((x) => x.includes('plain one')), JSON.stringify(texts));
    assert.ok(texts.some((x) => /could not be delivered: "Odd report"\. Telegram rejected it \(400: Bad Request: MESSAGE_SOMETHING_NEW\)/.test(x)), JSON.stringify(texts));
  });

  void it('a photo Telegram refuses for a reason of its own still delivers its text', async (t) => {
    const h = await BotHarness.start({ users: 1 });
    t.after(() => h.cleanup());
    const u = h.users[0]!;
    h.fake.refuseMessages({ textIncludes: 'chart', methods: ['sendPhoto'], error_code: 400, description: 'Bad Request: MEDIA_NEW_REASON' });
    const res = await h.client.sendPhoto({ user: u.name, caption: 'the weekly chart' }, { bytes: pngBytes(4, 4), filename: 'c.png', contentType: 'image/png' }, 'respond-async');
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const [m] = await h.fake.waitForMessages(u.chatId, 1, 30_000);
    assert.equal(m!.kind, 'text');
    assert.match(textOf(m!), /the weekly chart\n\[image not delivered: 400: Bad Request: MEDIA_NEW_REASON\]/);
    assert.deepEqual(h.deadIds(), []);
  });

  void it('a team chat upgraded to a supergroup: the link follows and the messages queued meanwhile arrive there, in order', async (t) => {
    const h = await BotHarness.start({ users: 1 });
    t.after(() => h.cleanup());
    const owner = h.users[0]!;
    const group = -4_000_001;
    const supergroup = -1_000_000_4001;
    h.fake.createGroup(group, 'Ops', [owner.chatId]);
    h.fake.sendGroupMessage(group, owner.chatId, '/start');
    const [reply] = await h.fake.waitForMessages(group, 1, 60_000);
    const code = /\b(\d{6})\b/.exec(textOf(reply!))?.[1];
    assert.ok(code, textOf(reply!));
    const teams = new TeamChatStore(h.dataDir);
    await teams.linkWithCode(owner.name, code, 'ops', h.links);
    const before = h.fake.sentMessages(group).length;
    // Queued for the group's old id while Telegram is away; the group is upgraded meanwhile.
    h.fake.setFault({ kind: 'outage', methods: ['sendMessage'] });
    const texts = ['first after the upgrade', 'second after the upgrade', 'third after the upgrade', 'fourth after the upgrade', 'fifth after the upgrade'];
    for (const text of texts) {
      const res = await h.client.send({ user: owner.name, message: text, to: ['ops'] }, 'respond-async');
      assert.equal(res.status, 202, JSON.stringify(res.body));
    }
    await h.waitUntil(() => (h.fake.stats.requests.sendMessage ?? 0) > before, 30_000, () => 'the bot did not try to deliver while Telegram was away');
    assert.equal(h.queuedIds().length, texts.length, `every message is queued: ${JSON.stringify(h.queuedRecords())}`);
    h.fake.upgradeToSupergroup(group, supergroup);
    h.fake.setFault(null);
    const got = await h.fake.waitForMessages(supergroup, texts.length, 60_000);
    assert.deepEqual(
      got.map(textOf).map((x) => texts.find((y) => x.includes(y)) ?? x),
      texts,
      'the queued messages arrive at the supergroup, each once, in the order they were sent',
    );
    assert.equal(h.fake.sentMessages(group).length, before, 'nothing more reached the old group id');
    assert.equal((await teams.get('ops'))?.chat_id, supergroup, 'the team chat link now names the supergroup');
    assert.deepEqual(h.deadIds(), []);
    // New sends go straight to the supergroup, after the others.
    await h.client.send({ user: owner.name, message: 'sixth', to: ['ops'] }, 'respond-async');
    const all = await h.fake.waitForMessages(supergroup, texts.length + 1, 30_000);
    assert.match(textOf(all[texts.length]!), /sixth/);
    await h.waitUntil(() => h.queuedIds().length === 0, 30_000, () => `records are left in the queue: ${JSON.stringify(h.queuedRecords())}`);
  });
});
