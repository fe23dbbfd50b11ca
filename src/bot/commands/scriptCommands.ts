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
import { OUTCOME_WORDS } from '../../shared/history.js';
import type { Logger } from '../../shared/logger.js';
import { type ScriptInfo, type ScriptsHelper, ScriptsHelperError } from '../../scripts/client.js';
import { callbackData, scriptKey, type ScriptKeys } from './alertKeyboard.js';
import { demoReport } from './demoChart.js';
import type { Notifier } from '../delivery/notifier.js';
import { relativeTime, shortUtc, TextBuilder } from '../format/textBuilder.js';

/** Callback data that runs a script (the contract's `run:<script file name>`, or a short key). */
export function runCallbackData(script: string, user: string): string {
  return callbackData('run', script, user);
}

const OUTCOME_ICON: Record<string, string> = {
  sent: '✅',
  held_by_cooldown: '⏸',
  nothing_to_send: '▫️',
  failed: '❌',
  timed_out: '⏱',
  invalid_output: '⚠️',
  delivery_failed: '📭',
  pending_delivery: '✅',
  snoozed: '🔕',
  muted: '🔕',
  unchanged: '▫️',
  held_quiet_hours: '🌙',
};

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
    b.add(`${outcome ? (OUTCOME_ICON[outcome] ?? '•') : '•'} `).styled(s.name, 'code');
    if (!s.last_run || !outcome) b.add(' - never ran');
    else b.add(` - ${(OUTCOME_WORDS as Record<string, string>)[outcome] ?? outcome}, ${relativeTime(s.last_run, now)} (${shortUtc(s.last_run)})`);
    if (s.cooldown_until && Date.parse(s.cooldown_until) > now) b.line().add(`   cooldown until ${shortUtc(s.cooldown_until)}`);
    if (s.schedule_error) b.line().add('   ').styled(s.schedule_error.slice(0, 300), 'italic');
    else if (s.schedule) {
      const next = s.schedule_due ? 'due at the next runner pass' : s.next_run ? `next ${shortUtc(s.next_run)} (${relativeTime(s.next_run, now)})` : 'no next run';
      b.line().add(`   🗓 ${s.schedule}, ${next}`);
    }
    const extra = extras.perScript?.get(s.name);
    if (extra) b.line().add(`   ${extra}`);
    const err = s.last_error ?? s.state_error;
    if (err && outcome && ['failed', 'timed_out', 'invalid_output', 'delivery_failed'].includes(outcome)) {
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
  const running = new Set<string>();

  async function userOf(ctx: Context): Promise<string | null> {
    const chatId = ctx.chat?.id;
    return chatId === undefined ? null : deps.links.userOfChat(chatId);
  }

  function describeFailure(name: string, err: unknown): string {
    if (err instanceof ScriptsHelperError) {
      switch (err.kind) {
        case 'timed_out':
        case 'script_failed':
        case 'invalid_output':
          return err.message.includes(name) ? err.message : `${name}: ${err.message}`;
        case 'not_found':
          return `${name} is not in ~/user/notifications/ any more.`;
        case 'sudo_refused':
        case 'helper_missing':
          return `${name} could not be run: the server is not set up to run your scripts (${err.message}). Tell the operator.`;
        default:
          return err.message.includes(name) ? err.message : `${name} failed: ${err.message}`;
      }
    }
    return `${name} could not be run: ${err instanceof Error ? err.message : String(err)}`;
  }

  /** Runs a script on demand and delivers its result, telling the chat what happened. */
  async function runNow(ctx: Context, user: string, name: string): Promise<void> {
    const key = `${user}/${name}`;
    if (running.has(key)) {
      await ctx.reply(`${name} is already running.`);
      return;
    }
    running.add(key);
    try {
      let run;
      try {
        run = await deps.helper.run(user, name);
      } catch (err) {
        deps.log.warn({ user, script: name, reason: err instanceof Error ? err.message : String(err) }, 'on-demand run failed');
        const b = new TextBuilder().add('❌ ').add(describeFailure(name, err));
        await ctx.reply(b.text.slice(0, 4096));
        return;
      }
      if (run.outcome === 'nothing_to_send') {
        await ctx.reply(`▫️ ${name} ran: nothing to report right now (it printed "notify": false).`);
        return;
      }
      const out = run.output;
      try {
        const res = await deps.notifier.submit(
          { user, content: { title: out.title ?? undefined, message: out.message ?? undefined }, photo: run.image ? Buffer.from(run.image.bytes) : undefined, script: name, data: out.data ?? undefined, bypassRules: true, buttons: true },
          { respondAsync: true, waitMs: 0 },
        );
        if (res.status === 404) throw new Error(res.body.error);
        await deps.helper.recordDelivery(user, run.runId, { id: res.body.id, queued: res.status === 202 }).catch((err: unknown) => deps.log.warn({ err, user }, 'could not record the delivery in the run history'));
        if (run.imageError) await ctx.reply(`(The image of ${name} was not attached: ${run.imageError})`);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        await deps.helper.recordDelivery(user, run.runId, { error: why }).catch(() => undefined);
        await ctx.reply(`📭 ${name} ran, but its notification could not be queued: ${why}`);
      }
    } finally {
      running.delete(key);
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
    await ctx.answerCallbackQuery({ text: `Running ${name ?? 'the script'}…` });
    if (name === null) {
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
    void runNow(ctx, user, name).catch((err: unknown) => deps.log.error({ err, user }, 'run button failed'));
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
