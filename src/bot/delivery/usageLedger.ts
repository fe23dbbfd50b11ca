/**
 * What each analyst has in the outbox, for the per-analyst quotas (NOTIFY_USER_QUEUE_MAX,
 * NOTIFY_USER_QUEUE_BYTES): every store keeps one ledger, counting a record from when it is
 * stored (or taken from the queue) until it leaves the queue.
 */

/** What one user has queued (for per-user quotas). */
export interface OutboxUsage {
  /** Notifications queued and not yet finished. */
  count: number;
  /** Their stored size: the records and their photos. */
  bytes: number;
}

/** Per-user counts of queued records and their bytes. */
export class UsageLedger {
  private readonly held = new Map<string, { user: string; bytes: number }>();
  private readonly users = new Map<string, OutboxUsage>();

  /** Counts the record `id` of `user`, `bytes` large (replacing an earlier count of the same id). */
  add(id: string, user: string, bytes: number): void {
    this.remove(id);
    this.held.set(id, { user, bytes });
    const u = this.users.get(user) ?? { count: 0, bytes: 0 };
    u.count += 1;
    u.bytes += bytes;
    this.users.set(user, u);
  }

  /** Stops counting the record `id` (nothing when it is not counted). */
  remove(id: string): void {
    const h = this.held.get(id);
    if (!h) return;
    this.held.delete(id);
    const u = this.users.get(h.user);
    if (!u) return;
    u.count -= 1;
    u.bytes -= h.bytes;
    if (u.count <= 0) this.users.delete(h.user);
  }

  /** What `user` has queued now. */
  usage(user: string): OutboxUsage {
    const u = this.users.get(user);
    return u ? { ...u } : { count: 0, bytes: 0 };
  }
}
