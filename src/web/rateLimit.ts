/**
 * Bounds on code guesses: a sliding window per user and one for everybody together. An
 * attempt takes a slot before the code is checked (so a burst of parallel requests is
 * bounded too); a successful attempt gives its slot back, so only failures use up the limit.
 */
import type { Clock } from '../shared/clock.js';

/** Which limit refused an attempt, and when to try again. */
export interface Refusal {
  scope: 'user' | 'overall';
  retryAfterSeconds: number;
}

/** A taken slot; `refund()` gives it back. */
export interface Attempt {
  refund(): void;
}

/** Sliding-window attempt limits, per key and overall. */
export class AttemptLimiter {
  private readonly perKey = new Map<string, number[]>();
  private overall: number[] = [];

  constructor(
    private readonly limits: { perUser: number; overall: number; windowMs: number },
    private readonly clock: Clock,
  ) {}

  private prune(list: number[], now: number): number[] {
    const from = now - this.limits.windowMs;
    let i = 0;
    while (i < list.length && list[i]! <= from) i++;
    return i === 0 ? list : list.slice(i);
  }

  private retryAfter(list: number[], limit: number, now: number): number {
    // The attempt that must leave the window before one more fits.
    const oldest = list[list.length - limit] ?? now;
    return Math.max(1, Math.ceil((oldest + this.limits.windowMs - now) / 1000));
  }

  /** Takes a slot for `key`, or says which limit is full and for how long. */
  take(key: string): Attempt | Refusal {
    const now = this.clock.now();
    const mine = this.prune(this.perKey.get(key) ?? [], now);
    this.overall = this.prune(this.overall, now);
    if (mine.length >= this.limits.perUser) {
      this.perKey.set(key, mine);
      return { scope: 'user', retryAfterSeconds: this.retryAfter(mine, this.limits.perUser, now) };
    }
    if (this.overall.length >= this.limits.overall) {
      this.perKey.set(key, mine);
      return { scope: 'overall', retryAfterSeconds: this.retryAfter(this.overall, this.limits.overall, now) };
    }
    mine.push(now);
    this.overall.push(now);
    this.perKey.set(key, mine);
    let refunded = false;
    return {
      refund: () => {
        if (refunded) return;
        refunded = true;
        const a = this.perKey.get(key);
        const i = a?.lastIndexOf(now) ?? -1;
        if (a && i >= 0) a.splice(i, 1);
        const j = this.overall.lastIndexOf(now);
        if (j >= 0) this.overall.splice(j, 1);
        if (a && a.length === 0) this.perKey.delete(key);
      },
    };
  }

  /** Forgets keys with no attempt in the window (bounds memory). */
  sweep(): void {
    const now = this.clock.now();
    for (const [key, list] of this.perKey) {
      const kept = this.prune(list, now);
      if (kept.length === 0) this.perKey.delete(key);
      else this.perKey.set(key, kept);
    }
    this.overall = this.prune(this.overall, now);
  }
}

/** True when `take` refused. */
export function isRefusal(x: Attempt | Refusal): x is Refusal {
  return 'scope' in x;
}
