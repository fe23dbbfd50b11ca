/**
 * A full data disk: the real bot process with its data directory on a small tmpfs that a
 * filler file fills up. Sends get a quick 507 with a reason (never a hang, never a send
 * that is refused and then delivered anyway), /health says the disk is full and still
 * answers while the bot logs on, notifications accepted before are still delivered, and
 * when space comes back the bot takes notifications again by itself, and a restart brings
 * back nothing it refused.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LogFile } from '../src/shared/logFile.js';
import { BotHarness } from './support/botHarness.js';

const IS_ROOT = process.getuid?.() === 0;

/** A bot harness whose data directory is a tmpfs of `size` (bot stopped, unmounted and removed after the test). */
async function botOnTmpfs(t: TestContext, prefix: string, size: string, env: Record<string, string>): Promise<BotHarness> {
  const h = await BotHarness.start({ users: 0, start: false, prefix, env });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0770`, 'notify-test-full', h.dataDir]);
  t.after(async () => {
    await h.kill();
    execFileSync('umount', ['-l', h.dataDir]);
    await h.cleanup();
  });
  return h;
}

/** Writes a file until the file system is full; returns its path. */
function fillDisk(dir: string): string {
  const path = join(dir, 'filler.bin');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(16 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  // What is left is smaller than a chunk: fill it too, down to the last block.
  const fd2 = openSync(path, 'a');
  try {
    for (;;) writeSync(fd2, Buffer.alloc(512, 1));
  } catch {
    // Full.
  } finally {
    closeSync(fd2);
  }
  return path;
}

/** Polls an asynchronous check (every 100 ms) until it gives a value. */
async function until<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(what());
    await sleep(100);
  }
}

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  const value = await f();
  return { value, ms: Date.now() - t0 };
}

void describe('a full data disk', { skip: IS_ROOT ? false : 'needs root to mount a tmpfs' }, () => {
  void it('answers 507 with a reason, says so on /health, loses nothing accepted, delivers nothing refused (after a restart too), and resumes', async (t) => {
    // A commit interval long enough that the sends made at once share a batch, which the full disk cuts short.
    const h = await botOnTmpfs(t, 'notify-full-', '3m', { NOTIFY_MIN_FREE_DISK: '0', NOTIFY_OUTBOX_COMMIT_INTERVAL: '300ms' });
    const user = await h.link('u1', 100_001);
    await h.startBot();

    // Accepted before the disk fills, held back by Telegram failing for now.
    h.fake.setFault({ kind: 'status', status: 500 });
    const before: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const text = `accepted before the disk filled ${i}`;
      const r = await h.client.send({ user: user.name, message: text }, 'respond-async');
      assert.equal(r.status, 202, `accepted: ${JSON.stringify(r.body)}`);
      before.push(text);
    }

    const filler = fillDisk(h.dataDir);
    // Many refused sends, each logged: the logger must neither block nor grow without bound.
    const refused: string[] = [];
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        const text = `sent while the disk is full ${i}`;
        refused.push(text);
        return timed(() => h.client.send({ user: user.name, message: text, title: 'x'.repeat(200) }, 'respond-async'));
      }),
    );
    // The outbox appends to a journal: a record that still fits in the last page of its
    // segment is stored durably and answered 202 (and must then be delivered, below);
    // every other send is refused with the reason, quickly.
    const refusedAnswers = answers.filter((a) => a.value.status !== 202);
    for (const [i, a] of answers.entries()) {
      if (a.value.status === 202) {
        before.push(refused[i]!);
        continue;
      }
      assert.ok(a.value.status === 507 || a.value.status === 503, `a send on a full disk answers 507 or 503, got ${a.value.status} ${JSON.stringify(a.value.body)}`);
      assert.match(String((a.value.body as { error?: string }).error), /disk is full/, 'the error says the disk is full');
    }
    assert.ok(refusedAnswers.length >= 30, `most sends on a full disk are refused (${refusedAnswers.length} of 40 were)`);
    const stillRefused = refused.filter((text) => !before.includes(text));
    refused.length = 0;
    refused.push(...stillRefused);
    t.diagnostic(`${refusedAnswers.length} of 40 sends on a full disk answered 507 in at most ${Math.max(...refusedAnswers.map((a) => a.ms))} ms`);

    const health = await timed(() => h.health());
    assert.equal(health.value.status, 200);
    const hb = health.value.body as { status: string; problems?: string[] };
    assert.equal(hb.status, 'degraded', `/health says degraded: ${JSON.stringify(hb)}`);
    assert.ok(hb.problems?.some((p) => /data disk full/.test(p)), `/health names the full disk: ${JSON.stringify(hb.problems)}`);

    // Telegram is back while the disk is still full: what was accepted goes out.
    h.fake.setFault(null);
    for (const [i, text] of before.entries()) {
      await h.waitUntil(() => h.fake.sentMessages(user.chatId).some((m) => m.text?.includes(text)), 30_000, () => `accepted message ${i} was not delivered while the disk was full (log: ${h.logTail(5)})`);
    }
    const stillHealthy = await timed(() => h.health());
    assert.equal(stillHealthy.value.status, 200, 'the bot still answers');

    // Space comes back: new sends are taken again without a restart.
    rmSync(filler);
    const after = 'sent after space came back';
    const r = await until(
      async () => {
        const a = await h.client.send({ user: user.name, message: after }, 'respond-async');
        return a.status === 202 ? a : undefined;
      },
      30_000,
      () => 'the bot did not take sends again after space came back',
    );
    assert.equal(r.status, 202);
    await h.waitUntil(() => h.fake.sentMessages(user.chatId).some((m) => m.text?.includes(after)), 30_000, () => 'the send after recovery was not delivered');
    await until(
      async () => ((await h.health()).body as { status: string }).status === 'ok' || undefined,
      30_000,
      () => `/health did not return to ok (log: ${h.logTail(5)})`,
    );

    // A restart replays the outbox's journal: what it refused must not come back from there.
    await h.restart();
    const afterRestart = 'sent after a restart';
    assert.equal((await h.client.send({ user: user.name, message: afterRestart }, 'respond-async')).status, 202);
    await h.waitUntil(() => h.fake.sentMessages(user.chatId).some((m) => m.text?.includes(afterRestart)), 30_000, () => `the send after the restart was not delivered (log: ${h.logTail(5)})`);

    const delivered = h.fake.sentMessages(user.chatId).map((m) => m.text ?? '');
    for (const text of refused) assert.ok(!delivered.some((d) => d.includes(text)), `a send answered 507 was delivered anyway: ${text}`);
    // A delivered record leaves the queue just after its message is seen: wait for that.
    await h.waitUntil(() => h.queuedIds().length === 0, 30_000, () => `records are left in the queue: ${JSON.stringify(h.queuedRecords())}`);
    assert.ok(h.proc, 'the bot kept running');
  });

  void it('refuses new work while free space is below the reserve, before writing anything', async (t) => {
    const h = await botOnTmpfs(t, 'notify-reserve-', '3m', { NOTIFY_MIN_FREE_DISK: String(2 * 1024 * 1024) });
    const user = await h.link('u1', 100_001);
    await h.startBot();
    const filler = join(h.dataDir, 'filler.bin');
    execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k', 'count=24', 'status=none']);
    await until(
      async () => (((await h.health()).body as { status: string }).status === 'degraded' ? true : undefined),
      60_000,
      () => '/health did not report the disk below its reserve',
    );
    const r = await h.client.send({ user: user.name, message: 'below the reserve' }, 'respond-async');
    assert.equal(r.status, 507, `a send below the reserve is refused with 507: ${JSON.stringify(r.body)}`);
    assert.match(String((r.body as { error: string }).error), /NOTIFY_MIN_FREE_DISK/, 'the reason names the setting');
    assert.ok(r.headers['retry-after'], 'a Retry-After header says when to try again');
    assert.equal(h.queuedIds().length, 0, 'nothing was written to the queue');
    rmSync(filler);
    await until(
      async () => (await h.client.send({ user: user.name, message: 'after the reserve is back' }, 'respond-async')).status === 202 || undefined,
      60_000,
      () => 'sends were not taken again once space was back',
    );
  });

  void it('bot.log on a full disk: lines are dropped and counted without holding the event loop, and the file resumes with a note once space is back', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'notify-fulllog-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0770', 'notify-test-fulllog', dir]);
    t.after(() => {
      execFileSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    });
    const log = new LogFile(join(dir, 'bot.log'), { retryMs: 200 });
    log.write('{"msg":"before the disk filled"}\n');
    await until(async () => (readFileSync(join(dir, 'bot.log'), 'utf8').includes('before the disk filled') ? true : undefined), 60_000, () => 'the first line was not written');
    const filler = fillDisk(dir);
    // The event loop keeps turning while thousands of lines meet the full disk.
    let longestGap = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
    }, 5);
    const line = `${JSON.stringify({ level: 30, msg: `a line while the disk is full ${'x'.repeat(300)}` })}\n`;
    for (let i = 0; i < 50; i += 1) {
      for (let j = 0; j < 100; j += 1) assert.equal(log.write(line), true, 'write() takes the line at once');
      await new Promise((resolve) => setImmediate(resolve));
    }
    await until(async () => (!log.state.ok && log.state.dropped > 0 ? true : undefined), 60_000, () => `the file did not report the full disk: ${JSON.stringify(log.state)}`);
    clearInterval(ticker);
    assert.match(String(log.state.error), /ENOSPC/);
    t.diagnostic(`${log.state.dropped} lines dropped on the full disk; longest event-loop gap ${longestGap.toFixed(0)} ms`);
    assert.ok(longestGap < 2000, `the event loop was held ${longestGap.toFixed(0)} ms`);

    rmSync(filler);
    await until(async () => (log.state.ok ? true : undefined), 60_000, () => `the file did not resume once space was back: ${JSON.stringify(log.state)}`);
    log.write('{"msg":"after space came back"}\n');
    const text = await until(
      async () => {
        const x = readFileSync(join(dir, 'bot.log'), 'utf8');
        return x.includes('after space came back') ? x : undefined;
      },
      60_000,
      () => 'a line after the recovery was not written',
    );
    assert.match(text, /log file resumed; [1-9]\d* line\(s\) were dropped while it could not be written \(ENOSPC\)/);
    assert.ok(text.indexOf('log file resumed') < text.indexOf('after space came back'), 'the note comes first');
  });
});
