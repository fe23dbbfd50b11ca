/**
 * The bot's command menu (what Telegram shows under "/"), the /help text built from it so
 * the two never disagree, and the answers for everything no handler took: free text and
 * unknown commands in a linked chat, and buttons nothing recognises any more.
 */
import { Composer, type Context } from 'grammy';
import { CorruptFileError } from '../../shared/jsonFile.js';
import type { Logger } from '../../shared/logger.js';
import { RESOLVED_CALLBACK, RESOLVED_REPLY } from './alertKeyboard.js';

/** The answer in a chat while a data file the bot needs cannot be read. */
export const CANNOT_SERVE_REPLY = 'Sorry, I cannot serve you right now: a data file of the notification service needs repair. The operator has been told; please try again later.';

/**
 * Register first: while a shared data file cannot be read (e.g. telegram_users.json was
 * damaged), a command gets an answer saying the bot cannot serve it now, and the operator
 * an error in the log, instead of silence.
 */
export function unreadableDataNotice(log: Logger): Composer<Context> {
  const c = new Composer<Context>();
  c.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!(err instanceof CorruptFileError)) throw err;
      log.error({ err, chat: ctx.chat?.id }, 'a data file the bot needs is unreadable; the chat was told the bot cannot serve it now');
      if (ctx.callbackQuery) await ctx.answerCallbackQuery({ text: CANNOT_SERVE_REPLY }).catch(() => undefined);
      else if (ctx.chat) await ctx.reply(CANNOT_SERVE_REPLY).catch((e: unknown) => log.warn({ err: e }, 'could not tell the chat'));
    }
  });
  return c;
}

/** The commands shown in Telegram's menu, in its order. */
export const BOT_COMMANDS = [
  { command: 'start', description: 'Link this chat to your server account' },
  { command: 'status', description: 'Your scripts and their last runs' },
  { command: 'test', description: 'Send a sample report' },
  { command: 'mute', description: 'Mute all alerts for a while, e.g. /mute 2h' },
  { command: 'unmute', description: 'End every mute and snooze' },
  { command: 'whoami', description: 'Which account this chat is linked to' },
  { command: 'help', description: 'What I can do' },
  { command: 'unlink', description: 'Stop notifications to this chat' },
] as const;

/** Wraps a name for legacy Markdown so `_` and `*` in it stay literal. */
export function code(text: string): string {
  return `\`${text.replace(/`/g, "'")}\``;
}

/** Text of /help for a linked chat: every menu command but /start (the chat is linked). */
export function helpText(username: string): string {
  return [
    `*Notifications for* ${code(username)}`,
    '',
    'Put scripts in `~/user/notifications/` on the server; the runner in your crontab runs them and I send what they report.',
    '',
    ...BOT_COMMANDS.filter((c) => c.command !== 'start').map((c) => `/${c.command} - ${c.description}`),
  ].join('\n');
}

/** The answer to free text in a linked chat. */
export const FREE_TEXT_REPLY = 'I only understand commands. Send /help to see them.';

/** The answer to a command the bot does not have. */
export function unknownCommandReply(command: string): string {
  return `Unknown command ${command}. Send /help to see what I can do.`;
}

/** The answer to a button no handler recognises (an old message's, or one of a removed feature). */
export const STALE_BUTTON_REPLY = 'This button no longer works. Send /status for fresh ones.';

/** Answers whatever reached it: register it after every other handler. */
export function fallbackReplies(): Composer<Context> {
  const c = new Composer<Context>();
  c.on('message', async (ctx) => {
    // In a group, people talk to each other: only commands addressed to the bot get here,
    // and only private chats are answered for what the bot does not know.
    if (ctx.chat.type !== 'private') return;
    const text = ctx.message.text ?? ctx.message.caption;
    const command = text?.startsWith('/') ? /^\/[^\s@]*/.exec(text)?.[0] : undefined;
    await ctx.reply(command !== undefined && command.length > 1 ? unknownCommandReply(command.slice(0, 40)) : FREE_TEXT_REPLY);
  });
  c.callbackQuery(RESOLVED_CALLBACK, async (ctx) => {
    await ctx.answerCallbackQuery({ text: RESOLVED_REPLY });
  });
  c.on('callback_query', async (ctx) => {
    await ctx.answerCallbackQuery({ text: STALE_BUTTON_REPLY });
  });
  return c;
}
