// The fake Telegram Bot API server keeps the rules of the real one that our bot depends on.
// Most checks drive it with grammY's own client, as the bot will.

import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { crc32, deflateSync } from 'node:zlib';
import { Api, Bot, GrammyError, HttpError, InputFile } from 'grammy';
import {
  manualClock,
  parseMarkup,
  startFakeTelegram,
  type FakeTelegram,
  type FakeTelegramOptions,
} from '../src/fake-telegram/fakeTelegram.js';

// ---- helpers ------------------------------------------------------------------------------

/** A real 2x1 RGB PNG. */
function pngBytes(): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typed));
    return Buffer.concat([len, typed, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(2, 0);
  ihdr.writeUInt32BE(1, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const raw = Buffer.from([0, 255, 0, 0, 0, 0, 255]); // filter byte + two pixels
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The start of a baseline JPEG (SOI, JFIF, a 3x2 frame header, EOI): enough for Telegram's sniffing here. */
function jpegBytes(): Buffer {
  return Buffer.from([
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
    0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x02, 0x00, 0x03, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01,
    0xff, 0xd9,
  ]);
}

async function rejectsWith(promise: Promise<unknown>, code: number, description: string | RegExp): Promise<GrammyError> {
  let caught: unknown;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof GrammyError, `expected Telegram to refuse with ${code}, got ${String(caught)}`);
  assert.equal(caught.error_code, code, caught.description);
  if (typeof description === 'string') assert.equal(caught.description, description);
  else assert.match(caught.description, description);
  return caught;
}

async function rejectsWithNetworkError(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof HttpError, `expected a network failure (HttpError), got ${String(e)}`);
    return true;
  });
}

/** A fake and a grammY Api on it, fresh for each test of the suite. */
/** Waits (bounded, for a hang) until a long poll has reached the fake and waits there. */
async function pollingNow(fake: FakeTelegram): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!fake.polling) {
    if (Date.now() > deadline) throw new Error('no long poll reached the fake within 60 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function useFake(opts: FakeTelegramOptions = {}): { fake: () => FakeTelegram; api: () => Api } {
  let fake: FakeTelegram | undefined;
  let api: Api | undefined;
  beforeEach(async () => {
    fake = await startFakeTelegram(opts);
    api = new Api(fake.token, { apiRoot: fake.apiRoot });
  });
  afterEach(async () => {
    await fake?.close();
  });
  return {
    fake: () => fake as FakeTelegram,
    api: () => api as Api,
  };
}

const CHAT = 4242;

// ---- tests ----------------------------------------------------------------------------------

void describe('fake Telegram: requests and identity', () => {
  const t = useFake();

  void it('answers getMe for its token and 401 for any other', async () => {
    const me = await t.api().getMe();
    assert.equal(me.is_bot, true);
    assert.equal(me.username, 'notify_test_bot');
    const stranger = new Api('1:wrong', { apiRoot: t.fake().apiRoot });
    await rejectsWith(stranger.getMe(), 401, 'Unauthorized');
  });

  void it('answers 404 "method not found" for unknown methods', async () => {
    const res = await fetch(`${t.fake().apiRoot}/bot${t.fake().token}/sendTelepathy`, { method: 'POST' });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { ok: false, error_code: 404, description: 'Not Found: method not found' });
  });

  void it('accepts urlencoded forms and query strings as well as JSON', async () => {
    t.fake().registerChat(CHAT);
    const form = await fetch(`${t.fake().apiRoot}/bot${t.fake().token}/sendMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ chat_id: String(CHAT), text: '*Form*', parse_mode: 'Markdown' }).toString(),
    });
    assert.equal(form.status, 200);
    const query = await fetch(`${t.fake().apiRoot}/bot${t.fake().token}/sendMessage?chat_id=${CHAT}&text=query`);
    assert.equal(query.status, 200);
    const [first, second] = t.fake().sentMessages(CHAT);
    assert.equal(first?.text, 'Form');
    assert.deepEqual(first?.entities, [{ type: 'bold', offset: 0, length: 4 }]);
    assert.equal(second?.text, 'query');
  });
});

void describe('fake Telegram: getUpdates', () => {
  const t = useFake();

  void it('returns queued updates until they are confirmed with a higher offset', async () => {
    t.fake().sendUserMessage(CHAT, '/start');
    t.fake().sendUserMessage(CHAT, 'hello');
    const first = await t.api().getUpdates();
    assert.equal(first.length, 2);
    const again = await t.api().getUpdates();
    assert.deepEqual(again.map((u) => u.update_id), first.map((u) => u.update_id), 'unconfirmed updates come back');
    const lastId = first[1]?.update_id ?? 0;
    assert.deepEqual(await t.api().getUpdates({ offset: lastId }), [first[1]], 'offset confirms only earlier ones');
    assert.deepEqual(await t.api().getUpdates({ offset: lastId + 1 }), []);
    assert.equal(t.fake().pendingUpdates, 0);
  });

  void it('builds a proper private message with a bot_command entity', async () => {
    t.fake().registerChat(CHAT, { username: 'ana', first_name: 'Ana' });
    t.fake().sendUserMessage(CHAT, '/start abc');
    const [update] = await t.api().getUpdates();
    const msg = update?.message;
    assert.ok(msg);
    assert.equal(msg.chat.id, CHAT);
    assert.equal(msg.chat.type, 'private');
    assert.equal(msg.from?.username, 'ana');
    assert.equal(msg.text, '/start abc');
    assert.deepEqual(msg.entities, [{ type: 'bot_command', offset: 0, length: 6 }]);
  });

  void it('honours limit', async () => {
    for (let i = 0; i < 5; i++) t.fake().sendUserMessage(CHAT, `m${i}`);
    assert.equal((await t.api().getUpdates({ limit: 2 })).length, 2);
  });

  void it('long polling answers as soon as an update arrives', async () => {
    const started = Date.now();
    const poll = t.api().getUpdates({ timeout: 60 });
    setTimeout(() => t.fake().sendUserMessage(CHAT, 'ping'), 150);
    const updates = await poll;
    const elapsed = Date.now() - started;
    assert.equal(updates[0]?.message?.text, 'ping');
    // Far below the poll's 60 s: answered by the update, not the timeout (a loaded machine adds seconds).
    assert.ok(elapsed < 30_000, `the poll took ${elapsed} ms`);
  });

  void it('long polling returns an empty list after the timeout', async () => {
    const started = Date.now();
    assert.deepEqual(await t.api().getUpdates({ timeout: 1 }), []);
    assert.ok(Date.now() - started >= 900);
  });

  void it('a second getUpdates ends the first with 409, as Telegram does', async () => {
    const first = t.api().getUpdates({ timeout: 60 });
    await pollingNow(t.fake());
    const second = t.api().getUpdates({ timeout: 0 });
    await rejectsWith(first, 409, /^Conflict: terminated by other getUpdates request/);
    assert.deepEqual(await second, []);
  });

  void it('close() answers a pending long poll at once', async () => {
    const started = Date.now();
    const poll = t.api().getUpdates({ timeout: 60 });
    await pollingNow(t.fake());
    await t.fake().close();
    assert.deepEqual(await poll, []);
    // Far below the poll's 60 s.
    assert.ok(Date.now() - started < 30_000, `answered after ${Date.now() - started} ms`);
  });

  void it('serves a real grammY bot that starts, replies, and stops promptly', async () => {
    const fake = t.fake();
    const bot = new Bot(fake.token, { client: { apiRoot: fake.apiRoot } });
    bot.command('start', (ctx) => ctx.reply('*Welcome*', { parse_mode: 'Markdown' }));
    const running = bot.start({ timeout: 30 });
    fake.sendUserMessage(CHAT, '/start');
    const [reply] = await fake.waitForMessages(CHAT, 1, 30_000);
    assert.equal(reply?.text, 'Welcome');
    assert.deepEqual(reply?.entities, [{ type: 'bold', offset: 0, length: 7 }]);
    const stopping = Date.now();
    await bot.stop();
    await running;
    // grammY's poll asked for 30 s: stopping must not wait for it.
    assert.ok(Date.now() - stopping < 20_000, `bot.stop() did not hang (${Date.now() - stopping} ms)`);
    assert.equal(fake.pendingUpdates, 0, 'the handled update was confirmed');
  });
});

void describe('fake Telegram: text and formatting', () => {
  const t = useFake();
  beforeEach(() => t.fake().registerChat(CHAT));

  void it('parses legacy Markdown into plain text and a bold entity', async () => {
    const result = await t.api().sendMessage(CHAT, '*Disk almost full*\nOnly 3% left on /data', { parse_mode: 'Markdown' });
    assert.equal(result.text, 'Disk almost full\nOnly 3% left on /data');
    const [stored] = t.fake().sentMessages(CHAT);
    assert.equal(stored?.text, 'Disk almost full\nOnly 3% left on /data');
    assert.deepEqual(stored?.entities[0], { type: 'bold', offset: 0, length: 16 });
    assert.equal(stored?.parse_mode, 'Markdown');
  });

  void it('refuses unbalanced legacy Markdown with the byte offset', async () => {
    await rejectsWith(
      t.api().sendMessage(CHAT, '*Report* for load_data.py', { parse_mode: 'Markdown' }),
      400,
      "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 17",
    );
    // offsets count UTF-8 bytes
    await rejectsWith(
      t.api().sendMessage(CHAT, 'é [x', { parse_mode: 'Markdown' }),
      400,
      "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 3",
    );
    assert.equal(t.fake().sentMessages(CHAT).length, 0);
  });

  void it('refuses unescaped MarkdownV2 reserved characters', async () => {
    await rejectsWith(
      t.api().sendMessage(CHAT, '*Version* 1.0', { parse_mode: 'MarkdownV2' }),
      400,
      "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'",
    );
    await rejectsWith(
      t.api().sendMessage(CHAT, '*bold', { parse_mode: 'MarkdownV2' }),
      400,
      "Bad Request: can't parse entities: Can't find end of Bold entity at byte offset 0",
    );
  });

  void it('parses MarkdownV2 and HTML entities', async () => {
    await t.api().sendMessage(CHAT, '*b* _i_ __u__ ~s~ `c` [l](https://example.com/x) ```py\nprint\\(1\\)```', { parse_mode: 'MarkdownV2' });
    await t.api().sendMessage(CHAT, '<b>b</b> <i>i</i> <u>u</u> <s>s</s> <code>c</code> <a href="https://example.com">l</a> <pre><code class="language-py">x &lt; 1</code></pre>', { parse_mode: 'HTML' });
    const [v2, html] = t.fake().sentMessages(CHAT);
    assert.equal(v2?.text, 'b i u s c l print(1)');
    assert.deepEqual(v2?.entities, [
      { type: 'bold', offset: 0, length: 1 },
      { type: 'italic', offset: 2, length: 1 },
      { type: 'underline', offset: 4, length: 1 },
      { type: 'strikethrough', offset: 6, length: 1 },
      { type: 'code', offset: 8, length: 1 },
      { type: 'text_link', offset: 10, length: 1, url: 'https://example.com/x' },
      { type: 'pre', offset: 12, length: 8, language: 'py' },
    ]);
    assert.equal(html?.text, 'b i u s c l x < 1');
    assert.deepEqual(html?.entities.map((e) => e.type), ['bold', 'italic', 'underline', 'strikethrough', 'code', 'text_link', 'pre']);
    assert.equal(html?.entities[6]?.language, 'py');
  });

  void it('refuses broken HTML', async () => {
    await rejectsWith(
      t.api().sendMessage(CHAT, '<b>open', { parse_mode: 'HTML' }),
      400,
      'Bad Request: can\'t parse entities: Can\'t find end tag corresponding to start tag "b"',
    );
    await rejectsWith(
      t.api().sendMessage(CHAT, 'x <blink>y</blink>', { parse_mode: 'HTML' }),
      400,
      'Bad Request: can\'t parse entities: Unsupported start tag "blink" at byte offset 2',
    );
    await rejectsWith(
      t.api().sendMessage(CHAT, '<b>a</i>', { parse_mode: 'HTML' }),
      400,
      'Bad Request: can\'t parse entities: Unmatched end tag at byte offset 4, expected "</b>", found "</i>"',
    );
  });

  void it('refuses an unknown parse_mode', async () => {
    await rejectsWith(t.api().sendMessage(CHAT, 'x', { parse_mode: 'plain' as 'HTML' }), 400, 'Bad Request: unsupported parse_mode');
  });

  void it('keeps explicit entities when no parse_mode is given', async () => {
    await t.api().sendMessage(CHAT, 'Title body', { entities: [{ type: 'bold', offset: 0, length: 5 }] });
    assert.deepEqual(t.fake().sentMessages(CHAT)[0]?.entities, [{ type: 'bold', offset: 0, length: 5 }]);
  });

  void it('refuses empty text and text over 4096 characters after parsing', async () => {
    await rejectsWith(t.api().sendMessage(CHAT, ''), 400, 'Bad Request: message text is empty');
    await rejectsWith(t.api().sendMessage(CHAT, ' \n '), 400, 'Bad Request: message text is empty');
    await rejectsWith(t.api().sendMessage(CHAT, 'a'.repeat(4097)), 400, 'Bad Request: message is too long');
    await t.api().sendMessage(CHAT, 'a'.repeat(4096));
    // the markup does not count
    await t.api().sendMessage(CHAT, `*${'a'.repeat(4096)}*`, { parse_mode: 'Markdown' });
    assert.equal(t.fake().sentMessages(CHAT).length, 2);
  });

  void it('trims surrounding whitespace like Telegram', async () => {
    const sent = await t.api().sendMessage(CHAT, '\n  hello  \n');
    assert.equal(sent.text, 'hello');
  });

  void it('stores inline keyboards and refuses callback_data over 64 bytes', async () => {
    const reply_markup = { inline_keyboard: [[{ text: 'Run report.py', callback_data: 'run:report.py' }]] };
    const sent = await t.api().sendMessage(CHAT, 'Scripts', { reply_markup });
    assert.deepEqual(sent.reply_markup, reply_markup);
    assert.deepEqual(t.fake().sentMessages(CHAT)[0]?.reply_markup, reply_markup);
    await rejectsWith(
      t.api().sendMessage(CHAT, 'x', { reply_markup: { inline_keyboard: [[{ text: 'x', callback_data: `run:${'a'.repeat(61)}` }]] } }),
      400,
      'Bad Request: BUTTON_DATA_INVALID',
    );
  });
});

void describe('fake Telegram: markup parser matches TDLib', () => {
  void it('reports UTF-8 byte offsets and keeps UTF-16 entity offsets', () => {
    assert.throws(() => parseMarkup('🏟 🏟_abacaba', 'MarkdownV2'), { message: "Can't find end of Italic entity at byte offset 9" });
    assert.throws(() => parseMarkup('[telegram\\.org](asd\\)', 'MarkdownV2'), { message: "Can't find end of a URL at byte offset 16" });
    assert.deepEqual(parseMarkup('🏟 🏟_abac \\* asd _', 'MarkdownV2'), {
      text: '🏟 🏟abac * asd ',
      entities: [{ type: 'italic', offset: 5, length: 11 }],
    });
    assert.deepEqual(parseMarkup('[ ](telegram.org)', 'MarkdownV2').entities, [
      { type: 'text_link', offset: 0, length: 1, url: 'http://telegram.org/' },
    ]);
    assert.throws(() => parseMarkup('a << b', 'HTML'), { message: 'Unsupported start tag "<" at byte offset 2' });
    assert.deepEqual(parseMarkup('*a* _b_ `c`', 'Markdown').entities.map((e) => e.type), ['bold', 'italic', 'code']);
  });
});

void describe('fake Telegram: chats', () => {
  const t = useFake();

  void it('refuses a chat that never talked to the bot', async () => {
    await rejectsWith(t.api().sendMessage(999, 'hi'), 400, 'Bad Request: chat not found');
  });

  void it('refuses a chat that blocked the bot with 403, until it is unblocked', async () => {
    t.fake().registerChat(CHAT);
    t.fake().blockChat(CHAT);
    await rejectsWith(t.api().sendMessage(CHAT, 'hi'), 403, 'Forbidden: bot was blocked by the user');
    t.fake().unblockChat(CHAT);
    await t.api().sendMessage(CHAT, 'hi');
    assert.equal(t.fake().sentMessages(CHAT).length, 1);
  });
});

void describe('fake Telegram: flood limits', () => {
  void it('refuses the 31st message in a second across chats, and keeps refusing for retry_after', async () => {
    const clock = manualClock();
    const fake = await startFakeTelegram({ clock: clock.now });
    try {
      const api = new Api(fake.token, { apiRoot: fake.apiRoot });
      for (let chat = 1; chat <= 31; chat++) fake.registerChat(chat);
      for (let chat = 1; chat <= 30; chat++) await api.sendMessage(chat, 'x');
      const refused = await rejectsWith(api.sendMessage(31, 'x'), 429, 'Too Many Requests: retry after 1');
      assert.equal(refused.parameters.retry_after, 1);
      clock.advance(500);
      await rejectsWith(api.sendMessage(31, 'x'), 429, 'Too Many Requests: retry after 1');
      clock.advance(500);
      await api.sendMessage(31, 'x');
      assert.equal(fake.stats.tooManyRequests, 2);
    } finally {
      await fake.close();
    }
  });

  void it('gives each chat a burst of 3 refilling at one message a second', async () => {
    const clock = manualClock();
    const fake = await startFakeTelegram({ clock: clock.now });
    try {
      const api = new Api(fake.token, { apiRoot: fake.apiRoot });
      fake.registerChat(CHAT);
      for (let i = 0; i < 3; i++) await api.sendMessage(CHAT, `m${i}`);
      const refused = await rejectsWith(api.sendMessage(CHAT, 'm3'), 429, 'Too Many Requests: retry after 1');
      assert.equal(refused.parameters.retry_after, 1);
      clock.advance(1000);
      await api.sendMessage(CHAT, 'm3');
      await rejectsWith(api.sendMessage(CHAT, 'm4'), 429, /^Too Many Requests: retry after/);
      clock.advance(10_000); // the bucket holds at most 3
      for (let i = 0; i < 3; i++) await api.sendMessage(CHAT, `n${i}`);
      await rejectsWith(api.sendMessage(CHAT, 'n3'), 429, /^Too Many Requests/);
      // edits count too
      clock.advance(1000);
      const first = fake.sentMessages(CHAT)[0];
      await api.editMessageText(CHAT, first?.message_id ?? 0, 'edited');
      await rejectsWith(api.editMessageText(CHAT, first?.message_id ?? 0, 'again'), 429, /^Too Many Requests/);
    } finally {
      await fake.close();
    }
  });

  void it('limits are configurable and can be switched off', async () => {
    const clock = manualClock();
    const strict = await startFakeTelegram({ clock: clock.now, botRateLimit: { perWindow: 2, windowMs: 10_000 }, chatRateLimit: false });
    const free = await startFakeTelegram({ botRateLimit: false, chatRateLimit: false });
    try {
      const api = new Api(strict.token, { apiRoot: strict.apiRoot });
      strict.registerChat(CHAT);
      await api.sendMessage(CHAT, '1');
      clock.advance(3000);
      await api.sendMessage(CHAT, '2');
      await rejectsWith(api.sendMessage(CHAT, '3'), 429, 'Too Many Requests: retry after 7');

      const freeApi = new Api(free.token, { apiRoot: free.apiRoot });
      free.registerChat(CHAT);
      await Promise.all(Array.from({ length: 50 }, (_, i) => freeApi.sendMessage(CHAT, `m${i}`)));
      assert.equal(free.sentMessages(CHAT).length, 50);
    } finally {
      await strict.close();
      await free.close();
    }
  });
});

void describe('fake Telegram: photos', () => {
  const t = useFake();
  beforeEach(() => t.fake().registerChat(CHAT));

  void it('stores the exact bytes of a multipart upload and parses the caption', async () => {
    const png = pngBytes();
    const sent = await t.api().sendPhoto(CHAT, new InputFile(png, 'chart.png'), { caption: '*Weekly* chart', parse_mode: 'Markdown' });
    assert.equal(sent.photo?.[0]?.width, 2);
    assert.equal(sent.photo?.[0]?.height, 1);
    assert.equal(sent.caption, 'Weekly chart');
    const [stored] = t.fake().sentMessages(CHAT);
    assert.equal(stored?.kind, 'photo');
    assert.ok(stored?.photo?.equals(png), 'the stored photo is byte-identical');
    assert.deepEqual(stored?.entities, [{ type: 'bold', offset: 0, length: 6 }]);

    // a file_id from the answer can be sent again
    await t.api().sendPhoto(CHAT, sent.photo?.[0]?.file_id ?? '');
    assert.ok(t.fake().sentMessages(CHAT)[1]?.photo?.equals(png));
  });

  void it('accepts JPEG and a plain multipart photo field', async () => {
    const form = new FormData();
    form.append('chat_id', String(CHAT));
    form.append('caption', '<b>JPEG</b>');
    form.append('parse_mode', 'HTML');
    form.append('photo', new Blob([jpegBytes()], { type: 'image/jpeg' }), 'p.jpg');
    const res = await fetch(`${t.fake().apiRoot}/bot${t.fake().token}/sendPhoto`, { method: 'POST', body: form });
    const body = (await res.json()) as { ok: boolean; result?: { photo: { width: number; height: number }[] } };
    assert.equal(body.ok, true, JSON.stringify(body));
    assert.deepEqual([body.result?.photo[0]?.width, body.result?.photo[0]?.height], [3, 2]);
    assert.ok(t.fake().sentMessages(CHAT)[0]?.photo?.equals(jpegBytes()));
  });

  void it('refuses a file that is not an image, and overlong captions', async () => {
    await rejectsWith(
      t.api().sendPhoto(CHAT, new InputFile(Buffer.from('not an image at all'), 'chart.png')),
      400,
      'Bad Request: IMAGE_PROCESS_FAILED',
    );
    await rejectsWith(
      t.api().sendPhoto(CHAT, new InputFile(pngBytes(), 'chart.png'), { caption: 'c'.repeat(1025) }),
      400,
      'Bad Request: message caption is too long',
    );
    await rejectsWith(t.api().sendPhoto(CHAT, 'no-such-file-id'), 400, 'Bad Request: wrong file identifier/HTTP URL specified');
    assert.equal(t.fake().sentMessages(CHAT).length, 0);
  });
});

void describe('fake Telegram: buttons, edits, commands', () => {
  const t = useFake();
  beforeEach(() => t.fake().registerChat(CHAT));

  void it('a pressed button arrives as a callback_query, and its answer is recorded once', async () => {
    const sent = await t.api().sendMessage(CHAT, 'Scripts', {
      reply_markup: { inline_keyboard: [[{ text: 'Run report.py', callback_data: 'run:report.py' }]] },
    });
    assert.throws(() => t.fake().pressButton(CHAT, sent.message_id, 'run:other.py'), /no button with callback_data "run:other.py"/);
    const queryId = t.fake().pressButton(CHAT, sent.message_id, 'run:report.py');
    const [update] = await t.api().getUpdates();
    const query = update?.callback_query;
    assert.equal(query?.id, queryId);
    assert.equal(query?.data, 'run:report.py');
    assert.equal(query?.message?.message_id, sent.message_id);
    assert.equal(query?.from.id, CHAT);
    await t.api().answerCallbackQuery(queryId, { text: 'Started' });
    assert.deepEqual(
      t.fake().callbackAnswers.map((a) => [a.callback_query_id, a.data, a.text]),
      [[queryId, 'run:report.py', 'Started']],
    );
    await rejectsWith(
      t.api().answerCallbackQuery(queryId),
      400,
      'Bad Request: query is too old and response timeout expired or query ID is invalid',
    );
  });

  void it('edits update the stored message and keep its history', async () => {
    const sent = await t.api().sendMessage(CHAT, 'Running…', {
      reply_markup: { inline_keyboard: [[{ text: 'Cancel', callback_data: 'cancel' }]] },
    });
    const edited = await t.api().editMessageText(CHAT, sent.message_id, '*Done*', { parse_mode: 'Markdown' });
    assert.ok(edited !== true && edited.edit_date !== undefined);
    const stored = t.fake().message(CHAT, sent.message_id);
    assert.equal(stored?.text, 'Done');
    assert.deepEqual(stored?.entities, [{ type: 'bold', offset: 0, length: 4 }]);
    assert.equal(stored?.reply_markup, undefined, 'editing text without reply_markup removes the keyboard');
    assert.equal(stored?.edits[0]?.previous.text, 'Running…');
    await rejectsWith(
      t.api().editMessageText(CHAT, sent.message_id, '*Done*', { parse_mode: 'Markdown' }),
      400,
      /^Bad Request: message is not modified/,
    );
    await t.api().editMessageReplyMarkup(CHAT, sent.message_id, { reply_markup: { inline_keyboard: [[{ text: 'Again', callback_data: 'again' }]] } });
    const again = t.fake().message(CHAT, sent.message_id);
    assert.equal(again?.reply_markup?.inline_keyboard?.[0]?.[0]?.text, 'Again');
    assert.equal(again?.edits.length, 2);
    await rejectsWith(t.api().editMessageText(CHAT, 9999, 'x'), 400, 'Bad Request: message to edit not found');
  });

  void it('keeps the commands set with setMyCommands', async () => {
    await t.api().setMyCommands([
      { command: 'start', description: 'Link your account' },
      { command: 'status', description: 'Your scripts' },
    ]);
    assert.deepEqual(t.fake().commands.map((c) => c.command), ['start', 'status']);
    assert.deepEqual((await t.api().getMyCommands()).map((c) => c.command), ['start', 'status']);
    await rejectsWith(t.api().setMyCommands([{ command: 'Bad Command', description: 'x' }]), 400, 'Bad Request: BOT_COMMAND_INVALID');
  });

  void it('waitForMessages fails with a message saying what arrived', async () => {
    await t.api().sendMessage(CHAT, 'only one');
    await rejects(t.fake().waitForMessages(CHAT, 2, 200), /chat 4242 expected 2 message\(s\) within 200 ms but got 1:\n {2}#1 text "only one"/);
  });
});

void describe('fake Telegram: faults', () => {
  const t = useFake();
  beforeEach(() => t.fake().registerChat(CHAT));

  void it('status 500 answers like Telegram, for count requests', async () => {
    t.fake().setFault({ kind: 'status', status: 500, count: 1 });
    await rejectsWith(t.api().sendMessage(CHAT, 'x'), 500, 'Internal Server Error');
    await t.api().sendMessage(CHAT, 'x');
    assert.equal(t.fake().fault, null);
    assert.equal(t.fake().sentMessages(CHAT).length, 1);
  });

  void it('status 502 is an nginx page, which grammY sees as a network error', async () => {
    t.fake().setFault({ kind: 'status', status: 502 });
    await rejectsWithNetworkError(t.api().sendMessage(CHAT, 'x'));
    assert.equal((await t.api().getMe()).is_bot, true, 'other methods are unaffected by default');
    assert.equal(t.fake().sentMessages(CHAT).length, 0);
  });

  void it('drop-before loses the request; drop-after delivers it but loses the answer', async () => {
    t.fake().setFault({ kind: 'drop-before', count: 1 });
    await rejectsWithNetworkError(t.api().sendMessage(CHAT, 'lost'));
    assert.equal(t.fake().sentMessages(CHAT).length, 0);
    t.fake().setFault({ kind: 'drop-after', count: 1 });
    await rejectsWithNetworkError(t.api().sendMessage(CHAT, 'delivered'));
    assert.deepEqual(t.fake().sentMessages(CHAT).map((m) => m.text), ['delivered']);
    assert.equal(t.fake().stats.dropped, 2);
  });

  void it('latency delays the answer', async () => {
    t.fake().setFault({ kind: 'latency', ms: 300 });
    const started = Date.now();
    await t.api().sendMessage(CHAT, 'slow');
    assert.ok(Date.now() - started >= 280);
  });

  void it('an outage fails every send until cleared', async () => {
    t.fake().setFault({ kind: 'outage' });
    await rejectsWithNetworkError(t.api().sendMessage(CHAT, 'a'));
    await rejectsWithNetworkError(t.api().sendPhoto(CHAT, new InputFile(pngBytes(), 'p.png')));
    t.fake().setFault({ kind: 'outage', as: 'bad-gateway' });
    await rejectsWithNetworkError(t.api().sendMessage(CHAT, 'b'));
    t.fake().setFault(null);
    await t.api().sendMessage(CHAT, 'c');
    assert.deepEqual(t.fake().sentMessages(CHAT).map((m) => m.text), ['c']);
  });

  void it('a forced 429 carries retry_after', async () => {
    t.fake().setFault({ kind: '429', retryAfter: 7, count: 2 });
    const e = await rejectsWith(t.api().sendMessage(CHAT, 'x'), 429, 'Too Many Requests: retry after 7');
    assert.equal(e.parameters.retry_after, 7);
    await rejectsWith(t.api().sendMessage(CHAT, 'x'), 429, 'Too Many Requests: retry after 7');
    await t.api().sendMessage(CHAT, 'x');
  });

  void it('a fault can cover every method', async () => {
    t.fake().setFault({ kind: 'status', status: 500, methods: 'all', count: 1 });
    await rejectsWith(t.api().getMe(), 500, 'Internal Server Error');
    await t.api().getMe();
    assert.equal(t.fake().stats.requests.getMe, 2);
    assert.equal(t.fake().stats.faultsInjected, 1);
  });
});

void describe('fake Telegram: HTTP control API', () => {
  const t = useFake();

  void it('injects user messages and shows the conversation', async () => {
    const root = `${t.fake().apiRoot}/__control`;
    const post = (path: string, body: unknown): Promise<Response> =>
      fetch(`${root}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal((await post(`/chats/${CHAT}/messages`, { text: '/start' })).status, 200);
    const [update] = await t.api().getUpdates();
    assert.equal(update?.message?.text, '/start');
    await t.api().sendMessage(CHAT, '*Code:* 123456', { parse_mode: 'Markdown' });
    const transcript = (await (await fetch(`${root}/chats/${CHAT}/transcript`)).json()) as {
      entries: { from: string; message: { text?: string } }[];
    };
    assert.deepEqual(transcript.entries.map((e) => [e.from, e.message.text]), [['user', '/start'], ['bot', 'Code: 123456']]);
    const fault = await fetch(`${root}/fault`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'status', status: 500, count: 1 }) });
    assert.equal(fault.status, 200);
    await rejectsWith(t.api().sendMessage(CHAT, 'x'), 500, 'Internal Server Error');
  });
});

async function rejects(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.match(e.message, message);
    return true;
  });
}
