/**
 * A lease in PostgreSQL: at most one holder at a time, for a bounded time it keeps
 * renewing. The database's clock decides expiry (no trust in the hosts' clocks); the
 * holder counts its own time from before each renewal was sent, so it gives up a little
 * before the database could hand the lease to someone else. Each change of holder bumps
 * the generation.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../logger.js';
import type { Sql } from './database.js';

/** What this process is for the lease. */
export type LeaseRole = 'leader' | 'follower';

/** Timing of a lease. */
export interface LeaseOptions {
  /** How long a grant lasts without renewal. */
  ttlMs: number;
  /** How often the holder renews and the others try to take it. */
  renewMs: number;
}

/** Holds, or waits for, one named lease; calls onChange when this process gains or loses it. */
export class Lease {
  /** Unique per process: two replicas given the same NOTIFY_INSTANCE stay apart. */
  readonly holder: string;
  private heldGeneration: number | null = null;
  /** Local time (ms) until which this process may act as the holder. */
  private validUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private deadline: NodeJS.Timeout | null = null;
  private stopped = false;
  private ticking: Promise<void> | null = null;

  constructor(
    private readonly sql: Sql,
    readonly name: string,
    instance: string,
    private readonly opts: LeaseOptions,
    private readonly log: Logger,
    private readonly onChange: (role: LeaseRole, generation: number | null) => void,
  ) {
    this.holder = `${instance}/${process.pid}/${randomBytes(3).toString('hex')}`;
  }

  /** 'leader' while the lease is held and not past its local deadline. */
  get role(): LeaseRole {
    return this.heldGeneration !== null && Date.now() < this.validUntil ? 'leader' : 'follower';
  }

  /** The generation held, or null. */
  get generation(): number | null {
    return this.role === 'leader' ? this.heldGeneration : null;
  }

  /** Starts trying to take (and then keep) the lease. */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => {
        this.ticking = null;
        this.schedule(this.opts.renewMs);
      });
    }, ms);
  }

  private setHeld(generation: number | null): void {
    const before = this.heldGeneration;
    this.heldGeneration = generation;
    if (before !== generation) this.onChange(generation === null ? 'follower' : 'leader', generation);
  }

  private async tick(): Promise<void> {
    const sentAt = Date.now();
    const ttl = `${this.opts.ttlMs} milliseconds`;
    try {
      let rows: Array<{ generation: string }>;
      if (this.heldGeneration !== null) {
        rows = await this.sql<{ generation: string }[]>`
          UPDATE leases SET expires_at = now() + ${ttl}::interval
          WHERE name = ${this.name} AND holder = ${this.holder} AND generation = ${this.heldGeneration}
          RETURNING generation::text`;
        if (rows.length === 0) this.log.warn({ lease: this.name }, 'the lease was taken over by another replica');
      } else {
        rows = await this.sql<{ generation: string }[]>`
          INSERT INTO leases (name, holder, generation, expires_at) VALUES (${this.name}, ${this.holder}, 1, now() + ${ttl}::interval)
          ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, generation = leases.generation + 1, expires_at = EXCLUDED.expires_at
            WHERE leases.expires_at < now()
          RETURNING generation::text`;
      }
      const got = rows[0] ? Number(rows[0].generation) : null;
      if (got !== null) {
        this.validUntil = sentAt + this.opts.ttlMs - this.opts.renewMs;
        this.armDeadline();
      }
      this.setHeld(got);
    } catch (err) {
      // Cut off from the database: keep acting only until the local deadline.
      if (this.heldGeneration !== null && Date.now() >= this.validUntil) {
        this.log.error({ lease: this.name, err: (err as Error).message }, 'cannot renew the lease (database unreachable); stepping down');
        this.setHeld(null);
      } else if (this.heldGeneration === null) {
        this.log.debug({ lease: this.name, err: (err as Error).message }, 'cannot reach the database to take the lease');
      }
    }
    if (this.heldGeneration !== null && Date.now() >= this.validUntil) this.setHeld(null);
  }

  /** Steps down at the local deadline even if a renewal hangs (a partitioned database). */
  private armDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = setTimeout(() => {
      if (this.heldGeneration !== null && Date.now() >= this.validUntil) {
        this.log.error({ lease: this.name }, 'the lease ran out before it could be renewed; stepping down');
        this.setHeld(null);
      }
    }, Math.max(0, this.validUntil - Date.now()));
    this.deadline.unref();
  }

  /** Stops; a held lease is released at once so another replica takes over without waiting. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.deadline) clearTimeout(this.deadline);
    await this.ticking;
    const gen = this.heldGeneration;
    this.setHeld(null);
    if (gen !== null) {
      await this.sql`UPDATE leases SET expires_at = now() - interval '1 millisecond' WHERE name = ${this.name} AND holder = ${this.holder} AND generation = ${gen}`.catch(() => undefined);
    }
  }
}
