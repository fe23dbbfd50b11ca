/**
 * Rendering never loses a message: legacy Markdown is parsed into text plus entities so a
 * title is bold whatever it holds and a stray marker stays literal; long texts split on
 * line boundaries into pieces Telegram accepts, in order, losing nothing; a long caption
 * continues in text messages; the plain fallback keeps every character of the content.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_CAPTION, MAX_TEXT, parseLegacyMarkdown, photoParts, plainFallback, renderContent, splitRichText, textParts, type Entity, type RichText } from '../src/bot/format/render.js';

/** The text each entity covers. */
function covered(r: RichText): Array<[string, string]> {
  return (r.entities ?? []).map((e: Entity) => [e.type, r.text.slice(e.offset, e.offset + e.length)]);
}

function lines(n: number, width: number): string {
  return Array.from({ length: n }, (_, i) => `line ${String(i).padStart(4, '0')} ${'x'.repeat(width)}`).join('\n');
}

void describe('legacy Markdown', () => {
  void it('parses bold, italic, code, pre and links into entities', () => {
    const r = parseLegacyMarkdown('a *bold* _it_ `code` [site](https://example.com) ```py\nx = 1\n```');
    assert.equal(r.text, 'a bold it code site x = 1\n');
    assert.deepEqual(covered(r), [
      ['bold', 'bold'],
      ['italic', 'it'],
      ['code', 'code'],
      ['text_link', 'site'],
      ['pre', 'x = 1\n'],
    ]);
    assert.equal(r.entities.find((e) => e.type === 'pre')?.language, 'py');
    assert.equal(r.entities.find((e) => e.type === 'text_link')?.url, 'https://example.com');
  });

  void it('keeps unmatched markers and escaped markers as literal text', () => {
    assert.deepEqual(parseLegacyMarkdown('Revenue *down 5% in _EU'), { text: 'Revenue *down 5% in _EU', entities: [] });
    assert.deepEqual(parseLegacyMarkdown('2 \\* 3 = 6, snake\\_case'), { text: '2 * 3 = 6, snake_case', entities: [] });
    assert.deepEqual(parseLegacyMarkdown('[not a link](javascript:alert(1))').entities, []);
    assert.deepEqual(parseLegacyMarkdown('empty ** markers').text, 'empty ** markers');
  });

  void it('counts offsets in UTF-16 code units, as Telegram does', () => {
    const r = parseLegacyMarkdown('📈 *up*');
    assert.equal(r.entities[0]?.offset, 3);
    assert.deepEqual(covered(r), [['bold', 'up']]);
  });
});

void describe('the title', () => {
  for (const title of ['revenue_drop *alert* [x]', 'a `tick` and _under_', 'just *one', '[x](http://e.com)']) {
    void it(`is bold and verbatim, whatever it holds: ${title}`, () => {
      const r = renderContent({ title, message: 'body *bold*' });
      assert.ok(r.text.startsWith(`${title}\n`), r.text);
      assert.deepEqual(covered(r)[0], ['bold', title]);
      assert.deepEqual(covered(r)[1], ['bold', 'bold'], 'the message keeps its own formatting after the title');
    });
  }

  void it('is escaped for HTML and MarkdownV2 messages', () => {
    assert.equal(renderContent({ title: 'a<b & c', message: '<i>x</i>', parseMode: 'HTML' }).text, '<b>a&lt;b &amp; c</b>\n<i>x</i>');
    assert.equal(renderContent({ title: 'revenue_drop *alert* [x]', message: 'y', parseMode: 'MarkdownV2' }).text, '*revenue\\_drop \\*alert\\* \\[x\\]*\ny');
  });

  void it('plain mode makes no entities of the message', () => {
    const r = renderContent({ title: 'T', message: '*not bold*', parseMode: 'plain' });
    assert.equal(r.text, 'T\n*not bold*');
    assert.deepEqual(covered(r), [['bold', 'T']]);
  });

  void it('`text` goes as given in its parse mode', () => {
    assert.deepEqual(renderContent({ text: '<b>x</b>', parseMode: 'HTML' }), { text: '<b>x</b>', parseMode: 'HTML' });
    assert.deepEqual(renderContent({ text: '*x*' }), { text: 'x', entities: [{ type: 'bold', offset: 0, length: 1 }] });
  });
});

void describe('splitting', () => {
  void it('a 10,000-character message becomes several messages of at most 4096, cut on line boundaries, losing nothing', () => {
    const message = lines(200, 40);
    assert.ok(message.length >= 10_000);
    const parts = textParts({ message });
    assert.ok(parts.length >= 3);
    for (const p of parts) {
      assert.ok(p.text.length <= MAX_TEXT, `${p.text.length} > ${MAX_TEXT}`);
      assert.match(p.text, /^line \d{4} x+(\nline \d{4} x+)*$/, 'each piece holds whole lines');
    }
    assert.equal(parts.map((p) => p.text).join('\n'), message);
  });

  void it('an entity across a cut is split into both pieces; the title stays bold', () => {
    const message = `*${'y'.repeat(30)}\n${'z'.repeat(5000)}*`;
    const parts = textParts({ title: 'T', message });
    assert.ok(parts.length >= 2);
    assert.equal(parts.map((p) => p.text).join('').replace(/\n/g, ''), `T${'y'.repeat(30)}${'z'.repeat(5000)}`);
    assert.deepEqual(covered(parts[0]!)[0], ['bold', 'T']);
    for (const p of parts) for (const e of p.entities ?? []) assert.ok(e.offset >= 0 && e.offset + e.length <= p.text.length, 'entities stay inside their piece');
    assert.ok((parts[1]!.entities ?? []).some((e) => e.type === 'bold'), 'the bold run continues in the next piece');
  });

  void it('a line longer than the limit is cut at a space, else hard, never inside a surrogate pair', () => {
    const words = Array.from({ length: 1500 }, (_, i) => `w${i}`).join(' ');
    const pieces = splitRichText({ text: words, entities: [] }, MAX_TEXT);
    assert.ok(pieces.every((p) => p.text.length <= MAX_TEXT));
    assert.equal(pieces.map((p) => p.text).join(''), words, 'cut after a space, nothing lost');
    const emoji = `a${'😀'.repeat(3000)}`;
    const hard = splitRichText({ text: emoji, entities: [] }, MAX_TEXT);
    assert.equal(hard.map((p) => p.text).join(''), emoji);
    for (const p of hard) assert.ok(!/[\ud800-\udbff]$/.test(p.text) && !/^[\udc00-\udfff]/.test(p.text), 'no half emoji');
  });

  void it('a 3,000-character caption: the photo carries at most 1024, the rest follows in order', () => {
    const message = lines(60, 40);
    assert.ok(message.length >= 3000);
    const parts = photoParts({ title: 'Chart', message });
    assert.equal(parts[0]!.kind, 'photo');
    assert.ok(parts[0]!.text.length <= MAX_CAPTION);
    assert.ok(parts.slice(1).every((p) => p.kind === 'text'));
    assert.equal(parts.map((p) => p.text).join('\n'), `Chart\n${message}`);
  });

  void it('a photo with no text is one part', () => {
    assert.deepEqual(photoParts({ message: '' }), [{ kind: 'photo', text: '' }]);
  });
});

void describe('the plain fallback', () => {
  void it('drops entities and keeps the text', () => {
    assert.deepEqual(plainFallback({ kind: 'text', text: 'T\nbody', entities: [{ type: 'bold', offset: 0, length: 1 }] }), { kind: 'text', text: 'T\nbody', entities: [] });
  });

  void it('HTML: removes Telegram tags, unescapes entities, and keeps a bare "<" that caused the refusal', () => {
    const p = plainFallback({ kind: 'text', text: '<b>load</b> if a < b and c > d: <a href="https://x">x</a> &lt;tag&gt; &amp; &#8364;', parseMode: 'HTML' });
    assert.equal(p.text, 'load if a < b and c > d: x <tag> & €');
    assert.equal(p.parseMode, undefined);
  });

  void it('MarkdownV2: removes escapes, keeps every character', () => {
    assert.equal(plainFallback({ kind: 'photo', text: 'a\\_b \\*c\\* *d*', parseMode: 'MarkdownV2' }).text, 'a_b *c* *d*');
  });
});
