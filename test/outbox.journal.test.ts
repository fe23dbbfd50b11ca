/**
 * The outbox journal: group commit (many acceptances share one sync), replay after a crash
 * at every step of a compaction, damaged lines skipped without hiding the rest, and the
 * file outbox's bookkeeping (per-user usage, re-queues, dead letters) on top of it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Journal, JournalWriteError, readJournal } from '../src/bot/delivery/journal.js';
import { FileOutbox, type OutboxRecord } from '../src/bot/delivery/outbox.js';

function tempDir(t: { after: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'notify-journal-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const value = (i: number): string => JSON.stringify({ n: i, text: `notification ${i} ${'x'.repeat(100)}` });

/** Puts 0..n-1, deletes the even ones; what survives is the odd ones. */
async function fill(j: Journal, n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => j.put(`k${i}`, value(i))));
  await Promise.all(Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === 0).map((i) => j.delete(`k${i}`)));
}

function oddKeys(n: number): string[] {
  return Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === 1).map((i) => `k${i}`);
}

/** A step hook that stops a compaction for good at `at`, as a SIGKILL would. */
function crashAt(at: 'write' | 'rename' | 'cleanup'): { hook: (step: string) => Promise<void>; reached: Promise<void> } {
  let reached: () => void = () => undefined;
  const p = new Promise<void>((r) => {
    reached = r;
  });
  return {
    hook: (step) => {
      if (step !== at) return Promise.resolve();
      reached();
      return new Promise<void>(() => undefined); // never goes on
    },
    reached: p,
  };
}

void describe('outbox journal', () => {
  void it('concurrent appends share syncs (group commit), and all of them replay', async (t) => {
    const dir = tempDir(t);
    const j = new Journal(dir, { commitIntervalMs: 2, segmentBytes: 1 << 30 });
    j.open();
    await Promise.all(Array.from({ length: 1000 }, (_, i) => j.put(`k${i}`, value(i))));
    assert.equal(j.stats.appends, 1000);
    assert.ok(j.stats.batches <= 100, `1000 concurrent appends took ${j.stats.batches} syncs`);
    await j.close();
    const state = readJournal(dir);
    assert.equal(state.entries.size, 1000);
    assert.equal(state.entries.get('k7'), value(7));
    assert.deepEqual(state.damage, []);
  });

  void it('a lone append is written at once, not held for a batch', async (t) => {
    const dir = tempDir(t);
    const j = new Journal(dir, { commitIntervalMs: 60_000, segmentBytes: 1 << 30 });
    j.open();
    await j.put('only', value(1)); // with a 60 s interval this would time the test out if held
    await j.close();
    assert.equal(readJournal(dir).entries.get('only'), value(1));
  });

  for (const step of ['write', 'rename', 'cleanup'] as const) {
    void it(`a crash during compaction (at "${step}") while appends go on loses nothing and resurrects nothing`, async (t) => {
      const dir = tempDir(t);
      const crash = crashAt(step);
      const j = new Journal(dir, { commitIntervalMs: 0, segmentBytes: 2048, compactionStep: crash.hook });
      j.open();
      await fill(j, 200);
      // The next append starts a new segment and a compaction that stops at `step`.
      await j.put('after', value(1000));
      await crash.reached;
      await j.put('during', value(1001));
      await j.delete('k1');
      // Abandoned without close(), as by SIGKILL.
      const state = readJournal(dir);
      const expected = [...oddKeys(200).filter((k) => k !== 'k1'), 'after', 'during'].sort();
      assert.deepEqual([...state.entries.keys()].sort(), expected);
      assert.deepEqual(state.damage, []);

      // The next writer replays the same state and compacts it to one snapshot.
      const again = new Journal(dir, { commitIntervalMs: 0, segmentBytes: 2048 });
      const { entries } = again.open();
      assert.deepEqual([...entries.keys()].sort(), expected);
      again.compactReplayed();
      await again.flush();
      await again.close();
      const files = readdirSync(dir).sort();
      assert.equal(files.filter((f) => f.startsWith('snap-')).length, 1, files.join(' '));
      assert.ok(!files.some((f) => f.endsWith('.tmp')), files.join(' '));
      assert.deepEqual([...readJournal(dir).entries.keys()].sort(), expected);
    });
  }

  void it('a damaged line is reported and skipped; the records around it replay', async (t) => {
    const dir = tempDir(t);
    const j = new Journal(dir, { commitIntervalMs: 0, segmentBytes: 1 << 30 });
    j.open();
    for (let i = 0; i < 5; i++) await j.put(`k${i}`, value(i));
    await j.close();
    const seg = join(dir, readdirSync(dir).find((f) => f.startsWith('seg-'))!);
    const lines = readFileSync(seg, 'utf8').split('\n');
    const at = lines.findIndex((l) => l.includes('notification 2'));
    lines[at] = lines[at]!.replace('notification 2', 'notificatiOn 2'); // a flipped bit
    writeFileSync(seg, `${lines.join('\n')}`);
    appendFileSync(seg, '0badc0de {"k":"torn"'); // a write cut short
    const state = readJournal(dir);
    assert.deepEqual([...state.entries.keys()], ['k0', 'k1', 'k3', 'k4']);
    assert.equal(state.damage.length, 2);
    assert.equal(state.damage[0]!.reason, 'checksum mismatch');
    assert.match(state.damage[1]!.reason, /incomplete/);
  });
});

const IS_ROOT = process.getuid?.() === 0;

/** Fills the file system holding `dir` down to its last byte; returns the filler's path. */
function fillDisk(dir: string): string {
  const path = join(dir, 'filler.bin');
  for (const size of [16 * 1024, 512, 1]) {
    const fd = openSync(path, 'a');
    try {
      for (;;) writeSync(fd, Buffer.alloc(size, 1));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    } finally {
      closeSync(fd);
    }
  }
  return path;
}

void describe('outbox journal on a full disk', { skip: IS_ROOT ? false : 'needs root to mount a tmpfs' }, () => {
  void it('a batch refused because the disk filled is never replayed after a restart, though some of its lines reached the file', async (t) => {
    const mount = mkdtempSync(join(tmpdir(), 'notify-journal-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'notify-test-journal', mount]);
    t.after(() => {
      execFileSync('umount', ['-l', mount]);
      rmSync(mount, { recursive: true, force: true });
    });
    const dir = join(mount, 'journal');
    mkdirSync(dir);
    const j = new Journal(dir, { commitIntervalMs: 0, segmentBytes: 1 << 30 });
    j.open();
    await j.put('kept', value(0));
    // The segment's last page still has room for whole lines of the next batch, not all of it.
    const filler = fillDisk(mount);
    const refused = Array.from({ length: 60 }, (_, i) => `refused${i}`);
    const answers = await Promise.allSettled(refused.map((k, i) => j.put(k, value(i))));
    for (const a of answers) {
      assert.equal(a.status, 'rejected', 'a put on a full disk is refused');
      assert.ok(a.status === 'rejected' && a.reason instanceof JournalWriteError && /disk .* is full/.test(a.reason.message), `the refusal says the disk is full: ${String(a.status === 'rejected' ? a.reason : '')}`);
    }
    assert.equal(j.stats.batches, 1, 'the refused puts were written as one batch');
    assert.deepEqual([...j.live.keys()], ['kept'], 'the refused puts are not live');

    // Restart: a new writer replays the directory, as the bot does when it starts again.
    await j.close();
    rmSync(filler);
    const again = new Journal(dir, { commitIntervalMs: 0, segmentBytes: 1 << 30 });
    const { entries, damage } = again.open();
    assert.deepEqual([...entries.keys()], ['kept'], 'after a restart only what was acknowledged is in the journal');
    assert.deepEqual(damage, []);
    await again.put('after', value(1));
    await again.close();
    assert.deepEqual([...readJournal(dir).entries.keys()], ['kept', 'after'], 'the journal takes puts again once space is back');
  });
});

void describe('outbox journal commit markers', () => {
  void it('lines of a batch without its commit marker are not replayed, even when later batches follow in the same segment', async (t) => {
    const dir = tempDir(t);
    const j = new Journal(dir, { commitIntervalMs: 0, segmentBytes: 1 << 30 });
    j.open();
    await j.put('k0', value(0));
    await j.close();
    const seg = join(dir, readdirSync(dir).find((f) => f.startsWith('seg-'))!);
    const text = readFileSync(seg, 'utf8');
    const [header, k0, commit] = text.trimEnd().split('\n');
    assert.ok(header && k0 && commit, `a segment holds a header, the line and a commit marker: ${text}`);
    // A failed batch: two whole lines and one cut short, and no marker; then a committed batch.
    const other = new Journal(mkdtempSync(join(dir, 'x-')), { commitIntervalMs: 0, segmentBytes: 1 << 30 });
    other.open();
    await Promise.all([other.put('refused1', value(1)), other.put('refused2', value(2)), other.put('k3', value(3))]);
    await other.close();
    const batch = readFileSync(join(other.dir, readdirSync(other.dir).find((f) => f.startsWith('seg-'))!), 'utf8').trimEnd().split('\n');
    const [, r1, r2, k3, c1] = batch;
    writeFileSync(seg, `${header}\n${k0}\n${commit}\n${r1}\n${r2}\n${k3!.slice(0, 20)}\n${k3}\n${commit}\n`);
    assert.match(c1!, /"c":3/, 'a batch of three ends with a marker counting three');
    const state = readJournal(dir);
    assert.deepEqual([...state.entries.keys()], ['k0', 'k3']);
    // A batch at the end without its marker (the write that failed last) is not replayed either.
    appendFileSync(seg, `${r1}\n`);
    assert.deepEqual([...readJournal(dir).entries.keys()], ['k0', 'k3']);
  });

  void it('a segment written before commit markers existed still replays line by line', async (t) => {
    const dir = tempDir(t);
    const j = new Journal(dir, { commitIntervalMs: 0, segmentBytes: 1 << 30 });
    j.open();
    for (let i = 0; i < 3; i++) await j.put(`k${i}`, value(i));
    await j.close();
    const seg = join(dir, readdirSync(dir).find((f) => f.startsWith('seg-'))!);
    const legacy = readFileSync(seg, 'utf8').split('\n').filter((l) => l.includes('"k"'));
    writeFileSync(seg, `${legacy.join('\n')}\n`);
    assert.deepEqual([...readJournal(dir).entries.keys()], ['k0', 'k1', 'k2']);
  });
});

function record(i: number, user: string): OutboxRecord {
  return { id: `r${String(i).padStart(4, '0')}`, seq: i, user, chat_id: 1000 + i, accepted_at: 1_700_000_000_000 + i, parts: [{ kind: 'text', text: `hello ${i}` }], sent_parts: 0, attempts: 0 };
}

void describe('file outbox', () => {
  void it('counts what each user has queued (records and photos), and forgets what leaves', async (t) => {
    const dir = tempDir(t);
    const o = new FileOutbox(dir);
    assert.deepEqual(await o.open(), []);
    const a = record(1, 'alice');
    a.photo = await o.putPhoto(a.id, Buffer.alloc(5000, 1));
    await o.add(a);
    await o.add(record(2, 'alice'));
    await o.add(record(3, 'bob'));
    const alice = o.usage('alice');
    assert.equal(alice.count, 2);
    assert.ok(alice.bytes > 5000 && alice.bytes < 6000, `alice holds ${alice.bytes} bytes`);
    assert.equal(o.usage('bob').count, 1);
    await o.remove(a);
    assert.equal(o.usage('alice').count, 1);
    assert.ok(o.usage('alice').bytes < 1000, 'the photo left with its record');
    assert.deepEqual(readdirSync(join(dir, 'outbox', 'photos')), [], 'the photo file is gone');
    await o.bury(record(3, 'bob'));
    assert.deepEqual(o.usage('bob'), { count: 0, bytes: 0 });
    await o.close();

    const reopened = new FileOutbox(dir);
    const live = await reopened.open();
    assert.deepEqual(live.map((r) => r.id), ['r0002']);
    assert.equal(reopened.usage('alice').count, 1);
    await reopened.close();
  });

  void it('a re-queued dead letter is taken into the queue once, with a fresh retry budget', async (t) => {
    const dir = tempDir(t);
    const bot = new FileOutbox(dir);
    await bot.open();
    const r = { ...record(5, 'carol'), attempts: 7, last_error: 'Telegram down' };
    await bot.add(r);
    await bot.bury(r);
    assert.deepEqual(await bot.pending(), []);
    const operator = new FileOutbox(dir);
    assert.deepEqual((await operator.deadLetters()).map((d) => d.id), [r.id]);
    assert.equal(await operator.requeue(r.id, 1_800_000_000_000), true);
    assert.equal(await operator.requeue(r.id, 1_800_000_000_000), false, 'a second re-queue finds no dead letter');
    assert.deepEqual((await operator.pending()).map((d) => d.id), [r.id], 'pending shows it before the bot takes it');
    const taken = await bot.takeRequeued();
    assert.equal(taken.length, 1);
    assert.equal(taken[0]!.attempts, 0);
    assert.equal(taken[0]!.retry_from, 1_800_000_000_000);
    assert.deepEqual(await bot.takeRequeued(), [], 'taken once');
    assert.deepEqual((await operator.pending()).map((d) => d.id), [r.id]);
    assert.equal(bot.usage('carol').count, 1);
    await bot.close();
  });

  void it('a record buried just before a crash is not delivered again; an unreadable one becomes a dead letter once', async (t) => {
    const dir = tempDir(t);
    const o = new FileOutbox(dir);
    await o.open();
    const buried = record(1, 'dave');
    await o.add(buried);
    await o.add(record(2, 'dave'));
    await o.close();
    // The dead letter was written, then the bot died before the queue let go of it.
    writeFileSync(join(dir, 'outbox', 'dead', `${buried.id}.json`), JSON.stringify({ ...buried, dead_at: buried.accepted_at + 1 }));
    // And a record that no longer fits the schema (as by a bad edit).
    const j = new Journal(join(dir, 'outbox', 'journal'), { commitIntervalMs: 0, segmentBytes: 1 << 30 });
    j.open();
    await j.put('broken', JSON.stringify({ id: 'broken', user: 'dave' }));
    await j.close();
    const problems: string[] = [];
    const again = new FileOutbox(dir, { onProblem: (m) => problems.push(m) });
    const live = await again.open();
    assert.deepEqual(live.map((r) => r.id), ['r0002']);
    assert.equal(problems.filter((p) => /unreadable outbox record was moved to the dead letters/.test(p)).length, 1, problems.join('; '));
    const damaged = await again.damagedLetters();
    assert.equal(damaged.length, 1);
    assert.match(damaged[0]!.text, /"id":"broken"/);
    assert.match(damaged[0]!.source, /journal record broken/);
    await again.close();
    const third = new FileOutbox(dir, { onProblem: (m) => problems.push(m) });
    assert.deepEqual((await third.open()).map((r) => r.id), ['r0002'], 'the buried and the broken one stay out');
    assert.equal(problems.length, 1, `reported once: ${problems.join('; ')}`);
    assert.equal((await third.damagedLetters()).length, 1);
    await third.close();
  });
});
