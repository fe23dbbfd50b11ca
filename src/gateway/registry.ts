/**
 * Authenticated desktop connections, by user: who a notification goes to, how many
 * connections a user holds (the per-user cap), and the counts /health reports.
 */

/** What the registry needs to know of a connection. */
export interface Registrable {
  readonly username: string;
}

/** The authenticated connections of every user. */
export class ConnectionRegistry<C extends Registrable> {
  private readonly byUser = new Map<string, Set<C>>();
  private total = 0;
  /** Called after every change (a fleet records each replica's desktops). */
  onChange: (() => void) | null = null;

  constructor(readonly maxPerUser: number) {}

  /** Registers `conn`; false (nothing changed) when its user already holds maxPerUser. */
  tryAdd(conn: C): boolean {
    let set = this.byUser.get(conn.username);
    if (set?.has(conn)) return true;
    if (set && set.size >= this.maxPerUser) return false;
    if (!set) {
      set = new Set();
      this.byUser.set(conn.username, set);
    }
    set.add(conn);
    this.total += 1;
    this.onChange?.();
    return true;
  }

  /** Forgets `conn`; harmless when it was never added or is already gone. */
  remove(conn: C): void {
    const set = this.byUser.get(conn.username);
    if (!set?.delete(conn)) return;
    this.total -= 1;
    if (set.size === 0) this.byUser.delete(conn.username);
    this.onChange?.();
  }

  /** A snapshot of one user's connections. */
  ofUser(username: string): C[] {
    return [...(this.byUser.get(username) ?? [])];
  }

  /** A snapshot of every connection. */
  all(): C[] {
    return [...this.byUser.values()].flatMap((s) => [...s]);
  }

  /** Authenticated connections. */
  get connectionCount(): number {
    return this.total;
  }

  /** Authenticated connections of each user that has any (for /health). */
  perUser(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [user, set] of [...this.byUser].sort(([a], [b]) => a.localeCompare(b))) out[user] = set.size;
    return out;
  }

  /** Users with at least one authenticated connection. */
  get userCount(): number {
    return this.byUser.size;
  }
}
