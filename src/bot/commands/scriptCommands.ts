/**
 * Linked chats drive their scripts: /status lists them with their last outcome and a Run
 * button each; pressing Run (here or under an alert) runs the script now through the
 * script helper (as the analyst, via sudo) and delivers the result like any notification;
 * /test sends a demo report with a chart.
 */
import { Composer, type Context } from 'grammy';
import type { InlineKeyboardButton } from 'grammy/types';
import type { Clock } from '../../shared/clock.js';
import type { LinkStore } from '../../shared/linking.js';
import { FAILED_OUTCOMES, OUTCOME_LOOK, OUTCOME_WORDS } from '../../shared/history.js';
import type { Logger } from '../../shared/logger.js';
import type { ScriptInfo, ScriptsHelper } from '../../scripts/client.js';
import { RunNow } from '../../scripts/runNow.js';
import { callbackData, scriptKey, type ScriptKeys } from './alertKeyboard.js';
import { demoReport } from './demoChart.js';
import type { Notifier } from '../delivery/notifier.js';
import { relativeTime, shortUtc, TextBuilder, zoneTime } from '../format/textBuilder.js';

/** Callback data that runs a script (`run:<script file name>`, or a short key). */
export function runCallbackData(script: string, user: string): string {
  return callbackData('run', script, user);
}

/** Extra lines /status shows per user (mute and snooze state, added by the alert rules). */
export type StatusExtras = (user: string) => Promise<{ header?: string[]; perScript?: Map<string, string> }>;

/** What the script commands need. */
export interface ScriptCommandDeps {
  links: LinkStore;
  helper: ScriptsHelper;
  notifier: Notifier;
  log: Logger;
  clock: Clock;
  statusExtras?: StatusExtras;
  scriptKeys: ScriptKeys;
}

/** The /status message for a list of scripts. */
export function statusMessage(user: string, scripts: ScriptInfo[], now: number, extras: { header?: string[]; perScript?: Map<string, string> } = {}): { text: string; entities: TextBuilder['entities']; keyboard: InlineKeyboardButton[][] } {
  const b = new TextBuilder();
  b.styled(`Scripts of ${user}`, 'bold').add(` (${scripts.length})`).line();
  for (const h of extras.header ?? []) b.add(h).line();
  if (scripts.length === 0) {
    b.line().add('No scripts yet. Put Python scripts in ~/user/notifications/ on the server; each prints one JSON object such as {"notify": true, "title": "...", "message": "..."}.');
  }
  for (const s of scripts) {
    b.line();
    const outcome = s.last_outcome ?? null;
    b.add(`${outcome ? (OUTCOME_LOOK[outcome]?.icon ?? '•') : '•'} `).styled(s.name, 'code');
    if (!s.last_run || !outcome) b.add(' - never ran');
    else b.add(` - ${OUTCOME_WORDS[outcome] ?? outcome}, ${relativeTime(s.last_run, now)} (${shortUtc(s.last_run)})`);
    if (s.cooldown_until && Date.parse(s.cooldown_until) > now) b.line().add(`   cooldown until ${shortUtc(s.cooldown_until)}`);
    if (s.schedule_error) b.line().add('   ').styled(s.schedule_error.slice(0, 300), 'italic');
    else if (s.schedule) {
      const local = s.next_run ? zoneTime(s.next_run, s.schedule_zone) : null;
      const next = s.schedule_due ? 'due at the next runner pass' : s.next_run ? `next ${shortUtc(s.next_run)} (${local ? `${local}, ` : ''}${relativeTime(s.next_run, now)})` : 'no next run';
      b.line().add(`   🗓 ${s.schedule}, ${next}`);
    }
    const extra = extras.perScript?.get(s.name);
    if (extra) b.line().add(`   ${extra}`);
    const err = s.last_error ?? s.state_error;
    if (err && outcome && FAILED_OUTCOMES.has(outcome)) {
      b.line().add('   ').styled(err.split('\n').slice(-3).join(' | ').slice(0, 300), 'italic');
    }
  }
  const keyboard: InlineKeyboardButton[][] = [];
  for (let i = 0; i < scripts.length; i += 2) {
    keyboard.push(scripts.slice(i, i + 2).map((s) => ({ text: `Run ${s.stem}`.slice(0, 60), callback_data: runCallbackData(s.name, user) })));
  }
  return { text: b.text.slice(0, 4096), entities: b.entities.filter((e) => e.offset + e.length <= 4096), keyboard };
}

/** Builds /status, /test and the Run button. */
export function scriptCommands(deps: ScriptCommandDeps): Composer<Context> {
  const c = new Composer<Context>();

  async function userOf(ctx: Context): Promise<string | null> {
    const chatId = ctx.chat?.id;
    return chatId === undefined ? null : deps.links.userOfChat(chatId);
  }

  // The Run button answers the analyst's own request: the rules are skipped, the alert buttons shown.
  const runNow = new RunNow(
    () => deps.helper,
    async (n) => {
      const res = await deps.notifier.submit(
        { user: n.user, content: { title: n.title, message: n.message }, photo: n.image ? Buffer.from(n.image.bytes) : undefined, script: n.script, data: n.data, bypassRules: true, buttons: true },
        { respondAsync: true, waitMs: 0 },
      );
      if (res.status === 404) return { accepted: false, reason: res.body.error, noChannel: true };
      return { accepted: true, id: res.body.id, queued: res.status === 202 };
    },
    deps.log,
  );

  /** Runs a script on demand and delivers its result, telling the chat what went wrong. */
  async function runNowFromChat(ctx: Context, user: string, name: string): Promise<void> {
    const result = await runNow.run(user, name);
    if (!result.ok) {
      const icon = result.failure === 'busy' ? '' : result.run ? '📭 ' : '❌ ';
      await ctx.reply(`${icon}${result.text}`.slice(0, 4096));
    } else if (result.outcome === 'nothing_to_send') {
      await ctx.reply(`▫️ ${result.text}`);
    } else if (result.run.imageError) {
      await ctx.reply(`(The image of ${name} was not attached: ${result.run.imageError})`);
    }
  }

  c.command('status', async (ctx) => {
    const user = await userOf(ctx);
    if (!user) return;
    let scripts: ScriptInfo[];
    try {
      scripts = await deps.helper.list(user);
    } catch (err) {
      await ctx.reply(`Could not list your scripts: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const extras = deps.statusExtras ? await deps.statusExtras(user) : {};
    const m = statusMessage(user, scripts, deps.clock.now(), extras);
    await ctx.reply(m.text, { entities: m.entities as never, ...(m.keyboard.length > 0 ? { reply_markup: { inline_keyboard: m.keyboard } } : {}) });
  });

  /** Runs a script from a button press (Run under /status or under an alert). */
  async function runFromButton(ctx: Context & { callbackQuery: { data: string } }): Promise<void> {
    const user = await userOf(ctx);
    if (!user) {
      await ctx.answerCallbackQuery({ text: 'This chat is not linked.' });
      return;
    }
    const data = ctx.callbackQuery.data;
    let name = data.startsWith('run:') ? data.slice(4) : null;
    // Answered while the script starts: the press waits for one Telegram round trip less.
    const answered = ctx.answerCallbackQuery({ text: `Running ${name ?? 'the script'}…` });
    if (name === null) {
      await answered;
      const key = data.slice(4);
      name = await deps.scriptKeys.resolve(user, key);
      if (name === null) {
        try {
          name = (await deps.helper.list(user)).find((s) => scriptKey(s.name, user) === key)?.name ?? null;
        } catch {
          name = null;
        }
      }
      if (name === null) {
        await ctx.reply('That script is no longer in ~/user/notifications/.');
        return;
      }
    }
    // The run may take up to the script timeout; the chat's other updates go on meanwhile.
    void runNowFromChat(ctx, user, name).catch((err: unknown) => deps.log.error({ err, user }, 'run button failed'));
    await answered;
  }

  c.callbackQuery(/^run[:#](.+)$/, (ctx) => runFromButton(ctx));

  c.command('test', async (ctx) => {
    const user = await userOf(ctx);
    if (!user) return;
    const report = await demoReport(new Date(deps.clock.now()));
    const res = await deps.notifier.submit({ user, content: { title: report.title, message: report.message }, photo: report.png, script: 'test', bypassRules: true }, { respondAsync: true, waitMs: 0 });
    if (res.status === 404) await ctx.reply(`Could not send the test report: ${res.body.error}`);
  });

  return c;
}
