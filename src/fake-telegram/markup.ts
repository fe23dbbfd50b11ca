// Telegram's text formatting, as the Bot API server applies it before a message is sent:
// legacy Markdown, MarkdownV2 and HTML parsed into plain text plus entities, then the
// server-side clean-up (control characters, trimming) and automatic entity detection.
//
// The three parsers are ports of TDLib's `parse_markdown`, `parse_markdown_v2` and
// `parse_html` (td/telegram/MessageEntity.cpp). They walk the UTF-8 bytes like TDLib does,
// so error messages carry the same byte offsets Telegram reports.

/** A message entity as the Bot API returns it. Offsets and lengths are in UTF-16 code units. */
export interface FakeEntity {
  type: string;
  offset: number;
  length: number;
  url?: string;
  language?: string;
  user?: { id: number; is_bot: boolean; first_name: string };
  custom_emoji_id?: string;
}

/** Formatted text: plain text plus entities. */
export interface FormattedText {
  text: string;
  entities: FakeEntity[];
}

/** Telegram refused the markup; `message` is TDLib's wording (without the Bot API prefix). */
export class MarkupError extends Error {
  override name = 'MarkupError';
}

// TDLib's internal entity types, with their sort priority and Bot API name.
type TdType =
  | 'Bold' | 'Italic' | 'Underline' | 'Strikethrough' | 'Spoiler' | 'Code' | 'Pre' | 'PreCode'
  | 'TextUrl' | 'MentionName' | 'CustomEmoji' | 'BlockQuote' | 'ExpandableBlockQuote';

interface TdEntity {
  type: TdType;
  offset: number;
  length: number;
  argument: string;
  userId?: number;
}

const PRIORITY: Record<string, number> = {
  blockquote: 0, expandable_blockquote: 0, pre: 11, code: 20, text_link: 49, text_mention: 49,
  bold: 90, italic: 91, underline: 92, strikethrough: 93, spoiler: 94, custom_emoji: 99,
};

/** TDLib's entity order: by offset, longer first, then by type priority. */
export function sortEntities(entities: FakeEntity[]): FakeEntity[] {
  return entities.sort(
    (a, b) =>
      a.offset - b.offset || b.length - a.length || (PRIORITY[a.type] ?? 50) - (PRIORITY[b.type] ?? 50),
  );
}

function toBotApi(e: TdEntity): FakeEntity {
  const base = { offset: e.offset, length: e.length };
  switch (e.type) {
    case 'PreCode':
      return { type: 'pre', ...base, language: e.argument };
    case 'TextUrl':
      return { type: 'text_link', ...base, url: e.argument };
    case 'MentionName':
      return { type: 'text_mention', ...base, user: { id: e.userId ?? 0, is_bot: false, first_name: '' } };
    case 'CustomEmoji':
      return { type: 'custom_emoji', ...base, custom_emoji_id: e.argument };
    case 'BlockQuote':
      return { type: 'blockquote', ...base };
    case 'ExpandableBlockQuote':
      return { type: 'expandable_blockquote', ...base };
    default:
      return { type: e.type.toLowerCase(), ...base };
  }
}

// ---------------------------------------------------------------------------------------
// Byte helpers shared by the parsers.

const enc = new TextEncoder();
const dec = new TextDecoder();

const isFirstCodeUnit = (c: number): boolean => (c & 0xc0) !== 0x80;
const utf16Width = (c: number): number => (c >= 0xf0 ? 2 : 1);
/** TDLib's is_space; 0 counts too, because TDLib reads the C string terminator. */
const isSpace = (c: number): boolean => c === 32 || c === 9 || c === 13 || c === 10 || c === 0 || c === 11 || c === 12;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isAlpha = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isHexDigit = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);

const ch = (s: string): number => s.charCodeAt(0);
const BACKSLASH = ch('\\');
const UNDERSCORE = ch('_');
const STAR = ch('*');
const BACKTICK = ch('`');
const LBRACKET = ch('[');
const RBRACKET = ch(']');
const LPAREN = ch('(');
const RPAREN = ch(')');
const TILDE = ch('~');
const PIPE = ch('|');
const BANG = ch('!');
const GT = ch('>');
const LT = ch('<');
const NL = 10;
const CR = 13;
const SLASH = ch('/');
const AMP = ch('&');
const HASH = ch('#');
const SEMI = ch(';');
const EQ = ch('=');
const DQUOTE = ch('"');
const SQUOTE = ch("'");

class Source {
  readonly bytes: Uint8Array;
  constructor(text: string) {
    this.bytes = enc.encode(text);
  }
  get size(): number {
    return this.bytes.length;
  }
  at(i: number): number {
    return i < this.bytes.length ? (this.bytes[i] ?? 0) : 0;
  }
  str(from: number, to: number): string {
    return dec.decode(this.bytes.subarray(from, to));
  }
}

function pushCodePoint(out: number[], code: number): void {
  if (code < 0x80) out.push(code);
  else if (code < 0x800) out.push(0xc0 | (code >> 6), 0x80 | (code & 0x3f));
  else if (code < 0x10000) out.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
  else
    out.push(
      0xf0 | (code >> 18),
      0x80 | ((code >> 12) & 0x3f),
      0x80 | ((code >> 6) & 0x3f),
      0x80 | (code & 0x3f),
    );
}

const reservedError = (c: number): MarkupError =>
  new MarkupError(`Character '${String.fromCharCode(c)}' is reserved and must be escaped with the preceding '\\'`);

// ---------------------------------------------------------------------------------------
// Links

/** `tg://user?id=123` links become text mentions, as in TDLib's get_link_user_id. */
function linkUserId(url: string): number | undefined {
  const m = /^tg:(?:\/\/)?user\?(?:.*&)?id=(\d+)(?:&|#|$)/i.exec(url.trim());
  if (!m?.[1]) return undefined;
  const id = Number(m[1]);
  return id > 0 ? id : undefined;
}

/**
 * An approximation of TDLib's LinkManager::get_checked_link: returns the normalised URL,
 * or '' when Telegram would refuse it. A host needs a dot and a letter top-level domain
 * (so `localhost` is refused, as Telegram does), or must be an IP address.
 */
export function checkedLink(raw: string): string {
  const url = raw.trim();
  if (url === '' || /[\s]/.test(url)) return '';
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'tg' || scheme === 'ton' || scheme === 'tonsite') {
    return /^[a-z]+:(?:\/\/)?[a-z0-9_-]+/i.test(url) ? url : '';
  }
  let withScheme = url;
  if (scheme === undefined || !/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    if (scheme !== undefined && scheme !== 'http' && scheme !== 'https' && !/^[^:/]+:\d+/.test(url)) return '';
    withScheme = `http://${url}`;
  } else if (scheme !== 'http' && scheme !== 'https' && scheme !== 'ftp') {
    return '';
  }
  let parsed: URL;
  try {
    parsed = new URL(withScheme);
  } catch {
    return '';
  }
  const host = parsed.hostname;
  const isIpv4 = /^\d{1,3}(?:\.\d{1,3}){3}$/.test(host);
  const isIpv6 = host.startsWith('[');
  const tld = host.split('.').pop() ?? '';
  const hasDomain = host.includes('.') && (/^[a-z]{2,63}$/i.test(tld) || /^xn--[a-z0-9-]+$/i.test(tld));
  if (!isIpv4 && !isIpv6 && !hasDomain) return '';
  return parsed.href;
}

// ---------------------------------------------------------------------------------------
// Legacy Markdown (parse_mode "Markdown")

function parseMarkdownLegacy(input: string): FormattedText {
  const t = new Source(input);
  const size = t.size;
  const out: number[] = [];
  const entities: TdEntity[] = [];
  let u16 = 0;
  for (let i = 0; i < size; i++) {
    const c = t.at(i);
    const next = t.at(i + 1);
    if (c === BACKSLASH && (next === UNDERSCORE || next === STAR || next === BACKTICK || next === LBRACKET)) {
      i++;
      out.push(t.at(i));
      u16++;
      continue;
    }
    if (c !== UNDERSCORE && c !== STAR && c !== BACKTICK && c !== LBRACKET) {
      if (isFirstCodeUnit(c)) u16 += utf16Width(c);
      out.push(c);
      continue;
    }

    const beginPos = i;
    const endCharacter = c === LBRACKET ? RBRACKET : c;
    let isPre = false;
    i++;
    let language = '';
    if (c === BACKTICK && t.at(i) === BACKTICK && t.at(i + 1) === BACKTICK) {
      i += 2;
      isPre = true;
      let languageEnd = i;
      while (!isSpace(t.at(languageEnd)) && t.at(languageEnd) !== BACKTICK) languageEnd++;
      if (i !== languageEnd && languageEnd < size && t.at(languageEnd) !== BACKTICK) {
        language = t.str(i, languageEnd);
        i = languageEnd;
      }
      if (t.at(i) === NL || t.at(i) === CR) {
        if ((t.at(i + 1) === NL || t.at(i + 1) === CR) && t.at(i) !== t.at(i + 1)) i += 2;
        else i++;
      }
    }

    const entityOffset = u16;
    while (
      i < size &&
      (t.at(i) !== endCharacter || (isPre && !(t.at(i + 1) === BACKTICK && t.at(i + 2) === BACKTICK)))
    ) {
      const cur = t.at(i);
      if (isFirstCodeUnit(cur)) u16 += utf16Width(cur);
      out.push(cur);
      i++;
    }
    if (i >= size) {
      throw new MarkupError(`Can't find end of the entity starting at byte offset ${beginPos}`);
    }

    if (entityOffset !== u16) {
      const length = u16 - entityOffset;
      if (c === UNDERSCORE) entities.push({ type: 'Italic', offset: entityOffset, length, argument: '' });
      else if (c === STAR) entities.push({ type: 'Bold', offset: entityOffset, length, argument: '' });
      else if (c === LBRACKET) {
        let url: string;
        if (t.at(i + 1) !== LPAREN) {
          url = t.str(beginPos + 1, i);
        } else {
          i += 2;
          const urlBegin = i;
          while (i < size && t.at(i) !== RPAREN) i++;
          url = t.str(urlBegin, i);
        }
        const userId = linkUserId(url);
        if (userId !== undefined) {
          entities.push({ type: 'MentionName', offset: entityOffset, length, argument: '', userId });
        } else {
          const checked = checkedLink(url);
          if (checked !== '') entities.push({ type: 'TextUrl', offset: entityOffset, length, argument: checked });
        }
      } else if (isPre) {
        entities.push({ type: language === '' ? 'Pre' : 'PreCode', offset: entityOffset, length, argument: language });
      } else {
        entities.push({ type: 'Code', offset: entityOffset, length, argument: '' });
      }
    }
    if (isPre) i += 2;
  }
  return { text: dec.decode(Uint8Array.from(out)), entities: sortEntities(entities.map(toBotApi)) };
}

// ---------------------------------------------------------------------------------------
// MarkdownV2

interface NestedV2 {
  type: TdType;
  argument: string;
  entityOffset: number;
  entityByteOffset: number;
  entityBeginPos: number;
}

const V2_RESERVED = new Set(Array.from('_*[]()~`>#+-=|{}.!\n', ch));
const V2_CODE_RESERVED = new Set([BACKTICK]);

function parseMarkdownV2(input: string): FormattedText {
  const t = new Source(input);
  const size = t.size;
  const out: number[] = [];
  const entities: TdEntity[] = [];
  const nested: NestedV2[] = [];
  let u16 = 0;
  let haveBlockquote = false;
  let canStartBlockquote = true;
  const cantFindEnd = (e: NestedV2): MarkupError =>
    new MarkupError(`Can't find end of ${e.type} entity at byte offset ${e.entityByteOffset}`);

  for (let i = 0; i < size; i++) {
    const c = t.at(i);
    const next = t.at(i + 1);
    if (c === BACKSLASH && next > 0 && next <= 126) {
      i++;
      u16 += 1;
      out.push(next);
      if (next !== CR) canStartBlockquote = next === NL;
      continue;
    }

    const top = nested[nested.length - 1];
    const inCode = top !== undefined && (top.type === 'Code' || top.type === 'Pre' || top.type === 'PreCode');
    const reserved = inCode ? V2_CODE_RESERVED : V2_RESERVED;
    if (!reserved.has(c)) {
      if (isFirstCodeUnit(c)) {
        u16 += utf16Width(c);
        if (c !== CR) canStartBlockquote = false;
      }
      out.push(c);
      continue;
    }

    let isEnd = false;
    if (top !== undefined) {
      if (haveBlockquote && c === NL && (i + 1 === size || t.at(i + 1) !== GT)) {
        isEnd = true;
      } else {
        switch (top.type) {
          case 'Bold':
            isEnd = c === STAR;
            break;
          case 'Italic':
            isEnd = c === UNDERSCORE && next !== UNDERSCORE;
            break;
          case 'Code':
            isEnd = c === BACKTICK;
            break;
          case 'Pre':
          case 'PreCode':
            isEnd = c === BACKTICK && next === BACKTICK && t.at(i + 2) === BACKTICK;
            break;
          case 'TextUrl':
          case 'CustomEmoji':
            isEnd = c === RBRACKET;
            break;
          case 'Underline':
            isEnd = c === UNDERSCORE && next === UNDERSCORE;
            break;
          case 'Strikethrough':
            isEnd = c === TILDE;
            break;
          case 'Spoiler':
            isEnd = c === PIPE && next === PIPE;
            break;
          default:
            isEnd = false;
        }
      }
    }

    if (!isEnd) {
      let type: TdType | undefined;
      let argument = '';
      const entityByteOffset = i;
      if (c === UNDERSCORE) {
        if (next === UNDERSCORE) {
          type = 'Underline';
          i++;
        } else {
          type = 'Italic';
        }
      } else if (c === STAR) {
        type = 'Bold';
      } else if (c === TILDE) {
        type = 'Strikethrough';
      } else if (c === PIPE) {
        if (next !== PIPE) throw reservedError(c);
        i++;
        type = 'Spoiler';
      } else if (c === LBRACKET) {
        type = 'TextUrl';
      } else if (c === BACKTICK) {
        if (next === BACKTICK && t.at(i + 2) === BACKTICK) {
          i += 3;
          type = 'Pre';
          let languageEnd = i;
          while (!isSpace(t.at(languageEnd)) && t.at(languageEnd) !== BACKTICK) languageEnd++;
          if (i !== languageEnd && languageEnd < size && t.at(languageEnd) !== BACKTICK) {
            type = 'PreCode';
            argument = t.str(i, languageEnd);
            i = languageEnd;
          }
          if (t.at(i) === NL || t.at(i) === CR) {
            if ((t.at(i + 1) === NL || t.at(i + 1) === CR) && t.at(i) !== t.at(i + 1)) i += 2;
            else i++;
          }
          i--;
        } else {
          type = 'Code';
        }
      } else if (c === BANG) {
        if (next !== LBRACKET) throw reservedError(c);
        i++;
        type = 'CustomEmoji';
      } else if (c === NL) {
        u16 += 1;
        out.push(NL);
        canStartBlockquote = true;
        type = undefined;
      } else if (c === GT) {
        if (!canStartBlockquote) throw reservedError(c);
        if (haveBlockquote) {
          type = undefined;
        } else {
          type = 'BlockQuote';
          haveBlockquote = true;
        }
      } else {
        throw reservedError(c);
      }
      if (type === undefined) continue;
      nested.push({ type, argument, entityOffset: u16, entityByteOffset, entityBeginPos: out.length });
    } else {
      let current = top as NestedV2;
      let type = current.type;
      if (c === NL && type !== 'BlockQuote') {
        const spoilerRightBefore =
          current.entityByteOffset === i - 2 ||
          (current.entityByteOffset === i - 3 && out.length !== 0 && out[out.length - 1] === CR);
        if (type !== 'Spoiler' || !spoilerRightBefore) throw cantFindEnd(current);
        nested.pop();
        const outer = nested[nested.length - 1];
        if (outer === undefined || outer.type !== 'BlockQuote') throw cantFindEnd(outer ?? current);
        current = outer;
        type = 'ExpandableBlockQuote';
      }
      let argument = current.argument;
      let userId: number | undefined;
      let skip = u16 === current.entityOffset;
      switch (type) {
        case 'Underline':
        case 'Spoiler':
          i++;
          break;
        case 'Pre':
        case 'PreCode':
          i += 2;
          break;
        case 'TextUrl': {
          let url = '';
          if (t.at(i + 1) !== LPAREN) {
            url = dec.decode(Uint8Array.from(out.slice(current.entityBeginPos)));
          } else {
            i += 2;
            const urlBegin = i;
            const urlBytes: number[] = [];
            while (i < size && t.at(i) !== RPAREN) {
              if (t.at(i) === BACKSLASH && t.at(i + 1) > 0 && t.at(i + 1) <= 126) {
                urlBytes.push(t.at(i + 1));
                i += 2;
                continue;
              }
              urlBytes.push(t.at(i));
              i++;
            }
            if (t.at(i) !== RPAREN) throw new MarkupError(`Can't find end of a URL at byte offset ${urlBegin}`);
            url = dec.decode(Uint8Array.from(urlBytes));
          }
          userId = linkUserId(url);
          if (userId === undefined) {
            const checked = checkedLink(url);
            if (checked === '') skip = true;
            else argument = checked;
          }
          break;
        }
        case 'CustomEmoji': {
          if (t.at(i + 1) !== LPAREN) throw new MarkupError('Custom emoji entity must contain a tg://emoji URL');
          i += 2;
          const urlBegin = i;
          while (i < size && t.at(i) !== RPAREN) i++;
          if (t.at(i) !== RPAREN) {
            throw new MarkupError(`Can't find end of a custom emoji URL at byte offset ${urlBegin}`);
          }
          const id = /^tg:\/\/emoji\?(?:.*&)?id=(\d+)/i.exec(t.str(urlBegin, i))?.[1];
          if (id === undefined) throw new MarkupError('Custom emoji URL must have an emoji identifier');
          argument = id;
          break;
        }
        case 'BlockQuote':
        case 'ExpandableBlockQuote':
          haveBlockquote = false;
          out.push(c);
          canStartBlockquote = true;
          u16 += 1;
          skip = false;
          break;
        default:
          break;
      }
      if (!skip) {
        const length = u16 - current.entityOffset;
        if (userId !== undefined) {
          entities.push({ type: 'MentionName', offset: current.entityOffset, length, argument: '', userId });
        } else {
          entities.push({ type, offset: current.entityOffset, length, argument });
        }
      }
      nested.pop();
    }
  }
  if (haveBlockquote) {
    let type: TdType = 'BlockQuote';
    const top = nested[nested.length - 1];
    if (top?.type === 'Spoiler' && top.entityByteOffset === size - 2) {
      nested.pop();
      type = 'ExpandableBlockQuote';
    }
    const quote = nested[nested.length - 1];
    if (quote?.type === 'BlockQuote') {
      const length = u16 - quote.entityOffset;
      if (length !== 0) entities.push({ type, offset: quote.entityOffset, length, argument: '' });
      nested.pop();
    }
  }
  const unclosed = nested[nested.length - 1];
  if (unclosed !== undefined) throw cantFindEnd(unclosed);
  return { text: dec.decode(Uint8Array.from(out)), entities: sortEntities(entities.map(toBotApi)) };
}

// ---------------------------------------------------------------------------------------
// HTML

const HTML_TAGS = new Set([
  'a', 'b', 'strong', 'i', 'em', 's', 'strike', 'del', 'u', 'ins', 'tg-spoiler', 'tg-emoji', 'span', 'pre',
  'code', 'blockquote',
]);

/** TDLib's decode_html_entity: returns [code point, next position] or undefined. */
function decodeHtmlEntity(t: Source, pos: number): [number, number] | undefined {
  let end = pos + 1;
  let res = 0;
  if (t.at(pos + 1) === HASH) {
    end++;
    if (t.at(pos + 2) === ch('x')) {
      end++;
      while (isHexDigit(t.at(end))) {
        res = res * 16 + parseInt(String.fromCharCode(t.at(end)), 16);
        end++;
        if (res > 0x10ffff) res = 0x110000;
      }
    } else {
      while (isDigit(t.at(end))) {
        res = res * 10 + (t.at(end) - 48);
        end++;
        if (res > 0x10ffff) res = 0x110000;
      }
    }
    if (res === 0 || res >= 0x10ffff || end - pos >= 10) return undefined;
  } else {
    while (isAlpha(t.at(end))) end++;
    const name = t.str(pos + 1, end);
    const named: Record<string, number> = { lt: LT, gt: GT, amp: AMP, quot: DQUOTE };
    const code = named[name];
    if (code === undefined) return undefined;
    res = code;
  }
  return [res, t.at(end) === SEMI ? end + 1 : end];
}

const isAlnum = (c: number): boolean => isDigit(c) || isAlpha(c);

interface NestedHtml {
  tag: string;
  argument: string;
  entityOffset: number;
  entityBeginPos: number;
}

function parseHtml(input: string): FormattedText {
  const t = new Source(input);
  const size = t.size;
  const out: number[] = [];
  const entities: TdEntity[] = [];
  const nested: NestedHtml[] = [];
  let u16 = 0;
  let surrogate = false;

  for (let i = 0; i < size; i++) {
    const c = t.at(i);
    if (c === AMP) {
      const decoded = decodeHtmlEntity(t, i);
      if (decoded !== undefined) {
        const [code, nextPos] = decoded;
        i = nextPos - 1;
        u16 += code > 0xffff ? 2 : 1;
        if (code >= 0xd800 && code <= 0xdfff) surrogate = true;
        pushCodePoint(out, code);
        continue;
      }
    }
    if (c !== LT) {
      if (isFirstCodeUnit(c)) u16 += utf16Width(c);
      out.push(c);
      continue;
    }

    const beginPos = i++;
    if (t.at(i) !== SLASH) {
      while (!isSpace(t.at(i)) && t.at(i) !== GT) i++;
      if (t.at(i) === 0) throw new MarkupError(`Unclosed start tag at byte offset ${beginPos}`);
      const tag = t.str(beginPos + 1, i).toLowerCase();
      if (!HTML_TAGS.has(tag)) throw new MarkupError(`Unsupported start tag "${tag}" at byte offset ${beginPos}`);

      let argument = '';
      while (t.at(i) !== GT) {
        while (t.at(i) !== 0 && isSpace(t.at(i))) i++;
        if (t.at(i) === GT) break;
        const attrBegin = i;
        while (
          !isSpace(t.at(i)) && t.at(i) !== EQ && t.at(i) !== GT && t.at(i) !== SLASH && t.at(i) !== DQUOTE &&
          t.at(i) !== SQUOTE
        ) {
          i++;
        }
        const attrName = t.str(attrBegin, i);
        if (attrName === '') {
          throw new MarkupError(`Empty attribute name in the tag "${tag}" at byte offset ${beginPos}`);
        }
        while (t.at(i) !== 0 && isSpace(t.at(i))) i++;
        if (t.at(i) !== EQ) {
          if (t.at(i) === 0) throw new MarkupError(`Unclosed start tag "${tag}" at byte offset ${beginPos}`);
          if (tag === 'blockquote' && attrName === 'expandable') argument = '1';
          continue;
        }
        i++;
        while (t.at(i) !== 0 && isSpace(t.at(i))) i++;
        if (t.at(i) === 0) throw new MarkupError(`Unclosed start tag "${tag}" at byte offset ${beginPos}`);

        let value: string;
        if (t.at(i) !== SQUOTE && t.at(i) !== DQUOTE) {
          const tokenBegin = i;
          while (isAlnum(t.at(i)) || t.at(i) === ch('.') || t.at(i) === ch('-')) i++;
          value = t.str(tokenBegin, i).toLowerCase();
          if (!isSpace(t.at(i)) && t.at(i) !== GT) {
            throw new MarkupError(`Unexpected end of name token at byte offset ${tokenBegin}`);
          }
        } else {
          const endCharacter = t.at(i++);
          const valueBytes: number[] = [];
          while (t.at(i) !== endCharacter && t.at(i) !== 0) {
            if (t.at(i) === AMP) {
              const decoded = decodeHtmlEntity(t, i);
              if (decoded !== undefined) {
                pushCodePoint(valueBytes, decoded[0]);
                i = decoded[1];
                continue;
              }
            }
            valueBytes.push(t.at(i++));
          }
          if (t.at(i) === endCharacter) i++;
          value = dec.decode(Uint8Array.from(valueBytes));
        }
        if (t.at(i) === 0) throw new MarkupError(`Unclosed start tag at byte offset ${beginPos}`);

        if (tag === 'a' && attrName === 'href') argument = value;
        else if (tag === 'code' && attrName === 'class' && value.startsWith('language-')) argument = value.slice(9);
        else if (tag === 'span' && attrName === 'class' && value.startsWith('tg-')) argument = value.slice(3);
        else if (tag === 'tg-emoji' && attrName === 'emoji-id') argument = value;
        else if (tag === 'blockquote' && attrName === 'expandable') argument = '1';
      }
      if (tag === 'span' && argument !== 'spoiler') {
        throw new MarkupError(`Tag "span" must have class "tg-spoiler" at byte offset ${beginPos}`);
      }
      nested.push({ tag, argument, entityOffset: u16, entityBeginPos: out.length });
    } else {
      const top = nested[nested.length - 1];
      if (top === undefined) throw new MarkupError(`Unexpected end tag at byte offset ${beginPos}`);
      while (!isSpace(t.at(i)) && t.at(i) !== GT) i++;
      const endTag = t.str(beginPos + 2, i).toLowerCase();
      while (isSpace(t.at(i)) && t.at(i) !== 0) i++;
      if (t.at(i) !== GT) throw new MarkupError(`Unclosed end tag at byte offset ${beginPos}`);
      const tag = top.tag;
      if (endTag !== '' && endTag !== tag) {
        throw new MarkupError(
          `Unmatched end tag at byte offset ${beginPos}, expected "</${tag}>", found "</${endTag}>"`,
        );
      }
      if (u16 > top.entityOffset) {
        const offset = top.entityOffset;
        const length = u16 - offset;
        const last = entities[entities.length - 1];
        const push = (type: TdType, argument = ''): void => {
          entities.push({ type, offset, length, argument });
        };
        if (tag === 'i' || tag === 'em') push('Italic');
        else if (tag === 'b' || tag === 'strong') push('Bold');
        else if (tag === 's' || tag === 'strike' || tag === 'del') push('Strikethrough');
        else if (tag === 'u' || tag === 'ins') push('Underline');
        else if (tag === 'tg-spoiler' || tag === 'span') push('Spoiler');
        else if (tag === 'tg-emoji') {
          if (!/^[1-9]\d*$/.test(top.argument)) throw new MarkupError('Invalid custom emoji identifier specified');
          push('CustomEmoji', top.argument);
        } else if (tag === 'a') {
          const url = top.argument !== '' ? top.argument : dec.decode(Uint8Array.from(out.slice(top.entityBeginPos)));
          const userId = linkUserId(url);
          if (userId !== undefined) {
            entities.push({ type: 'MentionName', offset, length, argument: '', userId });
          } else {
            const checked = checkedLink(url);
            if (checked !== '') push('TextUrl', checked);
          }
        } else if (tag === 'pre') {
          if (last?.type === 'Code' && last.offset === offset && last.length === length && last.argument !== '') {
            last.type = 'PreCode';
          } else {
            push('Pre');
          }
        } else if (tag === 'code') {
          if (last?.type === 'Pre' && last.offset === offset && last.length === length && top.argument !== '') {
            last.type = 'PreCode';
            last.argument = top.argument;
          } else {
            push('Code', top.argument);
          }
        } else if (tag === 'blockquote') {
          push(top.argument !== '' ? 'ExpandableBlockQuote' : 'BlockQuote');
        }
      }
      nested.pop();
    }
  }
  const unclosed = nested[nested.length - 1];
  if (unclosed !== undefined) {
    throw new MarkupError(`Can't find end tag corresponding to start tag "${unclosed.tag}"`);
  }
  for (const e of entities) if (e.type === 'Code') e.argument = '';
  if (surrogate) {
    throw new MarkupError(
      'Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units',
    );
  }
  return { text: dec.decode(Uint8Array.from(out)), entities: sortEntities(entities.map(toBotApi)) };
}

// ---------------------------------------------------------------------------------------
// Server-side clean-up (TDLib's fix_formatted_text, simplified)

const SPLITTABLE = new Set(['bold', 'italic', 'underline', 'strikethrough', 'spoiler']);
const BLOCKQUOTE = new Set(['blockquote', 'expandable_blockquote']);

/** Characters TDLib drops from every text (\r, U+2028..U+202E, some combining marks). */
function isDropped(code: number): boolean {
  return code === CR || (code >= 0x2028 && code <= 0x202e) || code === 0x0333 || code === 0x033f || code === 0x030a;
}

/**
 * Cleans text the way Telegram does before storing it: control characters become spaces,
 * \r and a few invisible characters are removed, entities are shifted accordingly, empty
 * entities go, and leading/trailing spaces and newlines are trimmed (leading ones only up
 * to the first entity). Returns undefined when nothing but whitespace is left.
 */
export function fixFormattedText(input: FormattedText): FormattedText | undefined {
  const map: number[] = new Array<number>(input.text.length + 1);
  let text = '';
  for (let i = 0; i < input.text.length; i++) {
    map[i] = text.length;
    const code = input.text.charCodeAt(i);
    if (isDropped(code)) continue;
    text += (code < 32 && code !== NL) ? ' ' : input.text[i];
  }
  map[input.text.length] = text.length;
  let entities = input.entities
    .map((e) => {
      const start = map[Math.min(e.offset, input.text.length)] ?? text.length;
      const end = map[Math.min(e.offset + e.length, input.text.length)] ?? text.length;
      return { ...e, offset: start, length: end - start };
    })
    .filter((e) => e.length > 0);

  let last = text.length - 1;
  while (last >= 0 && (text[last] === ' ' || text[last] === '\n')) last--;
  if (last < 0) return undefined;
  // a surrogate pair's trailing half belongs to the last character
  text = text.slice(0, last + 1);
  entities = entities
    .filter((e) => e.offset <= last)
    .map((e) => (e.offset + e.length > last + 1 ? { ...e, length: last + 1 - e.offset } : e));

  const firstEntity = entities.reduce((min, e) => Math.min(min, e.offset), text.length);
  let first = 0;
  while (first < firstEntity && (text[first] === ' ' || text[first] === '\n')) first++;
  if (first > 0) {
    text = text.slice(first);
    entities = entities.map((e) => ({ ...e, offset: e.offset - first }));
  }
  return { text, entities: sortEntities(entities) };
}

/**
 * Telegram's automatic entities (a subset): bot commands, @mentions, #hashtags and
 * http(s) URLs. New entities never overlap existing non-splittable ones.
 */
export function addDetectedEntities(formatted: FormattedText): FormattedText {
  const { text } = formatted;
  const found: FakeEntity[] = [];
  const scan = (re: RegExp, type: string, trim?: (s: string) => string): void => {
    for (const m of text.matchAll(re)) {
      const value = trim ? trim(m[0]) : m[0];
      if (value.length > 0 && m.index !== undefined) found.push({ type, offset: m.index, length: value.length });
    }
  };
  scan(/(?<![\p{L}\p{N}_/<>])\/[a-zA-Z0-9_]{1,64}(?:@[a-zA-Z0-9_]{3,32})?(?![\p{L}\p{N}_/<>@])/gu, 'bot_command');
  scan(/(?<![\p{L}\p{N}_])@[a-zA-Z0-9_]{2,32}(?![\p{L}\p{N}_])/gu, 'mention');
  scan(/(?<![\p{L}\p{N}_#])#[\p{L}\p{N}_]*\p{L}[\p{L}\p{N}_]*(?![\p{L}\p{N}_]*#)/gu, 'hashtag');
  scan(/\bhttps?:\/\/[^\s<>"]+/giu, 'url', (s) => s.replace(/[.,;:!?'")\]]+$/u, ''));

  const blocking = formatted.entities.filter((e) => !SPLITTABLE.has(e.type) && !BLOCKQUOTE.has(e.type));
  const overlaps = (a: FakeEntity, b: FakeEntity): boolean =>
    a.offset < b.offset + b.length && b.offset < a.offset + a.length;
  const accepted: FakeEntity[] = [];
  for (const e of found.sort((a, b) => a.offset - b.offset)) {
    if (blocking.some((b) => overlaps(b, e)) || accepted.some((b) => overlaps(b, e))) continue;
    accepted.push(e);
  }
  return { text, entities: sortEntities([...formatted.entities, ...accepted]) };
}

export type ParseMode = 'Markdown' | 'MarkdownV2' | 'HTML';

/**
 * Parses text in a Bot API parse_mode (case-insensitive; '' or undefined = none) into
 * plain text and entities, before the server-side clean-up. Throws MarkupError when
 * Telegram would refuse the markup, or Error('unsupported parse_mode').
 */
export function parseMarkup(text: string, parseMode: string | undefined): FormattedText {
  const mode = (parseMode ?? '').toLowerCase();
  if (mode === '' || mode === 'none') return { text, entities: [] };
  if (mode === 'markdown') return parseMarkdownLegacy(text);
  if (mode === 'markdownv2') return parseMarkdownV2(text);
  if (mode === 'html') return parseHtml(text);
  throw new Error('unsupported parse_mode');
}
