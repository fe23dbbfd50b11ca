/**
 * The send API's promises, checked on the real bot process: a 2xx answer means the
 * notification is on disk in the outbox (or already delivered); `Prefer: respond-async`
 * and `Prefer: wait=N` shape how long it waits; retries that run out end in the dead-letter
 * directory an operator lists and re-queues with one command; a chat that blocked the bot is
 * not retried and its link is marked; bad input is refused with 400/413/503 and leaves the
 * bot up and its queue intact.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { UnixResponse } from '../src/shared/sendClient.js';
import { BotHarness, pngBytes, runConcurrently, textOf } from './support/botHarness.js';

interface Accepted {
  ok: boolean;
  id: string;
  queued?: boolean;
  telegram: string;
}

function bodyOf(res: UnixResponse): Accepted {
  return res.body as Accepted;
}

function errorOf(res: UnixResponse): string {
  const b = res.body as { error?: unknown };
  assert.equal(typeof b.error, 'string', `an error body is {"error": "..."}; got ${JSON.stringify(res.body)}`);
  return b.error as string;
}

/** Waits until nothing is queued, so one test's leftovers do not sit before the next one's messages. */
async function drained(h: BotHarness): Promise<void> {
  await h.waitUntil(() => h.queuedIds().length === 0, 60_000, () => `the queue still holds ${h.queuedIds().length} record(s)`);
}

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await f();
  return { value, ms: performance.now() - t0 };
}

void describe('durability and waiting', () => {
  let h: BotHarness;
  before(async () => {
    h = await BotHarness.start({ users: 20, env: { NOTIFY_SEND_WAIT: '2s' } });
  });
  after(() => h.cleanup());

  void it('a 2xx answer means the notification is in the outbox on disk or already delivered', async () => {
    const items = Array.from({ length: 100 }, (_, i) => ({ user: h.users[i % 20]!, text: `durable ${i}` }));
    const violations: string[] = [];
    await runConcurrently(items, 25, async ({ user, text }, i) => {
      const res = await h.client.send({ user: user.name, message: text }, i % 2 === 0 ? 'respond-async' : undefined);
      assert.ok(res.status === 200 || res.status === 202, `accepted: ${res.status} ${JSON.stringify(res.body)}`);
      const { id } = bodyOf(res);
      // Checked the moment the answer arrives: the file first, then (it may have just left) Telegram.
      const onDisk = h.queuedIds().includes(id);
      const delivered = h.fake.sentMessages(user.chatId).some((m) => textOf(m) === text);
      if (!onDisk && !delivered) violations.push(`${id} (${text}): answered ${res.status} but neither queued nor delivered`);
      if (res.status === 200 && !delivered) violations.push(`${id}: answered 200 before Telegram had it`);
    });
    assert.deepEqual(violations, []);
    await drained(h);
  });

  void it('while Telegram is down, an accepted notification is a complete record in the outbox on disk', async () => {
    h.fake.setFault({ kind: 'outage' });
    try {
      const res = await h.client.send({ user: h.users[0]!.name, title: 'disk check', message: 'queued while down', script: 'check.py' }, 'respond-async');
      assert.equal(res.status, 202);
      const record = h.queuedRecords().find((r) => r.id === bodyOf(res).id);
      assert.ok(record, 'the record is in the outbox');
      assert.equal(record.user, h.users[0]!.name);
      assert.equal(record.chat_id, h.users[0]!.chatId);
      assert.equal(record.script, 'check.py');
      assert.match(JSON.stringify(record.parts), /queued while down/);
    } finally {
      h.fake.setFault(null);
    }
    await drained(h);
  });

  void it('Prefer: respond-async answers 202 {ok, queued, id} at once, even while Telegram is down', async () => {
    h.fake.setFault({ kind: 'outage' });
    try {
      // Asked to wait 30 s as well: only respond-async answers before those 30 s are over (a
      // bound far from both, so a loaded machine's slow answer is not mistaken for a wait).
      const body = JSON.stringify({ user: h.users[1]!.name, message: 'async' });
      const { value: res, ms } = await timed(() => h.raw('POST', '/send', body, { 'content-type': 'application/json', prefer: 'respond-async, wait=30' }));
      assert.equal(res.status, 202);
      assert.equal(bodyOf(res).ok, true);
      assert.equal(bodyOf(res).queued, true);
      assert.equal(typeof bodyOf(res).id, 'string');
      assert.ok(ms < 15_000, `answered in ${ms.toFixed(0)} ms, without waiting for Telegram`);
    } finally {
      h.fake.setFault(null);
    }
    await drained(h);
  });

  void it('Prefer: wait=N waits up to N seconds for delivery, then answers 202', async () => {
    h.fake.setFault({ kind: 'outage' });
    try {
      const { value: res, ms } = await timed(() => h.client.send({ user: h.users[2]!.name, message: 'wait 2' }, { waitSeconds: 2 }));
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(bodyOf(res).queued, true);
      // The upper bound only tells the 2 s wait from the 30 s NOTIFY_SEND_WAIT_MAX; a loaded machine adds seconds.
      assert.ok(ms >= 1900 && ms < 20_000, `waited ${ms.toFixed(0)} ms for a 2 s wait`);
      const { value: dflt, ms: dfltMs } = await timed(() => h.client.send({ user: h.users[2]!.name, message: 'default wait' }));
      assert.equal(dflt.status, 202);
      assert.ok(dfltMs >= 1900 && dfltMs < 20_000, `without Prefer it waits NOTIFY_SEND_WAIT (2 s): waited ${dfltMs.toFixed(0)} ms`);
    } finally {
      h.fake.setFault(null);
    }
    await h.fake.waitForMessages(h.users[2]!.chatId, 2, 60_000);
    await drained(h);
  });

  void it('answers 200 {telegram: "delivered"} when delivered within the wait', async () => {
    const chat = h.users[3]!;
    // A wait far longer than a delivery takes, even on a loaded machine.
    const res = await h.client.send({ user: chat.name, message: 'quick' }, { waitSeconds: 25 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(bodyOf(res).telegram, 'delivered');
    assert.ok(h.fake.sentMessages(chat.chatId).some((m) => textOf(m) === 'quick'), 'Telegram has it when the answer comes');
    h.fake.setFault({ kind: 'latency', ms: 1500 });
    try {
      const slow = await h.client.send({ user: chat.name, message: 'slow but within the wait' }, { waitSeconds: 25 });
      assert.equal(slow.status, 200, 'Prefer: wait=25 outlasts 1.5 s of latency');
      assert.equal(bodyOf(slow).telegram, 'delivered');
    } finally {
      h.fake.setFault(null);
    }
  });
});

void describe('dead letters and refusals', () => {
  let h: BotHarness;
  before(async () => {
    h = await BotHarness.start({ users: 3, env: { NOTIFY_RETRY_MAX_AGE: '5s', NOTIFY_RETRY_BASE: '100ms', NOTIFY_RETRY_MAX_DELAY: '500ms' } });
  });
  after(() => h.cleanup());

  void it('retries exhausted: dead-lettered, listed by `notify-bot queue list`, delivered after `queue requeue <id>`', async (t) => {
    const user = h.users[0]!;
    h.fake.setFault({ kind: 'status', status: 502 });
    t.after(() => h.fake.setFault(null));
    const res = await h.client.send({ user: user.name, title: 'Disk full', message: 'the disk is full', script: 'disk.py' }, 'respond-async');
    assert.equal(res.status, 202);
    const { id } = bodyOf(res);
    await h.waitUntil(() => h.deadIds().includes(id), 120_000, () => `${id} was not dead-lettered; queue: ${h.queuedIds().join(', ')}`);
    await h.waitUntil(() => h.queuedIds().length === 0, 60_000, () => `a dead letter leaves the queue: ${h.queuedIds().join(', ')}`);
    const gaveUp = await h.waitForLog((l) => l.msg === 'delivery retries exhausted; moved to the dead-letter queue', 60_000);
    assert.equal(gaveUp.id, id);
    assert.ok((gaveUp.attempts as number) > 1, 'it was retried before giving up');
    assert.ok(h.outcomes().some((o) => o.id === id && o.status === 'given_up'), 'the outcome log says given_up');

    const list = await h.cli(['queue', 'list']);
    assert.equal(list.status, 0, list.stderr);
    assert.ok(list.stdout.includes(id), `queue list shows the id:\n${list.stdout}`);
    assert.match(list.stdout, new RegExp(`user=${user.name}\\b`));
    assert.match(list.stdout, /script=disk\.py/);
    assert.match(list.stdout, /reason: gave up after \d+ attempts: /);
    assert.doesNotMatch(list.stdout, new RegExp(h.fake.token.split(':')[1]!), 'the bot token never appears in a dead letter');

    h.fake.setFault(null);
    const requeue = await h.cli(['queue', 'requeue', id]);
    assert.equal(requeue.status, 0, requeue.stderr);
    const msgs = await h.fake.waitForMessages(user.chatId, 1, 60_000);
    assert.equal(textOf(msgs[0]!), 'Disk full\nthe disk is full');
    await h.waitUntil(() => h.queuedIds().length === 0, 60_000, () => 'the re-queued record leaves the queue once delivered');
    assert.deepEqual(h.deadIds(), []);
    const listed = await h.cli(['queue', 'list']);
    assert.match(listed.stdout, /empty/);
    const unknown = await h.cli(['queue', 'requeue', 'no-such-id']);
    assert.notEqual(unknown.status, 0, 're-queueing an unknown id fails');
    assert.match(unknown.stderr, /No dead letter with id no-such-id/);
  });

  void it('a chat that blocked the bot is not retried, and its link is marked delivery_refused', async () => {
    const user = h.users[1]!;
    h.fake.blockChat(user.chatId);
    const res = await h.client.send({ user: user.name, message: 'you blocked me' }, { waitSeconds: 25 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(bodyOf(res).telegram, 'refused');
    await h.waitUntil(
      () => {
        const users = JSON.parse(readFileSync(join(h.dataDir, 'telegram_users.json'), 'utf8')) as Record<string, { delivery_refused?: { reason: string; at: string } }>;
        return users[user.name]?.delivery_refused;
      },
      60_000,
      () => 'telegram_users.json never got delivery_refused',
    ).then((mark) => assert.match(mark.reason, /blocked/));
    assert.deepEqual(h.queuedIds(), []);
    assert.deepEqual(h.deadIds(), [], 'a refusal is final, not a dead letter to re-queue');
    assert.ok(h.outcomes().some((o) => o.id === bodyOf(res).id && o.status === 'refused'));
    const logged = await h.waitForLog((l) => l.msg === 'Telegram refused delivery for good; not retrying', 30_000);
    assert.equal(logged.user, user.name);

    // Unblocked, the next delivery clears the mark (the rule team chats follow too).
    h.fake.unblockChat(user.chatId);
    const again = await h.client.send({ user: user.name, message: 'welcome back' }, { waitSeconds: 10 });
    assert.equal(bodyOf(again).telegram, 'delivered', JSON.stringify(again.body));
    // A chat's messages go in order: had the refused one been kept for a retry, it would
    // have been sent (or refused again) before this one.
    assert.deepEqual(h.fake.sentMessages(user.chatId).map(textOf), ['welcome back'], 'the refused message was never sent again');
    const attempts = h.fake.errors.filter((e) => e.chat_id === user.chatId);
    assert.deepEqual(attempts.map((e) => e.error_code), [403], 'one request, no retries');
    await h.waitUntil(
      () => {
        const users = JSON.parse(readFileSync(join(h.dataDir, 'telegram_users.json'), 'utf8')) as Record<string, { delivery_refused?: unknown }>;
        return users[user.name]?.delivery_refused === undefined;
      },
      60_000,
      () => 'the refusal mark stayed after a delivery to the unblocked chat',
    );
  });
});

void describe('bad input', () => {
  let h: BotHarness;
  before(async () => {
    h = await BotHarness.start({ users: 2, env: { NOTIFY_MAX_BODY: '4096', NOTIFY_QUEUE_MAX: '5' } });
  });
  after(() => h.cleanup());

  const json = { 'content-type': 'application/json' };

  void it('refuses malformed JSON, wrong types, unknown fields, text with message, and empty bodies with 400', async () => {
    const user = h.users[0]!.name;
    const cases: Array<[string, string, RegExp]> = [
      ['malformed JSON', '{"message": "hi",', /JSON/],
      ['not an object', '["message"]', /./],
      ['wrong type', JSON.stringify({ user, message: 42 }), /message/],
      ['wrong type of user', JSON.stringify({ user: 7, message: 'x' }), /user/],
      ['unknown field', JSON.stringify({ user, message: 'x', colour: 'red' }), /unknown field 'colour'/],
      ['both text and message', JSON.stringify({ user, message: 'x', text: 'y' }), /either/],
      ['nothing to send', JSON.stringify({ user }), /nothing to send/],
      ['bad parse_mode', JSON.stringify({ user, message: 'x', parse_mode: 'RTF' }), /parse_mode/],
      ['empty body', '', /empty/],
    ];
    for (const [what, body, pattern] of cases) {
      const res = await h.raw('POST', '/send', body, json);
      assert.equal(res.status, 400, `${what}: expected 400, got ${res.status} ${JSON.stringify(res.body)}`);
      assert.match(errorOf(res), pattern, what);
    }
    const form = await h.raw('POST', '/send', 'message=hi', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(form.status, 400, 'an unsupported content type is a 400');
    errorOf(form);
  });

  void it('refuses invalid multipart and non-image uploads on /send_photo with 400', async () => {
    const broken = await h.raw('POST', '/send_photo', '--xyz\r\nContent-Disposition: form-data; name="message"\r\n\r\nhi\r\n--xy', {
      'content-type': 'multipart/form-data; boundary=xyz',
    });
    assert.equal(broken.status, 400, JSON.stringify(broken.body));
    errorOf(broken);
    const noBoundary = await h.raw('POST', '/send_photo', 'hello', { 'content-type': 'multipart/form-data' });
    assert.equal(noBoundary.status, 400, JSON.stringify(noBoundary.body));
    const text = await h.client.sendPhoto({ user: h.users[0]!.name, message: 'x' }, { bytes: Buffer.from('not an image'), filename: 'a.png', contentType: 'image/png' });
    assert.equal(text.status, 400);
    assert.match(errorOf(text), /not a PNG or JPEG/);
    const noPhoto = await h.raw('POST', '/send_photo', JSON.stringify({ user: h.users[0]!.name, message: 'x' }), json);
    assert.equal(noPhoto.status, 400);
    assert.match(errorOf(noPhoto), /no photo/);
    const ok = await h.client.sendPhoto({ user: h.users[0]!.name, title: 'chart', message: 'ok' }, { bytes: pngBytes(), filename: 'c.png', contentType: 'image/png' }, 'respond-async');
    assert.equal(ok.status, 202, 'a real PNG upload is accepted');
  });

  void it('answers 413 to a body over NOTIFY_MAX_BODY', async () => {
    const res = await h.raw('POST', '/send', JSON.stringify({ user: h.users[0]!.name, message: 'x'.repeat(10_000) }), json);
    assert.equal(res.status, 413);
    assert.match(errorOf(res), /larger than 4096 bytes/);
  });

  void it('survives garbage on the socket', async () => {
    await new Promise<void>((resolve) => {
      const s = net.connect(h.socketPath, () => {
        s.write('\x00\xffNOT HTTP AT ALL\r\n\r\n\r\n');
        s.end();
      });
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.resume();
    });
    assert.equal((await h.health()).status, 200);
  });

  void it('a full queue answers 503 with Retry-After; the accepted ones stay queued and are delivered', async () => {
    h.fake.setFault({ kind: 'outage' });
    const user = h.users[1]!;
    // The photo accepted above may still be queued; fill up to NOTIFY_QUEUE_MAX (5) with concurrent requests.
    const results = await runConcurrently(
      Array.from({ length: 12 }, (_, i) => i),
      12,
      (i) => h.client.send({ user: user.name, message: `fill ${i}` }, 'respond-async'),
    );
    const accepted = results.filter((r) => r.status === 202);
    const full = results.filter((r) => r.status === 503);
    assert.equal(accepted.length + full.length, 12, `only 202 and 503: ${results.map((r) => r.status).join(',')}`);
    assert.ok(full.length > 0, 'the queue bound was hit');
    for (const r of full) {
      assert.match(String(r.headers['retry-after']), /^\d+$/, 'a 503 says when to retry');
      assert.match(errorOf(r), /queue is full/);
    }
    assert.ok(h.queuedIds().length <= 5, `the bound holds under concurrent requests: ${h.queuedIds().length} queued for a bound of 5`);
    const acceptedTexts = accepted.map((r) => bodyOf(r).id);
    const queued = h.queuedIds();
    for (const id of acceptedTexts) assert.ok(queued.includes(id), `${id} is queued`);
    assert.equal((await h.health()).status, 200, 'the bot is still up');
    h.fake.setFault(null);
    await h.fake.waitForMessages(user.chatId, accepted.length, 60_000);
    await h.waitUntil(() => h.queuedIds().length === 0, 60_000, () => 'the queue drains');
    const after = await h.client.send({ user: user.name, message: 'room again' }, { waitSeconds: 5 });
    assert.equal(after.status, 200, 'once drained, sends are accepted again');
  });

  void it('after all that, the bot is still up and its log reports no damaged queue record', async () => {
    assert.ok(h.proc, 'the bot process is running');
    assert.equal((await h.health()).status, 200);
    assert.deepEqual(
      h.logs.filter((l) => (l.level ?? 0) >= 50),
      [],
      'no error lines (an unreadable record, a failed request) in the log',
    );
  });
});
