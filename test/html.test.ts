/** HTML is escaped by default: only markup built with `html` (or the code's own `raw`) goes in as it is. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { html, raw } from '../src/shared/html.js';
import { messagePage } from '../src/web/pages.js';
import { Assets } from '../src/web/static.js';

void describe('html tagged template', () => {
  void it('escapes every value, keeps nested html, joins arrays, drops null, undefined and false', () => {
    const name = '<img src=x onerror=alert(1)> & "quotes"';
    const out = html`<p title="${name}">${name}</p>${[html`<b>${'a<b'}</b>`, 'c&d']}${null}${undefined}${false}${raw('<hr>')}`;
    assert.equal(
      out.toString(),
      '<p title="&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot;">&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot;</p><b>a&lt;b</b>c&amp;d<hr>',
    );
  });

  void it('a message page shows a text paragraph as text', () => {
    const page = messagePage({ assets: new Assets(), title: 'Error', heading: 'Bad <request>', paragraphs: ['<script>alert(1)</script>'] });
    assert.ok(!page.includes('<script>alert(1)</script>'), page);
    assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.ok(page.includes('<h1>Bad &lt;request&gt;</h1>'));
  });
});
