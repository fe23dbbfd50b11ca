/**
 * The dashboard's "My scripts" and "Alert settings" API through app.inject(), with sessions
 * from the real sign-in flow, the real `notify-scripts` in a temporary home (no sudo) and a
 * recording stand-in for the bot's send API: who is refused (401, 403), the list with
 * outcomes and delivery outcomes joined by id, Run now (sent, nothing to send, failure and
 * time-out with their reason, bad names), a helper that cannot run, and the rules
 * endpoints' validation and what they write to alert_rules.json.
 */
import { helperCommand } from './support/helperCommand.js';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { ScriptsHelper } from '../src/scripts/client.js';
import { AlertRulesStore } from '../src/shared/alertRules.js';
import { systemClock } from '../src/shared/clock.js';
import { HistoryStore, newRunId, type RunRecord } from '../src/shared/history.js';
import { buildApp } from '../src/web/app.js';
import { readWebConfig } from '../src/web/config.js';
import { type SignedIn, signIn, webEnv } from './support/oidcFlow.js';
import { type TestOidcProvider, startOidcProvider } from './support/oidcProvider.js';
import { type SendApiStub, startSendApiStub } from './support/sendApiStub.js';

const DESKTOP_SECRET = 'desktop-jwt-secret-for-tests-0123456789';

interface Harness {
  app: FastifyInstance;
  dir: string;
  dataDir: string;
  home: string;
  stub: SendApiStub;
  close(): Promise<void>;
}

async function harness(provider: TestOidcProvider, command?: (home: string) => string): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'web-scripts-'));
  const dataDir = join(dir, 'data');
  const home = join(dir, 'home');
  mkdirSync(dataDir);
  mkdirSync(join(home, 'user', 'notifications'), { recursive: true });
  const stub = await startSendApiStub(dir);
  const command_ = command?.(home) ?? helperCommand(home, ['slow.py']);
  const config = readWebConfig(webEnv(provider, dataDir, { NOTIFY_SOCKET: stub.socketPath, DESKTOP_JWT_SECRET: DESKTOP_SECRET }));
  const app = await buildApp({ config, scriptsHelper: new ScriptsHelper({ command: command_, timeoutMs: 90_000 }) });
  return {
    app,
    dir,
    dataDir,
    home,
    stub,
    async close() {
      await app.close();
      await stub.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function script(h: Harness, name: string, body: string): void {
  const p = join(h.home, 'user', 'notifications', name);
  writeFileSync(p, body);
  chmodSync(p, 0o755);
}

function call(h: Harness, s: SignedIn | null, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, csrf?: string | null) {
  const headers: Record<string, string> = {};
  if (s) headers.cookie = s.jar.header();
  const token = csrf === undefined ? s?.csrf : csrf;
  if (token && method !== 'GET') headers['x-csrf-token'] = token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return h.app.inject({ method, url, headers, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
}

function rulesFile(h: Harness): Record<string, { muted_until?: string; scripts?: Record<string, { muted?: boolean; snoozed_until?: string }>; quiet_hours?: unknown }> {
  try {
    return JSON.parse(readFileSync(join(h.dataDir, 'alert_rules.json'), 'utf8')) as ReturnType<typeof rulesFile>;
  } catch {
    return {};
  }
}

interface ScriptView {
  name: string;
  last_outcome: string | null;
  last_outcome_label: string;
  last_error?: string;
  muted: boolean;
  snoozed_until?: string;
}
interface RunView {
  script: string;
  outcome: string;
  id?: string;
  error?: string;
  delivery?: { status: string; label: string };
}

void describe('web: My scripts and alert settings', () => {
  let provider: TestOidcProvider;
  let h: Harness;
  let john: SignedIn;

  before(async () => {
    provider = await startOidcProvider({ redirectUris: ['http://dashboard.test/auth/callback'] });
    h = await harness(provider);
    john = await signIn(h.app, 'john.doe@example.com');
    script(h, 'revenue.py', 'import json\nprint(json.dumps({"notify": True, "title": "Revenue down 12%", "message": "Yesterday: 8 800 EUR", "data": {"revenue": 8800}}))\n');
    script(h, 'quiet.py', 'print(\'{"notify": false}\')\n');
    script(h, 'broken.py', 'import sys\nprint("loading the table", file=sys.stderr)\nraise RuntimeError("the warehouse refused the connection")\n');
    script(h, 'slow.py', 'import time\ntime.sleep(10)\nprint(\'{"notify": false}\')\n');
  });
  after(async () => {
    await h?.close();
    await provider?.close();
  });

  void it('answers 401 without a session and 403 without the anti-forgery token', async () => {
    const routes: Array<['GET' | 'POST' | 'PUT' | 'DELETE', string]> = [
      ['GET', '/api/scripts'],
      ['POST', '/api/scripts/run'],
      ['GET', '/api/rules'],
      ['PUT', '/api/rules/quiet-hours'],
      ['DELETE', '/api/rules/quiet-hours'],
      ['POST', '/api/rules/mute'],
      ['POST', '/api/rules/unmute'],
      ['POST', '/api/rules/snooze'],
    ];
    for (const [method, url] of routes) {
      const res = await call(h, null, method, url, method === 'GET' ? undefined : { name: 'revenue.py' });
      assert.equal(res.statusCode, 401, `${method} ${url} without a session`);
      assert.equal(typeof res.json<{ error: unknown }>().error, 'string');
      if (method === 'GET') continue;
      for (const token of [null, 'wrong-token-0123456789abcdef']) {
        const forged = await call(h, john, method, url, { name: 'revenue.py', script: 'revenue.py', duration: '1h', start: '22:00', end: '07:00', tz: 'UTC' }, token);
        assert.equal(forged.statusCode, 403, `${method} ${url} with token ${token}`);
      }
    }
    assert.equal(h.stub.sends().length, 0, 'nothing was sent');
    assert.deepEqual(rulesFile(h), {}, 'nothing was changed');
  });

  void it('renders both cards, with their own script and stylesheet (no inline script)', async () => {
    const page = await h.app.inject({ method: 'GET', url: '/', headers: { cookie: john.jar.header() } });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /id="scripts-card"/);
    assert.match(page.body, /id="rules-card"/);
    assert.doesNotMatch(page.body, /<script>(?!<\/script>)/, 'no inline script');
    for (const [name, type] of [
      ['scripts.js', /javascript/],
      ['scripts.css', /text\/css/],
    ] as const) {
      const url = new RegExp(`(/static/${name.replace('.', '\\.')}\\?v=[0-9a-f]+)`).exec(page.body)?.[1];
      assert.ok(url, `the page references ${name}`);
      const asset = await h.app.inject({ method: 'GET', url });
      assert.equal(asset.statusCode, 200);
      assert.match(String(asset.headers['content-type'] ?? ''), type);
      assert.match(String(asset.headers['cache-control'] ?? ''), /immutable/);
    }
  });

  void it('runs a script now: delivers through the send API and records the id; the list joins its delivery outcome', async () => {
    const res = await call(h, john, 'POST', '/api/scripts/run', { name: 'revenue.py' });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json<{ ok: boolean; outcome: string; id: string; message: string }>();
    assert.equal(body.ok, true);
    assert.equal(body.outcome, 'sent');
    assert.equal(body.id, 'n1');
    assert.match(body.message, /revenue\.py ran.*Revenue down 12%/);
    const [sent] = h.stub.sends();
    assert.deepEqual(sent?.json, { user: 'john.doe', title: 'Revenue down 12%', message: 'Yesterday: 8 800 EUR', script: 'revenue.py', data: { revenue: 8800 } });
    assert.equal(sent?.headers.prefer, 'respond-async');

    // The bot later records the final outcome of n1.
    writeFileSync(join(h.dataDir, 'deliveries.jsonl'), `${JSON.stringify({ id: 'n1', user: 'john.doe', script: 'revenue.py', status: 'delivered', at: new Date().toISOString() })}\n`);
    const list = await call(h, john, 'GET', '/api/scripts');
    assert.equal(list.statusCode, 200, list.body);
    const { scripts, runs } = list.json<{ scripts: ScriptView[]; runs: RunView[] }>();
    const revenue = scripts.find((s) => s.name === 'revenue.py');
    assert.equal(revenue?.last_outcome, 'sent');
    assert.equal(revenue?.last_outcome_label, 'Sent');
    assert.equal(scripts.find((s) => s.name === 'quiet.py')?.last_outcome_label, 'Never ran');
    const run = runs.find((r) => r.script === 'revenue.py');
    assert.equal(run?.id, 'n1');
    assert.equal(run?.delivery?.status, 'delivered');
    assert.equal(run?.delivery?.label, 'Delivered');
  });

  void it('says when a script has nothing to send, and sends nothing', async () => {
    const before = h.stub.sends().length;
    const res = await call(h, john, 'POST', '/api/scripts/run', { name: 'quiet.py' });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { ok: true, outcome: 'nothing_to_send', message: 'quiet.py ran: nothing to report right now (it printed "notify": false).' });
    assert.equal(h.stub.sends().length, before);
  });

  void it('reports a failing script and a timed-out one with the reason; the list shows the error excerpt', async () => {
    const broken = await call(h, john, 'POST', '/api/scripts/run', { name: 'broken.py' });
    assert.equal(broken.statusCode, 422, broken.body);
    assert.match(broken.json<{ error: string }>().error, /broken\.py/);
    assert.match(broken.json<{ error: string }>().error, /warehouse refused the connection/);

    const slow = await call(h, john, 'POST', '/api/scripts/run', { name: 'slow.py' });
    assert.equal(slow.statusCode, 422, slow.body);
    assert.match(slow.json<{ error: string }>().error, /slow\.py timed out after 1\.5 s/);

    const { scripts, runs } = (await call(h, john, 'GET', '/api/scripts')).json<{ scripts: ScriptView[]; runs: RunView[] }>();
    const b = scripts.find((s) => s.name === 'broken.py');
    assert.equal(b?.last_outcome, 'failed');
    assert.match(b?.last_error ?? '', /RuntimeError: the warehouse refused the connection/);
    assert.equal(scripts.find((s) => s.name === 'slow.py')?.last_outcome_label, 'Timed out');
    assert.ok(runs.some((r) => r.script === 'broken.py' && r.outcome === 'failed' && /warehouse/.test(r.error ?? '')));
  });

  void it('refuses bad and unknown script names with 400 / 404, running nothing', async () => {
    for (const [body, pattern] of [
      [{ name: '../etc/passwd.py' }, /path|\.\./],
      [{ name: 'a..py' }, /\.\./],
      [{ name: 'report.sh' }, /\.py/],
      [{}, /name/],
      [{ name: 'x.py', extra: 1 }, /name/],
    ] as const) {
      const res = await call(h, john, 'POST', '/api/scripts/run', body);
      assert.equal(res.statusCode, 400, JSON.stringify(body));
      assert.match(res.json<{ error: string }>().error, pattern);
    }
    const missing = await call(h, john, 'POST', '/api/scripts/run', { name: 'nope.py' });
    assert.equal(missing.statusCode, 404, missing.body);
    assert.match(missing.json<{ error: string }>().error, /nope\.py is not in ~\/user\/notifications/);
  });

  void it('reports the send API refusing (not linked) as a clear error and records it', async () => {
    h.stub.respondWith(() => ({ status: 404, body: { error: 'john.doe has no channel: Telegram is not linked and no desktop is connected' } }));
    try {
      const res = await call(h, john, 'POST', '/api/scripts/run', { name: 'revenue.py' });
      assert.equal(res.statusCode, 409, res.body);
      assert.match(res.json<{ error: string }>().error, /revenue\.py ran, but its notification was not accepted: .*not linked.*Link Telegram/);
      const { runs } = (await call(h, john, 'GET', '/api/scripts')).json<{ runs: RunView[] }>();
      assert.equal(runs[0]?.outcome, 'delivery_failed');
    } finally {
      h.stub.respondWith((req, i) => ({ status: 202, body: { ok: true, queued: true, id: `n${i + 1}` } }));
    }
  });

  void it('sets, validates and clears quiet hours in alert_rules.json', async () => {
    for (const [body, pattern] of [
      [{ start: '22:00', end: '07:00', tz: 'Mars/Olympus' }, /not a time zone/],
      [{ start: '25:00', end: '07:00', tz: 'UTC' }, /start.*time such as 22:00/i],
      [{ start: '22:00', end: '22:00', tz: 'UTC' }, /must differ/],
      [{ start: '22:00', tz: 'UTC' }, /^End: is required/],
      [{ start: '22:00', end: '07:00', tz: 'UTC', days: 5 }, /Unknown field 'days'/],
    ] as const) {
      const res = await call(h, john, 'PUT', '/api/rules/quiet-hours', body);
      assert.equal(res.statusCode, 400, JSON.stringify(body));
      assert.match(res.json<{ error: string }>().error, pattern);
    }
    assert.equal(rulesFile(h)['john.doe']?.quiet_hours, undefined);

    const ok = await call(h, john, 'PUT', '/api/rules/quiet-hours', { start: '22:00', end: '07:00', tz: 'Europe/Prague' });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.match(ok.json<{ message: string }>().message, /Quiet hours set: 22:00–07:00 \(Europe\/Prague\)/);
    assert.deepEqual(rulesFile(h)['john.doe']?.quiet_hours, { start: '22:00', end: '07:00', tz: 'Europe/Prague' });
    assert.deepEqual((await call(h, john, 'GET', '/api/rules')).json<{ quiet_hours: unknown }>().quiet_hours, { start: '22:00', end: '07:00', tz: 'Europe/Prague' });

    const cleared = await call(h, john, 'DELETE', '/api/rules/quiet-hours', {});
    assert.equal(cleared.statusCode, 200, cleared.body);
    assert.equal(rulesFile(h)['john.doe']?.quiet_hours, undefined);
  });

  void it('mutes, snoozes and unmutes scripts and everything; the list shows the state', async () => {
    for (const [url, body, pattern] of [
      ['/api/rules/mute', { script: '../x.py' }, /script/],
      ['/api/rules/mute', {}, /Duration: is required/],
      ['/api/rules/mute', { duration: 'forever' }, /not a duration/],
      ['/api/rules/mute', { duration: '40d' }, /at most 30 days/],
      ['/api/rules/snooze', { script: 'revenue.py' }, /Duration: is required/],
      ['/api/rules/snooze', { script: 'revenue.py', duration: '10s' }, /at least a minute/],
      ['/api/rules/unmute', { script: 'a/b.py' }, /script/],
    ] as const) {
      const res = await call(h, john, 'POST', url, body);
      assert.equal(res.statusCode, 400, `${url} ${JSON.stringify(body)}`);
      assert.match(res.json<{ error: string }>().error, pattern);
    }
    assert.deepEqual(rulesFile(h), {});

    const mute = await call(h, john, 'POST', '/api/rules/mute', { script: 'revenue.py' });
    assert.equal(mute.statusCode, 200, mute.body);
    assert.equal(rulesFile(h)['john.doe']?.scripts?.['revenue.py']?.muted, true);
    const snooze = await call(h, john, 'POST', '/api/rules/snooze', { script: 'quiet.py', duration: '1h' });
    assert.equal(snooze.statusCode, 200, snooze.body);
    const until = Date.parse(rulesFile(h)['john.doe']?.scripts?.['quiet.py']?.snoozed_until ?? '');
    assert.ok(Math.abs(until - (Date.now() + 3_600_000)) < 60_000, 'snoozed for an hour');

    const { scripts } = (await call(h, john, 'GET', '/api/scripts')).json<{ scripts: ScriptView[] }>();
    assert.equal(scripts.find((s) => s.name === 'revenue.py')?.muted, true);
    assert.ok(scripts.find((s) => s.name === 'quiet.py')?.snoozed_until);

    const all = await call(h, john, 'POST', '/api/rules/mute', { duration: '4h' });
    assert.equal(all.statusCode, 200, all.body);
    assert.match(all.json<{ message: string }>().message, /All alerts are muted for 4 hours/);
    assert.ok(Date.parse(rulesFile(h)['john.doe']?.muted_until ?? '') > Date.now() + 3.9 * 3_600_000);

    const one = await call(h, john, 'POST', '/api/rules/unmute', { script: 'revenue.py' });
    assert.equal(one.statusCode, 200, one.body);
    assert.equal(rulesFile(h)['john.doe']?.scripts?.['revenue.py'], undefined);
    assert.ok(rulesFile(h)['john.doe']?.muted_until, 'the mute of everything stays');

    const none = await call(h, john, 'POST', '/api/rules/unmute', {});
    assert.equal(none.statusCode, 200, none.body);
    assert.deepEqual(rulesFile(h), {});
  });

  void it('shows a resolved notice held for the quiet-hours digest as held until the digest goes, then as sent with it', async () => {
    const rules = new AlertRulesStore(h.dataDir, systemClock);
    const history = new HistoryStore(join(h.home, '.notifications', 'history.jsonl'));
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const run = (script: string, extra: Partial<RunRecord>): RunRecord => ({ run_id: newRunId(), time: new Date().toISOString(), script, trigger: 'schedule', outcome: 'nothing_to_send', duration_ms: 5, exit_code: 0, resolved_alert: `a-${script}`, resolved_after_ms: 600_000, ...extra });
    await history.append(run('night_cond.py', { resolved_notice: 'n-night', resolved_notice_held: 'quiet_hours', resolved_notice_until: until }));
    await history.append(run('day_cond.py', { resolved_notice: 'n-day' }));
    await history.append(run('muted_cond.py', {}));
    await rules.hold('john.doe', { id: 'n-night', at: new Date().toISOString(), title: '✅ Resolved: night', message: 'cleared', script: 'night_cond.py' });
    const notices = async (): Promise<Record<string, { resolved_notice?: string; resolved_notice_until?: string }>> => {
      const list = await call(h, john, 'GET', '/api/scripts');
      assert.equal(list.statusCode, 200, list.body);
      const runs = list.json<{ runs: Array<RunView & { resolved_notice?: string; resolved_notice_until?: string }> }>().runs;
      return Object.fromEntries(runs.filter((r) => r.script.endsWith('_cond.py')).map((r) => [r.script, { resolved_notice: r.resolved_notice, resolved_notice_until: r.resolved_notice_until }]));
    };
    assert.deepEqual(await notices(), {
      'night_cond.py': { resolved_notice: 'held_for_digest', resolved_notice_until: until },
      'day_cond.py': { resolved_notice: 'sent', resolved_notice_until: undefined },
      'muted_cond.py': { resolved_notice: 'not_sent', resolved_notice_until: undefined },
    });
    // The digest goes (the bot takes the held alerts once it is queued).
    assert.equal(await rules.releaseHeld('john.doe', async () => undefined), 1);
    assert.deepEqual((await notices())['night_cond.py'], { resolved_notice: 'sent_in_digest', resolved_notice_until: undefined });
  });

  void it('says clearly when the server cannot run the script helper', async () => {
    const broken = await harness(provider, () => '/nonexistent/notify-scripts');
    try {
      const mary = await signIn(broken.app, 'mary@example.com');
      const page = await broken.app.inject({ method: 'GET', url: '/', headers: { cookie: mary.jar.header() } });
      assert.equal(page.statusCode, 200, 'the page still renders');
      const list = await call(broken, mary, 'GET', '/api/scripts');
      assert.equal(list.statusCode, 503, list.body);
      assert.match(list.json<{ error: string }>().error, /not set up to run scripts as mary.*Tell an administrator/);
      const run = await call(broken, mary, 'POST', '/api/scripts/run', { name: 'revenue.py' });
      assert.equal(run.statusCode, 503, run.body);
      assert.match(run.json<{ error: string }>().error, /revenue\.py could not be run/);
    } finally {
      await broken.close();
    }
  });
});
