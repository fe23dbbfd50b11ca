/**
 * The buttons under every script alert (Snooze 1h, Snooze 1d, Mute this script, Run now)
 * and their callback data. Telegram allows 64 bytes of callback data, so a long script
 * name travels as a short key that the bot maps back (script_keys.json).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { InlineKeyboardButton } from 'grammy/types';
import { type SharedDocument, sharedDocument } from '../../shared/documents.js';

const MAX_CALLBACK_BYTES = 64;

/** A short stable key for a script name (the same name of two analysts gets two keys). */
export function scriptKey(script: string, user = ''): string {
  return createHash('sha256').update(`${user}\0${script}`).digest('base64url').slice(0, 16);
}

/** Button actions on an alert. */
export type AlertAction = 'sn1h' | 'sn1d' | 'mute' | 'undo' | 'run';

/** Callback data for an action on a script: `<action>:<name>`, or `<action>#<key>` when too long. */
export function callbackData(action: AlertAction, script: string, user = ''): string {
  const plain = `${action}:${script}`;
  return Buffer.byteLength(plain) <= MAX_CALLBACK_BYTES ? plain : `${action}#${scriptKey(script, user)}`;
}

/** Parses callback data into action and script name or key. */
export function parseCallbackData(data: string): { action: AlertAction; script?: string; key?: string } | null {
  const m = /^(sn1h|sn1d|mute|undo|run)([:#])(.+)$/.exec(data);
  if (!m) return null;
  const action = m[1] as AlertAction;
  return m[2] === ':' ? { action, script: m[3]! } : { action, key: m[3]! };
}

/**
 * Whether a button press carries data the bot offered: the pressed message's keyboard has a
 * button with exactly this data. Telegram passes whatever data a client sends, so data
 * made up by a client (or copied from another chat's message) is refused. A message too
 * old for Telegram to show (48 h) has no keyboard to compare with; its data must still
 * name a script in the shape a script file name has.
 */
export function pressOffered(query: { data?: string; message?: { date: number; reply_markup?: { inline_keyboard: InlineKeyboardButton[][] } } } | undefined, script: string | null): boolean {
  const data = query?.data;
  if (data === undefined || !query?.message) return false;
  if (script !== null && !isScriptName(script)) return false;
  if (query.message.date === 0) return true;
  return (query.message.reply_markup?.inline_keyboard ?? []).some((row) => row.some((b) => 'callback_data' in b && b.callback_data === data));
}

/** A script file name: one path component, printable, at most 255 bytes. */
export function isScriptName(name: string): boolean {
  // eslint-disable-next-line no-control-regex
  return name !== '' && name !== '.' && name !== '..' && Buffer.byteLength(name) <= 255 && !/[/\u0000-\u001f\u007f]/.test(name);
}

/** The keyboard under a fresh alert. */
export function alertKeyboard(script: string, user: string): { inline_keyboard: InlineKeyboardButton[][] } {
  return {
    inline_keyboard: [
      [
        { text: 'Snooze 1h', callback_data: callbackData('sn1h', script, user) },
        { text: 'Snooze 1d', callback_data: callbackData('sn1d', script, user) },
      ],
      [
        { text: 'Mute this script', callback_data: callbackData('mute', script, user) },
        { text: 'Run now', callback_data: callbackData('run', script, user) },
      ],
    ],
  };
}

/** The keyboard after a snooze or mute: undo it, or run the script now. */
export function undoKeyboard(script: string, user: string, undoLabel: string): { inline_keyboard: InlineKeyboardButton[][] } {
  return {
    inline_keyboard: [
      [
        { text: undoLabel, callback_data: callbackData('undo', script, user) },
        { text: 'Run now', callback_data: callbackData('run', script, user) },
      ],
    ],
  };
}

/**
 * Buttons under an alert in a team chat act on that chat only (Snooze 1h, Snooze 1d, Mute
 * here; Undo). The chat has no single analyst, so the data always carries the key of
 * sender and script: `t<action>#<key>`.
 */
export type TeamAlertAction = 'sn1h' | 'sn1d' | 'mute' | 'undo';

/** Callback data of a team chat button. */
export function teamCallbackData(action: TeamAlertAction, script: string, sender: string): string {
  return `t${action}#${scriptKey(script, sender)}`;
}

/** Parses team chat callback data. */
export function parseTeamCallbackData(data: string): { action: TeamAlertAction; key: string } | null {
  const m = /^t(sn1h|sn1d|mute|undo)#([A-Za-z0-9_-]{16})$/.exec(data);
  return m ? { action: m[1] as TeamAlertAction, key: m[2]! } : null;
}

/** The keyboard under a fresh alert in a team chat. */
export function teamAlertKeyboard(script: string, sender: string): { inline_keyboard: InlineKeyboardButton[][] } {
  return {
    inline_keyboard: [
      [
        { text: 'Snooze 1h here', callback_data: teamCallbackData('sn1h', script, sender) },
        { text: 'Snooze 1d here', callback_data: teamCallbackData('sn1d', script, sender) },
      ],
      [{ text: 'Mute here', callback_data: teamCallbackData('mute', script, sender) }],
    ],
  };
}

/** The keyboard of a team alert after a snooze or mute: undo it. */
export function teamUndoKeyboard(script: string, sender: string, undoLabel: string): { inline_keyboard: InlineKeyboardButton[][] } {
  return { inline_keyboard: [[{ text: undoLabel, callback_data: teamCallbackData('undo', script, sender) }]] };
}

/** Callback data of the "Resolved" label button (it only answers that the alert is over). */
export const RESOLVED_CALLBACK = 'resolved';
/** The answer to a press of it. */
export const RESOLVED_REPLY = 'This alert is resolved: its condition cleared.';

/**
 * The keyboard of an alert whose condition cleared: snoozing it is moot, running it is not
 * (in the analyst's own chat; a team chat's alerts have no Run button).
 */
export function resolvedKeyboard(script: string, user: string, teamChat = false): { inline_keyboard: InlineKeyboardButton[][] } {
  const label = { text: '✅ Resolved', callback_data: RESOLVED_CALLBACK };
  return { inline_keyboard: [teamChat ? [label] : [label, { text: 'Run now', callback_data: callbackData('run', script, user) }]] };
}

const KeysSchema = z.record(z.string(), z.object({ user: z.string(), script: z.string() }));

/** Remembers which script a short key stands for. */
export class ScriptKeys {
  private readonly file: SharedDocument<z.infer<typeof KeysSchema>>;
  private readonly known = new Set<string>();

  constructor(dataDir: string) {
    this.file = sharedDocument(dataDir, 'script_keys.json', KeysSchema, () => ({}));
  }

  /**
   * Records the key of a long script name (no-op for names that fit, unless `always`:
   * team chat buttons always travel as keys).
   */
  async remember(user: string, script: string, always = false): Promise<void> {
    if (!always && Buffer.byteLength(`sn1h:${script}`) <= MAX_CALLBACK_BYTES) return;
    const key = scriptKey(script, user);
    if (this.known.has(`${user}/${key}`)) return;
    await this.file.update((all) => (all[key]?.user === user ? { result: undefined } : { next: { ...all, [key]: { user, script } }, result: undefined }));
    this.known.add(`${user}/${key}`);
  }

  /** Whose script a key stands for, and which, or null. */
  async lookup(key: string): Promise<{ user: string; script: string } | null> {
    return (await this.file.read())[key] ?? null;
  }

  /** The script name of a key for a user, or null. */
  async resolve(user: string, key: string): Promise<string | null> {
    const entry = (await this.file.read())[key];
    return entry && entry.user === user ? entry.script : null;
  }
}
