/**
 * Free space of the data directory, judged before work is accepted: like Postfix's
 * queue_minfree, new notifications are refused while the file system holds less than a
 * reserve, so what is already accepted still has room to record its progress. A write
 * that fails for lack of space anyway (a quota, a race) is the same answer: 507, with a
 * reason, and nothing kept.
 */
import { promises as fsp } from 'node:fs';

/** The data directory has no room for new work. */
export class DiskFullError extends Error {
  readonly status = 507;
  constructor(detail: string) {
    super(`The notification service's data disk is full (${detail}); nothing was accepted. Try again later; the operator has been told.`);
    this.name = 'DiskFullError';
  }
}

/** 'ENOSPC' or 'EDQUOT' when `err` (or an error it wraps) says the disk or a quota is full. */
export function outOfSpaceCode(err: unknown): 'ENOSPC' | 'EDQUOT' | null {
  for (let e = err, depth = 0; e && depth < 8; depth += 1) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

/** What /health reports about the data disk. */
export interface DiskState {
  ok: boolean;
  free_bytes?: number;
  problem?: string;
}

/** How long a free-space reading is reused (statfs per request would be wasteful). */
const STATFS_CACHE_MS = 1000;
/** How long a write that failed for lack of space marks the disk as full, unless one succeeds. */
const FAILURE_MEMORY_MS = 60_000;

/** Watches the free space of one directory's file system. */
export class DiskGuard {
  private reading: { at: number; free: number; freeFiles: number } | null = null;
  private lastFailure: { at: number; detail: string } | null = null;

  constructor(
    readonly dir: string,
    /** Refuse new work below this many free bytes. */
    readonly minFreeBytes: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The last reading while it is fresh enough to reuse, else null. */
  private fresh(): { free: number; freeFiles: number } | null {
    return this.reading && this.now() - this.reading.at < STATFS_CACHE_MS ? this.reading : null;
  }

  private async read(): Promise<{ free: number; freeFiles: number } | null> {
    const fresh = this.fresh();
    if (fresh) return fresh;
    const t = this.now();
    try {
      const s = await fsp.statfs(this.dir);
      this.reading = { at: t, free: s.bavail * s.bsize, freeFiles: s.ffree };
      return this.reading;
    } catch {
      return null;
    }
  }

  /** Why a reading (null: none could be taken) says new work cannot be taken, or null. */
  private problemOf(r: { free: number; freeFiles: number } | null, withFailures: boolean): string | null {
    if (r && r.free < this.minFreeBytes) return `${formatBytes(r.free)} free, ${formatBytes(this.minFreeBytes)} kept in reserve (NOTIFY_MIN_FREE_DISK)`;
    if (r && r.freeFiles === 0) return 'no free inodes';
    if (withFailures && this.lastFailure && this.now() - this.lastFailure.at < FAILURE_MEMORY_MS) return this.lastFailure.detail;
    return null;
  }

  /**
   * Why new work cannot be taken now, or null. A recent failed write counts only for
   * health: refusing on it would keep refusing after space came back, as no write is tried.
   */
  async problem(withFailures = false): Promise<string | null> {
    return this.problemOf(await this.read(), withFailures);
  }

  /**
   * Throws (or rejects with) DiskFullError when new work must be refused. Answers at once,
   * without a promise, while the last reading is fresh: every send asks.
   */
  check(): Promise<void> | undefined {
    const fresh = this.fresh();
    if (fresh) {
      const p = this.problemOf(fresh, false);
      if (p) throw new DiskFullError(p);
      return undefined;
    }
    return this.problem().then((p) => {
      if (p) throw new DiskFullError(p);
    });
  }

  /**
   * Remembers a failed write if it was for lack of space (returns whether it was); the
   * disk counts as full until a write succeeds or a minute passes.
   */
  noteFailure(err: unknown): boolean {
    const code = outOfSpaceCode(err);
    if (!code) return false;
    this.lastFailure = { at: this.now(), detail: `a write failed with ${code === 'EDQUOT' ? 'EDQUOT (disk quota exceeded)' : 'ENOSPC (no space left on device)'}` };
    this.reading = null;
    return true;
  }

  /** A write succeeded: space is back. */
  noteSuccess(): void {
    this.lastFailure = null;
  }

  /** For /health. */
  async state(): Promise<DiskState> {
    const p = await this.problem(true);
    const r = this.reading;
    return { ok: p === null, ...(r ? { free_bytes: r.free } : {}), ...(p ? { problem: p } : {}) };
  }
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}
