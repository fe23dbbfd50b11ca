/**
 * Silencing straight from the chat: the buttons under every alert (Snooze 1h, Snooze 1d,
 * Mute this script, and Undo), /mute <duration> and /unmute for everything, the state
 * /status shows. The digest that releases alerts held during quiet hours is in
 * ../delivery/digests.ts.
 */
import { Composer, type Context } from 'grammy';
import type { InlineKeyboardButton } from 'grammy/types';
import { type AlertRulesStore, formatLocalTime, inQuietHours } from '../../shared/alertRules.js';
import type { Clock } from '../../shared/clock.js';
import { parseDurationMs } from '../../shared/units.js';
import type { LinkStore } from '../../shared/linking.js';
import type { Logger } from '../../shared/logger.js';
import { alertKeyboard, parseCallbackData, pressOffered, type ScriptKeys, undoKeyboard } from './alertKeyboard.js';
import type { Notifier } from '../delivery/notifier.js';
import type { StatusExtras } from './scriptCommands.js';

/** What the alert commands need. */
export interface AlertCommandDeps {
  links: LinkStore;
  rules: AlertRulesStore;
  scriptKeys: ScriptKeys;
  notifier: Notifier;
  clock: Clock;
  log: Logger;
}

// 🔕 or 🔔, escaped: a character beyond Latin-1 in the built code makes V8 keep the whole
// bundle's source in two bytes a character.
const STATUS_MARK = /\n\n(\u{1F515}|\u{1F514}) [^\n]*$/u;

/** The /status lines for a user's rules. */
export function rulesStatus(rules: AlertRulesStore, clock: Clock): StatusExtras {
  return async (user) => {
    const r = await rules.forUser(user);
    const tz = r.quiet_hours?.tz ?? 'UTC';
    const header: string[] = [];
    const now = clock.now();
    if (r.muted_until) header.push(`🔕 All alerts muted until ${formatLocalTime(Date.parse(r.muted_until), tz)} (/unmute to end it)`);
    if (r.quiet_hours) header.push(`🌙 Quiet hours ${r.quiet_hours.start}-${r.quiet_hours.end} ${r.quiet_hours.tz}${inQuietHours(r.quiet_hours, now) ? ' (now: alerts are held for a digest)' : ''}`);
    const perScript = new Map<string, string>();
    for (const [name, s] of Object.entries(r.scripts)) {
      if (s.muted) perScript.set(name, '🔕 muted until you unmute it');
      else if (s.snoozed_until) perScript.set(name, `🔕 snoozed until ${formatLocalTime(Date.parse(s.snoozed_until), tz)}`);
    }
    return { header, perScript };
  };
}

/**
 * Shows what a button did under the alert it belongs to (one status line replacing the
 * previous one) and swaps its keyboard; a text too long for Telegram keeps only the new keyboard.
 */
export async function editAlertStatus(ctx: Context, line: string, markup: { inline_keyboard: InlineKeyboardButton[][] } | undefined, log: Logger): Promise<void> {
  const msg = ctx.callbackQuery?.message;
  if (!msg) return;
  const isCaption = msg.caption !== undefined || msg.photo !== undefined;
  const original = (isCaption ? msg.caption : msg.text) ?? '';
  const base = original.replace(STATUS_MARK, '');
  const entities = ((isCaption ? msg.caption_entities : msg.entities) ?? []).filter((e) => e.offset + e.length <= base.length);
  const text = `${base}\n\n${line}`;
  const limit = isCaption ? 1024 : 4096;
  try {
    if (text.length > limit) await ctx.editMessageReplyMarkup(markup ? { reply_markup: markup } : {});
    else if (isCaption) await ctx.editMessageCaption({ caption: text, caption_entities: entities, ...(markup ? { reply_markup: markup } : {}) });
    else await ctx.editMessageText(text, { entities, ...(markup ? { reply_markup: markup } : {}) });
  } catch (err) {
    log.warn({ err }, 'could not edit the alert message');
  }
}

/** Builds the alert buttons' handlers and /mute, /unmute. */
export function alertCommands(deps: AlertCommandDeps): Composer<Context> {
  const c = new Composer<Context>();

  async function editWithStatus(ctx: Context, line: string, script: string, user: string, undoLabel: string | null): Promise<void> {
    await editAlertStatus(ctx, line, undoLabel ? undoKeyboard(script, user, undoLabel) : undefined, deps.log);
  }

  c.callbackQuery(/^(sn1h|sn1d|mute|undo)[:#]/, async (ctx) => {
    const user = await deps.links.userOfChat(ctx.chat?.id ?? 0);
    const parsed = parseCallbackData(ctx.callbackQuery.data);
    if (!user || !parsed) {
      await ctx.answerCallbackQuery({ text: 'This chat is not linked.' });
      return;
    }
    const script = parsed.script ?? (parsed.key ? await deps.scriptKeys.resolve(user, parsed.key) : null);
    if (!script) {
      await ctx.answerCallbackQuery({ text: 'Unknown script.' });
      return;
    }
    if (!pressOffered(ctx.callbackQuery, script)) {
      deps.log.warn({ user, chat: ctx.chat?.id, data: ctx.callbackQuery.data }, 'refused a button press with data the bot did not offer on that message');
      await ctx.answerCallbackQuery({ text: 'This button is not one the bot sent here; nothing was changed.' });
      return;
    }
    const tz = (await deps.rules.forUser(user)).quiet_hours?.tz ?? 'UTC';
    const now = deps.clock.now();
    let line: string;
    let undo: string | null;
    if (parsed.action === 'sn1h' || parsed.action === 'sn1d') {
      const until = now + (parsed.action === 'sn1h' ? 3_600_000 : 86_400_000);
      await deps.rules.snooze(user, script, until);
      line = `🔕 Snoozed until ${formatLocalTime(until, tz)}${parsed.action === 'sn1d' ? ` ${new Date(until).toISOString().slice(0, 10)}` : ''}`;
      undo = 'Unsnooze';
    } else if (parsed.action === 'mute') {
      await deps.rules.mute(user, script);
      line = `🔕 ${script} muted until you unmute it`;
      undo = 'Unmute';
    } else {
      await deps.rules.unmuteScript(user, script);
      line = `🔔 ${script} alerts are on again`;
      undo = null;
    }
    deps.log.info({ user, script, action: parsed.action }, 'alert rule changed from Telegram');
    await ctx.answerCallbackQuery({ text: line.replace(/^\S+ /u, '') });
    await editWithStatus(ctx, line, script, user, undo);
    if (!undo) {
      // Back to the full set of buttons.
      await ctx.editMessageReplyMarkup({ reply_markup: alertKeyboard(script, user) }).catch(() => undefined);
    }
  });

  c.command('mute', async (ctx) => {
    const user = await deps.links.userOfChat(ctx.chat.id);
    if (!user) return;
    const arg = (typeof ctx.match === 'string' ? ctx.match : '').trim();
    const ms = arg ? parseDurationMs(arg) : null;
    if (!ms || ms < 60_000) {
      await ctx.reply('Usage: /mute <duration>, for example /mute 2h, /mute 30m or /mute 1d. /unmute ends it.');
      return;
    }
    const until = deps.clock.now() + ms;
    await deps.rules.muteAll(user, until);
    const tz = (await deps.rules.forUser(user)).quiet_hours?.tz ?? 'UTC';
    await ctx.reply(`🔕 All alerts muted until ${formatLocalTime(until, tz)}${ms >= 86_400_000 ? ` ${new Date(until).toISOString().slice(0, 10)}` : ''}. Muted alerts are not sent but stay in your run history. /unmute to end it.`);
  });

  c.command('unmute', async (ctx) => {
    const user = await deps.links.userOfChat(ctx.chat.id);
    if (!user) return;
    await deps.rules.unmuteAll(user);
    await ctx.reply('🔔 Alerts are on again: every mute and snooze is cleared.');
  });

  return c;
}
