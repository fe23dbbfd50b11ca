/**
 * An append-only, keyed journal with group commit: the durable half of the outbox.
 *
 * Why a journal of our own and not SQLite: the outbox needs one thing, "these lines are on
 * disk before anyone is told so", and a log does exactly that with one fdatasync per batch;
 * it needs no native module (better-sqlite3 must compile or download a binary at install,
 * which a fresh `npm ci` here does not run, and Node 20 has no node:sqlite), its files stay
 * readable with `cat`, and the outbox's interface keeps a database (PostgreSQL) a drop-in
 * alternative.
 *
 * Layout of the directory:
 *   seg-<n>.log    appended lines; the highest n is the one being written
 *   snap-<n>.log   every live entry as of the start of seg-<n>, then an end line
 * A line is `<crc32 hex8> <json>\n`, the json `{"k": key, "v": value}` (put) or
 * `{"k": key, "d": 1}` (delete). Replay takes the newest complete snapshot and the segments
 * from its number on; a line whose checksum or JSON is wrong is reported and skipped, so one
 * bad record never hides the rest.
 *
 * Commit markers: a segment starts with `{"journal": 2}` and every batch ends with
 * `{"c": <lines in the batch>}`, written in the same write as its lines. Replay applies a
 * batch's lines only when its marker follows them, and only the lines it counts. A batch whose
 * write failed (a full disk cuts a write short after some whole lines) was answered with an
 * error, so the lines it left are never replayed: a refused notification is never delivered
 * after a restart. (After such a failure the segment is also cut back to its last committed
 * batch and the writer moves to a new one.) Segments without the first line were written
 * before markers existed and replay line by line.
 *
 * Group commit: appends arriving while a batch is written and synced go together in the
 * next batch, and batches start at most once per `commitIntervalMs`, so under load one
 * fdatasync serves many acceptances while a lone request is written at once.
 *
 * Compaction: when the segment being written outgrows `segmentBytes` (and twice the live
 * data), the next batch goes to a new segment and the live entries as of that moment are
 * written in the background to `snap-<new>.log.tmp`, synced, renamed; only then are the
 * older files removed. A crash at any step leaves either the old files or a complete
 * snapshot, both of which replay to the same state.
 */
import { closeSync, fdatasync, fsync, ftruncateSync, mkdirSync, open, openSync, readdirSync, readFileSync, rmSync, close as closeFd, write, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

/** A problem found while replaying (the line was skipped). */
export interface JournalDamage {
  file: string;
  line: number;
  reason: string;
  text: string;
  /** A write or compaction a crash cut short: never acknowledged, nothing of it is lost. */
  cutShort?: true;
}

/** What a replay found. */
export interface JournalState {
  /** Live entries: key -> the value's JSON, in the order they were first put. */
  entries: Map<string, string>;
  damage: JournalDamage[];
  /** Segment numbers replayed and the snapshot used (for the writer). */
  lastSegment: number;
  snapshot: number | null;
  files: string[];
}

/** Tunables of the journal. */
export interface JournalOptions {
  /** Start a batch at most this often (ms); 0 = as soon as the previous one is synced. */
  commitIntervalMs: number;
  /** Start a new segment (and compact) when the current one is larger than this. */
  segmentBytes: number;
  /** Called on trouble that does not stop the journal (a failed compaction). */
  onError?: (err: unknown, what: string) => void;
  /** For tests: called before each step of a compaction; throwing stops it there. */
  compactionStep?: (step: 'write' | 'rename' | 'cleanup') => void | Promise<void>;
}

const SEG = /^seg-(\d{12})\.log$/;
const SNAP = /^snap-(\d{12})\.log$/;
const num = (n: number): string => String(n).padStart(12, '0');

/** Frames one JSON text as a journal line. */
function frame(json: string): string {
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

/** The first line of a segment whose batches end with commit markers. */
const HEADER = frame('{"journal":2}');
/** Ends a batch of `n` lines. */
const commitLine = (n: number): string => frame(`{"c":${n}}`);

function putLine(key: string, valueJson: string): string {
  return frame(`{"k":${JSON.stringify(key)},"v":${valueJson}}`);
}

/** Parses one line; returns null and a reason when it is damaged. */
function parseLine(line: string): { ok: true; key?: string; value?: string; del?: boolean; end?: number; commit?: number; header?: true } | { ok: false; reason: string } {
  if (line.length < 10 || line[8] !== ' ') return { ok: false, reason: 'not a journal line' };
  const json = line.slice(9);
  const sum = Number.parseInt(line.slice(0, 8), 16);
  if (!/^[0-9a-f]{8}$/.test(line.slice(0, 8)) || crc32(json) !== sum) return { ok: false, reason: 'checksum mismatch' };
  let obj: unknown;
  try {
    obj = JSON.parse(json);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (typeof obj !== 'object' || obj === null) return { ok: false, reason: 'not an object' };
  const o = obj as { k?: unknown; v?: unknown; d?: unknown; end?: unknown; c?: unknown; journal?: unknown };
  if (typeof o.end === 'number') return { ok: true, end: o.end };
  if (typeof o.c === 'number' && Number.isSafeInteger(o.c) && o.c >= 0) return { ok: true, commit: o.c };
  if (o.journal === 2) return { ok: true, header: true };
  if (typeof o.k !== 'string') return { ok: false, reason: 'no key' };
  if (o.d === 1) return { ok: true, key: o.k, del: true };
  if (o.v === undefined) return { ok: false, reason: 'no value' };
  return { ok: true, key: o.k, value: JSON.stringify(o.v) };
}

function replayFile(dir: string, name: string, entries: Map<string, string>, damage: JournalDamage[], isSnapshot: boolean): boolean {
  const text = readFileSync(join(dir, name), 'utf8');
  const lines = text.split('\n');
  // A last line without its newline is a write cut short by a crash: never acknowledged.
  const torn = lines.pop() ?? '';
  let ended = false;
  // With commit markers, the lines of the batch being read wait here for its marker.
  let marked = false;
  let pending: Array<{ line: string; at: number }> = [];
  const apply = (line: string, at: number): void => {
    const p = parseLine(line);
    if (!p.ok) {
      damage.push({ file: name, line: at, reason: p.reason, text: line.slice(0, 2000) });
      return;
    }
    if (p.key === undefined) return;
    if (p.del) entries.delete(p.key);
    else entries.set(p.key, p.value!);
  };
  lines.forEach((line, i) => {
    if (line === '') return;
    const p = parseLine(line);
    if (p.ok && p.header) {
      // Lines of a failed first batch may precede a header written again.
      marked = true;
      pending = [];
      return;
    }
    if (p.ok && p.end !== undefined) {
      ended = true;
      return;
    }
    if (!marked) {
      apply(line, i + 1);
      return;
    }
    if (p.ok && p.commit !== undefined) {
      // Lines before the batch it counts belong to a batch whose write failed: not replayed.
      for (const q of pending.slice(Math.max(0, pending.length - p.commit))) apply(q.line, q.at);
      pending = [];
      return;
    }
    pending.push({ line, at: i + 1 });
  });
  if (torn !== '' && !isSnapshot) {
    const p = parseLine(torn);
    if (!p.ok) damage.push({ file: name, line: lines.length + 1, reason: 'incomplete last line (write cut short)', text: torn.slice(0, 2000), cutShort: true });
  }
  return ended;
}

/**
 * Reads a journal directory without changing it (the writer's start, and operators while
 * the writer runs). A file removed under the reader by a compaction makes it start over.
 */
export function readJournal(dir: string): JournalState {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return readOnce(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 20) throw err;
    }
  }
}

function readOnce(dir: string): JournalState {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: new Map(), damage: [], lastSegment: 0, snapshot: null, files: [] };
    throw err;
  }
  const segs = names.flatMap((n) => (SEG.test(n) ? [Number(SEG.exec(n)![1])] : [])).sort((a, b) => a - b);
  const snaps = names.flatMap((n) => (SNAP.test(n) ? [Number(SNAP.exec(n)![1])] : [])).sort((a, b) => b - a);
  let entries = new Map<string, string>();
  let damage: JournalDamage[] = [];
  let snapshot: number | null = null;
  for (const s of snaps) {
    const e = new Map<string, string>();
    const d: JournalDamage[] = [];
    if (replayFile(dir, `snap-${num(s)}.log`, e, d, true)) {
      entries = e;
      damage = d;
      snapshot = s;
      break;
    }
    damage.push({ file: `snap-${num(s)}.log`, line: 0, reason: 'snapshot without its end line; older files used instead', text: '', cutShort: true });
  }
  const used = segs.filter((n) => snapshot === null || n >= snapshot);
  for (const n of used) replayFile(dir, `seg-${num(n)}.log`, entries, damage, false);
  const files = [...(snapshot === null ? [] : [`snap-${num(snapshot)}.log`]), ...used.map((n) => `seg-${num(n)}.log`)];
  return { entries, damage, lastSegment: Math.max(0, snapshot ?? 0, ...segs), snapshot, files };
}

interface Pending {
  key: string;
  line: string;
  /** The value's JSON, or null for a delete. */
  value: string | null;
  resolve: () => void;
  reject: (err: Error) => void;
}

function writeAll(fd: number, buf: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const from = (off: number): void => {
      write(fd, buf, off, buf.length - off, null, (err, n) => {
        if (err) reject(err);
        else if (off + n < buf.length) from(off + n);
        else resolve();
      });
    };
    from(0);
  });
}

const syncData = (fd: number): Promise<void> => new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));

/** A failure to make an append durable, in words for the operator. */
export class JournalWriteError extends Error {
  constructor(cause: NodeJS.ErrnoException) {
    super(cause.code === 'ENOSPC' ? 'the disk holding the outbox is full; nothing was stored' : `the outbox could not be written (${cause.code ?? cause.message})`, { cause });
    this.name = 'JournalWriteError';
  }
}

/** The writer of a journal directory. One process writes at a time (the caller holds a lock). */
export class Journal {
  private entries = new Map<string, string>();
  private liveBytes = 0;
  private fd = -1;
  private segment = 0;
  /** Bytes of the current segment that committed batches wrote. */
  private segmentSize = 0;
  /** The current segment may end with lines of a failed batch (it could not be cut back). */
  private segmentTail = false;
  private queue: Pending[] = [];
  private running: Promise<void> | null = null;
  private lastBatchAt = -Infinity;
  private compacting: Promise<void> | null = null;
  private nextCompaction: { snapshot: number; lines: string[] } | null = null;
  private closed = false;
  private replayedFiles = 0;
  /** Counters for benchmarks and /health. */
  readonly stats = { batches: 0, appends: 0, bytesWritten: 0, compactions: 0, syncs: 0 };

  constructor(readonly dir: string, private readonly opts: JournalOptions) {}

  /** Replays the directory and opens a fresh segment; returns the live entries and any damage. */
  open(): { entries: ReadonlyMap<string, string>; damage: JournalDamage[] } {
    mkdirSync(this.dir, { recursive: true, mode: 0o770 });
    for (const n of readdirSync(this.dir)) if (n.endsWith('.tmp')) rmSync(join(this.dir, n), { force: true });
    const state = readJournal(this.dir);
    this.entries = state.entries;
    for (const [k, v] of this.entries) this.liveBytes += k.length + v.length + 20;
    this.segment = state.lastSegment + 1;
    this.fd = openSync(join(this.dir, `seg-${num(this.segment)}.log`), 'a', 0o660);
    this.segmentSize = 0;
    this.replayedFiles = state.files.length;
    return { entries: this.entries, damage: state.damage };
  }

  /** Folds the files replayed by open() into one snapshot, in the background. */
  compactReplayed(): void {
    if (this.replayedFiles > 0) this.compact(this.segment, this.snapshotLines());
    this.replayedFiles = 0;
  }

  /** Live keys and their value JSON (read-only view). */
  get live(): ReadonlyMap<string, string> {
    return this.entries;
  }

  /** Durably puts key = value (JSON text); resolves once on disk. */
  put(key: string, valueJson: string): Promise<void> {
    return this.append(key, putLine(key, valueJson), valueJson);
  }

  /** Durably deletes key; resolves once on disk. */
  delete(key: string): Promise<void> {
    return this.append(key, frame(`{"k":${JSON.stringify(key)},"d":1}`), null);
  }

  private append(key: string, line: string, value: string | null): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the outbox journal is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ key, line, value, resolve, reject });
      if (!this.running) this.running = this.run();
    });
  }

  private snapshotLines(): string[] {
    const out: string[] = [];
    for (const [k, v] of this.entries) out.push(putLine(k, v));
    return out;
  }

  private async run(): Promise<void> {
    await Promise.resolve();
    try {
      while (this.queue.length > 0 && !this.closed) {
        const wait = this.lastBatchAt + this.opts.commitIntervalMs - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (this.segmentSize >= this.opts.segmentBytes && this.segmentSize >= 2 * this.liveBytes) this.rotate(true);
        const batch = this.queue;
        this.queue = [];
        // A newline first ends whatever a failed batch left cut short in this segment.
        const lead = (this.segmentTail ? '\n' : '') + (this.segmentSize === 0 ? HEADER : '');
        const buf = Buffer.from(lead + (batch.length === 1 ? batch[0]!.line : batch.map((p) => p.line).join('')) + commitLine(batch.length));
        this.lastBatchAt = performance.now();
        try {
          await writeAll(this.fd, buf);
          this.stats.syncs += 1;
          await syncData(this.fd);
        } catch (err) {
          const failure = new JournalWriteError(err as NodeJS.ErrnoException);
          // The batch has no commit marker on disk, so replay skips what of it reached the
          // file; cutting it off too keeps the file plain. Later batches go to a new segment.
          this.dropFailedBatch();
          for (const p of batch) {
            if (p.value !== null) {
              p.reject(failure);
              continue;
            }
            // A deletion is done at once in memory and written again later: the message
            // it ends was delivered, and until the line reaches the disk a crash can at
            // worst send it once more; nothing waits on it in the meantime.
            this.forget(p.key);
            p.resolve();
            this.retryDelete(p.key);
          }
          continue;
        }
        this.segmentSize += buf.length;
        this.segmentTail = false;
        this.stats.batches += 1;
        this.stats.appends += batch.length;
        this.stats.bytesWritten += buf.length;
        for (const p of batch) {
          const old = this.entries.get(p.key);
          if (old !== undefined) this.liveBytes -= p.key.length + old.length + 20;
          if (p.value === null) this.entries.delete(p.key);
          else {
            this.entries.set(p.key, p.value);
            this.liveBytes += p.key.length + p.value.length + 20;
          }
        }
        for (const p of batch) p.resolve();
      }
    } finally {
      this.running = null;
    }
  }

  private forget(key: string): void {
    const old = this.entries.get(key);
    if (old === undefined) return;
    this.liveBytes -= key.length + old.length + 20;
    this.entries.delete(key);
  }

  private retryDelete(key: string): void {
    setTimeout(() => {
      if (!this.closed) this.delete(key).catch(() => undefined);
    }, 1000).unref();
  }

  /** Cuts the current segment back to its committed batches and moves to a new segment. */
  private dropFailedBatch(): void {
    try {
      ftruncateSync(this.fd, this.segmentSize);
    } catch {
      this.segmentTail = true;
    }
    this.rotate(false);
  }

  /** Starts a new segment; with compact, the live entries as of now become its snapshot. */
  private rotate(compact: boolean): void {
    const old = this.fd;
    this.segment += 1;
    try {
      this.fd = openSync(join(this.dir, `seg-${num(this.segment)}.log`), 'a', 0o660);
    } catch (err) {
      // Keep writing where we were; the next batch reports the trouble if it persists.
      this.segment -= 1;
      this.opts.onError?.(err, 'could not start a new outbox journal segment');
      return;
    }
    this.segmentSize = 0;
    this.segmentTail = false;
    closeFd(old, () => undefined);
    if (compact) this.compact(this.segment, this.snapshotLines());
  }

  private compact(snapshot: number, lines: string[]): void {
    if (this.compacting) {
      this.nextCompaction = { snapshot, lines };
      return;
    }
    this.compacting = this.writeSnapshot(snapshot, lines)
      .catch((err: unknown) => this.opts.onError?.(err, 'outbox journal compaction failed; the older files are kept'))
      .finally(() => {
        this.compacting = null;
        const next = this.nextCompaction;
        this.nextCompaction = null;
        if (next && !this.closed) this.compact(next.snapshot, next.lines);
      });
  }

  private async writeSnapshot(snapshot: number, lines: string[]): Promise<void> {
    const name = `snap-${num(snapshot)}.log`;
    const tmp = join(this.dir, `${name}.tmp`);
    await this.opts.compactionStep?.('write');
    const fh = await fsp.open(tmp, 'w', 0o660);
    try {
      // In slices, so the event loop (and the acceptances) keep going meanwhile.
      for (let i = 0; i < lines.length; i += 2000) {
        const chunk = Buffer.from(lines.slice(i, i + 2000).join(''));
        await fh.write(chunk);
        this.stats.bytesWritten += chunk.length;
      }
      await fh.write(frame(`{"end":${lines.length}}`));
      this.stats.syncs += 1;
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await this.opts.compactionStep?.('rename');
    await fsp.rename(tmp, join(this.dir, name));
    this.stats.syncs += 1;
    await syncDir(this.dir);
    await this.opts.compactionStep?.('cleanup');
    for (const n of await fsp.readdir(this.dir)) {
      const m = SEG.exec(n) ?? SNAP.exec(n);
      if (m && Number(m[1]) < snapshot) await fsp.rm(join(this.dir, n), { force: true });
    }
    this.stats.compactions += 1;
  }

  /** Waits for the appends queued so far and a compaction in progress. */
  async flush(): Promise<void> {
    while (this.running || this.compacting) {
      await this.running;
      await this.compacting;
    }
  }

  /** Finishes what is queued and closes the file. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

function syncDir(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    open(dir, 'r', (err, fd) => {
      if (err) {
        reject(err);
        return;
      }
      fsync(fd, (syncErr) => closeFd(fd, () => (syncErr ? reject(syncErr) : resolve())));
    });
  });
}
