/**
 * The bot in groups and channels (team chats): /start from an administrator gives the code
 * that links the group on the dashboard (for that administrator only), /help says what the group is for, the buttons under a team alert act
 * only for the sender of the alert or the chat's owner, and the bot being removed from or
 * added back to a group updates the link and tells its analysts. Nothing else said in a
 * group gets an answer: a team's conversation is not the bot's business.
 */
import { Composer, type Context } from 'grammy';
import type { User } from 'grammy/types';
import { formatLocalTime } from '../../shared/alertRules.js';
import type { Clock } from '../../shared/clock.js';
import { CODE_TTL_SECONDS, type LinkStore } from '../../shared/linking.js';
import type { Logger } from '../../shared/logger.js';
import type { TeamChatStore } from '../../shared/teamChats.js';
import type { Notifier } from '../delivery/notifier.js';
import { editAlertStatus } from './alertCommands.js';
import { parseTeamCallbackData, RESOLVED_CALLBACK, RESOLVED_REPLY, type ScriptKeys, teamAlertKeyboard, teamUndoKeyboard } from './alertKeyboard.js';
import { code } from './menu.js';

/** What the team chat handlers need. */
export interface TeamCommandDeps {
  links: LinkStore;
  teams: TeamChatStore;
  scriptKeys: ScriptKeys;
  notifier: Notifier;
  log: Logger;
  clock: Clock;
  /** The dashboard's address, shown in instructions. */
  publicUrl: string;
}

/** Telegram allows 200 characters in a button's answer. */
function answerText(text: string): string {
  return text.length <= 200 ? text : `${text.slice(0, 199)}…`;
}

function personName(user: User | undefined): string {
  if (!user) return 'someone';
  const name = [user.first_name, user.last_name].filter(Boolean).join(' ');
  return user.username ? `${name} (@${user.username})` : name;
}

/** The code answer to /start in a group that is not linked yet; `forWhom` names who may enter it. */
export function groupCodeText(issued: string, publicUrl: string, forWhom: string): string {
  const minutes = Math.round(CODE_TTL_SECONDS / 60);
  return (
    `Link code for this group: *${issued}*\n\n` +
    `To post script alerts here, ${forWhom} enters it on the dashboard (${publicUrl}) under "Team chats", with a name for the group such as finance-alerts, ` +
    `signed in with the account their own Telegram is linked to. They own the team chat and decide which analysts may send here. The code is valid for ${minutes} minutes and works once.`
  );
}

/** The user Telegram names as the sender when an administrator writes as the group. */
const GROUP_ANONYMOUS_BOT_ID = 1087968824;

/**
 * Who may link this group with the code a /start gives: the administrator who sent it (by
 * their Telegram user id, which is also the id of their private chat with the bot). When
 * the sender is not known (an administrator writing as the group, a channel post), every
 * administrator of the chat. Null, with the answer to give, when nobody may.
 */
async function groupLinkers(ctx: Context): Promise<{ ids: number[]; forWhom: string } | { refuse: string }> {
  const from = ctx.from;
  const anonymous = !from || from.id === GROUP_ANONYMOUS_BOT_ID || ctx.senderChat !== undefined;
  if (!anonymous) {
    const member = await ctx.getChatMember(from.id);
    if (member.status !== 'creator' && member.status !== 'administrator') {
      return { refuse: 'Only an administrator of this group can link it to the notifications dashboard: ask one to send /start here. Nothing was changed.' };
    }
    return { ids: [from.id], forWhom: code(personName(from)) };
  }
  const admins = await ctx.getChatAdministrators();
  const ids = admins.filter((a) => !a.user.is_bot).map((a) => a.user.id);
  if (ids.length === 0) return { refuse: 'This chat has no administrator I can see, so nobody can link it. Nothing was changed.' };
  return { ids, forWhom: 'one of its administrators' };
}

/** Builds the handlers for groups and channels. Register them before the linking handlers. */
export function teamCommands(deps: TeamCommandDeps): Composer<Context> {
  const c = new Composer<Context>();
  const groups = c.filter((ctx) => ctx.chat !== undefined && ctx.chat.type !== 'private');

  /** Tells the owner and the named members of a team chat (their own chats, or desktops). */
  async function tell(name: string, recipients: readonly string[], message: string): Promise<void> {
    for (const user of new Set(recipients)) {
      try {
        const res = await deps.notifier.submit({ user, content: { title: `Team chat ${name}`, message, parseMode: 'plain' }, bypassRules: true }, { respondAsync: true, waitMs: 0 });
        if (res.status === 404) deps.log.info({ user, team: name }, 'could not tell the analyst about their team chat: no channel takes it');
      } catch (err) {
        deps.log.warn({ err, user, team: name }, 'could not tell the analyst about their team chat');
      }
    }
  }

  groups.command('start', async (ctx) => {
    const name = await deps.teams.nameOfChat(ctx.chat.id);
    if (name) {
      const team = await deps.teams.get(name);
      await ctx.reply(
        `This group is the team chat ${code(name)}, linked by ${code(team?.owner ?? '?')}. Analysts its owner allows post here with \`notify --to ${name}\` or "to": ["${name}"] in a script's output.`,
        { parse_mode: 'Markdown' },
      );
      return;
    }
    let linkers: Awaited<ReturnType<typeof groupLinkers>>;
    try {
      linkers = await groupLinkers(ctx);
    } catch (err) {
      deps.log.warn({ err, chat: ctx.chat.id }, 'could not ask Telegram who administers a group; no link code issued');
      await ctx.reply('I could not check with Telegram who administers this group, so I gave no link code. Send /start again in a minute.');
      return;
    }
    if ('refuse' in linkers) {
      deps.log.info({ chat: ctx.chat.id }, 'link code refused in a group: /start from a member who does not administer it');
      await ctx.reply(linkers.refuse);
      return;
    }
    const title = 'title' in ctx.chat && typeof ctx.chat.title === 'string' ? ctx.chat.title : undefined;
    const issued = await deps.links.issueCode(ctx.chat.id, { ...(title ? { title } : {}), linkers: linkers.ids });
    deps.log.info({ chat: ctx.chat.id, linkers: linkers.ids.length }, 'link code issued for a group');
    await ctx.reply(groupCodeText(issued, deps.publicUrl, linkers.forWhom), { parse_mode: 'Markdown' });
  });

  groups.command('help', async (ctx) => {
    const name = await deps.teams.nameOfChat(ctx.chat.id);
    await ctx.reply(
      name
        ? `This group is the team chat ${code(name)}: analysts allowed by its owner post script alerts here. The buttons under an alert snooze or mute that script in this group only; the analyst who sent it or the owner of ${code(name)} may press them. Personal commands (/status, /mute) work in your own chat with me.`
        : `I post script alerts to groups linked as team chats. Send /start here for a link code, then enter it on the dashboard (${deps.publicUrl}) under "Team chats".`,
      { parse_mode: 'Markdown' },
    );
  });

  groups.on('my_chat_member', async (ctx) => {
    const chatId = ctx.chat.id;
    const change = ctx.myChatMember;
    const status = change.new_chat_member.status;
    const was = change.old_chat_member.status;
    const name = await deps.teams.nameOfChat(chatId);
    const by = personName(change.from);
    if (status === 'left' || status === 'kicked') {
      if (!name) return;
      await deps.teams.markDeliveryRefused(chatId, `the bot was removed from the group by ${by}`);
      const team = await deps.teams.get(name);
      deps.log.warn({ team: name, chat: chatId }, 'the bot was removed from a team chat; sends to it are refused until it is back');
      if (team) await tell(name, [team.owner, ...team.members], `The bot was removed from the Telegram group of the team chat ${name} (by ${by}). Nothing can be posted there: sends to ${name} are refused until someone adds the bot to the group again.`);
      return;
    }
    if (status !== 'member' && status !== 'administrator') return;
    if (name) {
      const team = await deps.teams.get(name);
      if (!team?.delivery_refused) return;
      await deps.teams.markDeliveryRefused(chatId, null);
      deps.log.info({ team: name, chat: chatId }, 'the bot is back in a team chat');
      await tell(name, [team.owner, ...team.members], `The bot was added back to the Telegram group of the team chat ${name} (by ${by}). Sends to ${name} are delivered again.`);
      return;
    }
    if (was === 'left' || was === 'kicked') {
      await ctx.reply(`Hello! To post script alerts in this group, an analyst sends /start here and enters the code on the dashboard (${deps.publicUrl}) under "Team chats".`);
    }
  });

  groups.on('message:migrate_to_chat_id', async (ctx) => {
    const renamed = await deps.teams.migrateChat(ctx.chat.id, ctx.message.migrate_to_chat_id);
    if (renamed) deps.log.info({ team: renamed, from: ctx.chat.id, to: ctx.message.migrate_to_chat_id }, 'team chat moved to a supergroup');
  });

  groups.on('callback_query:data', async (ctx) => {
    const chatId = ctx.chat?.id ?? 0;
    if (ctx.callbackQuery.data === RESOLVED_CALLBACK) {
      await ctx.answerCallbackQuery({ text: RESOLVED_REPLY });
      return;
    }
    const parsed = parseTeamCallbackData(ctx.callbackQuery.data);
    if (!parsed) {
      await ctx.answerCallbackQuery({ text: 'This button works in your own chat with the bot only. Nothing was changed.', show_alert: true });
      return;
    }
    const name = await deps.teams.nameOfChat(chatId);
    const team = name ? await deps.teams.get(name) : null;
    const alert = await deps.scriptKeys.lookup(parsed.key);
    if (!name || !team || !alert) {
      await ctx.answerCallbackQuery({ text: 'This group or the script of this alert is no longer known. Nothing was changed.', show_alert: true });
      return;
    }
    const presser = await deps.links.userOfChat(ctx.from.id);
    if (presser !== alert.user && presser !== team.owner) {
      deps.log.info({ team: name, script: alert.script, sender: alert.user, presser: presser ?? `telegram user ${ctx.from.id}` }, 'team chat button refused: not the sender or the owner');
      const whoYouAre = presser ? '' : ' (and your Telegram is not linked to a server account)';
      await ctx.answerCallbackQuery({
        text: answerText(`Only ${alert.user}, who sends ${alert.script}, or ${team.owner}, who owns ${name}, can silence it here${whoYouAre}. Nothing was changed.`),
        show_alert: true,
      });
      return;
    }
    const now = deps.clock.now();
    let line: string;
    let markup;
    if (parsed.action === 'sn1h' || parsed.action === 'sn1d') {
      const until = now + (parsed.action === 'sn1h' ? 3_600_000 : 86_400_000);
      await deps.teams.silence(chatId, alert.user, alert.script, { until, by: presser });
      line = `🔕 ${alert.script} snoozed here until ${formatLocalTime(until)}${parsed.action === 'sn1d' ? ` ${new Date(until).toISOString().slice(0, 10)}` : ''} by ${presser}`;
      markup = teamUndoKeyboard(alert.script, alert.user, 'Unsnooze');
    } else if (parsed.action === 'mute') {
      await deps.teams.silence(chatId, alert.user, alert.script, { muted: true, by: presser });
      line = `🔕 ${alert.script} muted here by ${presser}`;
      markup = teamUndoKeyboard(alert.script, alert.user, 'Unmute');
    } else {
      await deps.teams.silence(chatId, alert.user, alert.script, null);
      line = `🔔 ${alert.script} alerts are on here again (${presser})`;
      markup = teamAlertKeyboard(alert.script, alert.user);
    }
    deps.log.info({ team: name, script: alert.script, sender: alert.user, presser, action: parsed.action }, 'team chat rule changed from Telegram');
    await ctx.answerCallbackQuery({ text: answerText(line.replace(/^\S+ /u, '')) });
    await editAlertStatus(ctx, line, markup, deps.log);
  });

  // Anything else in a group or channel: no answer.
  groups.use(() => undefined);
  return c;
}
