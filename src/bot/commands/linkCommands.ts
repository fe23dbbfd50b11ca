/**
 * The Telegram side of linking: /start (a code, or a one-tap deep link from the dashboard),
 * /whoami, /unlink, /help, and the one answer every other message from an unlinked chat
 * gets.
 */
import { Composer, type Context } from 'grammy';
import type { Clock } from '../../shared/clock.js';
import { CODE_TTL_SECONDS, type LinkStore } from '../../shared/linking.js';
import { LINK_TOKEN_RE, type LinkTokenStore } from '../../shared/linkTokens.js';
import type { Logger } from '../../shared/logger.js';
import { welcomeMessage } from '../../shared/welcome.js';
import type { Notifier } from '../delivery/notifier.js';
import { relativeTime, shortUtc } from '../format/textBuilder.js';
import { code, helpText } from './menu.js';

export { code, helpText } from './menu.js';

/** The exact answer to anything but /start in an unlinked chat. */
export const UNLINKED_REPLY = 'Use /start to link your account.';

/** What the link commands need. */
export interface LinkCommandDeps {
  links: LinkStore;
  linkTokens: LinkTokenStore;
  notifier: Notifier;
  log: Logger;
  /** The dashboard's address, shown in instructions. */
  publicUrl: string;
  clock: Clock;
}

/** Builds the linking handlers. Register them before the linked-chat commands. */
export function linkCommands(deps: LinkCommandDeps): Composer<Context> {
  const c = new Composer<Context>();

  async function sendCode(ctx: Context, chatId: number, preface?: string): Promise<void> {
    const issued = await deps.links.issueCode(chatId);
    const minutes = Math.round(CODE_TTL_SECONDS / 60);
    await ctx.reply(
      `${preface ? `${preface}\n\n` : ''}Your link code: *${issued}*\n\nEnter it in the "Telegram Notifications" card on the dashboard (${deps.publicUrl}). It is valid for ${minutes} minutes and works once.`,
      { parse_mode: 'Markdown' },
    );
  }

  c.command('start', async (ctx) => {
    const chatId = ctx.chat.id;
    const linked = await deps.links.userOfChat(chatId);
    const payload = typeof ctx.match === 'string' ? ctx.match.trim() : '';
    if (linked) {
      await ctx.reply(`This chat is linked to the server account ${code(linked)}. Send /help to see what I can do, or /unlink to stop.`, { parse_mode: 'Markdown' });
      return;
    }
    if (payload !== '' && LINK_TOKEN_RE.test(payload)) {
      const username = await deps.linkTokens.consume(payload);
      if (username) {
        await deps.links.linkChat(username, chatId);
        deps.log.info({ user: username, chat: chatId }, 'linked by deep link');
        await ctx.reply(`Linked: this chat now receives notifications for ${code(username)}.`, { parse_mode: 'Markdown' });
        const welcome = welcomeMessage(username);
        await deps.notifier
          .submit({ user: username, content: { title: welcome.title, message: welcome.message }, bypassRules: true }, { respondAsync: true, waitMs: 0 })
          .catch((err: unknown) => deps.log.error({ err, user: username }, 'could not queue the welcome message'));
        return;
      }
      await sendCode(ctx, chatId, 'That link has expired or was already used.');
      return;
    }
    await sendCode(ctx, chatId);
  });

  // Every other message from an unlinked chat gets the same answer; linked chats go on.
  c.on(['message', 'callback_query'], async (ctx, next) => {
    const chatId = ctx.chat?.id;
    if (chatId === undefined) {
      if (ctx.callbackQuery) await ctx.answerCallbackQuery({ text: UNLINKED_REPLY });
      return;
    }
    const linked = await deps.links.userOfChat(chatId);
    if (!linked) {
      if (ctx.callbackQuery) await ctx.answerCallbackQuery({ text: UNLINKED_REPLY });
      else await ctx.reply(UNLINKED_REPLY);
      return;
    }
    await next();
  });

  c.command('whoami', async (ctx) => {
    const user = await deps.links.userOfChat(ctx.chat.id);
    if (!user) return;
    const link = await deps.links.linkOf(user);
    const since = link ? ` since ${shortUtc(link.linked_at)} (${relativeTime(link.linked_at, deps.clock.now())})` : '';
    await ctx.reply(`This chat is linked to the server account ${code(user)}${since}.`, { parse_mode: 'Markdown' });
  });

  c.command('help', async (ctx) => {
    const user = await deps.links.userOfChat(ctx.chat.id);
    if (user) await ctx.reply(helpText(user), { parse_mode: 'Markdown' });
  });

  c.command('unlink', async (ctx) => {
    const user = await deps.links.unlinkChat(ctx.chat.id);
    if (user) {
      deps.log.info({ user, chat: ctx.chat.id }, 'unlinked from Telegram');
      await ctx.reply(`Unlinked: this chat no longer receives notifications for ${code(user)}. Send /start to link again.`, { parse_mode: 'Markdown' });
    }
  });

  return c;
}
