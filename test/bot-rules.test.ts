/**
 * Fewer, better alerts, through the real bot and the fake Telegram: the buttons under an
 * alert, snooze and mute with their expiry (moving an injected clock, not sleeping),
 * /mute and /unmute, quiet hours with a digest, and only-if-changed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unixRequest } from '../src/shared/sendClient.js';
import { ALERT_DATA_MAX_BYTES, inQuietHours, quietHoursEnd } from '../src/shared/alertRules.js';
import { type BotWorld, startBotWorld } from './support/inProcessBot.js';

const USER = 'alice';
let chat = 7100;

/** Waits for `check` to hold, up to a minute (a bound for a hang, not a speed target). */
async function waitUntil(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function alert(w: BotWorld, fields: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await w.client.send({ user: USER, ...fields });
  return { status: res.status, body: res.body as Record<string, unknown> };
}

void describe('alert buttons, snooze and mute', () => {
  let w: BotWorld;
  before(async () => {
    w = await startBotWorld();
  });
  after(async () => {
    await w.close();
  });

  void it('puts Snooze 1h, Snooze 1d, Mute and Run now under every script alert', async () => {
    const c = ++chat;
    await w.link(USER, c);
    const r = await alert(w, { title: 'Revenue dropped', message: 'Today 41k', script: 'revenue_drop.py' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const [m] = await w.fake.waitForMessages(c, 1);
    const buttons = (m!.reply_markup?.inline_keyboard ?? []).flat().map((b) => `${b.text}=${b.callback_data ?? ''}`);
    assert.deepEqual(buttons, ['Snooze 1h=sn1h:revenue_drop.py', 'Snooze 1d=sn1d:revenue_drop.py', 'Mute this script=mute:revenue_drop.py', 'Run now=run:revenue_drop.py']);
  });

  void it('Snooze 1h acknowledges, edits the message, holds the next alert, and ends after the hour', async () => {
    const c = ++chat;
    await w.link(USER, c);
    await alert(w, { title: 'Freshness', message: 'stale', script: 'fresh.py' });
    const [m] = await w.fake.waitForMessages(c, 1);
    const qid = w.fake.pressButton(c, m!.message_id, 'sn1h:fresh.py');
    const answer = await w.fake.waitForCallbackAnswer(qid);
    assert.match(answer.text ?? '', /Snoozed until \d\d:\d\d UTC/);
    await w.fake.waitFor(() => (w.fake.message(c, m!.message_id)?.text ?? '').includes('Snoozed until') || undefined, 60_000, () => 'the alert edited to say it is snoozed');
    const edited = w.fake.message(c, m!.message_id)!;
    assert.match(edited.text ?? '', /^Freshness\nstale\n\n🔕 Snoozed until \d\d:\d\d UTC$/u);
    assert.equal(edited.entities?.[0]?.type, 'bold', 'the title stays bold after the edit');
    assert.deepEqual((edited.reply_markup?.inline_keyboard ?? []).flat().map((b) => b.text), ['Unsnooze', 'Run now']);

    const rules = await w.rules.forUser(USER);
    const until = Date.parse(rules.scripts['fresh.py']?.snoozed_until ?? '');
    assert.ok(Math.abs(until - (w.clock.now() + 3_600_000)) < 10_000, 'snoozed for one hour in alert_rules.json');

    const held = await alert(w, { title: 'Freshness', message: 'still stale', script: 'fresh.py' });
    assert.equal(held.status, 200);
    assert.equal(held.body.suppressed, 'snoozed');
    assert.equal(held.body.telegram, 'suppressed');
    const other = await alert(w, { title: 'Other script', message: 'goes through', script: 'other.py' });
    assert.equal(other.body.telegram, 'delivered', 'other scripts are not snoozed');
    await w.fake.waitForMessages(c, 2);
    assert.equal(w.fake.sentMessages(c).filter((x) => (x.text ?? '').includes('still stale')).length, 0, 'the snoozed alert was not sent');

    w.clock.advance(61 * 60_000);
    const back = await alert(w, { title: 'Freshness', message: 'after the snooze', script: 'fresh.py' });
    assert.equal(back.body.telegram, 'delivered', JSON.stringify(back.body));
    assert.equal((await w.rules.forUser(USER)).scripts['fresh.py'], undefined, 'the expired snooze is gone');
  });

  void it('Snooze 1d holds for a day', async () => {
    const c = ++chat;
    await w.link(USER, c);
    await alert(w, { title: 'Daily', message: 'x', script: 'daily.py' });
    const [m] = await w.fake.waitForMessages(c, 1);
    await w.fake.waitForCallbackAnswer(w.fake.pressButton(c, m!.message_id, 'sn1d:daily.py'));
    w.clock.advance(23 * 3_600_000);
    assert.equal((await alert(w, { title: 'Daily', message: 'y', script: 'daily.py' })).body.suppressed, 'snoozed');
    w.clock.advance(2 * 3_600_000);
    assert.equal((await alert(w, { title: 'Daily', message: 'z', script: 'daily.py' })).body.telegram, 'delivered');
  });

  void it('Mute holds until Unmute, whatever the time', async () => {
    const c = ++chat;
    await w.link(USER, c);
    await alert(w, { title: 'Noisy', message: 'x', script: 'noisy.py' });
    const [m] = await w.fake.waitForMessages(c, 1);
    const answer = await w.fake.waitForCallbackAnswer(w.fake.pressButton(c, m!.message_id, 'mute:noisy.py'));
    assert.match(answer.text ?? '', /noisy\.py muted/);
    assert.equal((await w.rules.forUser(USER)).scripts['noisy.py']?.muted, true);
    w.clock.advance(30 * 86_400_000);
    const muted = await alert(w, { title: 'Noisy', message: 'y', script: 'noisy.py' });
    assert.equal(muted.body.suppressed, 'muted');
    await w.fake.waitFor(() => (w.fake.message(c, m!.message_id)?.reply_markup?.inline_keyboard ?? []).flat().some((b) => b.text === 'Unmute') || undefined, 60_000, () => 'an Unmute button');
    await w.fake.waitForCallbackAnswer(w.fake.pressButton(c, m!.message_id, 'undo:noisy.py'));
    await w.fake.waitFor(() => (w.fake.message(c, m!.message_id)?.text ?? '').includes('alerts are on again') || undefined, 60_000, () => 'the alert edited to say it is unmuted');
    assert.equal((await alert(w, { title: 'Noisy', message: 'z', script: 'noisy.py' })).body.telegram, 'delivered');
  });

  /** Button data a client could send on the analyst's alert, none of it on that alert's keyboard. */
  const FORGED: ReadonlyArray<{ what: string; data: string }> = [
    { what: 'a script the bot never offered', data: 'mute:invented.py' },
    { what: 'a NUL in the name', data: 'mute:evil\u0000name' },
    { what: 'a path instead of a name', data: 'sn1d:../../etc/passwd' },
    { what: "an example script's name", data: 'mute:revenue_drop.py' },
    { what: "another chat's genuine button", data: 'mute:theirs.py' },
  ];

  void it('forged button data (a name the bot never offered, a NUL, another chat\'s button) is refused and changes nothing', async () => {
    const c = ++chat;
    await w.link(USER, c);
    await alert(w, { title: 'Real', message: 'x', script: 'real.py' });
    const [m] = await w.fake.waitForMessages(c, 1);
    const other = ++chat;
    await w.link('someone_else', other);
    await alert(w, { user: 'someone_else', title: 'Theirs', message: 'y', script: 'theirs.py' });
    await w.fake.waitForMessages(other, 1);
    const before = JSON.stringify(await w.rules.forUser(USER));
    for (const { what, data } of FORGED) {
      const answer = await w.fake.waitForCallbackAnswer(w.fake.pressButton(c, m!.message_id, data, { unchecked: true }));
      assert.match(answer.text ?? '', /not one the bot sent here; nothing was changed/, `${what} (${JSON.stringify(data)}) is refused`);
    }
    assert.equal(JSON.stringify(await w.rules.forUser(USER)), before, 'the analyst\'s rules are unchanged');
    assert.equal((await w.rules.forUser('someone_else')).scripts['theirs.py']?.muted, undefined, 'the other analyst\'s rules are unchanged');
    // The button the bot did send still works.
    const real = await w.fake.waitForCallbackAnswer(w.fake.pressButton(c, m!.message_id, 'mute:real.py'));
    assert.match(real.text ?? '', /real\.py muted/);
  });

  void it('/mute <duration> silences every script until it ends; /unmute ends it early; /status shows it', async () => {
    const c = ++chat;
    await w.link(USER, c);
    w.fake.sendUserMessage(c, '/mute 2h');
    const [reply] = await w.fake.waitForMessages(c, 1);
    assert.match(reply!.text ?? '', /All alerts muted until \d\d:\d\d UTC/);
    assert.equal((await alert(w, { title: 'A', message: 'x', script: 'a.py' })).body.suppressed, 'muted');
    assert.equal((await alert(w, { title: 'B', message: 'x', script: 'b.py' })).body.suppressed, 'muted');
    w.fake.sendUserMessage(c, '/status');
    const msgs = await w.fake.waitForMessages(c, 2);
    assert.match(msgs[1]!.text ?? '', /All alerts muted until/);
    w.fake.sendUserMessage(c, '/unmute');
    await w.fake.waitForMessages(c, 3);
    assert.equal((await alert(w, { title: 'A', message: 'y', script: 'a.py' })).body.telegram, 'delivered');
    w.fake.sendUserMessage(c, '/mute soon');
    const all = await w.fake.waitForMessages(c, 5);
    assert.match(all[4]!.text ?? '', /Usage: \/mute <duration>/);
  });
});

void describe('quiet hours', () => {
  void it('knows the window in zones with and without summer time', () => {
    const prague = { start: '22:00', end: '07:00', tz: 'Europe/Prague' };
    // 2026-07-01 21:30 UTC is 23:30 in Prague (CEST, UTC+2): quiet.
    assert.equal(inQuietHours(prague, Date.UTC(2026, 6, 1, 21, 30)), true);
    // 2026-01-15 21:30 UTC is 22:30 in Prague (CET, UTC+1): quiet; 20:30 UTC is 21:30: not.
    assert.equal(inQuietHours(prague, Date.UTC(2026, 0, 15, 21, 30)), true);
    assert.equal(inQuietHours(prague, Date.UTC(2026, 0, 15, 20, 30)), false);
    // Summer: the window ends at 07:00 CEST = 05:00 UTC.
    assert.equal(quietHoursEnd(prague, Date.UTC(2026, 6, 1, 21, 30)), Date.UTC(2026, 6, 2, 5, 0));
    // Winter: 07:00 CET = 06:00 UTC.
    assert.equal(quietHoursEnd(prague, Date.UTC(2026, 0, 15, 21, 30)), Date.UTC(2026, 0, 16, 6, 0));
    // Across the spring change (2026-03-29, clocks go 02:00 -> 03:00): ends 07:00 CEST = 05:00 UTC.
    assert.equal(quietHoursEnd(prague, Date.UTC(2026, 2, 28, 22, 0)), Date.UTC(2026, 2, 29, 5, 0));
    const kolkata = { start: '13:00', end: '14:30', tz: 'Asia/Kolkata' };
    // UTC+5:30 all year: 13:10 local is 07:40 UTC.
    assert.equal(inQuietHours(kolkata, Date.UTC(2026, 6, 1, 7, 40)), true);
    assert.equal(quietHoursEnd(kolkata, Date.UTC(2026, 6, 1, 7, 40)), Date.UTC(2026, 6, 1, 9, 0));
    assert.equal(inQuietHours({ start: '09:00', end: '09:00', tz: 'UTC' }, Date.UTC(2026, 6, 1, 9, 0)), false, 'an empty window is never quiet');
  });

  for (const tz of ['Europe/Prague', 'Asia/Tokyo']) {
    void it(`holds three alerts for one digest at the end, lets an urgent one through (${tz})`, async () => {
      const w = await startBotWorld();
      try {
        const c = ++chat;
        await w.link(USER, c);
        // Put the clock inside the window: 23:00 local on a summer day.
        const offsetHours = tz === 'Europe/Prague' ? 2 : 9;
        w.clock.set(Date.UTC(2026, 6, 10, 23 - offsetHours, 0));
        await w.rules.setQuietHours(USER, { start: '22:00', end: '07:00', tz });
        for (const n of [1, 2, 3]) {
          const r = await alert(w, { title: `Alert ${n} _x_`, message: `body ${n}`, script: `s${n}.py` });
          assert.equal(r.status, 202, JSON.stringify(r.body));
          assert.equal(r.body.held, 'quiet_hours');
          assert.equal(r.body.until, new Date(Date.UTC(2026, 6, 11, 7 - offsetHours, 0)).toISOString());
        }
        const urgent = await alert(w, { title: 'Disk full', message: 'now', script: 'disk.py', urgent: true });
        assert.equal(urgent.body.telegram, 'delivered', 'an urgent alert breaks through');
        // A later urgent alert: whatever the held ones could have sent would come before it.
        await alert(w, { title: 'Later', message: 'marker', script: 'later.py', urgent: true });
        const sofar = await w.fake.waitForMessages(c, 2, 60_000);
        assert.deepEqual(sofar.map((m) => /Disk full|Later/.exec(m.text ?? '')?.[0]), ['Disk full', 'Later'], 'nothing else arrives during quiet hours');

        w.clock.set(Date.UTC(2026, 6, 11, 7 - offsetHours, 1));
        const msgs = await w.fake.waitForMessages(c, 3, 60_000);
        const digest = msgs[2]!.text ?? '';
        assert.match(digest, /While you were in quiet hours: 3 alerts/);
        const order = [1, 2, 3].map((n) => digest.indexOf(`Alert ${n} _x_`));
        assert.ok(order.every((i) => i > 0) && order[0]! < order[1]! && order[1]! < order[2]!, `titles in order: ${digest}`);
        assert.ok(digest.includes('body 2'));
        await waitUntil('the held alerts are released', async () => (await w.rules.heldUsers()).length === 0);
        // An alert after the digest: a second digest would come before it.
        await alert(w, { title: 'Morning', message: 'marker', script: 'morning.py' });
        const all = await w.fake.waitForMessages(c, 4, 60_000);
        assert.match(all[3]!.text ?? '', /Morning/, 'one digest, sent once');
        assert.equal(w.fake.sentMessages(c).length, 4, 'one digest, sent once');
      } finally {
        await w.close();
      }
    });
  }
});

void describe('only if changed', () => {
  void it('sends the same data once, and a change with what changed', async () => {
    const w = await startBotWorld();
    try {
      const c = ++chat;
      await w.link(USER, c);
      const first = await alert(w, { title: 'KPIs', message: 'daily', script: 'kpi.py', only_if_changed: true, data: { revenue: 100, users: 5 } });
      assert.equal(first.body.telegram, 'delivered');
      const same = await alert(w, { title: 'KPIs', message: 'daily', script: 'kpi.py', only_if_changed: true, data: { users: 5, revenue: 100 } });
      assert.equal(same.body.suppressed, 'unchanged');
      const changed = await alert(w, { title: 'KPIs', message: 'daily', script: 'kpi.py', only_if_changed: true, data: { revenue: 80, churn: 0.1 } });
      assert.equal(changed.body.telegram, 'delivered');
      const msgs = await w.fake.waitForMessages(c, 2);
      assert.equal(msgs.length, 2, 'the unchanged one was not sent');
      const text = msgs[1]!.text ?? '';
      assert.match(text, /Changed since the last alert:/);
      assert.match(text, /revenue: 100 -> 80 \(-20\.0%\)/);
      assert.match(text, /\+ churn: 0\.1/);
      assert.match(text, /- users \(removed\)/);
    } finally {
      await w.close();
    }
  });
});

/** Sends as `user` (the test runs as root, who may send for anyone). */
async function sendAs(w: BotWorld, user: string, fields: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await w.client.send({ ...fields, user });
  return { status: res.status, body: res.body as Record<string, unknown> };
}

void describe('only if changed cannot be poisoned', () => {
  /** `{"a": {"a": ... 1}}`, `depth` objects deep, as JSON text (so building it needs no recursion). */
  const nested = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

  void it('data nested 2,500 deep or larger than the bound is refused with 400 and stores nothing; every analyst\'s only_if_changed goes on', async () => {
    const w = await startBotWorld();
    try {
      const c = ++chat;
      const d = ++chat;
      await w.link(USER, c);
      await w.link('bob', d);
      const bobFirst = await sendAs(w, 'bob', { title: 'KPIs', message: 'daily', script: 'kpi.py', only_if_changed: true, data: { revenue: 1 } });
      assert.equal(bobFirst.body.telegram, 'delivered', JSON.stringify(bobFirst.body));

      for (const [what, data] of [
        ['2,500 deep', nested(2500)],
        ['33 deep', nested(33)],
        ['over 64 KiB', JSON.stringify({ big: 'x'.repeat(70 * 1024) })],
      ] as const) {
        const body = `{"user":"${USER}","message":"m","script":"poison.py","only_if_changed":true,"data":${data}}`;
        const raw = await unixRequest(w.socketPath, 'POST', '/send', { headers: { 'content-type': 'application/json' }, body });
        assert.equal(raw.status, 400, `data ${what} is refused: ${JSON.stringify(raw.body)}`);
        assert.match(String((raw.body as { error?: string }).error), /^data: is (nested more than 32 levels deep|too large \(\d+ bytes as JSON; 65536 at most\))/, `the error says what is wrong with data ${what}`);
      }
      // 32 deep is within the bound, stored, and read back for the next comparison.
      const deepOk = JSON.parse(nested(32)) as Record<string, unknown>;
      assert.equal((await alert(w, { message: 'deep', script: 'deep.py', only_if_changed: true, data: deepOk })).body.telegram, 'delivered');
      assert.equal((await alert(w, { message: 'deep', script: 'deep.py', only_if_changed: true, data: deepOk })).body.suppressed, 'unchanged');

      // Everyone's only_if_changed still works, across a restart of the stores.
      const bobSame = await sendAs(w, 'bob', { title: 'KPIs', message: 'daily', script: 'kpi.py', only_if_changed: true, data: { revenue: 1 } });
      assert.equal(bobSame.body.suppressed, 'unchanged', JSON.stringify(bobSame.body));
      assert.equal((await alert(w, { title: 'KPIs', message: 'daily', script: 'kpi.py', only_if_changed: true, data: { revenue: 2 } })).body.telegram, 'delivered');
    } finally {
      await w.close();
    }
  });

  void it('an analyst\'s state file that cannot be read breaks nobody else\'s, and that analyst\'s alerts still go out', async () => {
    const w = await startBotWorld();
    try {
      const c = ++chat;
      const d = ++chat;
      await w.link(USER, c);
      await w.link('bob', d);
      const send = (user: string, revenue: number) => sendAs(w, user, { title: 'KPIs', message: `revenue ${revenue}`, script: 'kpi.py', only_if_changed: true, data: { revenue } });
      assert.equal((await send(USER, 1)).body.telegram, 'delivered');
      assert.equal((await send('bob', 1)).body.telegram, 'delivered');
      writeFileSync(join(w.dataDir, 'alert_data', `${USER}.json`), '{"kpi.py": {"data": "{\\"revenue\\": 1", "at": "x"}'); // damaged
      const alice = await send(USER, 1);
      assert.equal(alice.status, 200, `the analyst with the damaged state still gets the alert: ${JSON.stringify(alice.body)}`);
      assert.equal(alice.body.telegram, 'delivered', 'sent as changed, since the last data cannot be read');
      assert.equal((await send('bob', 1)).body.suppressed, 'unchanged', 'another analyst is untouched');
      assert.equal((await send('bob', 2)).body.telegram, 'delivered');
      assert.equal((await sendAs(w, USER, { message: 'a plain send' })).body.telegram, 'delivered');
    } finally {
      await w.close();
    }
  });

  void it('one analyst\'s state is bounded: the oldest scripts\' data makes room', async () => {
    const w = await startBotWorld();
    try {
      const c = ++chat;
      await w.link(USER, c);
      const big = { blob: 'y'.repeat(60 * 1024) };
      for (let i = 0; i < 20; i += 1) {
        w.clock.set(Date.UTC(2026, 6, 1, 0, i));
        assert.equal((await alert(w, { message: `s${i}`, script: `s${i}.py`, only_if_changed: true, data: big })).body.telegram, 'delivered');
      }
      const size = statSync(join(w.dataDir, 'alert_data', `${USER}.json`)).size;
      assert.ok(size <= ALERT_DATA_MAX_BYTES + 64 * 1024, `the state file stays near its bound (${size} bytes)`);
      assert.equal((await alert(w, { message: 's19', script: 's19.py', only_if_changed: true, data: big })).body.suppressed, 'unchanged', 'the newest is kept');
      assert.equal((await alert(w, { message: 's0', script: 's0.py', only_if_changed: true, data: big })).body.telegram, 'delivered', 'the oldest made room and is sent again');
    } finally {
      await w.close();
    }
  });
});

void describe('nothing accepted is lost by the rules', () => {
  void it('a digest no channel takes stays held, and arrives once the analyst links again', async () => {
    const w = await startBotWorld();
    try {
      const c = ++chat;
      await w.link(USER, c);
      w.clock.set(Date.UTC(2026, 6, 10, 23, 0));
      await w.rules.setQuietHours(USER, { start: '22:00', end: '07:00', tz: 'UTC' });
      const held = await alert(w, { title: 'Night alert', message: 'while asleep', script: 'night.py' });
      assert.equal(held.body.held, 'quiet_hours');
      await w.links.unlink(USER);
      w.clock.set(Date.UTC(2026, 6, 11, 7, 5));
      // A digest pass after the quiet hours ended tried it (in quiet hours a pass says nothing).
      await waitUntil('a digest pass found no channel', async () => w.logs.some((l) => {
        const line = JSON.parse(l) as { msg?: string; user?: string };
        return line.msg === 'quiet-hours digest kept: no channel takes it yet; retrying' && line.user === USER;
      }));
      assert.deepEqual(await w.rules.heldUsers(), [USER], 'with no channel the alerts stay held');
      await w.link(USER, c);
      const msgs = await w.fake.waitForMessages(c, 1, 60_000);
      assert.match(msgs[0]!.text ?? '', /Night alert/);
      await waitUntil('released once delivered', async () => (await w.rules.heldUsers()).length === 0);
      // An alert after the release: a second digest would come before it.
      await alert(w, { title: 'Morning', message: 'marker', script: 'morning.py' });
      const all = await w.fake.waitForMessages(c, 2, 60_000);
      assert.match(all[1]!.text ?? '', /Morning/, 'the digest went out once');
      assert.equal(w.fake.sentMessages(c).length, 2, 'the digest went out once');
    } finally {
      await w.close();
    }
  });

  void it('only-if-changed data refused by the send API is not recorded, so the retry sends it', async () => {
    const w = await startBotWorld();
    try {
      const c = ++chat;
      const first = await alert(w, { title: 'KPIs', message: 'daily', script: 'kpi2.py', only_if_changed: true, data: { revenue: 1 } });
      assert.equal(first.status, 404, 'not linked, no desktop: refused');
      await w.link(USER, c);
      const retry = await alert(w, { title: 'KPIs', message: 'daily', script: 'kpi2.py', only_if_changed: true, data: { revenue: 1 } });
      assert.equal(retry.body.telegram, 'delivered', JSON.stringify(retry.body));
      const again = await alert(w, { title: 'KPIs', message: 'daily', script: 'kpi2.py', only_if_changed: true, data: { revenue: 1 } });
      assert.equal(again.body.suppressed, 'unchanged');
    } finally {
      await w.close();
    }
  });

  void it('a photo refused because the queue is full leaves no file behind', async () => {
    const w = await startBotWorld({ NOTIFY_QUEUE_MAX: '1' });
    try {
      const c = ++chat;
      await w.link(USER, c);
      w.fake.setFault({ kind: 'outage' });
      const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==', 'base64');
      const ok = await w.client.sendPhoto({ user: USER, caption: 'first' }, { bytes: png, filename: 'a.png', contentType: 'image/png' }, 'respond-async');
      assert.equal(ok.status, 202);
      const full = await w.client.sendPhoto({ user: USER, caption: 'second' }, { bytes: png, filename: 'b.png', contentType: 'image/png' }, 'respond-async');
      assert.equal(full.status, 503);
      assert.ok(full.headers['retry-after'], 'Retry-After is given');
      const fs = await import('node:fs');
      const path = await import('node:path');
      assert.equal(fs.readdirSync(path.join(w.dataDir, 'outbox', 'photos')).length, 1, 'only the accepted photo is stored');
      w.fake.setFault(null);
      await w.fake.waitForMessages(c, 1, 60_000);
    } finally {
      await w.close();
    }
  });

  void it('gives two analysts\' same long script name different button keys', async () => {
    const { callbackData } = await import('../src/bot/commands/alertKeyboard.js');
    const long = `${'very_long_script_name_'.repeat(3)}.py`;
    const a = callbackData('sn1h', long, 'alice');
    const b = callbackData('sn1h', long, 'bob');
    assert.ok(Buffer.byteLength(a) <= 64 && Buffer.byteLength(b) <= 64);
    assert.notEqual(a, b);
  });
});
