/**
 * The linked chat's commands through the real bot and the fake Telegram, with scripts run
 * through the real `notify-scripts` in a temporary home: /help, /whoami, /status with a Run
 * button per script, Run for a script that sends, fails and times out, /test's chart.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HistoryStore } from '../src/shared/history.js';
import { BOT_COMMANDS } from '../src/bot/service.js';
import { FREE_TEXT_REPLY, STALE_BUTTON_REPLY } from '../src/bot/commands/menu.js';
import { UNLINKED_REPLY } from '../src/bot/commands/linkCommands.js';
import { type BotWorld, pyScript, repoRoot, startBotWorld } from './support/inProcessBot.js';

const USER = 'carol';
const CHAT = 8200;

void describe('commands of a linked chat', () => {
  let w: BotWorld;
  before(async () => {
    w = await startBotWorld({}, ['slow.py']);
    await w.link(USER, CHAT);
    w.script('revenue_drop.py', pyScript({ notify: true, title: 'Revenue dropped 25%', message: 'Today: $45k | 7d avg: $60k', cooldown: '1h' }));
    w.script('quiet.py', pyScript({ notify: false }));
    w.script('broken.py', 'import sys\nprint("starting", file=sys.stderr)\nraise SystemExit("boom: the warehouse is unreachable")\n');
    w.script('slow.py', 'import time\ntime.sleep(30)\n');
  });
  after(async () => {
    await w.close();
  });

  async function next(n: number): Promise<string> {
    const msgs = await w.fake.waitForMessages(CHAT, n, 60_000);
    const m = msgs[n - 1]!;
    return m.text ?? m.caption ?? '';
  }

  void it('registers its commands with setMyCommands', async () => {
    await w.fake.waitFor(() => (w.fake.commands.length > 0 ? true : undefined), 60_000, () => 'setMyCommands');
    assert.deepEqual(
      w.fake.commands.map((c) => c.command),
      BOT_COMMANDS.map((c) => c.command),
    );
  });

  void it('/help lists the commands and where scripts go; /whoami names the account', async () => {
    w.fake.sendUserMessage(CHAT, '/help');
    const help = await next(1);
    assert.match(help, /~\/user\/notifications\//);
    for (const c of ['/status', '/test', '/whoami', '/unlink']) assert.ok(help.includes(c), `help mentions ${c}`);
    w.fake.sendUserMessage(CHAT, '/whoami');
    assert.match(await next(2), /linked to the server account carol since \d{4}-\d\d-\d\d \d\d:\d\d UTC \(\d+ s ago\)\.$/, 'times as /status shows them');
  });

  void it('/status lists every script with a Run button; Run sends its notification and records the run', async () => {
    w.fake.sendUserMessage(CHAT, '/status');
    const status = await next(3);
    assert.match(status, /Scripts of carol \(4\)/);
    for (const s of ['broken.py', 'quiet.py', 'revenue_drop.py', 'slow.py']) assert.ok(status.includes(`${s} - never ran`), `${s} listed: ${status}`);
    const statusMsg = w.fake.sentMessages(CHAT)[2]!;
    const buttons = (statusMsg.reply_markup?.inline_keyboard ?? []).flat();
    assert.deepEqual(buttons.map((b) => b.callback_data).sort(), ['run:broken.py', 'run:quiet.py', 'run:revenue_drop.py', 'run:slow.py']);

    const qid = w.fake.pressButton(CHAT, statusMsg.message_id, 'run:revenue_drop.py');
    const answer = await w.fake.waitForCallbackAnswer(qid, 3000);
    assert.match(answer.text ?? '', /Running revenue_drop\.py/);
    const alert = await w.fake.waitForMessages(CHAT, 4, 60_000);
    const m = alert[3]!;
    assert.equal(m.text, 'Revenue dropped 25%\nToday: $45k | 7d avg: $60k');
    assert.deepEqual(m.entities[0], { type: 'bold', offset: 0, length: 'Revenue dropped 25%'.length });

    const history = new HistoryStore(join(w.home, '.notifications', 'history.jsonl'));
    let runs = await history.readAll();
    for (let i = 0; i < 50 && !runs.some((r) => r.outcome === 'sent'); i += 1) {
      await new Promise((r) => setTimeout(r, 100));
      runs = await history.readAll();
    }
    const run = runs.find((r) => r.script === 'revenue_drop.py');
    assert.equal(run?.trigger, 'on_demand');
    assert.equal(run?.outcome, 'sent');
    assert.ok(run?.id, 'the run is joined to its notification id');

    w.fake.sendUserMessage(CHAT, '/status');
    assert.match(await next(5), /✅ revenue_drop\.py - sent, \d+ s ago/u);
  });

  void it('Run on a script with nothing to say says so', async () => {
    const before = w.fake.sentMessages(CHAT).length;
    w.fake.pressButton(CHAT, w.fake.sentMessages(CHAT)[2]!.message_id, 'run:quiet.py');
    assert.match(await next(before + 1), /quiet\.py ran: nothing to report/);
  });

  void it('Run on a failing script tells the chat why', async () => {
    const before = w.fake.sentMessages(CHAT).length;
    w.fake.pressButton(CHAT, w.fake.sentMessages(CHAT)[2]!.message_id, 'run:broken.py');
    const text = await next(before + 1);
    assert.match(text, /❌/u);
    assert.match(text, /broken\.py/);
    assert.match(text, /boom: the warehouse is unreachable/);
  });

  void it('Run on a script that hangs reports the timeout', async () => {
    const before = w.fake.sentMessages(CHAT).length;
    w.fake.pressButton(CHAT, w.fake.sentMessages(CHAT)[2]!.message_id, 'run:slow.py');
    const text = await next(before + 1);
    assert.match(text, /slow\.py/);
    assert.match(text, /timed out/);
  });

  void it('/test sends a real PNG chart with a caption', async () => {
    const before = w.fake.sentMessages(CHAT).length;
    w.fake.sendUserMessage(CHAT, '/test');
    const msgs = await w.fake.waitForMessages(CHAT, before + 1, 60_000);
    const photo = msgs[before]!;
    assert.equal(photo.kind, 'photo');
    assert.ok(photo.photo && photo.photo.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'a PNG');
    assert.ok(photo.photo.length > 10_000, 'a real chart, not a placeholder');
    assert.match(photo.caption ?? '', /^Test report: revenue down \d+%/);
    const dir = join(repoRoot, 'test-artifacts');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'test-chart.png'), photo.photo);
  });
});

void describe('a chat that always answers', () => {
  let w: BotWorld;
  const chat = 8300;
  before(async () => {
    w = await startBotWorld();
    await w.link('dana', chat);
  });
  after(async () => {
    await w.close();
  });

  async function answerTo(text: string): Promise<string> {
    const before = w.fake.sentMessages(chat).length;
    w.fake.sendUserMessage(chat, text);
    const msgs = await w.fake.waitForMessages(chat, before + 1, 60_000);
    return msgs[before]!.text ?? '';
  }

  void it('free text in a linked chat gets a pointer to /help', async () => {
    assert.equal(await answerTo('hello, are you there?'), FREE_TEXT_REPLY);
    assert.match(FREE_TEXT_REPLY, /\/help/);
  });

  void it('an unknown command names itself and points to /help', async () => {
    assert.equal(await answerTo('/frobnicate now'), 'Unknown command /frobnicate. Send /help to see what I can do.');
  });

  void it('/help lists every command of the menu but /start, /mute and /unmute included', async () => {
    const help = await answerTo('/help');
    for (const c of BOT_COMMANDS) {
      if (c.command === 'start') continue;
      assert.ok(help.includes(`/${c.command} - ${c.description}`), `help lists /${c.command}: ${help}`);
    }
    assert.match(help, /\/mute - /);
    assert.match(help, /\/unmute - /);
  });

  void it('a button nothing recognises any more answers with a notice', async () => {
    const help = w.fake.sentMessages(chat).at(-1)!;
    const qid = w.fake.pressButton(chat, help.message_id, 'gone:feature', { unchecked: true });
    const answer = await w.fake.waitForCallbackAnswer(qid, 60_000);
    assert.equal(answer.text, STALE_BUTTON_REPLY);
  });

  void it('/status shows each script\'s schedule and next run, and what is wrong with a bad schedule', async () => {
    w.script('weekly_report.py', '#!/usr/bin/env python3\n# schedule: 30 7 * * MON Europe/Prague\nprint(\'{"notify": false}\')\n');
    w.script('bad_schedule.py', '# schedule: 0 25 * * *\nprint(\'{"notify": false}\')\n');
    const status = await answerTo('/status');
    const lines = status.split('\n');
    const weekly = lines.findIndex((l) => l.includes('weekly_report.py'));
    assert.ok(weekly >= 0, status);
    assert.match(lines[weekly + 1] ?? '', /^ {3}🗓 30 7 \* \* MON Europe\/Prague, next \d{4}-\d\d-\d\d 0[56]:30 UTC \(Mon 07:30 Europe\/Prague, in \d+ (s|min|h|d)\)$/u, status);
    const bad = lines.findIndex((l) => l.includes('bad_schedule.py'));
    assert.match(lines[bad + 1] ?? '', /^ {3}invalid schedule: invalid cron expression '0 25 \* \* \*'/, status);
  });

  void it('a button pressed after the chat was unlinked answers that the chat is not linked', async () => {
    const status = await answerTo('/status');
    assert.match(status, /Scripts of dana/);
    const statusMsg = w.fake.sentMessages(chat).at(-1)!;
    await w.links.unlinkChat(chat);
    const qid = w.fake.pressButton(chat, statusMsg.message_id, 'run:anything.py', { unchecked: true });
    const answer = await w.fake.waitForCallbackAnswer(qid, 60_000);
    assert.equal(answer.text, UNLINKED_REPLY);
  });
});
