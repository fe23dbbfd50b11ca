/**
 * Formatting never loses a message, seen from Telegram's side: the real bot sends through
 * the fake Telegram (which parses markup and enforces length limits as Telegram does), and
 * the chat receives a bold title whatever it holds, broken Markdown whole, markup Telegram
 * refuses as plain text, a 10,000-character message split on line boundaries in order, and
 * a 3,000-character caption as a photo followed by the rest of the text.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BotHarness, pngBytes, textOf, type LinkedUser } from './support/botHarness.js';

function lines(n: number, width: number): string {
  return Array.from({ length: n }, (_, i) => `line ${String(i).padStart(4, '0')} ${'x'.repeat(width)}`).join('\n');
}

void describe('formatting through Telegram', () => {
  let h: BotHarness;
  before(async () => {
    h = await BotHarness.start({ users: 6 });
  });
  after(() => h.cleanup());

  async function deliver(user: LinkedUser, body: Record<string, unknown>, count: number): Promise<ReturnType<BotHarness['fake']['sentMessages']>> {
    const res = await h.client.send({ user: user.name, ...body }, { waitSeconds: 10 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return h.fake.waitForMessages(user.chatId, count, 60_000);
  }

  void it('the title `revenue_drop *alert* [x]` arrives verbatim and bold', async () => {
    const title = 'revenue_drop *alert* [x]';
    const [m] = await deliver(h.users[0]!, { title, message: 'Revenue is *down* 12% vs last week' }, 1);
    assert.equal(m!.text, `${title}\nRevenue is down 12% vs last week`);
    assert.ok(m!.entities.some((e) => e.type === 'bold' && e.offset === 0 && e.length === title.length), `bold title entity in ${JSON.stringify(m!.entities)}`);
    assert.ok(m!.entities.some((e) => e.type === 'bold' && m!.text!.slice(e.offset, e.offset + e.length) === 'down'), 'the message keeps its own Markdown');
  });

  void it('a message with broken Markdown arrives whole', async () => {
    const message = 'Revenue *down 5% in _EU [see](dashboard and `x';
    const [m] = await deliver(h.users[1]!, { title: 'Broken', message }, 1);
    assert.equal(m!.text, `Broken\n${message}`);
  });

  void it('markup Telegram refuses (HTML with a bare "<") goes out as plain text, whole', async () => {
    const [m] = await deliver(h.users[2]!, { text: '<b>p-value</b> < 0.05 for segment A', parse_mode: 'HTML' }, 1);
    assert.equal(m!.text, 'p-value < 0.05 for segment A');
    assert.ok(h.logs.some((l) => l.msg === 'Telegram refused the formatting; sending as plain text'), 'the fallback is logged');
  });

  void it('a 10,000-character message arrives whole, split on line boundaries, in order', async () => {
    const message = lines(230, 40);
    assert.ok(message.length >= 10_000);
    const res = await h.client.send({ user: h.users[3]!.name, message }, { waitSeconds: 15 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const msgs = h.fake.sentMessages(h.users[3]!.chatId);
    assert.ok(msgs.length >= 3, `${msgs.length} messages`);
    for (const m of msgs) {
      assert.ok(m.text!.length <= 4096);
      assert.match(m.text!, /^line \d{4} x+(\nline \d{4} x+)*$/, 'whole lines only');
    }
    assert.equal(msgs.map(textOf).join('\n'), message);
  });

  void it('a 3,000-character caption arrives as the photo with the start of it, and the rest in a following message', async () => {
    const message = lines(65, 40);
    assert.ok(message.length >= 3000);
    const png = pngBytes(8, 6);
    const res = await h.client.sendPhoto({ user: h.users[4]!.name, title: 'Weekly chart', message }, { bytes: png, filename: 'chart.png', contentType: 'image/png' }, { waitSeconds: 10 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const msgs = h.fake.sentMessages(h.users[4]!.chatId);
    assert.equal(msgs[0]!.kind, 'photo');
    assert.ok(msgs[0]!.photo?.equals(png), 'the photo is byte-identical');
    assert.ok(msgs[0]!.caption!.length <= 1024);
    assert.ok(msgs[0]!.entities.some((e) => e.type === 'bold' && e.offset === 0 && e.length === 'Weekly chart'.length), 'the caption starts with the bold title');
    assert.ok(msgs.slice(1).every((m) => m.kind === 'text') && msgs.length >= 2);
    assert.equal(msgs.map(textOf).join('\n'), `Weekly chart\n${message}`);
  });

  void it('MarkdownV2 and HTML titles are escaped so Telegram accepts them bold', async () => {
    const title = 'revenue_drop *alert* [x] <b>';
    const msgs = await deliver(h.users[5]!, { title, message: 'v2 body', parse_mode: 'MarkdownV2' }, 1);
    assert.equal(msgs[0]!.text, `${title}\nv2 body`);
    assert.ok(msgs[0]!.entities.some((e) => e.type === 'bold' && e.offset === 0 && e.length === title.length));
    const both = await deliver(h.users[5]!, { title, message: '<i>html</i> body', parse_mode: 'HTML' }, 2);
    assert.equal(both[1]!.text, `${title}\nhtml body`);
    assert.ok(both[1]!.entities.some((e) => e.type === 'bold' && e.offset === 0 && e.length === title.length));
  });
});
