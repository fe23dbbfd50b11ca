/**
 * Many chats sending /start at once, against the real bot and the fake Telegram: what the
 * flood test and bench/start-flood share. The chats' messages all wait in Telegram before the
 * bot fetches them, as when a link to the bot is posted to a large audience.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CODE_TTL_SECONDS } from '../../src/shared/linking.js';
import { type BotHarness, textOf } from './botHarness.js';

/** The code in the bot's answer to /start. */
export const CODE_RE = /Your link code: \*?(\d{6})/;

/** `count` chat ids from `first` on. */
export function floodChats(count: number, first = 700_001): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

/** Every chat sends /start. */
export function sendStarts(h: BotHarness, chats: readonly number[]): void {
  for (const c of chats) h.fake.sendUserMessage(c, '/start');
}

/** How many of the chats have an answer (one pass over what was sent: the fake shares the process). */
export function answered(h: BotHarness, chats: readonly number[]): number {
  const got = new Set(h.fake.sentMessages().map((m) => m.chat_id));
  return chats.filter((c) => got.has(c)).length;
}

/** What the bot sent each chat, in order, in one pass. */
function textsByChat(h: BotHarness): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const m of h.fake.sentMessages()) out.set(m.chat_id, [...(out.get(m.chat_id) ?? []), textOf(m)]);
  return out;
}

/**
 * Checks pending_codes.json against the answers: the file is the contract's shape (6-digit
 * keys, an integer chat_id and created_at no older than a code lives), holds exactly one code
 * per chat, and that code is the one in the chat's last answer. Returns the problems found
 * (at most `max`), empty when all is well.
 */
export function codeProblems(h: BotHarness, chats: readonly number[], max = 10): string[] {
  const problems: string[] = [];
  const stored = JSON.parse(readFileSync(join(h.dataDir, 'pending_codes.json'), 'utf8')) as Record<string, unknown>;
  const nowSec = Math.floor(Date.now() / 1000);
  const byChat = new Map<number, string[]>();
  for (const [code, entry] of Object.entries(stored)) {
    const e = entry as { chat_id?: unknown; created_at?: unknown };
    if (!/^\d{6}$/.test(code)) problems.push(`key ${JSON.stringify(code)} is not 6 digits`);
    if (typeof e !== 'object' || e === null || !Number.isSafeInteger(e.chat_id) || !Number.isSafeInteger(e.created_at)) {
      problems.push(`code ${code}: ${JSON.stringify(entry)} is not {"chat_id": <int>, "created_at": <unix seconds>}`);
      continue;
    }
    if (nowSec - (e.created_at as number) >= CODE_TTL_SECONDS || (e.created_at as number) > nowSec + 5) problems.push(`code ${code}: created_at ${String(e.created_at)} is not a live code's`);
    byChat.set(e.chat_id as number, [...(byChat.get(e.chat_id as number) ?? []), code]);
  }
  const sent = textsByChat(h);
  for (const c of chats) {
    const texts = sent.get(c) ?? [];
    const last = texts.at(-1);
    const code = last === undefined ? undefined : CODE_RE.exec(last)?.[1];
    const codes = byChat.get(c) ?? [];
    if (!code) problems.push(`chat ${c} got no code: ${JSON.stringify(texts)}`);
    else if (codes.length !== 1 || codes[0] !== code) problems.push(`chat ${c} was told ${code}, the file holds ${JSON.stringify(codes)} for it`);
    if (problems.length >= max) break;
  }
  const asked = new Set(chats);
  const extra = [...byChat.keys()].filter((c) => !asked.has(c));
  if (extra.length > 0) problems.push(`codes for chats that did not ask: ${extra.slice(0, 5).join(', ')}`);
  return problems.slice(0, max);
}
