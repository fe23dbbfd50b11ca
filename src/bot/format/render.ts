/**
 * Turning a notification's content into Telegram messages that cannot be refused for
 * their formatting: the default (legacy) Markdown and plain text are parsed here into text
 * plus explicit entities, so the title is bold whatever characters it holds, unmatched
 * markers stay literal instead of failing the message, and long texts split exactly on
 * line boundaries. HTML and MarkdownV2 are passed to Telegram as given (with a plain
 * fallback at send time).
 */
import type { ParseMode } from '../../shared/contract.js';

/** Telegram's limits, in UTF-16 code units after entity parsing. */
export const MAX_TEXT = 4096;
export const MAX_CAPTION = 1024;

/** A Telegram message entity (the subset we produce). */
export interface Entity {
  type: 'bold' | 'italic' | 'code' | 'pre' | 'text_link';
  offset: number;
  length: number;
  url?: string;
  language?: string;
}

/** Text with entities, or raw text for Telegram to parse in parseMode. */
export interface RichText {
  text: string;
  entities?: Entity[];
  /** Set when Telegram must parse the markup itself (HTML, MarkdownV2). */
  parseMode?: 'HTML' | 'MarkdownV2';
}

/** One Telegram request of a notification. */
export type Part = ({ kind: 'text' } & RichText) | ({ kind: 'photo' } & RichText);

/** The content of a notification as the send API accepted it. */
export interface Content {
  title?: string | undefined;
  message?: string | undefined;
  /** Sent as given in parseMode (the send API's `text` / `caption`). */
  text?: string | undefined;
  parseMode?: ParseMode | undefined;
  /** Already rendered text with entities (the bot's own messages, e.g. digests). */
  rich?: { text: string; entities: Entity[] | ReadonlyArray<{ type: string; offset: number; length: number }> } | undefined;
}

/** Parses Telegram's legacy Markdown leniently: a marker with no partner is literal text. */
export function parseLegacyMarkdown(src: string): { text: string; entities: Entity[] } {
  let out = '';
  const entities: Entity[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\' && i + 1 < src.length && '_*`['.includes(src[i + 1]!)) {
      out += src[i + 1];
      i += 2;
      continue;
    }
    if (c === '`' && src.startsWith('```', i)) {
      const end = src.indexOf('```', i + 3);
      if (end > i + 3) {
        let body = src.slice(i + 3, end);
        let language: string | undefined;
        const nl = body.indexOf('\n');
        if (nl > 0 && /^[\w+-]+$/.test(body.slice(0, nl))) {
          language = body.slice(0, nl);
          body = body.slice(nl + 1);
        } else if (nl === 0) body = body.slice(1);
        if (body.length > 0) {
          entities.push({ type: 'pre', offset: out.length, length: body.length, ...(language ? { language } : {}) });
          out += body;
          i = end + 3;
          continue;
        }
      }
    }
    if (c === '*' || c === '_' || c === '`') {
      const end = src.indexOf(c, i + 1);
      if (end > i + 1) {
        const body = src.slice(i + 1, end);
        entities.push({ type: c === '*' ? 'bold' : c === '_' ? 'italic' : 'code', offset: out.length, length: body.length });
        out += body;
        i = end + 1;
        continue;
      }
    }
    if (c === '[') {
      const m = /^\[([^\]\n]+)\]\(([^)\s]+)\)/.exec(src.slice(i));
      if (m && /^(https?:\/\/|tg:\/\/)/i.test(m[2]!)) {
        entities.push({ type: 'text_link', offset: out.length, length: m[1]!.length, url: m[2]! });
        out += m[1];
        i += m[0].length;
        continue;
      }
    }
    out += c;
    i += 1;
  }
  return { text: out, entities: entities.filter((e) => e.length > 0) };
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeMarkdownV2(s: string): string {
  return s.replace(/[_*[\]()~`>#+\-=|{}.!\\]/g, (m) => `\\${m}`);
}

/** The whole notification as one (possibly over-long) rich text. */
export function renderContent(content: Content): RichText {
  const mode = content.parseMode ?? 'Markdown';
  if (content.rich) return { text: content.rich.text, entities: content.rich.entities as Entity[] };
  if (content.text !== undefined) {
    if (mode === 'HTML' || mode === 'MarkdownV2') return { text: content.text, parseMode: mode };
    if (mode === 'plain') return { text: content.text, entities: [] };
    return parseLegacyMarkdown(content.text);
  }
  const title = content.title?.trim() ? content.title.trim() : undefined;
  const message = content.message ?? '';
  if (mode === 'HTML') {
    return { text: `${title ? `<b>${escapeHtml(title)}</b>\n` : ''}${message}`, parseMode: 'HTML' };
  }
  if (mode === 'MarkdownV2') {
    return { text: `${title ? `*${escapeMarkdownV2(title)}*\n` : ''}${message}`, parseMode: 'MarkdownV2' };
  }
  const body = mode === 'plain' ? { text: message, entities: [] as Entity[] } : parseLegacyMarkdown(message);
  if (!title) return body;
  const prefix = `${title}\n`;
  return {
    text: `${prefix}${body.text}`,
    entities: [{ type: 'bold', offset: 0, length: title.length }, ...body.entities.map((e) => ({ ...e, offset: e.offset + prefix.length }))],
  };
}

/** Where to cut text of at most `limit` units: after the last newline, else the last space, else hard. */
function cutPoint(text: string, start: number, limit: number): number {
  if (text.length - start <= limit) return text.length;
  const window = text.slice(start, start + limit);
  const nl = window.lastIndexOf('\n');
  if (nl > 0) return start + nl + 1;
  const sp = window.lastIndexOf(' ');
  if (sp > limit / 2) return start + sp + 1;
  let end = start + limit;
  // Never split a surrogate pair.
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return end;
}

function sliceEntities(entities: Entity[] | undefined, start: number, end: number): Entity[] | undefined {
  if (!entities) return undefined;
  const out: Entity[] = [];
  for (const e of entities) {
    const s = Math.max(e.offset, start);
    const t = Math.min(e.offset + e.length, end);
    if (t > s) out.push({ ...e, offset: s - start, length: t - s });
  }
  return out;
}

function trimTrailingNewline(r: RichText): RichText {
  const text = r.text.replace(/\n+$/, '');
  if (text.length === r.text.length || text.length === 0) return r;
  return { ...r, text, ...(r.entities ? { entities: sliceEntities(r.entities, 0, text.length) } : {}) };
}

/** Splits rich text into pieces of at most `firstLimit` then `limit` units, on line boundaries. */
export function splitRichText(r: RichText, firstLimit: number, limit = MAX_TEXT): RichText[] {
  const pieces: RichText[] = [];
  let start = 0;
  let max = firstLimit;
  while (start < r.text.length) {
    const end = cutPoint(r.text, start, max);
    const piece: RichText = { text: r.text.slice(start, end) };
    if (r.parseMode) piece.parseMode = r.parseMode;
    const ents = sliceEntities(r.entities, start, end);
    if (ents) piece.entities = ents;
    const trimmed = trimTrailingNewline(piece);
    if (trimmed.text.trim() !== '') pieces.push(trimmed);
    start = end;
    max = limit;
  }
  return pieces;
}

/** The Telegram requests that deliver a text notification, in order. */
export function textParts(content: Content): Part[] {
  return splitRichText(renderContent(content), MAX_TEXT).map((p) => ({ kind: 'text', ...p }));
}

/** The requests for a photo notification: the photo with as much caption as fits, then the rest. */
export function photoParts(content: Content): Part[] {
  const rich = renderContent(content);
  if (rich.text.trim() === '') return [{ kind: 'photo', text: '' }];
  // The caption takes the first piece (caption limit); the rest follows as text messages.
  const [first, ...rest] = splitRichText(rich, MAX_CAPTION, MAX_TEXT);
  return [{ kind: 'photo', ...(first ?? { text: '' }) }, ...rest.map((p): Part => ({ kind: 'text', ...p }))];
}

/** The tags of Telegram's HTML subset (opening or closing, with any attributes). */
const TELEGRAM_HTML_TAG = /<\/?(?:b|strong|i|em|u|ins|s|strike|del|span|tg-spoiler|a|tg-emoji|code|pre|blockquote)(?:\s[^<>]*)?>/gi;

/** The same part without any markup: what goes out when Telegram refuses the markup. */
export function plainFallback(part: Part): Part {
  if (part.parseMode === 'HTML') {
    // Only Telegram's own tags go: a bare `a < b` (a common reason for the refusal) stays text.
    const text = part.text
      .replace(TELEGRAM_HTML_TAG, '')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&#(\d+);/g, (m, n: string) => (Number(n) <= 0x10ffff ? String.fromCodePoint(Number(n)) : m))
      .replace(/&#x([0-9a-f]+);/gi, (m, n: string) => (parseInt(n, 16) <= 0x10ffff ? String.fromCodePoint(parseInt(n, 16)) : m))
      .replace(/&amp;/g, '&');
    return { kind: part.kind, text };
  }
  if (part.parseMode === 'MarkdownV2') {
    return { kind: part.kind, text: part.text.replace(/\\([_*[\]()~`>#+\-=|{}.!\\])/g, '$1') };
  }
  return { kind: part.kind, text: part.text, entities: [] };
}
