/**
 * The outbox in PostgreSQL, shared by every replica of a fleet (NOTIFY_DATABASE_URL).
 *
 * Any replica accepts: `add` inserts the record (committed before the sender is answered,
 * so a 2xx still means "durable"). One replica delivers: the holder of the Telegram lease.
 * It takes the queued rows for its lease generation (`taken_gen`), and every statement
 * that marks progress (`update`), finishes (`remove`, `bury`, `recordOutcomes`) or claims
 * a part for sending (`claim`) checks in the same statement that this process still
 * holds that generation of the lease. A deposed, paused or partitioned leader is fenced:
 * its claims are refused once another replica took the queue (taken_gen moved on) or its
 * lease is too close to its end, so it cannot send, and its writes change nothing.
 *
 * Tables (migration 3): `outbox` (queued and dead records), `outbox_photos` (the one stored
 * copy of a photo), `deliveries` (final outcome per id, the services' delivery history).
 */
import type { DeliveryOutcome, OutboxRecord, OutboxStore, OutboxUsage } from './outbox.js';
import { OutboxRecordSchema } from './outbox.js';
import { UsageLedger } from './usageLedger.js';
import type { DamagedLetter } from './damagedLetters.js';
import type { Sql } from '../../shared/db/database.js';
import { guarded } from '../../shared/db/database.js';
import { readPgOutcomes } from '../../shared/db/pgOutcomes.js';

/** The lease generation this process holds (null when it holds none). */
export interface OutboxFence {
  /** The lease's name (`telegram`). */
  readonly name: string;
  /** This process's holder id in the lease table. */
  readonly holder: string;
  /** The generation held now, or null. */
  readonly generation: number | null;
}

/** A mark or send was refused: this process no longer holds the lease it acted under. */
export class FencedError extends Error {
  constructor(what: string) {
    super(`${what} refused: this replica no longer holds the Telegram lease`);
    this.name = 'FencedError';
  }
}

/** Tunables of the database outbox. */
export interface PgOutboxOptions {
  /**
   * A claim is granted only while the lease has at least this long left in the database,
   * and the claimer must send within this long of asking (so nobody else can hold it yet).
   */
  claimMarginMs: number;
  /** Delivery outcomes older than this are dropped from `deliveries`. */
  outcomeRetentionMs: number;
  /** Reports trouble that does not stop delivery. */
  onProblem?: (message: string, detail: Record<string, unknown>) => void;
}

const DEFAULT_OPTIONS: PgOutboxOptions = { claimMarginMs: 2000, outcomeRetentionMs: 30 * 86_400_000 };

function parseBody(body: string, id: string): OutboxRecord {
  const parsed = OutboxRecordSchema.safeParse(JSON.parse(body));
  if (!parsed.success) throw new Error(`outbox record ${id}: ${parsed.error.issues[0]?.message ?? 'invalid record'}`);
  return parsed.data;
}

interface Row {
  id: string;
  body: string;
}

/** The most of an unreadable row's text an operator is shown (as for the files' damaged letters). */
const MAX_DAMAGED_TEXT = 64 * 1024;

/** Why a row's body is not a record, or null when it is one. */
function unreadable(r: Row): string | null {
  try {
    parseBody(r.body, r.id);
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** The outbox as rows of PostgreSQL (see the file's comment). */
export class PgOutbox implements OutboxStore {
  private readonly opts: PgOutboxOptions;
  /** What users queued through this replica (and, on the holder, everything it took). */
  private readonly ledger = new UsageLedger();
  private unlisten: (() => Promise<void>) | null = null;
  private lastPrune = 0;

  constructor(
    private readonly sql: Sql,
    private readonly fence: () => OutboxFence,
    opts: Partial<PgOutboxOptions> = {},
  ) {
    this.opts = { ...DEFAULT_OPTIONS, ...opts };
  }

  /** The generation to act under; FencedError when none is held. */
  private held_(what: string): { name: string; holder: string; generation: number } {
    const f = this.fence();
    if (f.generation === null) throw new FencedError(what);
    return { name: f.name, holder: f.holder, generation: f.generation };
  }

  /** SQL condition: this process holds generation g of the lease, with at least marginMs left. */
  private leaseHeld(f: { name: string; holder: string; generation: number }, marginMs = 0): ReturnType<Sql> {
    return this.sql`EXISTS (SELECT 1 FROM leases WHERE name = ${f.name} AND holder = ${f.holder} AND generation = ${f.generation}
      AND expires_at > now() + ${`${marginMs} milliseconds`}::interval)`;
  }

  private track(record: OutboxRecord, bytes: number): void {
    this.ledger.add(record.id, record.user, bytes);
  }

  /** What a user has queued through this replica (and, on the holder, everything it took). */
  usage(user: string): OutboxUsage {
    return this.ledger.usage(user);
  }

  /** Calls wake (soon) whenever a replica adds or re-queues a record. */
  watch(wake: () => void): void {
    if (this.unlisten) return;
    const listening = this.sql.listen('notify_outbox', () => wake());
    this.unlisten = async () => {
      const l = await listening.catch(() => null);
      await l?.unlisten().catch(() => undefined);
    };
    listening.catch((err: unknown) => this.opts.onProblem?.('could not listen for new outbox records; looking for them periodically', { err }));
  }

  /** Takes every queued record for this generation of the lease, oldest first. */
  async open(): Promise<OutboxRecord[]> {
    await this.prune();
    return this.take('open the outbox', true);
  }

  /** Records queued (by any replica, or re-queued by an operator) that this generation has not taken yet. */
  takeRequeued(): Promise<OutboxRecord[]> {
    return this.take('take new records', this.takeUnanswered);
  }

  /**
   * A take whose answer was lost (the connection broke) may have marked rows as taken by this
   * generation without this process seeing them; the next take then asks for every queued
   * row (the deliverer skips those it already holds), or they would wait for the next holder.
   */
  private takeUnanswered = false;

  /** all: every queued record (a fresh start), else only those this generation has not taken. */
  private async take(what: string, all = false): Promise<OutboxRecord[]> {
    const f = this.held_(what);
    let rows;
    try {
      rows = await guarded(
        () => this.sql<Array<{ ok: boolean; id: string | null; body: string | null; pos: string | null }>>`
          WITH u AS (
            UPDATE outbox SET taken_gen = ${f.generation}
            WHERE state = 'queued' AND (${all}::boolean OR taken_gen IS DISTINCT FROM ${f.generation}) AND ${this.leaseHeld(f)}
            RETURNING id, body, pos)
          SELECT l.ok, u.id, u.body, u.pos FROM (SELECT ${this.leaseHeld(f)} AS ok) l LEFT JOIN u ON true`,
      );
    } catch (err) {
      this.takeUnanswered = true;
      throw err;
    }
    if (!rows[0]?.ok) throw new FencedError(what);
    this.takeUnanswered = false;
    const out: OutboxRecord[] = [];
    for (const r of rows) {
      if (r.id === null || r.body === null) continue;
      try {
        // Delivered in the order of the inserts (the database's sequence), not the accepting
        // hosts' clocks: two hosts accepting for one chat within a millisecond keep its order.
        const rec = { ...parseBody(r.body, r.id), seq: Number(r.pos) };
        this.track(rec, r.body.length);
        out.push(rec);
      } catch (err) {
        this.opts.onProblem?.('an unreadable outbox record was moved to the dead letters', { id: r.id, err });
        await this.sql`UPDATE outbox SET state = 'dead', dead_at = now() WHERE id = ${r.id}`.catch(() => undefined);
      }
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  /** Inserts a new record; resolves once it is committed. Any replica may add. */
  async add(record: OutboxRecord): Promise<void> {
    const body = JSON.stringify(record);
    // The holder takes every record, its own included, through take(): a take that sees a
    // record sees every record committed before it, so a chat's order is kept across replicas.
    await guarded(
      () => this.sql`
        INSERT INTO outbox (id, seq, user_name, body, bytes, accepted_at)
        VALUES (${record.id}, ${record.seq}, ${record.user}, ${body}, ${body.length}, to_timestamp(${record.accepted_at / 1000}))`,
    );
    this.track(record, body.length);
  }

  /** Takes back a record whose add failed (the commit may have happened before the connection broke). */
  async withdraw(record: OutboxRecord): Promise<void> {
    await guarded(() => this.sql`DELETE FROM outbox WHERE id = ${record.id} AND state = 'queued'`);
    this.ledger.remove(record.id);
  }

  /** Runs a fenced statement that returns `ok` (the lease held) and `n` (rows changed). */
  private async fenced(what: string, run: (f: { name: string; holder: string; generation: number }) => Promise<Array<{ ok: boolean }>>): Promise<void> {
    const f = this.held_(what);
    const rows = await guarded(() => run(f));
    if (!rows[0]?.ok) throw new FencedError(what);
  }

  async update(record: OutboxRecord): Promise<void> {
    const body = JSON.stringify(record);
    await this.fenced(
      'recording delivery progress',
      (f) => this.sql<{ ok: boolean }[]>`
        WITH u AS (UPDATE outbox SET body = ${body} WHERE id = ${record.id} AND state = 'queued' AND taken_gen = ${f.generation} AND ${this.leaseHeld(f)} RETURNING 1)
        SELECT ${this.leaseHeld(f)} AS ok, (SELECT count(*) FROM u)::int AS n`,
    );
  }

  async remove(record: OutboxRecord): Promise<void> {
    await this.fenced(
      'taking a finished record out of the queue',
      (f) => this.sql<{ ok: boolean }[]>`
        WITH d AS (DELETE FROM outbox WHERE id = ${record.id} AND state = 'queued' AND ${this.leaseHeld(f)} RETURNING id),
             p AS (DELETE FROM outbox_photos WHERE name = ${record.photo ?? null} AND EXISTS (SELECT 1 FROM d) RETURNING 1)
        SELECT ${this.leaseHeld(f)} AS ok, (SELECT count(*) FROM d)::int AS n, (SELECT count(*) FROM p)::int AS photos`,
    );
    this.ledger.remove(record.id);
  }

  async bury(record: OutboxRecord): Promise<void> {
    const body = JSON.stringify({ ...record, dead_at: Date.now() });
    await this.fenced(
      'moving a record to the dead letters',
      (f) => this.sql<{ ok: boolean }[]>`
        WITH u AS (UPDATE outbox SET state = 'dead', dead_at = now(), body = ${body} WHERE id = ${record.id} AND state = 'queued' AND ${this.leaseHeld(f)} RETURNING 1)
        SELECT ${this.leaseHeld(f)} AS ok, (SELECT count(*) FROM u)::int AS n`,
    );
    this.ledger.remove(record.id);
  }

  /**
   * Claims a record for sending its next part: granted only while this generation holds the
   * lease with claimMarginMs left and the record is still queued for it. Returns the local
   * time (Date.now() ms) until which the part may be sent; 0 when the lease is held but too
   * close to its end (a renewal is due: ask again); null when fenced.
   */
  async claim(record: OutboxRecord): Promise<number | null> {
    const f = this.fence();
    if (f.generation === null) return null;
    const held = { name: f.name, holder: f.holder, generation: f.generation };
    const askedAt = Date.now();
    const rows = await guarded(
      () => this.sql<{ held: boolean; roomy: boolean; ours: boolean }[]>`
        SELECT ${this.leaseHeld(held)} AS held, ${this.leaseHeld(held, this.opts.claimMarginMs)} AS roomy,
          EXISTS (SELECT 1 FROM outbox WHERE id = ${record.id} AND state = 'queued' AND taken_gen = ${held.generation}) AS ours`,
    );
    const r = rows[0];
    if (!r?.held || !r.ours) return null;
    return r.roomy ? askedAt + this.opts.claimMarginMs : 0;
  }

  async putPhoto(id: string, bytes: Uint8Array): Promise<string> {
    const name = `${id}.bin`;
    await guarded(() => this.sql`INSERT INTO outbox_photos (name, bytes) VALUES (${name}, ${Buffer.from(bytes)}) ON CONFLICT (name) DO UPDATE SET bytes = EXCLUDED.bytes`);
    return name;
  }

  async getPhoto(name: string): Promise<Buffer> {
    const rows = await guarded(() => this.sql<{ bytes: Buffer }[]>`SELECT bytes FROM outbox_photos WHERE name = ${name}`);
    if (!rows[0]) throw Object.assign(new Error(`no stored photo ${name}`), { code: 'ENOENT' });
    return rows[0].bytes;
  }

  async removePhoto(name: string): Promise<void> {
    await guarded(() => this.sql`DELETE FROM outbox_photos WHERE name = ${name}`);
  }

  async recordOutcomes(outcomes: DeliveryOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    const ids = outcomes.map((o) => o.id);
    const ats = outcomes.map((o) => o.at);
    const bodies = outcomes.map((o) => JSON.stringify(o));
    await this.fenced(
      'recording delivery outcomes',
      (f) => this.sql<{ ok: boolean }[]>`
        WITH i AS (
          INSERT INTO deliveries (id, at, body)
          SELECT * FROM unnest(${ids}::text[], ${ats}::timestamptz[], ${bodies}::text[]) WHERE ${this.leaseHeld(f)}
          ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at, body = EXCLUDED.body
          RETURNING 1)
        SELECT ${this.leaseHeld(f)} AS ok, (SELECT count(*) FROM i)::int AS n`,
    );
  }

  async outcomesOf(ids: ReadonlySet<string>): Promise<Map<string, DeliveryOutcome>> {
    return readPgOutcomes(this.sql, ids);
  }

  async pending(): Promise<OutboxRecord[]> {
    return this.list('queued');
  }

  async deadLetters(): Promise<OutboxRecord[]> {
    return this.list('dead');
  }

  /** The readable records in `state`; the unreadable ones are damagedLetters(). */
  private async list(state: 'queued' | 'dead'): Promise<OutboxRecord[]> {
    const rows = await guarded(() => this.sql<Row[]>`SELECT id, body FROM outbox WHERE state = ${state} ORDER BY pos`);
    const out: OutboxRecord[] = [];
    for (const r of rows) {
      try {
        out.push(parseBody(r.body, r.id));
      } catch {
        // Listed by damagedLetters().
      }
    }
    return out;
  }

  /**
   * Rows whose body is not a record: the holder moved them to the dead letters when it took
   * them (a row not taken yet is listed too, with no time found). They keep their row's id.
   */
  async damagedLetters(): Promise<DamagedLetter[]> {
    const rows = await guarded(
      () => this.sql<Array<Row & { state: string; dead_at: Date | null }>>`SELECT id, body, state, dead_at FROM outbox ORDER BY dead_at NULLS LAST, pos`,
    );
    const out: DamagedLetter[] = [];
    for (const r of rows) {
      const reason = unreadable(r);
      if (reason === null) continue;
      out.push({
        id: r.id,
        found_at: r.state === 'dead' && r.dead_at ? r.dead_at.toISOString() : '',
        source: `outbox row ${r.id} (${r.state === 'dead' ? 'moved to the dead letters' : 'queued, not taken yet'})`,
        reason,
        text: r.body.slice(0, MAX_DAMAGED_TEXT),
      });
    }
    return out;
  }

  async requeue(id: string, now: number): Promise<boolean> {
    const rows = await guarded(() => this.sql<Row[]>`SELECT id, body FROM outbox WHERE id = ${id} AND state = 'dead'`);
    // A row that cannot be read cannot be re-queued (the operator sees it in damagedLetters()).
    if (!rows[0] || unreadable(rows[0]) !== null) return false;
    const next: OutboxRecord = { ...parseBody(rows[0].body, id), attempts: 0, retry_from: now };
    delete next.dead_at;
    delete next.last_error;
    const body = JSON.stringify(next);
    const done = await guarded(
      () => this.sql`
        WITH u AS (UPDATE outbox SET state = 'queued', taken_gen = NULL, dead_at = NULL, body = ${body}, bytes = ${body.length} WHERE id = ${id} AND state = 'dead' RETURNING 1)
        SELECT pg_notify('notify_outbox', '') FROM u`,
    );
    return done.length > 0;
  }

  /** Drops delivery outcomes past their retention (at most once an hour). */
  private async prune(): Promise<void> {
    if (Date.now() - this.lastPrune < 3_600_000) return;
    this.lastPrune = Date.now();
    await guarded(() => this.sql`DELETE FROM deliveries WHERE at < now() - ${`${this.opts.outcomeRetentionMs} milliseconds`}::interval`).catch((err: unknown) =>
      this.opts.onProblem?.('could not prune old delivery outcomes', { err }),
    );
  }

  async close(): Promise<void> {
    const u = this.unlisten;
    this.unlisten = null;
    await u?.();
  }
}
