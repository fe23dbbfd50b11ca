/**
 * Schedules per script: a `# schedule: <cron> [zone]` comment makes the runner run the
 * script only when a scheduled time passed since its last scheduled run (once after
 * downtime, not once per missed time); scripts without one run on every pass; an invalid
 * schedule is a failed run saying what is wrong; `notify-scripts list` shows the schedule
 * and the next run. The runner's real command line runs in this process with an injected
 * clock (the scripts themselves are real Python processes), against the send-API stub.
 */
import assert from 'node:assert/strict';
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { runCli } from '../src/runner/main.js';
import { parseSchedule } from '../src/runner/schedule.js';
import { ScriptInfoSchema } from '../src/scripts/client.js';
import { closeSandboxes, HELPER, historyOf, PATH, runBin, runnerLog, type Sandbox, sandbox as makeSandbox, script } from './support/runnerSandbox.js';
import { BotHarness } from './support/botHarness.js';

afterEach(closeSandboxes);

/** A fixed clock the test sets. */
function fixedClock(iso: string): { now(): number; set(iso: string): void } {
  let t = Date.parse(iso);
  return {
    now: () => t,
    set(next) {
      t = Date.parse(next);
    },
  };
}

/** Runs the runner's command line in this process at the clock's time; fails on a non-zero exit. */
async function pass(sb: Sandbox, clock: { now(): number }, args: string[] = []): Promise<string> {
  let out = '';
  const code = await runCli(args, { PATH, HOME: sb.home, NOTIFY_SOCKET: sb.stub.socketPath }, { out: (t) => (out += t), err: (t) => (out += t), isTty: false }, clock);
  assert.equal(code, 0, `exit ${code}: ${out}\nlog:\n${runnerLog(sb)}`);
  return out;
}

function runsOf(sb: Sandbox, name: string): number {
  return historyOf(sb).filter((r) => r.script === name).length;
}

/** A script with a schedule line that notifies, put in place at `placedAt`. */
function scheduled(sb: Sandbox, name: string, scheduleLine: string, placedAt: string): void {
  script(sb.home, name, `#!/usr/bin/env python3\n"""Daily report."""\n${scheduleLine}\nimport json\nprint(json.dumps({"notify": True, "title": "Report", "message": "done", "cooldown": "1m"}))\n`);
  const t = new Date(placedAt);
  utimesSync(join(sb.home, 'user', 'notifications', name), t, t);
}

void describe('notify-runner: a script\'s own schedule', () => {
  void it('09:00 Europe/Prague runs once at the 09:02 pass, not at 09:07, again the next day, and once after three days of downtime', async () => {
    const sb = await makeSandbox('notify-schedule-');
    // December: Prague is UTC+1, so 09:00 there is 08:00 UTC.
    scheduled(sb, 'daily_report.py', '# schedule: 0 9 * * * Europe/Prague', '2026-12-06T12:00:00Z');
    script(sb.home, 'every_pass.py', 'print(\'{"notify": false}\')\n');
    const clock = fixedClock('2026-12-07T07:55:00Z'); // 08:55 in Prague

    await pass(sb, clock);
    assert.equal(runsOf(sb, 'daily_report.py'), 0, 'not before 09:00');
    assert.equal(runsOf(sb, 'every_pass.py'), 1, 'a script without a schedule runs on every pass');
    assert.match(runnerLog(sb), /1 waiting for its schedule \(daily_report\.py next 2026-12-07T0\d:00:00/);

    clock.set('2026-12-07T08:02:00Z'); // 09:02
    await pass(sb, clock);
    assert.equal(runsOf(sb, 'daily_report.py'), 1, `runs at the first pass after 09:00\n${runnerLog(sb)}`);
    assert.equal(sb.stub.sends().length, 1, 'and its alert is sent');

    clock.set('2026-12-07T08:07:00Z'); // 09:07
    await pass(sb, clock);
    assert.equal(runsOf(sb, 'daily_report.py'), 1, 'not again at 09:07: the 09:00 time is used up');
    assert.equal(runsOf(sb, 'every_pass.py'), 3);

    clock.set('2026-12-08T07:59:00Z'); // next day 08:59
    await pass(sb, clock);
    assert.equal(runsOf(sb, 'daily_report.py'), 1);
    clock.set('2026-12-08T08:01:00Z'); // 09:01
    await pass(sb, clock);
    assert.equal(runsOf(sb, 'daily_report.py'), 2, 'the next day at 09:01');

    clock.set('2026-12-11T10:30:00Z'); // three 09:00s missed while nothing ran
    await pass(sb, clock);
    clock.set('2026-12-11T10:35:00Z');
    await pass(sb, clock);
    assert.equal(runsOf(sb, 'daily_report.py'), 3, 'one run for all the missed times, not one per time');
  });

  void it('weekdays only: a Saturday pass does not run it, Monday\'s does', async () => {
    const sb = await makeSandbox('notify-schedule-');
    scheduled(sb, 'weekday.py', '# schedule: 30 7 * * 1-5 UTC', '2026-12-04T12:00:00Z');
    const clock = fixedClock('2026-12-05T07:35:00Z'); // Saturday
    await pass(sb, clock);
    clock.set('2026-12-06T07:35:00Z'); // Sunday
    await pass(sb, clock);
    assert.equal(runsOf(sb, 'weekday.py'), 0);
    clock.set('2026-12-07T07:35:00Z'); // Monday
    await pass(sb, clock);
    assert.equal(runsOf(sb, 'weekday.py'), 1);
  });

  void it('an invalid schedule is a failed run saying what is wrong, every pass, and the script is not run', async () => {
    const sb = await makeSandbox('notify-schedule-');
    script(sb.home, 'bad_hour.py', '# schedule: 0 25 * * *\nopen("/tmp/should-not-run", "w")\nprint(\'{"notify": true, "message": "x"}\')\n');
    script(sb.home, 'bad_zone.py', '# schedule: 0 9 * * * Europe/Praha\nprint(\'{"notify": true, "message": "x"}\')\n');
    script(sb.home, 'too_short.py', '# schedule: 0 9 *\nprint(\'{"notify": true, "message": "x"}\')\n');
    const clock = fixedClock('2026-12-07T08:02:00Z');
    await pass(sb, clock);
    await pass(sb, clock);
    const runs = historyOf(sb);
    for (const [name, why] of [
      ['bad_hour.py', /invalid schedule: invalid cron expression '0 25 \* \* \*'.*hour/],
      ['bad_zone.py', /invalid schedule: unknown time zone 'Europe\/Praha'/],
      ['too_short.py', /invalid schedule: '0 9 \*': expected 5 cron fields, got 3/],
    ] as const) {
      const mine = runs.filter((r) => r.script === name);
      assert.equal(mine.length, 2, `${name}: one failed run per pass`);
      assert.equal(mine[0]!.outcome, 'failed');
      assert.match(mine[0]!.error ?? '', why);
      assert.match(mine[0]!.error ?? '', /The script was not run; fix the "# schedule:" line/);
    }
    assert.equal(sb.stub.sends().length, 0, 'nothing was sent');
    assert.match(runnerLog(sb), /bad_zone\.py: failed: invalid schedule: unknown time zone/);
  });

  void it('--script runs a scheduled script now, whatever its schedule', async () => {
    const sb = await makeSandbox('notify-schedule-');
    scheduled(sb, 'daily_report.py', '# schedule: 0 9 * * *', '2026-12-06T12:00:00Z');
    const clock = fixedClock('2026-12-07T13:00:00Z');
    await pass(sb, clock); // 09:00 server time passed since the file was placed: runs
    const before = runsOf(sb, 'daily_report.py');
    await pass(sb, clock, ['--script', 'daily_report.py']);
    assert.equal(runsOf(sb, 'daily_report.py'), before + 1);
  });

  void it('notify-scripts list shows each schedule, its zone and next run, and an invalid one\'s error', async () => {
    const sb = await makeSandbox('notify-schedule-');
    scheduled(sb, 'daily_report.py', '# schedule: 0 9 * * 1-5 Europe/Prague', new Date().toISOString());
    script(sb.home, 'plain.py', 'print(\'{"notify": false}\')\n');
    script(sb.home, 'broken.py', '# schedule: every morning\nprint(\'{"notify": false}\')\n');
    const r = await runBin(HELPER, sb, ['list']);
    assert.equal(r.code, 0, r.stderr);
    const list = (JSON.parse(r.stdout) as unknown[]).map((x) => ScriptInfoSchema.parse(x));
    const byName = new Map(list.map((s) => [s.name, s]));
    const daily = byName.get('daily_report.py')!;
    assert.equal(daily.schedule, '0 9 * * 1-5 Europe/Prague');
    assert.equal(daily.schedule_zone, 'Europe/Prague');
    assert.equal(daily.schedule_due, false);
    const next = Date.parse(daily.next_run ?? '');
    assert.ok(next > Date.now() && next < Date.now() + 4 * 86_400_000, `next run within four days: ${daily.next_run}`);
    const prague = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Prague', hour: '2-digit', minute: '2-digit', weekday: 'short' }).format(next);
    assert.match(prague, /^(Mon|Tue|Wed|Thu|Fri) 09:00$/, `09:00 on a weekday in Prague: ${prague}`);
    assert.equal(byName.get('plain.py')!.schedule, undefined, 'no schedule, no schedule fields');
    assert.equal(byName.get('broken.py')!.schedule, 'every morning');
    assert.match(byName.get('broken.py')!.schedule_error ?? '', /invalid schedule/);
  });

  void it('the parser reads nicknames and zones, and refuses what cron would not take', () => {
    assert.ok(parseSchedule('@daily Europe/Prague').ok);
    assert.ok(parseSchedule('*/15 8-18 * * MON-FRI').ok);
    const refused = ['', '0 9 * * * * *', '60 * * * *', '0 0 30 2 *', '@daily Mars/Base', '@often'];
    for (const text of refused) assert.equal(parseSchedule(text).ok, false, `'${text}' is refused`);
  });
});

void describe('notify-runner: a scheduled script through the real bot and the fake Telegram', () => {
  let h: BotHarness;
  let sb: Sandbox;
  before(async () => {
    // The runner runs as this test's user (root): its notifications are root's.
    h = await BotHarness.start({ users: ['root'] });
    sb = await makeSandbox('notify-schedule-tg-');
  });
  after(async () => {
    await h.cleanup();
    await closeSandboxes();
  });

  /** A runner pass at `iso`, sending to the real bot. */
  async function passAt(iso: string): Promise<void> {
    let out = '';
    const code = await runCli([], { PATH, HOME: sb.home, NOTIFY_SOCKET: h.socketPath }, { out: (t) => (out += t), err: (t) => (out += t), isTty: false }, { now: () => Date.parse(iso) });
    assert.equal(code, 0, `exit ${code}: ${out}\nlog:\n${runnerLog(sb)}`);
  }

  void it('09:00 Europe/Prague: the 09:02 pass sends the report to Telegram once, the 09:07 pass sends nothing', async () => {
    const chat = h.users[0]!.chatId;
    script(sb.home, 'morning_report.py', '#!/usr/bin/env python3\n# schedule: 0 9 * * * Europe/Prague\nimport json\nprint(json.dumps({"notify": True, "title": "Morning report", "message": "Orders: 42", "cooldown": "1m"}))\n');
    const placed = new Date('2026-12-06T12:00:00Z');
    utimesSync(join(sb.home, 'user', 'notifications', 'morning_report.py'), placed, placed);

    await passAt('2026-12-07T07:58:00Z'); // 08:58 in Prague (UTC+1 in December)
    await passAt('2026-12-07T08:02:00Z'); // 09:02
    const [report] = await h.fake.waitForMessages(chat, 1, 60_000);
    assert.equal(report!.text, 'Morning report\nOrders: 42');
    await passAt('2026-12-07T08:07:00Z'); // 09:07

    // Whatever the passes sent is in the chat before this later message.
    await h.client.send({ user: 'root', message: 'after the 09:07 pass' }, 'respond-async');
    await h.fake.waitFor(() => (h.fake.sentMessages(chat).some((m) => m.text === 'after the 09:07 pass') ? true : undefined), 60_000, () => 'the later message');
    const texts = h.fake.sentMessages(chat).map((m) => m.text ?? '');
    assert.deepEqual(texts, ['Morning report\nOrders: 42', 'after the 09:07 pass'], 'one report: at 09:02, not at 08:58 nor again at 09:07');
    assert.deepEqual(
      historyOf(sb).filter((r) => r.script === 'morning_report.py').map((r) => [r.time, r.outcome]),
      [['2026-12-07T08:02:00.000Z', 'sent']],
    );
  });
});
