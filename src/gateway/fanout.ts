/**
 * Gateway replicas on one PostgreSQL (NOTIFY_DATABASE_URL): a notification dispatched to
 * any replica reaches the desktops connected to every replica.
 *
 * The replica the bot dispatches to delivers to its own desktops and writes the event to
 * `desktop_events`; a trigger announces it (`NOTIFY notify_desktop`), and every other
 * replica reads the events it has not seen yet and delivers them to its own desktops. The
 * table, not the announcement, is what counts: a replica that missed announcements (its
 * listening connection was down) reads what it missed on its next look (at least every
 * second), and an event the dispatching replica could not write (the database away) is
 * kept and written when the database is back, within EVENT_KEEP_MS. Each replica says in
 * `desktop_presence` how many desktops of each user it holds, so the dispatch answer
 * (`sent`) counts the desktops of every replica.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Sql } from '../shared/db/database.js';
import type { DesktopNotification } from './client.js';

/** Events are kept this long: for replicas that missed the announcement, and for writes retried after an outage. */
export const EVENT_KEEP_MS = 60_000;
/** A replica's presence rows count while renewed this recently. */
const PRESENCE_FRESH_S = 30;
const PRESENCE_RENEW_MS = 10_000;
const LOOK_MS = 1000;

interface EventRow {
  id: string;
  username: string;
  body: string;
}

/** The fan-out of one gateway replica. */
export class DesktopFanout {
  /** This process in `desktop_events.origin` and `desktop_presence.gateway`. */
  readonly origin: string;
  private readonly seen = new Map<string, number>();
  private unsent: Array<{ user: string; body: string; at: number }> = [];
  private timers: NodeJS.Timeout[] = [];
  private unlisten: (() => Promise<void>) | null = null;
  private looking: Promise<void> | null = null;
  private lookAgain = false;
  private presenceDirty = true;
  private stopped = false;

  constructor(
    private readonly sql: Sql,
    instance: string,
    /** Delivers to this replica's desktops; returns how many connections took it. */
    private readonly deliverLocal: (user: string, n: DesktopNotification) => number,
    /** This replica's desktops per user, for the presence rows. */
    private readonly perUser: () => Record<string, number>,
    private readonly log: Logger,
  ) {
    this.origin = `${instance}/${process.pid}/${randomBytes(3).toString('hex')}`;
  }

  /** Starts listening; events written before now are not delivered here. */
  async start(): Promise<void> {
    const old = await this.sql<{ id: string }[]>`SELECT id::text FROM desktop_events`;
    const now = Date.now();
    for (const r of old) this.seen.set(r.id, now);
    const listening = this.sql.listen('notify_desktop', () => this.look());
    this.unlisten = async () => {
      const l = await listening.catch(() => null);
      await l?.unlisten().catch(() => undefined);
    };
    await listening.catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'cannot listen for other replicas\' notifications; looking every second'));
    this.timers.push(setInterval(() => this.look(), LOOK_MS));
    this.timers.push(setInterval(() => void this.writePresence(true), PRESENCE_RENEW_MS));
    this.timers.push(setInterval(() => void this.prune(), EVENT_KEEP_MS));
    for (const t of this.timers) t.unref();
    await this.writePresence(true);
  }

  /** The desktops connected changed here: say so (soon) in the presence rows. */
  presenceChanged(): void {
    if (this.stopped) return;
    this.presenceDirty = true;
    setTimeout(() => void this.writePresence(false), 50).unref();
  }

  private async writePresence(force: boolean): Promise<void> {
    if (this.stopped || (!force && !this.presenceDirty)) return;
    this.presenceDirty = false;
    const counts = Object.entries(this.perUser());
    const users = counts.map(([u]) => u);
    const ns = counts.map(([, n]) => n);
    try {
      await this.sql.begin(async (tx) => {
        await tx`DELETE FROM desktop_presence WHERE gateway = ${this.origin}`;
        if (users.length > 0) {
          await tx`INSERT INTO desktop_presence (gateway, username, connections, seen_at)
            SELECT ${this.origin}, u, n, now() FROM unnest(${users}::text[], ${ns}::int[]) AS t(u, n)`;
        }
      });
    } catch (err) {
      this.presenceDirty = true;
      this.log.warn({ err: (err as Error).message }, 'could not record this replica\'s desktops in the database');
    }
  }

  /**
   * Delivers here and hands the notification to the other replicas; returns the desktops
   * reached here plus those the other replicas hold for the user.
   */
  async dispatch(user: string, n: DesktopNotification): Promise<number> {
    const local = this.deliverLocal(user, n);
    const body = JSON.stringify(n);
    let remote = 0;
    try {
      const rows = await this.sql<{ remote: number }[]>`
        WITH e AS (INSERT INTO desktop_events (origin, username, body) VALUES (${this.origin}, ${user}, ${body}) RETURNING 1)
        SELECT (SELECT count(*) FROM e)::int AS written, coalesce((SELECT sum(connections) FROM desktop_presence
          WHERE username = ${user} AND gateway <> ${this.origin} AND seen_at > now() - ${`${PRESENCE_FRESH_S} seconds`}::interval), 0)::int AS remote`;
      remote = rows[0]?.remote ?? 0;
    } catch (err) {
      // Kept and written when the database is back; the other replicas deliver it then.
      this.unsent.push({ user, body, at: Date.now() });
      this.log.warn({ err: (err as Error).message, id: n.id }, 'could not hand a notification to the other gateway replicas; will retry');
      this.retryUnsent();
    }
    return local + remote;
  }

  private retrying: NodeJS.Timeout | null = null;

  private retryUnsent(): void {
    if (this.retrying || this.stopped) return;
    this.retrying = setTimeout(() => {
      this.retrying = null;
      void this.flushUnsent();
    }, 1000);
    this.retrying.unref();
  }

  private async flushUnsent(): Promise<void> {
    const cutoff = Date.now() - EVENT_KEEP_MS;
    const dropped = this.unsent.filter((u) => u.at < cutoff).length;
    if (dropped > 0) this.log.error({ dropped }, 'notifications for desktops on other replicas were dropped: the database was unreachable for too long');
    const todo = this.unsent.filter((u) => u.at >= cutoff);
    this.unsent = [];
    for (let i = 0; i < todo.length; i += 1) {
      const u = todo[i]!;
      try {
        await this.sql`INSERT INTO desktop_events (origin, username, body) VALUES (${this.origin}, ${u.user}, ${u.body})`;
      } catch {
        this.unsent.push(...todo.slice(i));
        this.retryUnsent();
        return;
      }
    }
  }

  /** Reads events of other replicas not seen yet and delivers them here. */
  private look(): void {
    if (this.stopped) return;
    if (this.looking) {
      this.lookAgain = true;
      return;
    }
    this.looking = this.readNew()
      .catch((err: unknown) => this.log.debug({ err: (err as Error).message }, 'could not read desktop events'))
      .finally(() => {
        this.looking = null;
        if (this.lookAgain) {
          this.lookAgain = false;
          this.look();
        }
      });
  }

  private async readNew(): Promise<void> {
    const rows = await this.sql<EventRow[]>`
      SELECT id::text, username, body FROM desktop_events
      WHERE origin <> ${this.origin} AND at > now() - ${`${EVENT_KEEP_MS} milliseconds`}::interval ORDER BY id`;
    const now = Date.now();
    for (const r of rows) {
      if (this.seen.has(r.id)) continue;
      this.seen.set(r.id, now);
      try {
        this.deliverLocal(r.username, JSON.parse(r.body) as DesktopNotification);
      } catch (err) {
        this.log.error({ err: (err as Error).message, event: r.id }, 'could not deliver a notification from another replica');
      }
    }
    // Forget ids older than any event still read (the query looks EVENT_KEEP_MS back).
    for (const [id, at] of this.seen) {
      if (now - at <= 2 * EVENT_KEEP_MS) break;
      this.seen.delete(id);
    }
  }

  private async prune(): Promise<void> {
    await this.sql`DELETE FROM desktop_events WHERE at < now() - ${`${2 * EVENT_KEEP_MS} milliseconds`}::interval`.catch(() => undefined);
    await this.sql`DELETE FROM desktop_presence WHERE seen_at < now() - interval '1 hour'`.catch(() => undefined);
  }

  /** Stops; this replica's desktops leave the presence rows. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.retrying) clearTimeout(this.retrying);
    await this.unlisten?.();
    await this.looking;
    await this.sql`DELETE FROM desktop_presence WHERE gateway = ${this.origin}`.catch(() => undefined);
  }
}
