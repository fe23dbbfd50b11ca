/**
 * The durable outbox: every accepted notification is on disk before anyone is told
 * "accepted"; progress (parts already sent) is on disk before the next part goes, so a
 * restart resumes where it stopped; finished messages leave the queue and their outcome
 * goes to an append-only log the services read; messages that could not be delivered in
 * time go to a dead-letter directory an operator can inspect and re-queue.
 *
 * `OutboxStore` is what the deliverer and the operator commands need; `FileOutbox` keeps
 * it in the data directory (a database can implement the same interface):
 *
 *   outbox/journal/        the queue: a group-committed journal (see journal.ts)
 *   outbox/queue/<id>.json records put back by operators (`notify-bot queue requeue`),
 *                          taken into the journal by the running bot
 *   outbox/photos/<id>.bin the one stored copy of a queued or dead message's photo
 *   outbox/dead/<id>.json  given up (operator: `notify-bot queue list|show|requeue`)
 *   outbox/dead/<id>.damaged  records that could not be read (damagedLetters.ts)
 *   deliveries.jsonl       final outcome of each notification, by id
 */
import { type DeliveryOutcome, type DeliveryStatus, MAX_OUTCOME_LOG, OUTCOME_LOG, OUTCOME_LOG_ROTATED, readOutcomes } from '../../shared/outcomeLog.js';
import { randomBytes } from 'node:crypto';
import { close, fdatasync, fsync, open, promises as fsp, unlink, write } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { type Damage, type DamagedLetter, DamagedLetters } from './damagedLetters.js';
import { Journal, type JournalOptions, readJournal } from './journal.js';
import type { Part } from '../format/render.js';
import { type OutboxUsage, UsageLedger } from './usageLedger.js';

const EntitySchema = z.object({
  type: z.enum(['bold', 'italic', 'code', 'pre', 'text_link']),
  offset: z.number(),
  length: z.number(),
  url: z.string().optional(),
  language: z.string().optional(),
});
const PartSchema = z.object({
  kind: z.enum(['text', 'photo']),
  text: z.string(),
  entities: z.array(EntitySchema).optional(),
  parseMode: z.enum(['HTML', 'MarkdownV2']).optional(),
});

/** A queued notification as stored in the spool. */
export const OutboxRecordSchema = z.looseObject({
  id: z.string(),
  seq: z.number(),
  user: z.string(),
  chat_id: z.number().int(),
  accepted_at: z.number(),
  script: z.string().optional(),
  parts: z.array(PartSchema).min(1),
  /** Extra keyboard for the last part (inline buttons), as Telegram's reply_markup. */
  reply_markup: z.unknown().optional(),
  photo: z.string().optional(),
  sent_parts: z.number().int().min(0),
  attempts: z.number().int().min(0),
  /** Retry budget starts here (accepted_at, or when an operator re-queued it). */
  retry_from: z.number().optional(),
  last_error: z.string().optional(),
  dead_at: z.number().optional(),
  message_ids: z.array(z.number()).optional(),
  /** A condition alert (send_resolved): its messages are remembered for the resolved notice. */
  send_resolved: z.boolean().optional(),
  /** The id of the alert this resolved notice is about. */
  resolves: z.string().optional(),
  /** Telegram message the first part replies to (a resolved notice's is looked up when it is sent). */
  reply_to: z.number().int().optional(),
  /** Since when the current part keeps failing (cleared when a part goes through). */
  failing_since: z.number().optional(),
  /** The bot's own notice about another notification (never itself the subject of one). */
  notice: z.boolean().optional(),
});
export type { DeliveryOutcome, DeliveryStatus };
export type OutboxRecord = z.infer<typeof OutboxRecordSchema> & { parts: Part[] };


/** fsync/fdatasync calls made by the outbox, for benchmarks and /health. */
export const outboxSyncs = { count: 0 };

function syncFd(fd: number, dataOnly: boolean): Promise<void> {
  outboxSyncs.count += 1;
  return new Promise((resolve, reject) => (dataOnly ? fdatasync : fsync)(fd, (err) => (err ? reject(err) : resolve())));
}

let tmpCounter = 0;

/** Creates `path` (it must not exist), writes `data` and fsyncs it. */
function writeAndSync(path: string, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    open(path, 'wx', 0o660, (openErr, fd) => {
      if (openErr) {
        reject(openErr);
        return;
      }
      const finish = (err: Error | null): void => {
        close(fd, (closeErr) => {
          const failure = err ?? closeErr;
          if (failure) unlink(path, () => reject(failure));
          else resolve();
        });
      };
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      const writeFrom = (offset: number): void => {
        write(fd, bytes, offset, bytes.length - offset, null, (writeErr, written) => {
          if (writeErr) finish(writeErr);
          else if (offset + written < bytes.length) writeFrom(offset + written);
          else syncFd(fd, false).then(() => finish(null), finish);
        });
      };
      writeFrom(0);
    });
  });
}

/** Writes a file atomically and durably (temp file, fsync, rename, fsync of the directory). */
async function writeDurably(dir: string, name: string, data: string | Uint8Array): Promise<void> {
  tmpCounter += 1;
  const tmp = join(dir, `.${name}.${process.pid}.${tmpCounter}.tmp`);
  await writeAndSync(tmp, data);
  try {
    await fsp.rename(tmp, join(dir, name));
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  const fh = await fsp.open(dir, 'r');
  try {
    await syncFd(fh.fd, false);
  } finally {
    await fh.close();
  }
}

let lastSeq = 0;
/** A new id, ordered by acceptance within and across runs. */
export function newOutboxId(now: number): { id: string; seq: number } {
  const seq = Math.max(now * 1000, lastSeq + 1);
  lastSeq = seq;
  return { id: `${seq.toString(36)}-${randomHex3()}`, seq };
}

let randomPool = Buffer.alloc(0);
let randomAt = 0;
/** Six random hex digits, from a pool refilled 1000 ids at a time (one CSPRNG call each). */
function randomHex3(): string {
  if (randomAt + 3 > randomPool.length) {
    randomPool = randomBytes(3000);
    randomAt = 0;
  }
  randomAt += 3;
  return randomPool.toString('hex', randomAt - 3, randomAt);
}

export type { OutboxUsage } from './usageLedger.js';

/**
 * Where the outbox keeps notifications. The deliverer owns a store between open() and
 * close(); the operator views (pending, deadLetters, requeue) work from another process.
 */
export interface OutboxStore {
  /** Takes the queue for delivery (one process at a time); returns what is left to deliver, oldest first. */
  open(): Promise<OutboxRecord[]>;
  /** Records operators put back since the last call, now durable in the queue. */
  takeRequeued(): Promise<OutboxRecord[]>;
  /** Durably adds a new record; resolves once it is on disk. */
  add(record: OutboxRecord): Promise<void>;
  /** Durably records progress of a queued record (parts sent, attempts, last error). */
  update(record: OutboxRecord): Promise<void>;
  /** Takes a finished record (its outcome already recorded) and its photo out of the queue. */
  remove(record: OutboxRecord): Promise<void>;
  /** Moves a record to the dead letters; its photo stays for a re-queue. */
  bury(record: OutboxRecord): Promise<void>;
  /** Stores the photo of a notification about to be added (the one stored copy); returns its name. */
  putPhoto(id: string, bytes: Uint8Array): Promise<string>;
  /** Reads a stored photo. */
  getPhoto(name: string): Promise<Buffer>;
  /** The file holding a stored photo, where the store keeps photos as files (for a second name, not a copy). */
  photoPath?(name: string): string;
  /** Removes a stored photo of a notification that was not accepted after all. */
  removePhoto(name: string): Promise<void>;
  /** What a user has queued now. */
  usage(user: string): OutboxUsage;
  /** Appends final outcomes to the log the services read. */
  recordOutcomes(outcomes: DeliveryOutcome[]): Promise<void>;
  /** Final outcomes recorded for these ids. */
  outcomesOf(ids: ReadonlySet<string>): Promise<Map<string, DeliveryOutcome>>;
  /** Operator view: every queued record, oldest first. */
  pending(): Promise<OutboxRecord[]>;
  /** Operator view: every dead letter, oldest first. */
  deadLetters(): Promise<OutboxRecord[]>;
  /** Operator view: records that could not be read, kept as dead letters of their own. */
  damagedLetters?(): Promise<DamagedLetter[]>;
  /** Puts a dead letter back in the queue with a fresh retry budget; false if there is none. */
  requeue(id: string, now: number): Promise<boolean>;
  /** Finishes pending writes and lets go of the queue. */
  close(): Promise<void>;
  /**
   * A store shared by several replicas (the database) has these too. claim: may the next
   * part of this record be sent now? The local time (Date.now() ms) until which it may; 0
   * for "not now, ask again shortly"; null when this replica must not send (fenced). watch: calls wake when another replica
   * adds a record. withdraw: takes back a record whose add failed, from any replica.
   */
  claim?(record: OutboxRecord): Promise<number | null>;
  watch?(wake: () => void): void;
  withdraw?(record: OutboxRecord): Promise<void>;
}

/** Tunables of the file outbox. */
export interface FileOutboxOptions {
  /** Start a journal batch at most this often. */
  commitIntervalMs: number;
  /** Journal segment size that triggers a compaction. */
  segmentBytes: number;
  /** Reports trouble that does not stop delivery (damaged records, failed compaction). */
  onProblem?: (message: string, detail: Record<string, unknown>) => void;
  /** For tests: see JournalOptions.compactionStep. */
  compactionStep?: JournalOptions['compactionStep'];
}

const DEFAULT_FILE_OPTIONS: FileOutboxOptions = { commitIntervalMs: 4, segmentBytes: 4 * 1024 * 1024 };

function parseRecord(json: string, where: string): OutboxRecord {
  const parsed = OutboxRecordSchema.safeParse(JSON.parse(json));
  if (!parsed.success) throw new Error(`${where}: ${parsed.error.issues[0]?.message ?? 'invalid record'}`);
  return parsed.data;
}

/** The outbox in the data directory: a group-committed journal, photo files, dead-letter files. */
export class FileOutbox implements OutboxStore {
  readonly journalDir: string;
  readonly queueDir: string;
  readonly deadDir: string;
  readonly photoDir: string;
  readonly outcomesPath: string;
  readonly damaged: DamagedLetters;
  private readonly opts: FileOutboxOptions;
  private journal: Journal | null = null;
  private readonly photoSizes = new Map<string, number>();
  private readonly ledger = new UsageLedger();
  private readonly unreadable = new Set<string>();
  private outcomeSync: NodeJS.Timeout | null = null;

  constructor(readonly dataDir: string, opts: Partial<FileOutboxOptions> = {}) {
    this.opts = { ...DEFAULT_FILE_OPTIONS, ...opts };
    this.journalDir = join(dataDir, 'outbox', 'journal');
    this.queueDir = join(dataDir, 'outbox', 'queue');
    this.deadDir = join(dataDir, 'outbox', 'dead');
    this.photoDir = join(dataDir, 'outbox', 'photos');
    this.outcomesPath = join(dataDir, OUTCOME_LOG);
    this.damaged = new DamagedLetters(this.deadDir);
  }

  /** Journal counters (batches = fdatasyncs of the queue) for /health and benchmarks. */
  get stats(): { batches: number; appends: number; bytesWritten: number; compactions: number; syncs: number } {
    const j = this.journal?.stats ?? { batches: 0, appends: 0, bytesWritten: 0, compactions: 0, syncs: 0 };
    return { ...j, syncs: j.syncs + outboxSyncs.count };
  }

  private problem(message: string, detail: Record<string, unknown>): void {
    this.opts.onProblem?.(message, detail);
  }

  /** Moves what could not be read to the dead letters; reports each piece once, ever. */
  private async keepDamaged(found: Damage[]): Promise<void> {
    for (const d of await this.damaged.keep(found)) {
      this.problem('an unreadable outbox record was moved to the dead letters (notify-bot queue list)', { id: d.id, source: d.source, reason: d.reason });
    }
  }

  damagedLetters(): Promise<DamagedLetter[]> {
    return this.damaged.list();
  }

  private track(record: OutboxRecord, jsonBytes: number): void {
    this.ledger.add(record.id, record.user, jsonBytes + (record.photo ? (this.photoSizes.get(record.photo) ?? 0) : 0));
  }

  usage(user: string): OutboxUsage {
    return this.ledger.usage(user);
  }

  async open(): Promise<OutboxRecord[]> {
    for (const d of [this.queueDir, this.deadDir, this.photoDir]) await fsp.mkdir(d, { recursive: true, mode: 0o770 });
    // Leftovers of writes interrupted by a crash.
    for (const d of [this.queueDir, this.deadDir, this.photoDir]) {
      for (const name of await fsp.readdir(d)) {
        if (name.startsWith('.') && name.endsWith('.tmp')) await fsp.rm(join(d, name), { force: true });
      }
    }
    const journal = new Journal(this.journalDir, {
      commitIntervalMs: this.opts.commitIntervalMs,
      segmentBytes: this.opts.segmentBytes,
      onError: (err, what) => this.problem(what, { err }),
      ...(this.opts.compactionStep ? { compactionStep: this.opts.compactionStep } : {}),
    });
    const { entries, damage } = journal.open();
    this.journal = journal;
    // What a crash cut short was never acknowledged: nothing of it is lost.
    const damaged: Damage[] = damage.filter((d) => !d.cutShort).map((d) => ({ source: `journal ${d.file} line ${d.line}`, reason: d.reason, text: d.text }));
    const records: OutboxRecord[] = [];
    const invalid: string[] = [];
    for (const [id, json] of entries) {
      try {
        records.push(parseRecord(json, `journal record ${id}`));
      } catch (err) {
        invalid.push(id);
        damaged.push({ source: `journal record ${id}`, reason: err instanceof Error ? err.message : String(err), text: json });
      }
    }
    // Kept for the operator before a compaction drops them from the journal.
    await this.keepDamaged(damaged);
    for (const id of invalid) await journal.delete(id);
    const live: OutboxRecord[] = [];
    for (const r of records) {
      // Buried, but the bot died before the queue let go of it.
      const dead = await this.readDead(r.id).catch(() => null);
      if (dead && (dead.dead_at ?? 0) >= (r.retry_from ?? r.accepted_at)) {
        await journal.delete(r.id);
        continue;
      }
      if (r.photo && !this.photoSizes.has(r.photo)) {
        const st = await fsp.stat(join(this.photoDir, r.photo)).catch(() => null);
        if (st) this.photoSizes.set(r.photo, st.size);
      }
      this.track(r, (entries.get(r.id) ?? '').length);
      live.push(r);
    }
    journal.compactReplayed();
    live.push(...(await this.takeRequeued()));
    return live.sort((a, b) => a.seq - b.seq);
  }

  private get writer(): Journal {
    if (!this.journal) throw new Error('the outbox is not open');
    return this.journal;
  }

  async takeRequeued(): Promise<OutboxRecord[]> {
    const journal = this.writer;
    const out: OutboxRecord[] = [];
    for (const name of await fsp.readdir(this.queueDir)) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      const path = join(this.queueDir, name);
      let record: OutboxRecord;
      try {
        const text = await fsp.readFile(path, 'utf8');
        try {
          record = parseRecord(text, `queue/${name}`);
        } catch (err) {
          await this.keepDamaged([{ source: `queue/${name}`, reason: err instanceof Error ? err.message : String(err), text }]);
          await fsp.rm(path, { force: true });
          continue;
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        if (!this.unreadable.has(name)) this.problem('unreadable record in outbox/queue left in place', { err, file: name });
        this.unreadable.add(name);
        continue;
      }
      // Already taken (the bot died before removing the file).
      const known = journal.live.get(record.id);
      if (known === undefined || (JSON.parse(known) as { retry_from?: number }).retry_from !== record.retry_from) {
        const json = JSON.stringify(record);
        await journal.put(record.id, json);
        if (record.photo && !this.photoSizes.has(record.photo)) {
          const st = await fsp.stat(join(this.photoDir, record.photo)).catch(() => null);
          if (st) this.photoSizes.set(record.photo, st.size);
        }
        this.track(record, json.length);
        out.push(record);
      }
      await fsp.rm(path, { force: true });
    }
    return out;
  }

  async add(record: OutboxRecord): Promise<void> {
    const json = JSON.stringify(record);
    await this.writer.put(record.id, json);
    this.track(record, json.length);
  }

  async update(record: OutboxRecord): Promise<void> {
    await this.writer.put(record.id, JSON.stringify(record));
  }

  async remove(record: OutboxRecord): Promise<void> {
    await this.writer.delete(record.id);
    this.ledger.remove(record.id);
    if (record.photo) await this.removePhoto(record.photo);
  }

  async bury(record: OutboxRecord): Promise<void> {
    const dead = { ...record, dead_at: Date.now() };
    // The dead letter is durable before the queue lets go: a crash leaves one or both, never neither.
    await fsp.rm(join(this.deadDir, `${record.id}.json`), { force: true });
    await writeDurably(this.deadDir, `${record.id}.json`, JSON.stringify(dead, null, 2));
    await this.writer.delete(record.id);
    this.ledger.remove(record.id);
  }

  async putPhoto(id: string, bytes: Uint8Array): Promise<string> {
    const name = `${id}.bin`;
    await writeDurably(this.photoDir, name, bytes);
    this.photoSizes.set(name, bytes.length);
    return name;
  }

  async removePhoto(name: string): Promise<void> {
    this.photoSizes.delete(name);
    await fsp.rm(join(this.photoDir, name), { force: true });
  }

  photoPath(name: string): string {
    return join(this.photoDir, name);
  }

  async getPhoto(name: string): Promise<Buffer> {
    return fsp.readFile(join(this.photoDir, name));
  }

  private async readDead(id: string): Promise<OutboxRecord> {
    const path = join(this.deadDir, `${id}.json`);
    return parseRecord(await fsp.readFile(path, 'utf8'), path);
  }

  async pending(): Promise<OutboxRecord[]> {
    const out: OutboxRecord[] = [];
    const state = readJournal(this.journalDir);
    for (const [id, json] of state.entries) {
      try {
        out.push(parseRecord(json, `journal record ${id}`));
      } catch {
        // Reported by the bot when it opens the queue.
      }
    }
    let names: string[] = [];
    try {
      names = await fsp.readdir(this.queueDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const ids = new Set(out.map((r) => r.id));
    for (const n of names) {
      if (!n.endsWith('.json') || n.startsWith('.') || ids.has(n.slice(0, -5))) continue;
      try {
        out.push(parseRecord(await fsp.readFile(join(this.queueDir, n), 'utf8'), n));
      } catch {
        // Taken by the bot meanwhile, or unreadable (the bot reports it).
      }
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  async deadLetters(): Promise<OutboxRecord[]> {
    let entries: string[];
    try {
      entries = await fsp.readdir(this.deadDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: OutboxRecord[] = [];
    for (const n of entries) {
      if (!n.endsWith('.json') || n.startsWith('.')) continue;
      try {
        out.push(await this.readDead(n.slice(0, -5)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.problem('unreadable dead letter skipped', { err, file: n });
      }
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  async requeue(id: string, now: number): Promise<boolean> {
    if (!/^[0-9a-z-]+$/.test(id)) return false;
    let record: OutboxRecord;
    try {
      record = await this.readDead(id);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    const next: OutboxRecord = { ...record, attempts: 0, retry_from: now };
    delete next.dead_at;
    delete next.last_error;
    await fsp.mkdir(this.queueDir, { recursive: true, mode: 0o770 });
    await writeDurably(this.queueDir, `${id}.json`, JSON.stringify(next));
    await fsp.rm(join(this.deadDir, `${id}.json`), { force: true });
    return true;
  }

  /**
   * Appends final outcomes; rotates the log when large. The log is a view for the services
   * (the journal is what keeps a delivered message from going again), so it is synced at
   * most once a second rather than once per delivery.
   */
  async recordOutcomes(outcomes: DeliveryOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    try {
      const st = await fsp.stat(this.outcomesPath);
      if (st.size > MAX_OUTCOME_LOG) await fsp.rename(this.outcomesPath, join(this.dataDir, OUTCOME_LOG_ROTATED));
    } catch {
      // No log yet.
    }
    await fsp.appendFile(this.outcomesPath, outcomes.map((o) => `${JSON.stringify(o)}\n`).join(''), { mode: 0o660 });
    this.outcomeSync ??= setTimeout(() => {
      this.outcomeSync = null;
      void this.syncOutcomes();
    }, 1000);
  }

  private async syncOutcomes(): Promise<void> {
    try {
      const fh = await fsp.open(this.outcomesPath, 'r');
      try {
        await syncFd(fh.fd, true);
      } finally {
        await fh.close();
      }
    } catch (err) {
      this.problem('could not sync the delivery outcome log', { err });
    }
  }

  outcomesOf(ids: ReadonlySet<string>): Promise<Map<string, DeliveryOutcome>> {
    return readOutcomes(this.dataDir, ids);
  }

  async close(): Promise<void> {
    if (this.outcomeSync) {
      clearTimeout(this.outcomeSync);
      this.outcomeSync = null;
      await this.syncOutcomes();
    }
    await this.journal?.close();
    this.journal = null;
  }
}
