/**
 * Resolved notices through the real programs: the notify-bot process against the fake
 * Telegram, the runner's real command line in this process with an injected clock (its
 * scripts are real Python). A `send_resolved` alert, then a run printing notify: false,
 * gives one "Resolved" notice as a Telegram reply to the alert, the alert's buttons
 * updated, and the history showing how long it lasted; a flapping condition sends at most
 * one alert and one notice per cooldown; a snoozed script's notice is held back like its
 * alerts.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../src/runner/main.js';
import { AlertRulesStore } from '../src/shared/alertRules.js';
import { TeamChatStore } from '../src/shared/teamChats.js';
import type { RunRecord } from '../src/shared/history.js';
import { BotHarness } from './support/botHarness.js';
import { signToken, spawnGateway, TestDesktop, TEST_SECRET } from './support/gatewayHarness.js';
import { PATH } from './support/runnerSandbox.js';

const T0 = Date.parse('2026-12-07T08:00:00Z');
const MIN = 60_000;

void describe('resolved notices', () => {
  let h: BotHarness;
  let home: string;
  let chat: number;
  let gateway: ReturnType<typeof spawnGateway>;
  let desktop: TestDesktop;
  const clock = { t: T0, now(): number { return this.t; } };

  before(async () => {
    // The runner runs as this test's user (root), so the notifications are root's.
    h = await BotHarness.start({ users: ['root'], start: false, env: { NOTIFY_GATEWAY_TIMEOUT: '5s' } });
    chat = h.users[0]!.chatId;
    home = mkdtempSync(join(tmpdir(), 'notify-resolved-'));
    mkdirSync(join(home, 'user', 'notifications'), { recursive: true });
    // The desktop channel: the real gateway, and a desktop app of root's connected to it.
    gateway = spawnGateway({ DESKTOP_JWT_SECRET: TEST_SECRET, NOTIFY_GATEWAY_HOST: '127.0.0.1', NOTIFY_GATEWAY_PORT: '0', NOTIFY_GATEWAY_SOCKET: h.env().NOTIFY_GATEWAY_SOCKET!, NOTIFY_DATA_DIR: h.dataDir });
    const port = await gateway.ready;
    await h.startBot();
    desktop = await TestDesktop.authenticated(`ws://127.0.0.1:${port}/`, await signToken({ sub: 'root' }));
  });
  after(async () => {
    desktop?.close();
    if (gateway && gateway.child.exitCode === null && gateway.child.signalCode === null) gateway.child.kill('SIGKILL');
    await gateway?.exited;
    await h.cleanup();
    rmSync(home, { recursive: true, force: true });
  });

  /** A script alerting while its flag file exists, as a condition (send_resolved). */
  function condition(name: string, cooldown: string, extra: Record<string, unknown> = {}): { on(): void; off(): void } {
    const flag = join(home, `${name}.flag`);
    writeFileSync(
      join(home, 'user', 'notifications', `${name}.py`),
      `import json, os\nif os.path.exists(${JSON.stringify(flag)}):\n    print(json.dumps({"notify": True, "title": "Disk low on /data (${name})", "message": "Only 20 GB left.", "send_resolved": True, "cooldown": ${JSON.stringify(cooldown)}, **json.loads(${JSON.stringify(JSON.stringify(extra))})}))\nelse:\n    print(json.dumps({"notify": False}))\n`,
    );
    return { on: () => writeFileSync(flag, ''), off: () => rmSync(flag, { force: true }) };
  }

  async function pass(script: string, at: number): Promise<void> {
    clock.t = at;
    let out = '';
    const code = await runCli(['--script', script], { PATH, HOME: home, NOTIFY_SOCKET: h.socketPath }, { out: (t) => (out += t), err: (t) => (out += t), isTty: false }, clock);
    assert.equal(code, 0, out);
  }

  function history(): RunRecord[] {
    const p = join(home, '.notifications', 'history.jsonl');
    return existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as RunRecord) : [];
  }

  /** Waits until the bot remembered the alert's messages for its notice. */
  async function threadKept(id: string): Promise<void> {
    await h.waitUntil(() => {
      const p = join(h.dataDir, 'alert_threads.json');
      return existsSync(p) && (JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>)[id] ? true : undefined;
    }, 60_000, () => `alert ${id} in alert_threads.json`);
  }

  void it('an alert, then its resolved notice as a reply to it, the buttons updated, and the history saying how long it lasted', async () => {
    const c = condition('disk_space', '1h');
    c.on();
    await pass('disk_space.py', T0);
    const [alert] = await h.fake.waitForMessages(chat, 1, 60_000);
    assert.match(alert!.text ?? '', /^Disk low on \/data \(disk_space\)/);
    assert.ok((alert!.reply_markup?.inline_keyboard ?? []).flat().some((b) => b.text === 'Snooze 1h'), 'a fresh alert has its buttons');
    const alertRun = history().at(-1)!;
    assert.equal(alertRun.outcome, 'sent');
    await threadKept(alertRun.id!);

    await pass('disk_space.py', T0 + 5 * MIN);
    assert.equal(h.fake.sentMessages(chat).length, 1, 'still on: nothing new (the cooldown holds it)');

    c.off();
    await pass('disk_space.py', T0 + 20 * MIN);
    const msgs = await h.fake.waitForMessages(chat, 2, 60_000);
    const notice = msgs[1]!;
    assert.equal(notice.reply_to_message_id, alert!.message_id, 'the notice is a reply to the alert');
    assert.match(notice.text ?? '', /^✅ Resolved: Disk low on \/data \(disk_space\)\n/u);
    assert.match(notice.text ?? '', /after 20 min/);
    assert.equal(notice.reply_markup, undefined, 'the notice has no buttons of its own');

    await h.fake.waitFor(
      () => ((h.fake.sentMessages(chat)[0]!.reply_markup?.inline_keyboard ?? []).flat().some((b) => b.text === '✅ Resolved') ? true : undefined),
      60_000,
      () => `the alert's buttons updated: ${JSON.stringify(h.fake.sentMessages(chat)[0]!.reply_markup)}`,
    );
    const buttons = (h.fake.sentMessages(chat)[0]!.reply_markup?.inline_keyboard ?? []).flat().map((b) => b.text);
    assert.deepEqual(buttons, ['✅ Resolved', 'Run now'], 'snoozing a resolved alert is moot; running it is not');

    // The desktop app got the alert, then the notice.
    const onDesktop = [await desktop.nextOfType('notification', 60_000), await desktop.nextOfType('notification', 60_000)];
    assert.deepEqual(onDesktop.map((n) => [n.title, n.script]), [['Disk low on /data (disk_space)', 'disk_space.py'], ['✅ Resolved: Disk low on /data (disk_space)', 'disk_space.py']]);
    assert.match(String(onDesktop[1]!.message), /after 20 min/);

    const runs = history();
    const resolving = runs.at(-1)!;
    assert.equal(resolving.outcome, 'nothing_to_send');
    assert.equal(resolving.resolved_alert, alertRun.id);
    assert.equal(resolving.resolved_after_ms, 20 * MIN);
    assert.ok(resolving.resolved_notice, 'the notice id is recorded');
    const marked = runs.find((r) => r.id === alertRun.id)!;
    assert.equal(marked.resolved_after_ms, 20 * MIN, 'the alert itself is marked resolved, with how long it lasted');
    assert.equal(marked.resolved_at, new Date(T0 + 20 * MIN).toISOString());

    await pass('disk_space.py', T0 + 25 * MIN);
    await pass('disk_space.py', T0 + 30 * MIN);
    // The alert after is news again, but the cooldown (1 h from the alert) still holds it.
    c.on();
    await pass('disk_space.py', T0 + 35 * MIN);
    await pass('disk_space.py', T0 + 61 * MIN);
    const after = await h.fake.waitForMessages(chat, 3, 60_000);
    assert.equal(after.length, 3, 'one notice only, and the next alert once the cooldown passed');
    assert.match(after[2]!.text ?? '', /^Disk low on/);
    assert.equal(after[2]!.reply_to_message_id, undefined, 'a new alert, not a reply');
  });

  void it('a flapping condition sends one alert and one resolved notice per cooldown, not one per change', async () => {
    const c = condition('flappy', '1h');
    const start = T0 + 3 * 3_600_000;
    const before = h.fake.sentMessages(chat).length;
    for (let i = 0; i < 8; i++) {
      if (i % 2 === 0) c.on();
      else c.off();
      await pass('flappy.py', start + i * 5 * MIN);
    }
    // Something that must come after any message the passes produced: a direct send.
    await h.client.send({ user: 'root', message: 'marker after the flapping' }, 'respond-async');
    const msgs = await h.fake.waitForMessages(chat, before + 3, 60_000);
    const mine = h.fake.sentMessages(chat).slice(before);
    await h.fake.waitFor(() => (h.fake.sentMessages(chat).some((m) => m.text === 'marker after the flapping') ? true : undefined), 60_000, () => 'the marker');
    const texts = h.fake.sentMessages(chat).slice(before).map((m) => m.text ?? '');
    assert.equal(texts.filter((t) => t.startsWith('Disk low on /data (flappy)')).length, 1, `one alert in 40 minutes of flapping: ${JSON.stringify(texts)}`);
    assert.equal(texts.filter((t) => t.startsWith('✅ Resolved: Disk low on /data (flappy)')).length, 1, `one resolved notice: ${JSON.stringify(texts)}`);
    assert.ok(msgs.length >= before + 3 && mine.length >= 3);
    const flappyRuns = history().filter((r) => r.script === 'flappy.py');
    assert.deepEqual(
      flappyRuns.map((r) => r.outcome),
      ['sent', 'nothing_to_send', 'held_by_cooldown', 'nothing_to_send', 'held_by_cooldown', 'nothing_to_send', 'held_by_cooldown', 'nothing_to_send'],
    );
    assert.equal(flappyRuns.filter((r) => r.resolved_alert).length, 1, 'only the alert that was sent is resolved');
  });

  for (const [rule, name, hours] of [['snoozed', 'snoozy', 6], ['muted', 'mutey', 9]] as const) {
    void it(`a ${rule} script's resolved notice is held back like its alerts, the condition is closed, and the next alert after the cooldown is resolved again`, async () => {
      const rules = new AlertRulesStore(h.dataDir, { now: () => Date.now() });
      const c = condition(name, '1h');
      const start = T0 + hours * 3_600_000;
      const said = (prefix: string): boolean => h.fake.sentMessages(chat).some((m) => (m.text ?? '').startsWith(`${prefix}Disk low on /data (${name})`));
      c.on();
      await pass(`${name}.py`, start);
      await h.fake.waitFor(() => (said('') ? true : undefined), 60_000, () => `the ${name} alert`);
      if (rule === 'snoozed') await rules.snooze('root', `${name}.py`, Date.now() + 3_600_000);
      else await rules.mute('root', `${name}.py`);
      c.off();
      await pass(`${name}.py`, start + 10 * MIN);
      const run = history().at(-1)!;
      assert.equal(run.resolved_alert !== undefined, true, 'the condition is closed');
      assert.equal(run.resolved_notice, undefined, 'no notice was sent');
      assert.match(run.warning ?? '', new RegExp(`resolved notice was not sent: ${rule}`));
      await h.client.send({ user: 'root', message: `marker after ${name}` }, 'respond-async');
      await h.fake.waitFor(() => (h.fake.sentMessages(chat).some((m) => m.text === `marker after ${name}`) ? true : undefined), 60_000, () => 'the marker');
      assert.ok(!said('✅ Resolved: '), 'no resolved notice in the chat');
      const state = JSON.parse(readFileSync(join(home, '.notifications', 'state', `${name}.json`), 'utf8')) as Record<string, unknown>;
      assert.equal(state.active_alert, undefined);
      // Without the rule, the condition back after the cooldown is a new alert, with its own notice.
      await rules.unmuteScript('root', `${name}.py`);
      c.on();
      await pass(`${name}.py`, start + 70 * MIN);
      c.off();
      await pass(`${name}.py`, start + 75 * MIN);
      await h.fake.waitFor(() => (said('✅ Resolved: ') ? true : undefined), 60_000, () => 'the notice of the new alert');
    });
  }

  void it('an alert still queued when its condition clears (Telegram down): the notice still replies to it once both go', async () => {
    const c = condition('late', '1h');
    const start = T0 + 12 * 3_600_000;
    const before = h.fake.sentMessages(chat).length;
    h.fake.setFault({ kind: 'outage', as: 'reset' });
    try {
      c.on();
      await pass('late.py', start);
      await h.waitForLog((l) => l.msg === 'delivery failed; will retry', 60_000, 'the alert waiting for Telegram');
      c.off();
      await pass('late.py', start + 5 * MIN);
      assert.ok(history().at(-1)!.resolved_notice, 'the notice was accepted while the alert was still queued');
    } finally {
      h.fake.setFault(null);
    }
    const msgs = (await h.fake.waitForMessages(chat, before + 2, 30_000)).slice(before);
    assert.match(msgs[0]!.text ?? '', /^Disk low on \/data \(late\)/);
    assert.match(msgs[1]!.text ?? '', /^✅ Resolved: Disk low on \/data \(late\)/u);
    assert.equal(msgs[1]!.reply_to_message_id, msgs[0]!.message_id, 'the notice replies to the alert');
    await h.fake.waitFor(
      () => ((h.fake.sentMessages(chat)[before]!.reply_markup?.inline_keyboard ?? []).flat().some((b) => b.text === '✅ Resolved') ? true : undefined),
      60_000,
      () => `the alert's buttons updated: ${JSON.stringify(h.fake.sentMessages(chat)[before]!.reply_markup)}`,
    );
  });

  void it('an alert to the analyst and a team chat is resolved in both, each notice a reply to its own chat\'s alert; a team chat no longer allowed closes the condition without a notice', async () => {
    const group = -100_777;
    h.fake.createGroup(group, 'Ops room', [chat]);
    const teams = new TeamChatStore(h.dataDir);
    await teams.file.update((all) => ({ next: { ...all, 'ops-room': { chat_id: group, owner: 'root', linked_at: new Date().toISOString(), members: [] } }, result: undefined }));
    const c = condition('shared_disk', '1h', { to: ['me', 'ops-room'] });
    const start = T0 + 15 * 3_600_000;
    const before = h.fake.sentMessages(chat).length;
    c.on();
    await pass('shared_disk.py', start);
    const [teamAlert] = await h.fake.waitForMessages(group, 1, 60_000);
    const [ownAlert] = (await h.fake.waitForMessages(chat, before + 1, 60_000)).slice(before);
    assert.match(teamAlert!.text ?? '', /^Disk low on \/data \(shared_disk\)/);
    assert.match(ownAlert!.text ?? '', /^Disk low on \/data \(shared_disk\)/);
    c.off();
    await pass('shared_disk.py', start + 30 * MIN);
    const [, teamNotice] = await h.fake.waitForMessages(group, 2, 60_000);
    const [, ownNotice] = (await h.fake.waitForMessages(chat, before + 2, 60_000)).slice(before);
    assert.match(teamNotice!.text ?? '', /^✅ Resolved: Disk low on \/data \(shared_disk\)\n[^]*after 30 min/u);
    assert.equal(teamNotice!.reply_to_message_id, teamAlert!.message_id, 'the team chat\'s notice replies to the team chat\'s alert');
    assert.equal(ownNotice!.reply_to_message_id, ownAlert!.message_id, 'the own chat\'s notice replies to the own chat\'s alert');
    const labels = (m: number, id: number): string[] => ((h.fake.sentMessages(m).find((x) => x.message_id === id)?.reply_markup?.inline_keyboard ?? []).flat().map((b) => b.text));
    await h.fake.waitFor(() => (labels(group, teamAlert!.message_id).includes('✅ Resolved') && labels(chat, ownAlert!.message_id).includes('✅ Resolved') ? true : undefined), 60_000, () => `both alerts' buttons updated: ${JSON.stringify([labels(group, teamAlert!.message_id), labels(chat, ownAlert!.message_id)])}\n${h.logTail(30)}`);
    assert.deepEqual(labels(group, teamAlert!.message_id), ['✅ Resolved'], 'a team chat\'s alert has no Run button');

    // The same condition again after the cooldown, but the team chat is gone by the time it clears.
    c.on();
    await pass('shared_disk.py', start + 95 * MIN);
    await h.fake.waitForMessages(group, 3, 60_000);
    await h.fake.waitForMessages(chat, before + 3, 60_000);
    await teams.file.update((all) => {
      const next = { ...all };
      delete next['ops-room'];
      return { next, result: undefined };
    });
    c.off();
    await pass('shared_disk.py', start + 100 * MIN);
    const run = history().at(-1)!;
    assert.equal(run.resolved_notice, undefined);
    assert.match(run.warning ?? '', /resolved notice of alert \S+ was refused \(.*ops-room.*\); the condition is closed without it/);
    await pass('shared_disk.py', start + 105 * MIN);
    assert.equal(history().at(-1)!.warning, undefined, 'not asked again on the next run');
  });

  void it('a condition that outlasted its cooldown alerted twice: the notice replies to the latest alert, and both alerts\' buttons say it is resolved', async () => {
    const c = condition('long_cond', '1h');
    const start = T0 + 30 * 3_600_000;
    const mine = (): Array<{ message_id: number; text?: string; reply_to_message_id?: number }> => h.fake.sentMessages(chat).filter((m) => (m.text ?? '').split('\n')[0]!.endsWith('(long_cond)'));
    c.on();
    await pass('long_cond.py', start);
    await pass('long_cond.py', start + 61 * MIN);
    c.off();
    await pass('long_cond.py', start + 70 * MIN);
    await h.fake.waitFor(() => (mine().length >= 3 ? true : undefined), 30_000, () => `two alerts and a notice: ${JSON.stringify(mine().map((m) => m.text))}`);
    const [first, second, notice] = mine();
    assert.match(first!.text ?? '', /^Disk low on \/data \(long_cond\)/);
    assert.match(second!.text ?? '', /^Disk low on \/data \(long_cond\)/);
    assert.match(notice!.text ?? '', /^✅ Resolved: Disk low on \/data \(long_cond\)\n[^]*after 1 h 10 min/u);
    assert.equal(notice!.reply_to_message_id, second!.message_id, 'the notice replies to the latest alert');
    const labels = (id: number): string[] => (h.fake.sentMessages(chat).find((m) => m.message_id === id)?.reply_markup?.inline_keyboard ?? []).flat().map((b) => b.text);
    await h.fake.waitFor(
      () => (labels(first!.message_id).includes('✅ Resolved') && labels(second!.message_id).includes('✅ Resolved') ? true : undefined),
      30_000,
      () => `both alerts' buttons updated: first ${JSON.stringify(labels(first!.message_id))}, second ${JSON.stringify(labels(second!.message_id))}\n${h.logTail(30)}`,
    );
    assert.deepEqual(labels(first!.message_id), ['✅ Resolved', 'Run now'], 'the earlier alert no longer offers to snooze a condition that is over');
  });

  void it('in quiet hours a resolved notice is held like its alert, and an urgent alert\'s notice breaks through as a reply', async () => {
    const rules = new AlertRulesStore(h.dataDir, { now: () => Date.now() });
    const hhmm = (ms: number): string => new Date(ms).toISOString().slice(11, 16);
    await rules.setQuietHours('root', { start: hhmm(Date.now() - 3_600_000), end: hhmm(Date.now() + 3 * 3_600_000), tz: 'UTC' });
    try {
      const quiet = condition('quiet_cond', '1h');
      const loud = condition('loud_cond', '1h', { urgent: true });
      const start = T0 + 20 * 3_600_000;
      const before = h.fake.sentMessages(chat).length;
      quiet.on();
      loud.on();
      await pass('quiet_cond.py', start);
      await pass('loud_cond.py', start);
      assert.equal(history().filter((r) => r.script === 'quiet_cond.py').at(-1)!.outcome, 'held_quiet_hours');
      quiet.off();
      loud.off();
      await pass('quiet_cond.py', start + 15 * MIN);
      await pass('loud_cond.py', start + 15 * MIN);
      const quietResolved = history().filter((r) => r.script === 'quiet_cond.py').at(-1)!;
      assert.ok(quietResolved.resolved_alert, 'the held alert\'s condition is closed too');
      assert.ok(quietResolved.resolved_notice, 'its notice was accepted');
      assert.equal(quietResolved.resolved_notice_held, 'quiet_hours', 'and is recorded as held for the digest, not as sent');
      assert.ok(quietResolved.resolved_notice_until, 'with when the digest goes');
      const loudResolved = history().filter((r) => r.script === 'loud_cond.py').at(-1)!;
      assert.equal(loudResolved.resolved_notice_held, undefined, 'the urgent alert\'s notice was sent');
      await h.client.send({ user: 'root', message: 'marker in quiet hours', urgent: true }, 'respond-async');
      await h.fake.waitFor(() => (h.fake.sentMessages(chat).some((m) => m.text === 'marker in quiet hours') ? true : undefined), 60_000, () => 'the marker');
      const mine = h.fake.sentMessages(chat).slice(before).filter((m) => /_cond\)|^marker in quiet hours$/.test((m.text ?? '').split('\n')[0]!));
      assert.deepEqual(
        mine.map((m) => (m.text ?? '').split('\n')[0]),
        ['Disk low on /data (loud_cond)', '✅ Resolved: Disk low on /data (loud_cond)', 'marker in quiet hours'],
        'the urgent alert and its notice went; the other alert and its notice wait for the digest',
      );
      assert.equal(mine[1]!.reply_to_message_id, mine[0]!.message_id);
    } finally {
      await rules.setQuietHours('root', null);
    }
  });
});
