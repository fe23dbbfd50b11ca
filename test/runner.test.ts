/**
 * notify-runner driven from the outside: scripts in a temporary $HOME, the real
 * bin/notify-runner.js as a child process, and a recording stand-in for the send API on a
 * unix socket.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { parseByteSize } from '../src/shared/units.js';
import { stderrExcerpt } from '../src/runner/execute.js';
import { parseScriptOutput } from '../src/runner/output.js';
import { HistoryStore, lastRunPerScript, recentRuns } from '../src/shared/history.js';
import {
  closeSandboxes,
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

const sandbox = (): Promise<Sandbox> => makeSandbox('notify-runner-test-');

afterEach(closeSandboxes);

function runRunner(sb: Sandbox, args: string[] = [], env: Record<string, string> = {}): Promise<RunResult> {
  return runBin(RUNNER, sb, args, env);
}

function stateOf(sb: Sandbox, stem: string): Record<string, unknown> | null {
  const p = join(sb.home, '.notifications', 'state', `${stem}.json`);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>) : null;
}

function sentScripts(sb: Sandbox): string[] {
  return sb.stub
    .sends()
    .map((r) => (r.json as { script?: string } | undefined)?.script ?? r.fields?.script ?? '?')
    .sort();
}

/** True while the process exists and is not a zombie waiting to be reaped. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function ctx(result: RunResult, sb: Sandbox): string {
  return `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}\nlog:\n${runnerLog(sb)}`;
}

void describe('notify-runner: timeouts leave no process behind', () => {
  void it('a script that sleeps forever and one whose child ignores SIGTERM are both gone after the timeout', async () => {
    const sb = await sandbox();
    const pids = join(sb.dir, 'pids');
    script(sb.home, 'sleeper.py', `import os, time\nopen(${JSON.stringify(pids)}, 'a').write(f"{os.getpid()}\\n")\ntime.sleep(1000)\n`);
    script(
      sb.home,
      'stubborn.py',
      `import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, '-c', '''
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(${JSON.stringify(pids)}, "a").write(f"{os.getpid()}\\\\n")
time.sleep(1000)
'''])
open(${JSON.stringify(pids)}, 'a').write(f"{os.getpid()}\\n")
time.sleep(1000)
`,
    );
    // Long enough for three Pythons to start on a loaded machine; every script here hangs.
    const res = await runRunner(sb, [], { NOTIFY_SCRIPT_TIMEOUT: '5s', NOTIFY_SCRIPT_KILL_GRACE: '300ms' });
    assert.equal(res.code, 0, ctx(res, sb));
    const seen = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
    assert.equal(seen.length, 3, `expected 3 pids (sleeper, stubborn and its child), got ${seen.join(', ')}`);
    const alive = seen.filter(isRunning);
    for (const pid of alive) process.kill(pid, 'SIGKILL'); // don't leak them if the test fails
    assert.deepEqual(alive, [], 'processes still running after the runner finished');
    assert.equal(lastRun(sb, 'sleeper.py').outcome, 'timed_out');
    assert.equal(lastRun(sb, 'stubborn.py').outcome, 'timed_out');
    assert.match(lastRun(sb, 'stubborn.py').error ?? '', /timed out after 5 s/);
    assert.match(runnerLog(sb), /sleeper\.py: timed out: timed out after 5 s and was stopped/);
  });
});

void describe('notify-runner: a failing script is recorded and the others still send', () => {
  void it('logs invalid JSON, notify: "yes" and exit 1 with the reason while the other scripts are sent', async () => {
    const sb = await sandbox();
    script(sb.home, 'bad_json.py', `print('{notify: true')\n`);
    script(sb.home, 'yes.py', `print('{"notify": "yes", "message": "x"}')\n`);
    script(sb.home, 'exit1.py', `import sys\nprint("the warehouse is down", file=sys.stderr)\nsys.exit(1)\n`);
    script(sb.home, 'crash.py', `x = 1 / 0\n`);
    printing(sb.home, 'good1.py', { notify: true, title: 'One', message: 'first' });
    printing(sb.home, 'good2.py', { notify: true, message: 'second', data: { n: 2 } });
    script(sb.home, 'spaced.py', 'print("""\n\n   {"notify": true, "message": "whitespace around is fine"}   \n""")\n');
    const res = await runRunner(sb);
    assert.equal(res.code, 0, ctx(res, sb));
    const log = runnerLog(sb);
    assert.match(log, /bad_json\.py: invalid output: not JSON: /);
    assert.match(log, /yes\.py: invalid output: notify: must be true or false/);
    assert.match(log, /exit1\.py: failed: exited with code 1: the warehouse is down/);
    assert.match(log, /crash\.py: failed: exited with code 1: ZeroDivisionError: division by zero \(at crash\.py line 1\)/);
    assert.deepEqual(sentScripts(sb), ['good1.py', 'good2.py', 'spaced.py']);
    const good2 = sb.stub.sends().find((r) => (r.json as { script?: string }).script === 'good2.py');
    assert.deepEqual(good2?.json, { script: 'good2.py', message: 'second', data: { n: 2 } });
    assert.equal(good2?.headers.prefer, 'respond-async');
    assert.equal(lastRun(sb, 'exit1.py').exit_code, 1);
    assert.equal(lastRun(sb, 'yes.py').outcome, 'invalid_output');
  });
});

void describe('notify-runner: cooldown', () => {
  void it('holds a second run, and --force overrides it', async () => {
    const sb = await sandbox();
    printing(sb.home, 'alert.py', { notify: true, message: 'revenue dropped', cooldown: '30m' });
    mkdirSync(join(sb.home, '.notifications', 'state'), { recursive: true });
    writeFileSync(join(sb.home, '.notifications', 'state', 'alert.json'), JSON.stringify({ last_sent: 1000, note: 'kept' }));
    const first = await runRunner(sb);
    assert.equal(first.code, 0, ctx(first, sb));
    assert.equal(sb.stub.sends().length, 1);
    const state = stateOf(sb, 'alert');
    assert.equal(state?.note, 'kept', 'extra keys of the state file are kept');
    assert.ok(typeof state?.last_sent === 'number' && Math.abs(state.last_sent - Date.now() / 1000) < 60, `last_sent: ${String(state?.last_sent)}`);

    const second = await runRunner(sb);
    assert.equal(second.code, 0, ctx(second, sb));
    assert.equal(sb.stub.sends().length, 1, 'the cooldown should hold the second run');
    assert.equal(lastRun(sb, 'alert.py').outcome, 'held_by_cooldown');
    assert.match(runnerLog(sb), /alert\.py: held by cooldown 30m until /);

    const forced = await runRunner(sb, ['--force']);
    assert.equal(forced.code, 0, ctx(forced, sb));
    assert.equal(sb.stub.sends().length, 2, '--force should send despite the cooldown');
    assert.equal(lastRun(sb, 'alert.py').outcome, 'sent');
  });

  void it('falls back to 1h with a log line when the cooldown is invalid', async () => {
    const sb = await sandbox();
    printing(sb.home, 'odd.py', { notify: true, message: 'hi', cooldown: 'soon' });
    const res = await runRunner(sb);
    assert.equal(res.code, 0, ctx(res, sb));
    assert.match(runnerLog(sb), /odd\.py: sent.*warning: cooldown 'soon' is not valid .*using the default 1h/);
    const rec = lastRun(sb, 'odd.py');
    assert.equal(rec.cooldown, '1h');
    assert.match(rec.warning ?? '', /cooldown 'soon' is not valid/);
    await runRunner(sb);
    assert.equal(lastRun(sb, 'odd.py').outcome, 'held_by_cooldown');
    assert.equal(sb.stub.sends().length, 1);
  });

  void it('a cooldown that has passed lets the next notification go', async () => {
    const sb = await sandbox();
    printing(sb.home, 'often.py', { notify: true, message: 'hi', cooldown: '1s' });
    await runRunner(sb);
    await new Promise((r) => setTimeout(r, 2100));
    await runRunner(sb);
    assert.equal(sb.stub.sends().length, 2);
  });

  void it('an unreadable state file is reported and left untouched, nothing sent', async () => {
    const sb = await sandbox();
    printing(sb.home, 'alert.py', { notify: true, message: 'x' });
    const p = join(sb.home, '.notifications', 'state', 'alert.json');
    mkdirSync(join(sb.home, '.notifications', 'state'), { recursive: true });
    writeFileSync(p, '{"last_sent": ');
    const res = await runRunner(sb);
    assert.equal(res.code, 0, ctx(res, sb));
    assert.equal(readFileSync(p, 'utf8'), '{"last_sent": ');
    assert.equal(sb.stub.sends().length, 0);
    assert.match(lastRun(sb, 'alert.py').error ?? '', /cannot apply the cooldown: .*alert\.json is unreadable/);
  });
});

function pngBytes(size: number): Buffer {
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(size)]);
}

void describe('notify-runner: images', () => {
  void it('uploads the image as bytes equal to the file', async () => {
    const sb = await sandbox();
    const img = join(sb.dir, 'chart.png');
    const bytes = pngBytes(200_000);
    writeFileSync(img, bytes);
    const jpg = join(sb.dir, 'photo.jpg');
    const jpgBytes = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(5000)]);
    writeFileSync(jpg, jpgBytes);
    printing(sb.home, 'chart.py', { notify: true, title: 'Daily report', message: 'see chart', image_path: img, data: { a: 1 } });
    printing(sb.home, 'photo.py', { notify: true, message: 'a photo', image_path: jpg });
    const res = await runRunner(sb);
    assert.equal(res.code, 0, ctx(res, sb));
    const photos = sb.stub.sends().filter((r) => r.path === '/send_photo');
    assert.equal(photos.length, 2);
    const chart = photos.find((p) => p.fields?.script === 'chart.py');
    assert.ok(chart?.files?.[0], 'no file part in the chart upload');
    assert.equal(chart.files[0].field, 'photo');
    assert.equal(chart.files[0].contentType, 'image/png');
    assert.ok(chart.files[0].bytes.equals(bytes), 'uploaded bytes differ from the file');
    assert.equal(chart.fields?.title, 'Daily report');
    assert.equal(chart.fields?.message, 'see chart');
    assert.deepEqual(JSON.parse(chart.fields?.data ?? 'null'), { a: 1 });
    assert.equal(chart.headers.prefer, 'respond-async');
    const photo = photos.find((p) => p.fields?.script === 'photo.py');
    assert.equal(photo?.files?.[0]?.contentType, 'image/jpeg');
    assert.ok(photo?.files?.[0]?.bytes.equals(jpgBytes));
  });

  void it('a missing or non-image file still sends the text, saying why the image is not there', async () => {
    const sb = await sandbox();
    const txt = join(sb.dir, 'not_an_image.png');
    writeFileSync(txt, 'hello, I am text');
    printing(sb.home, 'missing.py', { notify: true, message: 'numbers are in', image_path: join(sb.dir, 'nope.png') });
    printing(sb.home, 'fake.py', { notify: true, message: 'numbers are in', image_path: txt });
    const res = await runRunner(sb);
    assert.equal(res.code, 0, ctx(res, sb));
    const sends = sb.stub.sends();
    assert.equal(sends.length, 2);
    for (const s of sends) assert.equal(s.path, '/send');
    const missing = sends.find((s) => (s.json as { script: string }).script === 'missing.py')?.json as { message: string };
    assert.match(missing.message, /^numbers are in\n\n\(Not attached: image .*nope\.png does not exist\)$/);
    assert.match(lastRun(sb, 'missing.py').warning ?? '', /does not exist/);
    assert.match(lastRun(sb, 'fake.py').warning ?? '', /is not a PNG or JPEG file/);
    assert.equal(lastRun(sb, 'fake.py').outcome, 'sent');
  });

  void it('an image_path that is a FIFO does not hang the runner', async () => {
    const sb = await sandbox();
    const fifo = join(sb.dir, 'chart.png');
    execFileSync('mkfifo', [fifo]);
    printing(sb.home, 'fifo.py', { notify: true, message: 'fifo image', image_path: fifo });
    const res = await runRunner(sb);
    assert.equal(res.code, 0, ctx(res, sb));
    const sent = sb.stub.sends().find((s) => (s.json as { script: string }).script === 'fifo.py')?.json as { message: string } | undefined;
    assert.match(sent?.message ?? '', /Not attached: image .*chart\.png is not a regular file/);
  });
});

interface Interval {
  start: number;
  end: number;
}

function maxOverlap(intervals: Interval[]): number {
  const events = intervals.flatMap((i) => [
    { t: i.start, d: 1 },
    { t: i.end, d: -1 },
  ]);
  events.sort((a, b) => a.t - b.t || a.d - b.d);
  let cur = 0;
  let max = 0;
  for (const e of events) {
    cur += e.d;
    max = Math.max(max, cur);
  }
  return max;
}

async function concurrencyRun(count: number, together: number, env: Record<string, string>): Promise<{ overlap: number; sb: Sandbox; res: RunResult }> {
  const sb = await sandbox();
  const times = join(sb.dir, 'times');
  const marks = join(sb.dir, 'started');
  mkdirSync(marks);
  for (let i = 0; i < count; i++) {
    script(
      sb.home,
      `s${i}.py`,
      // The first `together` scripts wait for each other (up to 60 s), so they overlap however
      // slowly Python starts; the runner's bound is what keeps the overlap from going higher.
      `import json, os, time\nstart = time.time()\nopen(os.path.join(${JSON.stringify(marks)}, ${JSON.stringify(`s${i}`)}), 'w').close()\n` +
        `while len(os.listdir(${JSON.stringify(marks)})) < ${together} and time.time() - start < 60: time.sleep(0.05)\n` +
        `time.sleep(0.2)\nopen(${JSON.stringify(times)}, 'a').write(json.dumps([start, time.time()]) + "\\n")\nprint('{"notify": false}')\n`,
    );
  }
  const res = await runRunner(sb, [], env);
  assert.equal(res.code, 0, ctx(res, sb));
  const intervals = readFileSync(times, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as [number, number])
    .map(([start, end]) => ({ start, end }));
  assert.equal(intervals.length, count);
  return { overlap: maxOverlap(intervals), sb, res };
}

void describe('notify-runner: concurrency', () => {
  void it('runs scripts at once, never more than NOTIFY_RUNNER_CONCURRENCY', async () => {
    const { overlap } = await concurrencyRun(6, 2, { NOTIFY_RUNNER_CONCURRENCY: '2' });
    assert.equal(overlap, 2, `at most 2 scripts should run at once, and 2 should overlap (saw ${overlap})`);
  });

  void it('runs at most 4 at once by default', async () => {
    const { overlap } = await concurrencyRun(8, 4, {});
    assert.equal(overlap, 4, `saw ${overlap} scripts at once`);
  });

  void it('two invocations started together send each notification once', async () => {
    const sb = await sandbox();
    for (const name of ['a', 'b', 'c']) {
      script(sb.home, `${name}.py`, `import time\ntime.sleep(0.3)\nprint('{"notify": true, "message": "${name}"}')\n`);
    }
    const [one, two] = await Promise.all([runRunner(sb), runRunner(sb)]);
    assert.equal(one.code, 0, ctx(one, sb));
    assert.equal(two.code, 0, ctx(two, sb));
    assert.deepEqual(sentScripts(sb), ['a.py', 'b.py', 'c.py']);
    // The second either left at once (the lock) or found the cooldown holding.
    const log = runnerLog(sb);
    assert.ok(/another notify-runner is still running/.test(log) || /held by cooldown/.test(log), log);
  });
});

void describe('notify-runner: output limits', () => {
  void it('a script printing 50 MB is recorded failed and the others still send', async () => {
    const sb = await sandbox();
    script(sb.home, 'flood.py', `import sys\nchunk = 'x' * 1_000_000\nfor _ in range(50):\n    sys.stdout.write(chunk)\n`);
    printing(sb.home, 'fine.py', { notify: true, message: 'ok' });
    const res = await runRunner(sb);
    assert.equal(res.code, 0, ctx(res, sb));
    const rec = lastRun(sb, 'flood.py');
    assert.equal(rec.outcome, 'failed');
    assert.match(rec.error ?? '', /printed more than 1 MiB on stdout and was stopped/);
    assert.deepEqual(sentScripts(sb), ['fine.py']);
  });

  void it('honours NOTIFY_SCRIPT_MAX_OUTPUT', async () => {
    const sb = await sandbox();
    script(sb.home, 'chatty.py', `import json\nprint(json.dumps({"notify": True, "message": "x" * 5000}))\n`);
    const res = await runRunner(sb, [], { NOTIFY_SCRIPT_MAX_OUTPUT: '4KiB' });
    assert.equal(res.code, 0, ctx(res, sb));
    assert.match(lastRun(sb, 'chatty.py').error ?? '', /more than 4 KiB/);
  });
});

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[p] = `${statSync(p).mtimeMs}:${readFileSync(p, 'utf8')}`;
    }
  };
  walk(dir);
  return out;
}

void describe('notify-runner: --dry-run, --script, --help', () => {
  void it('--dry-run sends nothing and changes no state', async () => {
    const sb = await sandbox();
    printing(sb.home, 'fresh.py', { notify: true, title: 'T', message: 'would go' });
    printing(sb.home, 'held.py', { notify: true, message: 'held' });
    printing(sb.home, 'quiet.py', { notify: false });
    const notifDir = join(sb.home, '.notifications');
    // Without ~/.notifications, a dry run does not create it.
    const bare = await runRunner(sb, ['--dry-run']);
    assert.equal(bare.code, 0, ctx(bare, sb));
    assert.equal(existsSync(notifDir), false, 'a dry run created ~/.notifications');

    await runRunner(sb, ['--script', 'held.py']);
    assert.equal(sb.stub.sends().length, 1);
    const before = snapshot(notifDir);
    const res = await runRunner(sb, ['--dry-run']);
    assert.equal(res.code, 0, ctx(res, sb));
    assert.equal(sb.stub.sends().length, 1, 'a dry run sent something');
    assert.deepEqual(snapshot(notifDir), before, 'a dry run changed ~/.notifications');
    assert.match(res.stdout, /fresh\.py: would send/);
    assert.match(res.stdout, /title: +T/);
    assert.match(res.stdout, /held\.py: would be held by cooldown 1h until .*--force would send it/);
    assert.match(res.stdout, /quiet\.py: nothing to send/);
    assert.match(res.stdout, /nothing was sent/);
  });

  void it('--script runs only that script', async () => {
    const sb = await sandbox();
    printing(sb.home, 'one.py', { notify: true, message: '1' });
    printing(sb.home, 'two.py', { notify: true, message: '2' });
    const res = await runRunner(sb, ['--script', 'two']);
    assert.equal(res.code, 0, ctx(res, sb));
    assert.deepEqual(sentScripts(sb), ['two.py']);
    const missing = await runRunner(sb, ['--script', 'three.py']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no script three\.py/);
    const bad = await runRunner(sb, ['--script', '../x.py']);
    assert.equal(bad.code, 1);
  });

  void it('--help lists the flags and the variables', async () => {
    const sb = await sandbox();
    const res = await runRunner(sb, ['--help']);
    assert.equal(res.code, 0);
    for (const word of ['--script', '--dry-run', '--force', 'NOTIFY_SOCKET', 'NOTIFY_SCRIPT_TIMEOUT', 'NOTIFY_SCRIPT_MAX_OUTPUT', 'NOTIFY_RUNNER_CONCURRENCY', 'Exit status']) {
      assert.ok(res.stdout.includes(word), `--help does not mention ${word}`);
    }
  });

  void it('with no scripts directory, exits 0 and says so', async () => {
    const sb = await sandbox();
    rmSync(join(sb.home, 'user'), { recursive: true });
    const res = await runRunner(sb);
    assert.equal(res.code, 0, ctx(res, sb));
    assert.match(runnerLog(sb), /no scripts to run/);
    assert.equal((statSync(join(sb.home, '.notifications')).mode & 0o777).toString(8), '700');
  });
});

void describe('notify-runner: history', () => {
  void it('records every outcome with its details', async () => {
    const sb = await sandbox();
    printing(sb.home, 'sent.py', { notify: true, title: 'Revenue', message: 'down' });
    printing(sb.home, 'quiet.py', { notify: false });
    script(sb.home, 'fails.py', `import sys\nprint("no data", file=sys.stderr)\nsys.exit(3)\n`);
    script(sb.home, 'garbage.py', `print("hello")\n`);
    await runRunner(sb);
    await runRunner(sb, ['--script', 'sent.py']);
    // Only the script meant to hang runs with a short timeout.
    script(sb.home, 'slow.py', `import time\ntime.sleep(30)\n`);
    await runRunner(sb, ['--script', 'slow.py'], { NOTIFY_SCRIPT_TIMEOUT: '1500ms', NOTIFY_SCRIPT_KILL_GRACE: '200ms' });
    const h = historyOf(sb);
    const by = lastRunPerScript(h);
    assert.equal(by.get('quiet.py')?.outcome, 'nothing_to_send');
    assert.equal(by.get('fails.py')?.outcome, 'failed');
    assert.equal(by.get('fails.py')?.exit_code, 3);
    assert.match(by.get('fails.py')?.error ?? '', /exited with code 3: no data/);
    assert.equal(by.get('slow.py')?.outcome, 'timed_out');
    assert.equal(by.get('slow.py')?.exit_code, null);
    assert.equal(by.get('garbage.py')?.outcome, 'invalid_output');
    assert.equal(by.get('sent.py')?.outcome, 'held_by_cooldown');
    const sent = h.find((r) => r.script === 'sent.py' && r.outcome === 'sent');
    assert.ok(sent, JSON.stringify(h));
    assert.equal(sent.id, 'n1');
    assert.equal(sent.queued, true);
    assert.equal(sent.title, 'Revenue');
    for (const r of h) {
      assert.equal(r.trigger, 'schedule');
      assert.ok(!Number.isNaN(Date.parse(r.time)), r.time);
      assert.equal(typeof r.duration_ms, 'number');
      assert.match(r.run_id, /^[a-z0-9]+-[0-9a-f]+$/);
    }
    assert.deepEqual(
      recentRuns(h, { limit: 2 }).map((r) => r.script),
      ['slow.py', 'sent.py'],
    );
  });

  void it('stays bounded, keeping the newest runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'notify-history-'));
    try {
      const store = new HistoryStore(join(dir, 'history.jsonl'), { maxLines: 20, maxBytes: 1024 * 1024 });
      for (let i = 0; i < 50; i++) {
        await store.append({ run_id: `r${i}`, time: new Date().toISOString(), script: 'a.py', trigger: 'schedule', outcome: 'sent', duration_ms: 1, exit_code: 0 });
      }
      const all = await store.readAll();
      assert.ok(all.length <= 20 && all.length >= 18, `kept ${all.length}`);
      assert.equal(all.at(-1)?.run_id, 'r49');
      const small = new HistoryStore(join(dir, 'small.jsonl'), { maxLines: 1000, maxBytes: 2000 });
      for (let i = 0; i < 100; i++) {
        await small.append({ run_id: `r${i}`, time: new Date().toISOString(), script: 'a.py', trigger: 'schedule', outcome: 'sent', duration_ms: 1, exit_code: 0 });
      }
      assert.ok(statSync(small.path).size <= 2000);
      assert.equal((await small.readAll()).at(-1)?.run_id, 'r99');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

void describe('notify-runner: delivery failures', () => {
  for (const status of [503, 500]) {
    void it(`the send API answering ${status} is delivery_failed, with no last_sent`, async () => {
      const sb = await sandbox();
      const headers: Record<string, string> = status === 503 ? { 'retry-after': '5' } : {};
      sb.stub.respondWith(() => ({ status, body: { error: 'overloaded, try later' }, headers }));
      printing(sb.home, 'alert.py', { notify: true, message: 'x' });
      const res = await runRunner(sb);
      assert.equal(res.code, 3, `every send failed on the API side: exit 3\n${ctx(res, sb)}`);
      const rec = lastRun(sb, 'alert.py');
      assert.equal(rec.outcome, 'delivery_failed');
      assert.match(rec.error ?? '', new RegExp(`HTTP ${status}.*overloaded, try later`));
      assert.equal(stateOf(sb, 'alert'), null, 'last_sent was recorded for a failed delivery');
      // The next run sends it (no cooldown was started).
      sb.stub.respondWith((_r, i) => ({ status: 202, body: { ok: true, queued: true, id: `ok${i}` } }));
      const again = await runRunner(sb);
      assert.equal(again.code, 0, ctx(again, sb));
      assert.equal(lastRun(sb, 'alert.py').outcome, 'sent');
    });
  }

  void it('an unreachable send API fails the run (exit 3); a per-notification refusal does not', async () => {
    const sb = await sandbox();
    printing(sb.home, 'alert.py', { notify: true, message: 'x' });
    const res = await runRunner(sb, [], { NOTIFY_SOCKET: join(sb.dir, 'no-such.sock') });
    assert.equal(res.code, 3, ctx(res, sb));
    assert.match(lastRun(sb, 'alert.py').error ?? '', /unreachable/);
    assert.match(res.stderr, /unreachable or failing for every notification/);

    sb.stub.respondWith(() => ({ status: 404, body: { error: 'no channel: link Telegram or open the desktop app' } }));
    const refused = await runRunner(sb);
    assert.equal(refused.code, 0, ctx(refused, sb));
    assert.match(lastRun(sb, 'alert.py').error ?? '', /HTTP 404.*no channel/);
  });
});

void describe('runner units', () => {
  void it('parses sizes', () => {
    assert.equal(parseByteSize('1MiB'), 1048576);
    assert.equal(parseByteSize('512k'), 524288);
    assert.equal(parseByteSize('100'), 100);
    assert.equal(parseByteSize('lots'), null);
  });

  void it('explains bad output in words', () => {
    const r = (s: string): string => {
      const p = parseScriptOutput(s);
      return p.ok ? 'ok' : p.error;
    };
    assert.equal(r('  {"notify": false}\n'), 'ok');
    assert.match(r(''), /printed nothing/);
    assert.match(r('[1]'), /not a JSON object: printed an array/);
    assert.match(r('{"notify": "yes"}'), /^notify: must be true or false/);
    assert.match(r('{"title": "x"}'), /^notify: is required/);
    assert.match(r('{"notify": true}'), /message: is required when notify is true/);
    assert.match(r('{"notify": true, "message": "x", "image_path": "rel.png"}'), /image_path: must be an absolute path/);
  });

  void it('takes the exception line of a Python traceback', () => {
    const tb = 'Traceback (most recent call last):\n  File "/home/a/user/notifications/r.py", line 7, in <module>\n    main()\n  File "/home/a/user/notifications/r.py", line 4, in main\n    1/0\nZeroDivisionError: division by zero\n';
    assert.equal(stderrExcerpt(tb), 'ZeroDivisionError: division by zero (at r.py line 4)');
    assert.equal(stderrExcerpt('a\nb\nc\nd\n'), 'b | c | d');
  });
});
