/**
 * The durable outbox: every accepted notification is a file in a spool directory, on disk
 * (fsync of the file and of the directory) before anyone is told "accepted". Progress
 * (parts already sent) is written back after each Telegram acceptance, so a restart resumes
 * where it stopped; finished messages leave the queue and their outcome goes to an
 * append-only log the services read; messages that could not be delivered in time go to
 * a dead-letter directory an operator can inspect and re-queue.
 *
 *   outbox/queue/<id>.json   accepted, not yet delivered
 *   outbox/photos/<id>.bin   the photo of a queued or dead message
 *   outbox/dead/<id>.json    given up (operator: `notify-bot queue list|requeue`)
 *   deliveries.jsonl         final outcome of each notification, by id
 */
import { randomBytes } from 'node:crypto';
import { close, fsync, open, promises as fsp, rename, unlink, write } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { fsyncDir } from '../../shared/jsonFile.js';
import type { Part } from '../format/render.js';

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
});
export type OutboxRecord = z.infer<typeof OutboxRecordSchema> & { parts: Part[] };

/** Final delivery outcome of a notification. */
export type DeliveryStatus = 'delivered' | 'refused' | 'given_up';

/** One line of deliveries.jsonl. */
export interface DeliveryOutcome {
  id: string;
  user: string;
  script?: string | undefined;
  status: DeliveryStatus;
  at: string;
  detail?: string | undefined;
}

const MAX_OUTCOME_LOG = 8 * 1024 * 1024;

/** Coalesces directory fsyncs: callers arriving while one runs share the next one. */
class DirSyncer {
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  constructor(private readonly dir: string) {}

  sync(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.running) {
      this.running = fsyncDir(this.dir).finally(() => {
        this.running = null;
      });
      return this.running;
    }
    const after = this.running;
    this.queued = after
      .catch(() => undefined)
      .then(() => {
        this.queued = null;
        return this.sync();
      });
    return this.queued;
  }
}

let tmpCounter = 0;

/**
 * Creates `path` (it must not exist), writes `data` and fsyncs it. Plain callbacks rather
 * than a FileHandle: this runs for every accepted notification, and the promise API costs
 * several times the CPU per file (see bench/delivery.ts).
 */
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
          else fsync(fd, (syncErr) => finish(syncErr));
        });
      };
      writeFrom(0);
    });
  });
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

/** File-system operations of the outbox. */
export class OutboxStore {
  readonly queueDir: string;
  readonly deadDir: string;
  readonly photoDir: string;
  readonly outcomesPath: string;
  private readonly queueSync: DirSyncer;
  private readonly photoSync: DirSyncer;

  constructor(readonly dataDir: string) {
    this.queueDir = join(dataDir, 'outbox', 'queue');
    this.deadDir = join(dataDir, 'outbox', 'dead');
    this.photoDir = join(dataDir, 'outbox', 'photos');
    this.outcomesPath = join(dataDir, 'deliveries.jsonl');
    this.queueSync = new DirSyncer(this.queueDir);
    this.photoSync = new DirSyncer(this.photoDir);
  }

  /** Creates the spool directories (mode 0770). */
  async init(): Promise<void> {
    for (const d of [this.queueDir, this.deadDir, this.photoDir]) {
      await fsp.mkdir(d, { recursive: true, mode: 0o770 });
    }
    // Leftovers of writes interrupted by a crash.
    for (const d of [this.queueDir, this.deadDir, this.photoDir]) {
      for (const name of await fsp.readdir(d)) {
        if (name.startsWith('.') && name.endsWith('.tmp')) await fsp.rm(join(d, name), { force: true });
      }
    }
  }

  private async writeDurably(dir: string, name: string, data: string | Uint8Array, syncer: DirSyncer): Promise<void> {
    tmpCounter += 1;
    const tmp = join(dir, `.${name}.${process.pid}.${tmpCounter}.tmp`);
    await writeAndSync(tmp, data);
    await new Promise<void>((resolve, reject) => rename(tmp, join(dir, name), (err) => (err ? reject(err) : resolve())));
    await syncer.sync();
  }

  /** Stores photo bytes for a message; returns the stored name. */
  async putPhoto(id: string, bytes: Uint8Array): Promise<string> {
    const name = `${id}.bin`;
    await this.writeDurably(this.photoDir, name, bytes, this.photoSync);
    return name;
  }

  /** Removes a stored photo (of a notification that was not accepted after all). */
  async removePhoto(name: string): Promise<void> {
    await fsp.rm(join(this.photoDir, name), { force: true });
  }

  /** Reads a stored photo. */
  async getPhoto(name: string): Promise<Buffer> {
    return fsp.readFile(join(this.photoDir, name));
  }

  /** Writes (or rewrites) a queued record durably. */
  async put(record: OutboxRecord): Promise<void> {
    await this.writeDurably(this.queueDir, `${record.id}.json`, JSON.stringify(record), this.queueSync);
  }

  /** Removes a finished record and its photo. */
  async remove(record: OutboxRecord): Promise<void> {
    await fsp.rm(join(this.queueDir, `${record.id}.json`), { force: true });
    if (record.photo) await fsp.rm(join(this.photoDir, record.photo), { force: true });
  }

  /** Moves a record to the dead-letter directory (its photo stays for a re-queue). */
  async bury(record: OutboxRecord): Promise<void> {
    const dead = { ...record, dead_at: Date.now() };
    // The dead letter is durable before the queued copy goes: a crash leaves one or both, never neither.
    await fsp.rm(join(this.deadDir, `.${record.id}.json.tmp`), { force: true });
    await writeAndSync(join(this.deadDir, `.${record.id}.json.tmp`), JSON.stringify(dead, null, 2));
    await fsp.rename(join(this.deadDir, `.${record.id}.json.tmp`), join(this.deadDir, `${record.id}.json`));
    await fsyncDir(this.deadDir);
    await fsp.rm(join(this.queueDir, `${record.id}.json`), { force: true });
  }

  /** Names of the queued record files. */
  async queuedIds(): Promise<string[]> {
    return (await fsp.readdir(this.queueDir)).filter((n) => n.endsWith('.json') && !n.startsWith('.')).map((n) => n.slice(0, -5));
  }

  private async readRecord(path: string): Promise<OutboxRecord> {
    const parsed = OutboxRecordSchema.safeParse(JSON.parse(await fsp.readFile(path, 'utf8')));
    if (!parsed.success) throw new Error(`${path}: ${parsed.error.issues[0]?.message ?? 'invalid record'}`);
    return parsed.data;
  }

  /** Reads one queued record. */
  async readQueued(id: string): Promise<OutboxRecord> {
    return this.readRecord(join(this.queueDir, `${id}.json`));
  }

  /** Every dead letter, oldest first. */
  async deadLetters(): Promise<OutboxRecord[]> {
    let entries: string[];
    try {
      entries = await fsp.readdir(this.deadDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const names = entries.filter((n) => n.endsWith('.json') && !n.startsWith('.'));
    const out: OutboxRecord[] = [];
    for (const n of names) out.push(await this.readRecord(join(this.deadDir, n)));
    return out.sort((a, b) => a.seq - b.seq);
  }

  /** Moves a dead letter back into the queue with a fresh retry budget. */
  async requeue(id: string, now: number): Promise<boolean> {
    const path = join(this.deadDir, `${id}.json`);
    let record: OutboxRecord;
    try {
      record = await this.readRecord(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    const next: OutboxRecord = { ...record, attempts: 0, retry_from: now };
    delete next.dead_at;
    delete next.last_error;
    await this.put(next);
    await fsp.rm(path, { force: true });
    return true;
  }

  /** Appends final outcomes (one fsync for the batch); rotates the log when large. */
  async recordOutcomes(outcomes: DeliveryOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    try {
      const st = await fsp.stat(this.outcomesPath);
      if (st.size > MAX_OUTCOME_LOG) await fsp.rename(this.outcomesPath, `${this.outcomesPath}.1`);
    } catch {
      // No log yet.
    }
    const fh = await fsp.open(this.outcomesPath, 'a', 0o660);
    try {
      await fh.writeFile(outcomes.map((o) => `${JSON.stringify(o)}\n`).join(''));
      await fh.datasync();
    } finally {
      await fh.close();
    }
  }
}

/** Final outcomes by id, newest line winning (for the services' history views). */
export async function readOutcomes(dataDir: string, ids?: ReadonlySet<string>): Promise<Map<string, DeliveryOutcome>> {
  const out = new Map<string, DeliveryOutcome>();
  for (const name of ['deliveries.jsonl.1', 'deliveries.jsonl']) {
    let text: string;
    try {
      text = await fsp.readFile(join(dataDir, name), 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const o = JSON.parse(line) as DeliveryOutcome;
        if (!ids || ids.has(o.id)) out.set(o.id, o);
      } catch {
        // A torn last line after a crash; skip it.
      }
    }
  }
  return out;
}
