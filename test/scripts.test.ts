/**
 * notify-scripts (the helper services run as an analyst) and scriptsHelper (how services
 * call it): the JSON answers, name checks, on-demand runs that leave the cooldown alone,
 * and, with a real second Linux user and a sudoers rule, a service listing and running
 * that user's scripts without being able to read their home.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { RunRecord } from '../src/shared/history.js';
import { userByName } from '../src/shared/posix.js';
import { commandFor, ScriptsHelper, ScriptsHelperError, splitCommand } from '../src/scripts/client.js';
import { HELPER, makeHome, PATH, printing, ROOT, RUNNER, type RunResult, runProcess, script } from './support/runnerSandbox.js';
import { startSendApiStub } from './support/sendApiStub.js';
import { installSudoersRule } from './support/sudoers.js';

const temps: string[] = [];

function home(): string {
  const dir = makeHome('notify-scripts-test-');
  temps.push(dir);
  return dir;
}

afterEach(() => {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Answer extends RunResult {
  json: unknown;
}

async function run(bin: string, h: string, args: string[], env: Record<string, string> = {}): Promise<Answer> {
  const r = await runProcess(bin, args, { PATH, HOME: h, ...env });
  let json: unknown = undefined;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    // left undefined: the assertion says so
  }
  return { ...r, json };
}

const helper = (h: string, args: string[], env?: Record<string, string>): Promise<Answer> => run(HELPER, h, args, env);

function historyOf(h: string): RunRecord[] {
  const p = join(h, '.notifications', 'history.jsonl');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as RunRecord);
}

void describe('notify-scripts list', () => {
  void it('lists every script with name, stem and its last run', async () => {
    const h = home();
    printing(h, 'alert.py', { notify: true, message: 'x', cooldown: '6h' });
    printing(h, 'quiet.py', { notify: false });
    script(h, 'broken.py', 'raise SystemExit("no credentials")\n');
    script(h, 'notes.txt', 'not a script');
    const fresh = await helper(h, ['list']);
    assert.equal(fresh.code, 0, fresh.stdout + fresh.stderr);
    assert.deepEqual(fresh.json, [
      { name: 'alert.py', stem: 'alert', last_run: null, last_outcome: null, last_sent: null },
      { name: 'broken.py', stem: 'broken', last_run: null, last_outcome: null, last_sent: null },
      { name: 'quiet.py', stem: 'quiet', last_run: null, last_outcome: null, last_sent: null },
    ]);

    const dir = mkdtempSync(join(tmpdir(), 'notify-stub-'));
    temps.push(dir);
    const stub = await startSendApiStub(dir);
    try {
      const r = await run(RUNNER, h, [], { NOTIFY_SOCKET: stub.socketPath });
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await stub.close();
    }
    const after = await helper(h, ['list']);
    const items = after.json as Record<string, unknown>[];
    const by = new Map(items.map((i) => [i.name, i]));
    const alert = by.get('alert.py')!;
    assert.equal(alert.last_outcome, 'sent');
    assert.equal(alert.last_trigger, 'schedule');
    assert.equal(alert.cooldown, '6h');
    assert.ok(typeof alert.last_run === 'string' && !Number.isNaN(Date.parse(alert.last_run)));
    assert.ok(typeof alert.last_sent === 'string' && Date.parse(alert.last_sent) > Date.now() - 60_000);
    assert.ok(typeof alert.cooldown_until === 'string' && Date.parse(alert.cooldown_until) > Date.now() + 5 * 3600_000);
    assert.equal(by.get('quiet.py')!.last_outcome, 'nothing_to_send');
    assert.equal(by.get('broken.py')!.last_outcome, 'failed');
    assert.match(String(by.get('broken.py')!.last_error), /exited with code 1: no credentials/);
  });

  void it('answers an empty list when there is no scripts directory', async () => {
    const h = home();
    rmSync(join(h, 'user'), { recursive: true });
    const r = await helper(h, ['list']);
    assert.equal(r.code, 0);
    assert.deepEqual(r.json, []);
  });
});

void describe('notify-scripts run', () => {
  void it("prints the script's JSON output with _run, records an on_demand run, and leaves the cooldown alone", async () => {
    const h = home();
    printing(h, 'alert.py', { notify: true, title: 'Hi', message: 'body', cooldown: '1h', data: { k: [1, 2] }, custom: 'kept' });
    const stateDir = join(h, '.notifications', 'state');
    mkdirSync(stateDir, { recursive: true });
    const state = JSON.stringify({ last_sent: Math.floor(Date.now() / 1000) - 10 });
    writeFileSync(join(stateDir, 'alert.json'), state);
    const r = await helper(h, ['run', 'alert.py']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = r.json as Record<string, unknown> & { _run: { id: string; outcome: string; duration_ms: number } };
    assert.deepEqual({ ...out, _run: undefined }, { notify: true, title: 'Hi', message: 'body', cooldown: '1h', data: { k: [1, 2] }, custom: 'kept', _run: undefined });
    assert.equal(out._run.outcome, 'pending_delivery');
    assert.equal(typeof out._run.duration_ms, 'number');
    assert.equal(readFileSync(join(stateDir, 'alert.json'), 'utf8'), state, 'an on-demand run changed the cooldown state');
    const rec = historyOf(h).pop();
    assert.equal(rec?.run_id, out._run.id);
    assert.equal(rec?.trigger, 'on_demand');
    assert.equal(rec?.outcome, 'pending_delivery');

    // Without a state file, none is created.
    printing(h, 'fresh.py', { notify: true, message: 'x' });
    assert.equal((await helper(h, ['run', 'fresh.py'])).code, 0);
    assert.equal(existsSync(join(stateDir, 'fresh.json')), false);
  });

  void it('keeps a "_run" the script printed itself, adding nothing', async () => {
    const h = home();
    printing(h, 'own.py', { notify: false, _run: 'mine' });
    const r = await helper(h, ['run', '--run-id', 'caller-chosen-1', 'own.py']);
    assert.equal(r.code, 0);
    assert.deepEqual(r.json, { notify: false, _run: 'mine' });
    assert.equal(historyOf(h).pop()?.run_id, 'caller-chosen-1');
    assert.equal(historyOf(h).pop()?.outcome, 'nothing_to_send');
  });

  void it('answers {"error"} with exit 1 when the script fails, times out or prints something invalid', async () => {
    const h = home();
    script(h, 'exit2.py', 'import sys\nprint("db password expired", file=sys.stderr)\nsys.exit(2)\n');
    script(h, 'slow.py', 'import time\ntime.sleep(30)\n');
    script(h, 'yes.py', 'print(\'{"notify": "yes", "message": "x"}\')\n');
    const failed = await helper(h, ['run', 'exit2.py']);
    assert.equal(failed.code, 1);
    assert.deepEqual(Object.keys(failed.json as object).sort(), ['code', 'error', 'exit_code', 'outcome', 'run_id']);
    assert.match((failed.json as { error: string }).error, /^exit2\.py failed: exited with code 2: db password expired$/);
    assert.equal((failed.json as { exit_code: number }).exit_code, 2);

    const slow = await helper(h, ['run', 'slow.py'], { NOTIFY_SCRIPT_TIMEOUT: '500ms', NOTIFY_SCRIPT_KILL_GRACE: '100ms' });
    assert.equal(slow.code, 1);
    assert.equal((slow.json as { code: string }).code, 'timed_out');
    assert.match((slow.json as { error: string }).error, /^slow\.py timed out after 500 ms/);

    const invalid = await helper(h, ['run', 'yes.py']);
    assert.equal(invalid.code, 1);
    assert.match((invalid.json as { error: string }).error, /^yes\.py printed invalid output: notify: must be true or false/);
    const outcomes = historyOf(h).map((r) => [r.script, r.trigger, r.outcome]);
    assert.deepEqual(outcomes, [
      ['exit2.py', 'on_demand', 'failed'],
      ['slow.py', 'on_demand', 'timed_out'],
      ['yes.py', 'on_demand', 'invalid_output'],
    ]);
  });

  void it('refuses names that are not plain script file names', async () => {
    const h = home();
    printing(h, 'ok.py', { notify: false });
    writeFileSync(join(h, 'user', 'x.py'), 'print(\'{"notify": false}\')\n');
    writeFileSync(join(h, 'user', 'notifications', '.hidden.py'), 'print(\'{"notify": false}\')\n');
    for (const name of ['../x.py', 'a/b.py', '.hidden.py', 'x.sh', '/etc/passwd', '..py', '-x.py', 'a..b.py', '']) {
      const r = await helper(h, ['run', name]);
      assert.equal(r.code, 1, `'${name}' was accepted: ${r.stdout}`);
      const body = r.json as { error?: string; code?: string };
      assert.equal(typeof body.error, 'string', `no {"error"} for '${name}': ${r.stdout}`);
      assert.ok(body.code === 'invalid_name' || body.code === 'usage', `'${name}': ${r.stdout}`);
    }
    const missing = await helper(h, ['run', 'nope.py']);
    assert.equal(missing.code, 1);
    assert.equal((missing.json as { code: string }).code, 'not_found');
    assert.deepEqual(historyOf(h), [], 'a refused run was recorded');
  });

  void it('--with-image hands over the checked image bytes', async () => {
    const h = home();
    const img = join(h, 'chart.png');
    const bytes = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(3000)]);
    writeFileSync(img, bytes);
    printing(h, 'chart.py', { notify: true, message: 'see', image_path: img });
    printing(h, 'lost.py', { notify: true, message: 'see', image_path: join(h, 'gone.png') });
    const r = await helper(h, ['run', '--with-image', 'chart.py']);
    const meta = (r.json as { _run: { image: { base64: string; content_type: string; filename: string; size: number } } })._run;
    assert.ok(Buffer.from(meta.image.base64, 'base64').equals(bytes));
    assert.equal(meta.image.content_type, 'image/png');
    assert.equal(meta.image.filename, 'chart.png');
    const lost = await helper(h, ['run', '--with-image', 'lost.py']);
    assert.equal(lost.code, 0);
    assert.match((lost.json as { _run: { image_error: string } })._run.image_error, /gone\.png does not exist/);
  });
});

void describe('notify-scripts history and record-delivery', () => {
  void it('prints recent runs newest first, filtered and limited, and joins a delivery to its run', async () => {
    const h = home();
    printing(h, 'a.py', { notify: true, message: 'a' });
    printing(h, 'b.py', { notify: false });
    const runA = (await helper(h, ['run', 'a.py'])).json as { _run: { id: string } };
    await helper(h, ['run', 'b.py']);
    await helper(h, ['run', 'b.py']);
    const all = await helper(h, ['history']);
    assert.equal(all.code, 0);
    assert.deepEqual(
      (all.json as RunRecord[]).map((r) => r.script),
      ['b.py', 'b.py', 'a.py'],
    );
    const limited = await helper(h, ['history', '--limit', '1']);
    assert.equal((limited.json as RunRecord[]).length, 1);
    const onlyA = await helper(h, ['history', '--script', 'a.py']);
    assert.deepEqual(
      (onlyA.json as RunRecord[]).map((r) => r.run_id),
      [runA._run.id],
    );
    const rec = await helper(h, ['record-delivery', runA._run.id, 'n-42', '--queued']);
    assert.equal(rec.code, 0, rec.stdout);
    assert.equal((rec.json as RunRecord).outcome, 'sent');
    const joined = ((await helper(h, ['history', '--script', 'a.py'])).json as RunRecord[])[0]!;
    assert.equal(joined.outcome, 'sent');
    assert.equal(joined.id, 'n-42');
    assert.equal(joined.queued, true);
    assert.equal(typeof joined.delivered_at, 'string');

    const muted = await helper(h, ['record-delivery', runA._run.id, 'n-43', '--outcome', 'snoozed', '--until', '2030-01-01T10:00:00.000Z']);
    assert.equal(muted.code, 0, muted.stdout);
    assert.equal((muted.json as RunRecord).outcome, 'snoozed', 'a notification the rules held back is not recorded as sent');
    assert.equal((muted.json as RunRecord).held_until, '2030-01-01T10:00:00.000Z');
    const badOutcome = await helper(h, ['record-delivery', runA._run.id, 'n-44', '--outcome', 'sent-ish']);
    assert.equal(badOutcome.code, 1);
    assert.match((badOutcome.json as { error: string }).error, /--outcome must be one of/);

    const failed = await helper(h, ['record-delivery', runA._run.id, '--failed', 'Telegram is not linked and no desktop is connected']);
    assert.equal((failed.json as RunRecord).outcome, 'delivery_failed');
    const unknown = await helper(h, ['record-delivery', 'no-such-run', 'n-1']);
    assert.equal(unknown.code, 1);
    assert.equal((unknown.json as { code: string }).code, 'unknown_run');
    const badLimit = await helper(h, ['history', '--limit', 'lots']);
    assert.equal(badLimit.code, 1);
    assert.equal(typeof (badLimit.json as { error: string }).error, 'string');
    const unknownCommand = await helper(h, ['frobnicate']);
    assert.equal(unknownCommand.code, 1);
    assert.match((unknownCommand.json as { error: string }).error, /unknown command/);
  });

  void it('--help lists the commands', async () => {
    const r = await helper(home(), ['--help']);
    assert.equal(r.code, 0);
    for (const w of ['list', 'history', 'run', 'record-delivery', '--limit', '--with-image']) assert.ok(r.stdout.includes(w), w);
  });
});

void describe('scriptsHelper without sudo', () => {
  void it('splits the command template into words without a shell', () => {
    assert.deepEqual(splitCommand('sudo -n -u {user} /usr/local/bin/notify-scripts'), ['sudo', '-n', '-u', '{user}', '/usr/local/bin/notify-scripts']);
    assert.deepEqual(splitCommand(`node "/opt/my app/bin/x.js" 'a b' c\\ d`), ['node', '/opt/my app/bin/x.js', 'a b', 'c d']);
    assert.deepEqual(commandFor('sudo -u {user} x; rm -rf /', 'ana'), ['sudo', '-u', 'ana', 'x;', 'rm', '-rf', '/']);
    assert.throws(() => splitCommand('sudo "unbalanced'));
  });

  void it('parses the answers of a directly run helper, and refuses bad names before spawning', async () => {
    const h = home();
    printing(h, 'a.py', { notify: true, title: 'T', message: 'm' });
    script(h, 'bad.py', 'import sys\nsys.exit(4)\n');
    const sh = new ScriptsHelper({ command: `${process.execPath} ${HELPER}`, timeoutMs: 90_000, env: { PATH, HOME: h } });
    const list = await sh.list('anyone');
    assert.deepEqual(
      list.map((s) => s.name),
      ['a.py', 'bad.py'],
    );
    const result = await sh.run('anyone', 'a.py');
    assert.equal(result.outcome, 'pending_delivery');
    assert.equal(result.output.title, 'T');
    assert.equal((result.output as Record<string, unknown>)._run, undefined, 'the helper metadata leaked into the output');
    const rec = await sh.recordDelivery('anyone', result.runId, { id: 'n9' });
    assert.equal(rec.outcome, 'sent');
    assert.equal((await sh.history('anyone', { script: 'a.py' }))[0]?.id, 'n9');
    await assert.rejects(sh.run('anyone', 'bad.py'), (e: unknown) => e instanceof ScriptsHelperError && e.kind === 'script_failed' && /exited with code 4/.test(e.message));
    await assert.rejects(sh.run('anyone', 'nope.py'), (e: unknown) => e instanceof ScriptsHelperError && e.kind === 'not_found');
    for (const bad of ['../a.py', 'a/b.py', '.hidden.py', 'x.sh']) {
      await assert.rejects(sh.run('anyone', bad), (e: unknown) => e instanceof ScriptsHelperError && e.kind === 'invalid_request', bad);
    }
    for (const badUser of ['-u root', '../etc', 'a b', '']) {
      await assert.rejects(sh.list(badUser), (e: unknown) => e instanceof ScriptsHelperError && e.kind === 'invalid_request', badUser);
    }
  });

  void it('says when the helper is missing or takes too long', async () => {
    const missing = new ScriptsHelper({ command: '/nonexistent/notify-scripts', timeoutMs: 90_000 });
    await assert.rejects(missing.list('ana'), (e: unknown) => e instanceof ScriptsHelperError && e.kind === 'helper_missing');
    const slow = new ScriptsHelper({ command: `${process.execPath} -e setTimeout(()=>{},10000)`, timeoutMs: 300 });
    await assert.rejects(slow.list('ana'), (e: unknown) => e instanceof ScriptsHelperError && e.kind === 'timed_out');
  });
});

// ---------------------------------------------------------------------------------------
// Through sudo, as a real second user.

function commandExists(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const canUseSudo = process.getuid?.() === 0 && commandExists('sudo') && commandExists('useradd') && commandExists('visudo');

void describe('scriptsHelper through sudo as another user', { skip: canUseSudo ? false : 'needs root, sudo, useradd and visudo' }, () => {
  const tag = randomBytes(4).toString('hex');
  const analyst = `notify-t-${tag}`;
  const service = `notify-s-${tag}`;
  const sudoersFile = `/etc/sudoers.d/notify-test-${tag}`;
  let analystHome = '';
  let serviceHome = '';
  let chartBytes: Buffer = Buffer.alloc(0);

  before(() => {
    execFileSync('useradd', ['-m', '-s', '/bin/sh', analyst]);
    execFileSync('useradd', ['-m', '-s', '/bin/sh', service]);
    const a = userByName(analyst)!;
    const s = userByName(service)!;
    analystHome = a.home;
    serviceHome = s.home;
    chmodSync(analystHome, 0o750); // readable by the analyst only (and their own group)
    const scriptsDir = join(analystHome, 'user', 'notifications');
    mkdirSync(scriptsDir, { recursive: true });
    writeFileSync(
      join(scriptsDir, 'report.py'),
      `import json, os
chart = os.path.expanduser('~/chart.png')
with open(chart, 'wb') as f:
    f.write(bytes.fromhex('89504e470d0a1a0a') + b'pretend-png-' * 100)
os.chmod(chart, 0o600)
print(json.dumps({"notify": True, "title": "Report for " + os.environ["USER"], "message": "cwd " + os.getcwd(), "image_path": chart}))
`,
    );
    writeFileSync(join(scriptsDir, 'broken.py'), 'import sys\nprint("cannot reach the warehouse", file=sys.stderr)\nsys.exit(5)\n');
    execFileSync('chown', ['-R', `${a.uid}:${a.gid}`, join(analystHome, 'user')]);
    chartBytes = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from('pretend-png-'.repeat(100))]);

    const rule = `${service} ALL=(${analyst}) NOPASSWD: ${process.execPath} ${HELPER} *\n`;
    installSudoersRule(sudoersFile, rule);
  });

  after(() => {
    const steps: Array<() => void> = [
      () => rmSync(sudoersFile, { force: true }),
      () => execFileSync('userdel', ['-r', analyst], { stdio: 'ignore' }),
      () => execFileSync('userdel', ['-r', service], { stdio: 'ignore' }),
    ];
    for (const step of steps) {
      try {
        step();
      } catch {
        // best effort: every step is tried even when one fails
      }
    }
  });

  /** Runs a few helper calls as the service account and returns what each gave. */
  async function asService(): Promise<Record<string, { ok?: unknown; error?: string; kind?: string }>> {
    const s = userByName(service)!;
    const driver = join(serviceHome, 'driver.mjs');
    writeFileSync(
      driver,
      `import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { ScriptsHelper } from ${JSON.stringify(join(ROOT, 'dist', 'src', 'scripts', 'client.js'))};
const [analyst, home] = process.argv.slice(2);
const helper = new ScriptsHelper({ command: process.env.NOTIFY_SCRIPTS_COMMAND, timeoutMs: 90_000 });
const out = {};
async function attempt(key, fn) {
  try { out[key] = { ok: await fn() }; } catch (e) { out[key] = { error: e.message, kind: e.kind ?? e.code }; }
}
await attempt('readHome', () => readdir(home));
await attempt('list', () => helper.list(analyst));
await attempt('run', async () => {
  const r = await helper.run(analyst, 'report.py');
  return { ...r, image: r.image && { sha256: createHash('sha256').update(r.image.bytes).digest('hex'), contentType: r.image.contentType } };
});
await attempt('record', () => helper.recordDelivery(analyst, out.run.ok.runId, { id: 'n-77', queued: true }));
await attempt('history', () => helper.history(analyst, { limit: 5 }));
await attempt('traversal', () => helper.run(analyst, '../x.py'));
await attempt('broken', () => helper.run(analyst, 'broken.py'));
await attempt('notAllowed', () => helper.list('root'));
console.log(JSON.stringify(out));
`,
    );
    execFileSync('chown', [`${s.uid}:${s.gid}`, driver]);
    const command = `sudo -n -u {user} ${process.execPath} ${HELPER}`;
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [driver, analyst, analystHome], {
        uid: s.uid,
        gid: s.gid,
        cwd: serviceHome,
        env: { PATH, HOME: serviceHome, NOTIFY_SCRIPTS_COMMAND: command },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('close', (code) => {
        clearTimeout(guard);
        try {
          resolve(JSON.parse(stdout) as Record<string, { ok?: unknown; error?: string; kind?: string }>);
        } catch {
          reject(new Error(`the service driver failed (exit ${code}): ${stdout}\n${stderr}`));
        }
      });
    });
  }

  void it("lists and runs the analyst's scripts via sudo, never reading their home, and refuses ../ names", async () => {
    const r = await asService();
    assert.equal(r.readHome?.kind, 'EACCES', `the service could read the analyst's home: ${JSON.stringify(r.readHome)}`);

    assert.ok(r.list?.ok, `list failed: ${JSON.stringify(r.list)}`);
    assert.deepEqual(
      (r.list.ok as { name: string }[]).map((s) => s.name),
      ['broken.py', 'report.py'],
    );

    assert.ok(r.run?.ok, `run failed: ${JSON.stringify(r.run)}`);
    const run = r.run.ok as { outcome: string; output: { title: string; message: string }; image: { sha256: string; contentType: string } };
    assert.equal(run.outcome, 'pending_delivery');
    assert.equal(run.output.title, `Report for ${analyst}`, 'the script did not run as the analyst');
    assert.equal(run.output.message, `cwd ${analystHome}`);
    assert.equal(run.image.contentType, 'image/png');
    assert.equal(run.image.sha256, createHash('sha256').update(chartBytes).digest('hex'), 'image bytes differ');

    assert.equal((r.record?.ok as RunRecord | undefined)?.outcome, 'sent', JSON.stringify(r.record));
    const hist = r.history?.ok as RunRecord[];
    assert.equal(hist[0]?.id, 'n-77');
    assert.equal(hist[0]?.trigger, 'on_demand');

    assert.equal(r.traversal?.kind, 'invalid_request');
    assert.equal(r.broken?.kind, 'script_failed');
    assert.match(r.broken?.error ?? '', /broken\.py failed: exited with code 5: cannot reach the warehouse/);
    assert.equal(r.notAllowed?.kind, 'sudo_refused', JSON.stringify(r.notAllowed));

    const a = userByName(analyst)!;
    const historyFile = join(analystHome, '.notifications', 'history.jsonl');
    assert.equal(statSync(historyFile).uid, a.uid, 'the history file should belong to the analyst');
    assert.equal(existsSync(join(analystHome, '.notifications', 'state', 'report.json')), false, 'an on-demand run wrote cooldown state');
  });
});
