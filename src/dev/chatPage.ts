/**
 * The Telegram stand-in's chat page: one conversation with the bot, plain HTML and JS with
 * no external assets. It long-polls the transcript, renders text (bold, italic, code,
 * links), photos and inline buttons, and lets the user type messages and press buttons.
 */
import { esc } from '../shared/html.js';

const SCRIPT = String.raw`
const log = document.getElementById('log');
const form = document.getElementById('composer');
const input = document.getElementById('text');
const statusEl = document.getElementById('status');
let version = 0;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// Text with Telegram entities: per UTF-16 unit style flags, then runs of equal style.
function renderText(text, entities) {
  const frag = document.createDocumentFragment();
  if (!text) return frag;
  const n = text.length;
  const styles = new Array(n).fill(null).map(() => ({}));
  for (const e of entities || []) {
    for (let i = e.offset; i < Math.min(n, e.offset + e.length); i++) {
      const s = styles[i];
      if (e.type === 'bold') s.b = 1;
      else if (e.type === 'italic') s.i = 1;
      else if (e.type === 'underline') s.u = 1;
      else if (e.type === 'strikethrough') s.s = 1;
      else if (e.type === 'code' || e.type === 'pre') s.c = 1;
      else if (e.type === 'text_link') s.href = e.url;
      else if (e.type === 'url') s.href = text.slice(e.offset, e.offset + e.length);
    }
  }
  const key = (s) => [s.b, s.i, s.u, s.s, s.c, s.href].join('|');
  let start = 0;
  for (let i = 1; i <= n; i++) {
    if (i < n && key(styles[i]) === key(styles[start])) continue;
    const s = styles[start];
    let node = document.createTextNode(text.slice(start, i));
    const wrap = (tag) => { const w = document.createElement(tag); w.appendChild(node); node = w; };
    if (s.c) wrap('code');
    if (s.b) wrap('b');
    if (s.i) wrap('i');
    if (s.u) wrap('u');
    if (s.s) wrap('s');
    if (s.href && /^https?:/i.test(s.href)) { wrap('a'); node.href = s.href; node.target = '_blank'; node.rel = 'noopener'; }
    frag.appendChild(node);
    start = i;
  }
  return frag;
}

function renderEntry(entry) {
  const m = entry.message || {};
  const row = el('div', 'row ' + entry.from);
  const bubble = el('div', 'bubble');
  bubble.dataset.messageId = String(entry.message_id);
  if (m.deleted) { bubble.appendChild(el('i', 'meta', 'message deleted')); row.appendChild(bubble); return row; }
  if (m.photo && m.photo.url) {
    const img = el('img', 'photo');
    img.src = '/files/' + encodeURIComponent(m.photo.file_id || '');
    img.alt = 'photo from the bot';
    bubble.appendChild(img);
  }
  const text = entry.from === 'bot' ? (m.kind === 'photo' ? m.caption : m.text) : m.text;
  if (text) {
    const t = el('div', 'text');
    t.appendChild(renderText(text, m.entities));
    bubble.appendChild(t);
  }
  const kb = m.reply_markup && m.reply_markup.inline_keyboard;
  if (kb) {
    const box = el('div', 'keyboard');
    for (const line of kb) {
      const r = el('div', 'kbrow');
      for (const b of line) {
        if (b.url) {
          const a = el('a', 'button', b.text);
          a.href = b.url; a.target = '_blank'; a.rel = 'noopener';
          r.appendChild(a);
        } else {
          const btn = el('button', 'button', b.text);
          btn.type = 'button';
          btn.onclick = () => press(entry.message_id, b.callback_data || '');
          r.appendChild(btn);
        }
      }
      box.appendChild(r);
    }
    bubble.appendChild(box);
  }
  const when = new Date(((m.edit_date || m.date) || 0) * 1000);
  bubble.appendChild(el('div', 'meta', when.toLocaleTimeString() + (m.edit_date ? ' (edited)' : '')));
  row.appendChild(bubble);
  return row;
}

function render(entries) {
  const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
  log.replaceChildren(...entries.map(renderEntry));
  if (entries.length === 0) log.appendChild(el('p', 'empty', 'No messages yet. Send /start to the bot.'));
  if (atBottom) window.scrollTo(0, document.body.scrollHeight);
}

async function post(path, body) {
  const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error((await res.json().catch(() => ({}))).error || res.statusText);
  return res.json();
}

async function press(message_id, data) {
  try { await post('/api/press', { message_id, data }); statusEl.textContent = ''; }
  catch (e) { statusEl.textContent = 'Could not press the button: ' + e.message; }
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  try { await post('/api/send', { text }); input.value = ''; statusEl.textContent = ''; }
  catch (e) { statusEl.textContent = 'Could not send: ' + e.message; }
  input.focus();
});

async function poll() {
  for (;;) {
    try {
      const res = await fetch('/api/transcript?since=' + version + '&wait=25');
      if (!res.ok) throw new Error(res.statusText);
      const body = await res.json();
      version = body.version;
      render(body.entries);
      statusEl.textContent = '';
    } catch (e) {
      statusEl.textContent = 'The stand-in is not answering (is npm start still running?)';
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}
poll();
`;

/** The page for a chat with `botName`. */
export function chatPageHtml(botName: string, userName: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat with @${esc(botName)} (local Telegram stand-in)</title>
<style>
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,sans-serif;background:#dfe7ee;padding-bottom:5rem}
header{background:#517da2;color:#fff;padding:.7rem 1rem;z-index:1}
header h1{font-size:1.05rem;margin:0} header p{margin:.15rem 0 0;font-size:.8rem;opacity:.85}
#log{max-width:46rem;margin:0 auto;padding:1rem}
.row{display:flex;margin:.4rem 0}.row.user{justify-content:flex-end}
.bubble{max-width:80%;background:#fff;border-radius:12px;padding:.5rem .7rem;box-shadow:0 1px 1px #0002}
.row.user .bubble{background:#e1ffc7}
.text{white-space:pre-wrap;word-wrap:break-word;line-height:1.35}
code{background:#f0f0f0;padding:0 .2em;border-radius:3px;font-size:.92em}
.photo{display:block;max-width:100%;border-radius:8px;margin-bottom:.3rem}
.meta{font-size:.7rem;color:#888;text-align:right;margin-top:.2rem}
.keyboard{margin-top:.4rem}.kbrow{display:flex;gap:.3rem;margin-top:.3rem}
.button{flex:1;text-align:center;padding:.4rem;border:1px solid #517da2;border-radius:6px;background:#f5f9fc;color:#2b5278;font-size:.85rem;cursor:pointer;text-decoration:none}
.empty{text-align:center;color:#666}
form{position:fixed;bottom:0;left:0;right:0;background:#fff;display:flex;gap:.5rem;padding:.6rem;border-top:1px solid #ccc}
form input{flex:1;padding:.6rem;font-size:1rem;border:1px solid #bbb;border-radius:6px}
form button{padding:.6rem 1.2rem;font-size:1rem;background:#517da2;color:#fff;border:0;border-radius:6px;cursor:pointer}
#status{position:fixed;bottom:3.8rem;left:0;right:0;text-align:center;color:#b00020;font-size:.85rem}
</style></head>
<body>
<header><h1>@${esc(botName)}</h1><p>Local Telegram stand-in: your chat (as ${esc(userName)}) with the bot</p></header>
<main id="log" aria-live="polite"></main>
<div id="status" role="status"></div>
<form id="composer" autocomplete="off">
  <input id="text" aria-label="Message" placeholder="Message (try /start)" autofocus>
  <button type="submit">Send</button>
</form>
<script>${SCRIPT}</script>
</body></html>`;
}
