/**
 * `notify`, the analysts' shell command, run as a real Linux account against the real bot
 * and the fake Telegram: every form the analysts' guide shows, what it prints, and the
 * exit status a script tests (delivered, queued but not delivered during an outage,
 * refused, unreachable, bad command line).
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AlertRulesStore } from '../src/shared/alertRules.js';
import { systemClock } from '../src/shared/clock.js';
import { userByName } from '../src/shared/posix.js';
import { BotHarness, PROJECT_ROOT, pngBytes, textOf } from './support/botHarness.js';
import { accountsUnavailable, LinuxAccounts, type RunResult } from './support/linuxAccounts.js';

const NOTIFY_BIN = join(PROJECT_ROOT, 'bin', 'notify.js');

void describe('notify, the shell command', { skip: accountsUnavailable() }, () => {
  const accounts = new LinuxAccounts();
  const work = mkdtempSync(join(tmpdir(), 'notify-cli-'));
  let h: BotHarness;
  let ana = '';
  let stranger = '';
  let chat = 0;

  /** Runs `notify <args>` as `user` in the work directory, with only NOTIFY_SOCKET set. */
  function notify(user: string, args: readonly string[], opts: { stdin?: string; socket?: string; shell?: string } = {}): Promise<RunResult> {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', NOTIFY_SOCKET: opts.socket ?? h.socketPath, LANG: 'C.UTF-8' };
    if (opts.shell !== undefined) {
      // The shell form: `long_job; notify "done: $?"`.
      return accounts.run(user, '/bin/sh', ['-c', opts.shell.replaceAll('notify', `'${process.execPath}' '${NOTIFY_BIN}'`)], { env, cwd: work });
    }
    return accounts.run(user, process.execPath, [NOTIFY_BIN, ...args], { env, cwd: work, ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}) });
  }

  function explain(r: RunResult): string {
    return `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\nbot log:\n${h.logTail(8)}`;
  }

  before(async () => {
    ana = accounts.user('ana');
    stranger = accounts.user('str');
    const socketGroup = accounts.group('sock', [ana, stranger]);
    chmodSync(work, 0o755);
    writeFileSync(join(work, 'chart.png'), pngBytes(6, 4));
    chownSync(join(work, 'chart.png'), userByName(ana)!.uid, -1);
    h = await BotHarness.start({ users: [], env: { NOTIFY_SOCKET_GROUP: socketGroup, NOTIFY_SEND_WAIT_MAX: '5s' }, prefix: 'notify-cli-bot-' });
    chmodSync(h.dir, 0o711);
    chmodSync(join(h.dir, 'run'), 0o711);
    chat = (await h.link(ana, 610_001)).chatId;
  });

  after(async () => {
    await h?.cleanup();
    rmSync(work, { recursive: true, force: true });
    accounts.cleanup();
  });

  void it('notify "Backfill finished" sends the words to the caller\'s own chat and says so in one line', async () => {
    const r = await notify(ana, ['Backfill finished']);
    assert.equal(r.status, 0, explain(r));
    assert.match(r.stdout, /^(delivered to Telegram|queued, not delivered yet)[^\n]*\(id [^)]+\)\n$/, explain(r));
    const [m] = await h.fake.waitForMessages(chat, 1, 60_000);
    assert.equal(textOf(m!), 'Backfill finished');
  });

  void it('--title and --image send the image with the bold title and the message as its caption', async () => {
    const before = h.fake.sentMessages(chat).length;
    const r = await notify(ana, ['--title', 'Nightly load', '--image', 'chart.png', '3 tables late']);
    assert.equal(r.status, 0, explain(r));
    const msgs = await h.fake.waitForMessages(chat, before + 1, 60_000);
    const m = msgs[before]!;
    assert.equal(m.kind, 'photo');
    assert.deepEqual(m.photo, pngBytes(6, 4), 'the image arrives as uploaded');
    assert.equal(m.caption, 'Nightly load\n3 tables late');
    assert.ok(m.entities.some((e) => e.type === 'bold' && e.offset === 0 && e.length === 'Nightly load'.length), `title in bold: ${JSON.stringify(m.entities)}`);
  });

  void it('long_job; notify "done: $?" carries the exit status of the job before it', async () => {
    const before = h.fake.sentMessages(chat).length;
    const r = await notify(ana, [], { shell: 'false; notify "done: $?"' });
    assert.equal(r.status, 0, explain(r));
    const msgs = await h.fake.waitForMessages(chat, before + 1, 60_000);
    assert.equal(textOf(msgs[before]!), 'done: 1');
  });

  void it('echo text | notify reads the message from standard input', async () => {
    const before = h.fake.sentMessages(chat).length;
    const r = await notify(ana, [], { stdin: 'rows loaded: 1204\nrows rejected: 3\n' });
    assert.equal(r.status, 0, explain(r));
    const msgs = await h.fake.waitForMessages(chat, before + 1, 60_000);
    assert.equal(textOf(msgs[before]!), 'rows loaded: 1204\nrows rejected: 3');
  });

  void it('--urgent breaks through quiet hours that hold a plain notify back', async () => {
    const rules = new AlertRulesStore(h.dataDir, systemClock);
    const hhmm = (ms: number): string => new Date(ms).toISOString().slice(11, 16);
    await rules.setQuietHours(ana, { start: hhmm(Date.now() - 3600_000), end: hhmm(Date.now() + 3600_000), tz: 'UTC' });
    try {
      const before = h.fake.sentMessages(chat).length;
      const held = await notify(ana, ['during quiet hours']);
      assert.equal(held.status, 0, explain(held));
      assert.match(held.stdout, /^held for your quiet-hours digest until \S+ \(id /, explain(held));
      const urgent = await notify(ana, ['--urgent', 'Disk almost full']);
      assert.equal(urgent.status, 0, explain(urgent));
      const msgs = await h.fake.waitForMessages(chat, before + 1, 60_000);
      assert.deepEqual(msgs.slice(before).map(textOf), ['Disk almost full'], 'only the urgent one went out');
    } finally {
      await rules.setQuietHours(ana, null);
    }
  });

  void it('--wait exits 0 once Telegram has the message', async () => {
    const r = await notify(ana, ['--wait', 'Deploy finished']);
    assert.equal(r.status, 0, explain(r));
    assert.match(r.stdout, /^delivered to Telegram/, explain(r));
    assert.ok(h.fake.sentMessages(chat).some((m) => textOf(m) === 'Deploy finished'));
  });

  void it('--wait during a Telegram outage exits 3 (queued, not delivered), and the message arrives after the outage', async () => {
    h.fake.setFault({ kind: 'outage' });
    let r: RunResult;
    try {
      r = await notify(ana, ['--wait', '--timeout', '2', 'Sent during the outage']);
    } finally {
      h.fake.setFault(null);
    }
    assert.equal(r.status, 3, explain(r));
    assert.match(r.stderr, /queued, not delivered yet/, explain(r));
    assert.equal(r.stdout, '');
    await h.waitUntil(() => h.fake.sentMessages(chat).some((m) => textOf(m) === 'Sent during the outage'), 30_000, () => 'the message queued during the outage was not delivered after it');
  });

  void it('exits 1 with the send API\'s reason when there is nowhere to deliver (not linked, no desktop app)', async () => {
    const r = await notify(stranger, ['hello?']);
    assert.equal(r.status, 1, explain(r));
    assert.match(r.stderr, /^notify: the send API refused it \(HTTP 404\): '[^']+' has not linked Telegram/, explain(r));
  });

  void it('exits 4 when the send API cannot be reached, and 2 for a bad command line or nothing to send', async () => {
    const down = await notify(ana, ['hello'], { socket: join(work, 'no-such.sock') });
    assert.equal(down.status, 4, explain(down));
    assert.match(down.stderr, /unreachable/);
    const empty = await notify(ana, []);
    assert.equal(empty.status, 2, explain(empty));
    assert.match(empty.stderr, /nothing to send/);
    const unknown = await notify(ana, ['--loud', 'x']);
    assert.equal(unknown.status, 2, explain(unknown));
    const noImage = await notify(ana, ['--image', 'missing.png', 'x']);
    assert.equal(noImage.status, 2, explain(noImage));
    assert.match(noImage.stderr, /missing\.png does not exist/);
  });

  void it('--help shows the examples and the exit statuses', async () => {
    const r = await notify(ana, ['--help']);
    assert.equal(r.status, 0);
    for (const text of ['notify "Backfill finished"', 'echo "text from a pipe" | notify', '--to', '--wait', 'Exit status:', '3  with --wait: queued, not delivered']) {
      assert.ok(r.stdout.includes(text), `--help mentions ${text}`);
    }
  });
});
