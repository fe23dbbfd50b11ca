/**
 * The runner's side of the alert rules (issue 8): what the send API says it did with a
 * notification (snoozed, muted, unchanged, held for quiet hours) becomes the run's outcome
 * and decides the cooldown; `urgent` and `only_if_changed` are passed on; and script health
 * (one "is failing" alert after N failures in a row, one "recovered", at most one new
 * failing alert a day). The real bin/notify-runner.js runs as a child process in a
 * temporary $HOME, against the recording send-API stub.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { ScriptInfoSchema } from '../src/scripts/client.js';
import {
  closeSandboxes,
  HELPER,
  historyOf,
  lastRun,
  printing,
  RUNNER,
  type RunResult,
  runBin,
  runnerLog,
  type Sandbox,
  sandbox as makeSandbox,
  script,
} from './support/runnerSandbox.js';
import { queuedResponder, type RecordedRequest, type StubAnswer } from './support/sendApiStub.js';

const sandbox = (): Promise<Sandbox> => makeSandbox('notify-runner-rules-');

afterEach(closeSandboxes);

/** A script that fails with a Python traceback ending in this exception line. */
function raising(sb: Sandbox, name: string, message: string): void {
  script(sb.home, name, `def load():\n    raise ValueError(${JSON.stringify(message)})\n\nload()\n`);
}

async function runRunner(sb: Sandbox, args: string[] = [], env: Record<string, string> = {}): Promise<RunResult> {
  const r = await runBin(RUNNER, sb, args, env);
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\nlog:\n${runnerLog(sb)}`);
  return r;
}

function statePath(sb: Sandbox, stem: string): string {
  return join(sb.home, '.notifications', 'state', `${stem}.json`);
}

function stateOf(sb: Sandbox, stem: string): Record<string, unknown> {
  const p = statePath(sb, stem);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>) : {};
}

/** The JSON body of a JSON request (fails on multipart). */
function body(req: RecordedRequest): Record<string, unknown> {
  assert.ok(req.json && typeof req.json === 'object', `not a JSON request: ${JSON.stringify(req.fields)}`);
  return req.json as Record<string, unknown>;
}

/** The sends whose title matches (health alerts are told apart by their titles). */
function sendsTitled(sb: Sandbox, re: RegExp): Record<string, unknown>[] {
  return sb.stub
    .sends()
    .map((r) => (r.json ?? r.fields ?? {}) as Record<string, unknown>)
    .filter((b) => typeof b.title === 'string' && re.test(b.title));
}

function healthAlerts(sb: Sandbox): Record<string, unknown>[] {
  return sendsTitled(sb, /is failing|recovered/);
}

/** Answers every send with this 2xx body (plus a fresh id). */
function answering(status: number, extra: Record<string, unknown>): (req: RecordedRequest, index: number) => StubAnswer {
  return (req, index) =>
    req.path === '/health' ? { status: 200, body: { status: 'ok' } } : { status, body: { ok: true, id: `n${index + 1}`, ...extra } };
}

void describe('notify-runner: script health', () => {
  void it('three failures give one alert with the excerpt, a fourth none, a success one "recovered", a second streak that day none', async () => {
    const sb = await sandbox();
    raising(sb, 'revenue_drop.py', 'the revenue table is empty');

    await runRunner(sb);
    await runRunner(sb);
    assert.equal(healthAlerts(sb).length, 0, 'no alert before the third failure');
    assert.equal(stateOf(sb, 'revenue_drop').consecutive_failures, 2);

    await runRunner(sb);
    const alerts = healthAlerts(sb);
    assert.equal(alerts.length, 1, runnerLog(sb));
    const alert = alerts[0]!;
    assert.equal(alert.script, 'revenue_drop.py', 'the script name, so the bot puts its buttons under it');
    assert.equal(alert.title, '⚠️ revenue_drop.py is failing');
    assert.equal(alert.urgent, false);
    const message = String(alert.message);
    assert.match(message, /3 runs in a row/);
    assert.match(message, /ValueError: the revenue table is empty/, 'the last error excerpt');
    assert.match(message, /notify-runner --dry-run --script revenue_drop\.py/, 'how to try it by hand');
    assert.equal(lastRun(sb, 'revenue_drop.py').outcome, 'failed', 'the run itself is recorded as before');
    assert.equal(historyOf(sb).length, 3, 'the health alert is not a run');
    assert.match(runnerLog(sb), /revenue_drop\.py: health: "failing" alert sent, id n1/);
    let state = stateOf(sb, 'revenue_drop');
    assert.equal(state.consecutive_failures, 3);
    assert.equal(state.health_state, 'failing');
    assert.equal(typeof state.health_alert_at, 'number');

    await runRunner(sb);
    assert.equal(healthAlerts(sb).length, 1, 'a fourth failure sends nothing more');
    assert.equal(stateOf(sb, 'revenue_drop').consecutive_failures, 4);

    printing(sb.home, 'revenue_drop.py', { notify: false });
    await runRunner(sb);
    const recovered = sendsTitled(sb, /recovered/);
    assert.equal(recovered.length, 1, runnerLog(sb));
    assert.equal(recovered[0]!.title, '✅ revenue_drop.py recovered');
    assert.equal(recovered[0]!.script, 'revenue_drop.py');
    assert.equal(recovered[0]!.urgent, false);
    assert.match(String(recovered[0]!.message), /after 4 failed runs in a row/);
    state = stateOf(sb, 'revenue_drop');
    assert.equal(state.consecutive_failures, undefined);
    assert.equal(state.health_state, 'ok');

    await runRunner(sb);
    assert.equal(healthAlerts(sb).length, 2, 'one "recovered", not one per good run');

    raising(sb, 'revenue_drop.py', 'broken again');
    for (let i = 0; i < 4; i++) await runRunner(sb);
    assert.equal(healthAlerts(sb).length, 2, 'no second failing alert within a day');
    const log = runnerLog(sb);
    const skipped = log.split('\n').filter((l) => /health: failed 3 runs in a row; no alert/.test(l));
    assert.equal(skipped.length, 1, `the skip is logged once per streak:\n${log}`);
    assert.match(skipped[0]!, /at most one a day/);

    printing(sb.home, 'revenue_drop.py', { notify: false });
    await runRunner(sb);
    assert.equal(healthAlerts(sb).length, 2, 'no "recovered" for a streak that got no failing alert');
    assert.equal(stateOf(sb, 'revenue_drop').consecutive_failures, undefined);
  });

  void it('a streak a day after the last health alert alerts again; last_sent and unknown keys are kept', async () => {
    const sb = await sandbox();
    raising(sb, 'report.py', 'no data');
    const now = Math.floor(Date.now() / 1000);
    mkdirSync(join(sb.home, '.notifications', 'state'), { recursive: true });
    writeFileSync(statePath(sb, 'report'), JSON.stringify({ last_sent: now - 7200, health_state: 'ok', health_alert_at: now - 25 * 3600, mine: { keep: true } }));
    for (let i = 0; i < 3; i++) await runRunner(sb);
    assert.equal(sendsTitled(sb, /report\.py is failing/).length, 1, runnerLog(sb));
    const state = stateOf(sb, 'report');
    assert.equal(state.last_sent, now - 7200);
    assert.deepEqual(state.mine, { keep: true });
    assert.equal(state.health_state, 'failing');
    assert.ok((state.health_alert_at as number) >= now);
  });

  void it('timeouts and invalid output count; delivery failures do not and end the streak; NOTIFY_HEALTH_FAILURES sets N', async () => {
    const sb = await sandbox();
    const env = { NOTIFY_HEALTH_FAILURES: '2' };
    // A short timeout only for the run whose script is meant to hang.
    const hangEnv = { ...env, NOTIFY_SCRIPT_TIMEOUT: '1500ms', NOTIFY_SCRIPT_KILL_GRACE: '100ms' };
    script(sb.home, 'flaky.py', 'print("not json")\n');
    await runRunner(sb, [], env);
    assert.equal(lastRun(sb, 'flaky.py').outcome, 'invalid_output');
    // The send API refuses the script's own alert: delivery_failed, not the script's fault.
    sb.stub.respondWith((req) => (req.path === '/health' ? { status: 200, body: { status: 'ok' } } : { status: 503, body: { error: 'busy' } }));
    printing(sb.home, 'flaky.py', { notify: true, message: 'hello' });
    await runBin(RUNNER, sb, [], env);
    assert.equal(lastRun(sb, 'flaky.py').outcome, 'delivery_failed');
    assert.equal(stateOf(sb, 'flaky').consecutive_failures, undefined, 'the streak ended');
    sb.stub.respondWith(queuedResponder);
    script(sb.home, 'flaky.py', 'import time\ntime.sleep(30)\n');
    await runRunner(sb, [], hangEnv);
    assert.equal(lastRun(sb, 'flaky.py').outcome, 'timed_out');
    assert.equal(healthAlerts(sb).length, 0, 'one failure after the streak ended');
    script(sb.home, 'flaky.py', 'print("still not json")\n');
    await runRunner(sb, [], env);
    const alerts = healthAlerts(sb);
    assert.equal(alerts.length, 1, runnerLog(sb));
    assert.match(String(alerts[0]!.message), /2 runs in a row/);
    assert.match(String(alerts[0]!.message), /printed invalid output/);
    assert.match(String(alerts[0]!.message), /still not json/);
  });

  void it('NOTIFY_HEALTH_FAILURES=0 turns health alerts off', async () => {
    const sb = await sandbox();
    raising(sb, 'bad.py', 'x');
    for (let i = 0; i < 3; i++) await runRunner(sb, [], { NOTIFY_HEALTH_FAILURES: '0' });
    assert.equal(healthAlerts(sb).length, 0);
    assert.deepEqual(stateOf(sb, 'bad'), {});
  });

  void it('a health alert the send API could not take is sent by the next run', async () => {
    const sb = await sandbox();
    raising(sb, 'bad.py', 'kaputt');
    sb.stub.respondWith((req) => (req.path === '/health' ? { status: 200, body: { status: 'ok' } } : { status: 503, body: { error: 'restarting' } }));
    for (let i = 0; i < 3; i++) await runRunner(sb, [], { NOTIFY_HEALTH_FAILURES: '3' });
    assert.equal(healthAlerts(sb).length, 1, 'tried once');
    assert.match(runnerLog(sb), /bad\.py: health: the "failing" alert could not be sent \(the next run tries again\)/);
    assert.notEqual(stateOf(sb, 'bad').health_state, 'failing');
    sb.stub.respondWith(queuedResponder);
    await runRunner(sb);
    assert.equal(healthAlerts(sb).length, 2, 'tried again, and taken');
    assert.match(String(healthAlerts(sb)[1]!.message), /4 runs in a row/);
    assert.equal(stateOf(sb, 'bad').health_state, 'failing');
    await runRunner(sb);
    assert.equal(healthAlerts(sb).length, 2);
  });

  void it('--dry-run and on-demand runs leave the health alone', async () => {
    const sb = await sandbox();
    raising(sb, 'bad.py', 'nope');
    for (let i = 0; i < 3; i++) {
      const r = await runRunner(sb, ['--dry-run']);
      assert.match(r.stdout, /bad\.py: failed/);
    }
    for (let i = 0; i < 3; i++) {
      const r = await runBin(HELPER, sb, ['run', 'bad.py'], {});
      assert.equal(r.code, 1, r.stdout + r.stderr);
    }
    assert.equal(sb.stub.sends().length, 0);
    assert.equal(existsSync(statePath(sb, 'bad')), false);
  });
});

void describe('notify-runner: what the send API did with the notification', () => {
  void it('snoozed: outcome snoozed with held_until, no last_sent, logged; the next run tries again', async () => {
    const sb = await sandbox();
    const until = new Date(Date.now() + 3600_000).toISOString();
    sb.stub.respondWith(answering(200, { telegram: 'suppressed', desktop: 0, suppressed: 'snoozed', until }));
    printing(sb.home, 'alert.py', { notify: true, title: 'Revenue', message: 'down 30%' });
    await runRunner(sb);
    const rec = lastRun(sb, 'alert.py');
    assert.equal(rec.outcome, 'snoozed');
    assert.equal(rec.held_until, until);
    assert.equal(rec.id, 'n1');
    assert.equal(rec.title, 'Revenue');
    assert.equal(stateOf(sb, 'alert').last_sent, undefined, 'not sent: the cooldown does not start');
    assert.match(runnerLog(sb), /alert\.py: not sent: snoozed until \d{4}-\d\d-\d\dT/);
    assert.match(runnerLog(sb), /run finished in .*: 1 snoozed/);
    await runRunner(sb);
    assert.equal(sb.stub.sends().length, 2, 'not held by a cooldown');
  });

  void it('muted without an end: outcome muted, no held_until, "until unmuted" in the log', async () => {
    const sb = await sandbox();
    sb.stub.respondWith(answering(200, { telegram: 'suppressed', desktop: 0, suppressed: 'muted' }));
    printing(sb.home, 'alert.py', { notify: true, message: 'x' });
    await runRunner(sb);
    const rec = lastRun(sb, 'alert.py');
    assert.equal(rec.outcome, 'muted');
    assert.equal(rec.held_until, undefined);
    assert.equal(stateOf(sb, 'alert').last_sent, undefined);
    assert.match(runnerLog(sb), /alert\.py: not sent: muted until unmuted/);
  });

  void it('unchanged: outcome unchanged, no last_sent', async () => {
    const sb = await sandbox();
    sb.stub.respondWith(answering(200, { telegram: 'suppressed', desktop: 0, suppressed: 'unchanged' }));
    printing(sb.home, 'alert.py', { notify: true, message: 'x', data: { a: 1 }, only_if_changed: true });
    await runRunner(sb);
    const rec = lastRun(sb, 'alert.py');
    assert.equal(rec.outcome, 'unchanged');
    assert.equal(stateOf(sb, 'alert').last_sent, undefined);
    assert.match(runnerLog(sb), /alert\.py: not sent: unchanged/);
  });

  void it('held for quiet hours: outcome held_quiet_hours with held_until, and last_sent set (the digest sends it)', async () => {
    const sb = await sandbox();
    const until = new Date(Date.now() + 5 * 3600_000).toISOString();
    sb.stub.respondWith(answering(202, { queued: true, telegram: 'held', desktop: 'pending', held: 'quiet_hours', until }));
    printing(sb.home, 'alert.py', { notify: true, message: 'x', cooldown: '1h' });
    const before = Math.floor(Date.now() / 1000);
    await runRunner(sb);
    const rec = lastRun(sb, 'alert.py');
    assert.equal(rec.outcome, 'held_quiet_hours');
    assert.equal(rec.held_until, until);
    const lastSent = stateOf(sb, 'alert').last_sent;
    assert.ok(typeof lastSent === 'number' && lastSent >= before, `last_sent: ${String(lastSent)}`);
    assert.match(runnerLog(sb), /alert\.py: held for the quiet-hours digest sent at \d{4}-/);
    await runRunner(sb);
    assert.equal(lastRun(sb, 'alert.py').outcome, 'held_by_cooldown');
    assert.equal(sb.stub.sends().length, 1);
  });

  void it('notify-scripts list reports the new outcomes', async () => {
    const sb = await sandbox();
    sb.stub.respondWith(answering(200, { telegram: 'suppressed', desktop: 0, suppressed: 'snoozed' }));
    printing(sb.home, 'alert.py', { notify: true, message: 'x' });
    await runRunner(sb);
    const r = await runBin(HELPER, sb, ['list'], {});
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const list = JSON.parse(r.stdout) as unknown[];
    const item = ScriptInfoSchema.parse(list[0]);
    assert.equal(item.last_outcome, 'snoozed');
  });
});

void describe('notify-runner: urgent and only_if_changed are passed on', () => {
  void it('as JSON booleans on /send', async () => {
    const sb = await sandbox();
    printing(sb.home, 'a.py', { notify: true, message: 'x', urgent: true, only_if_changed: false });
    printing(sb.home, 'b.py', { notify: true, message: 'y', only_if_changed: true, data: { n: 1 } });
    printing(sb.home, 'c.py', { notify: true, message: 'z' });
    await runRunner(sb);
    const by = new Map(sb.stub.sends().map((r) => [String(body(r).script), body(r)]));
    assert.equal(by.get('a.py')?.urgent, true);
    assert.equal(by.get('a.py')?.only_if_changed, false);
    assert.equal(by.get('b.py')?.only_if_changed, true);
    assert.equal('urgent' in (by.get('b.py') ?? {}), false);
    assert.equal('urgent' in (by.get('c.py') ?? {}), false, 'not sent when the script did not say');
    assert.equal('only_if_changed' in (by.get('c.py') ?? {}), false);
  });

  void it("as 'true'/'false' fields on multipart /send_photo", async () => {
    const sb = await sandbox();
    const img = join(sb.dir, 'chart.png');
    writeFileSync(img, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64, 1)]));
    printing(sb.home, 'chart.py', { notify: true, message: 'chart', image_path: img, urgent: false, only_if_changed: true, data: { v: 2 } });
    await runRunner(sb);
    const [req] = sb.stub.sends();
    assert.ok(req);
    assert.equal(req.path, '/send_photo');
    assert.equal(req.fields?.urgent, 'false');
    assert.equal(req.fields?.only_if_changed, 'true');
    assert.equal(req.files?.length, 1);
  });

  void it('--dry-run shows them and sends nothing', async () => {
    const sb = await sandbox();
    printing(sb.home, 'a.py', { notify: true, message: 'x', urgent: true, only_if_changed: true });
    const r = await runRunner(sb, ['--dry-run']);
    assert.match(r.stdout, /urgent: +yes/);
    assert.match(r.stdout, /only_if_changed/);
    assert.equal(sb.stub.sends().length, 0);
    assert.equal(existsSync(join(sb.home, '.notifications')), false);
  });
});
