/**
 * Inter-process exclusive locks on a lock file, with flock(2). The kernel releases the lock
 * when its holder dies, so there is no stale-lock guessing (unlike mkdir/PID-file locks).
 * Within one process, each holder opens its own file description, so concurrent async
 * holders in the same process exclude each other too.
 */
import { closeSync, openSync, fchmodSync, constants } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tryFlock, unflock } from './posix.js';

/** The lock could not be taken in time. */
export class LockTimeoutError extends Error {
  constructor(readonly path: string, waitedMs: number) {
    super(`Timed out after ${waitedMs} ms waiting for the lock ${path} (another process holds it)`);
    this.name = 'LockTimeoutError';
  }
}

/** A held lock; release it exactly once. */
export interface HeldLock {
  release(): void;
}

/** Tries once to take the lock; null when someone else holds it. */
export function tryLock(path: string, mode = 0o660): HeldLock | null {
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, mode);
  try {
    if (!tryFlock(fd)) {
      closeSync(fd);
      return null;
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  try {
    fchmodSync(fd, mode);
  } catch {
    // Not our file (another service created it); its mode is theirs to keep.
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      unflock(fd);
      closeSync(fd);
    },
  };
}

/**
 * A waiter looks again at least this often. flock(2) queues no one, so a process that takes
 * the lock again right after each release (a busy writer) would keep a waiter that looks
 * seldom waiting until it times out; one that looks every few milliseconds finds the gaps.
 * A look is an open, a flock and a close: a few microseconds.
 */
const LOCK_POLL_MAX_MS = 4;

/** Waits (without blocking the event loop) until the lock is taken, up to timeoutMs. */
export async function acquireLock(path: string, timeoutMs = 10_000): Promise<HeldLock> {
  const started = Date.now();
  let delay = 1;
  for (;;) {
    const held = tryLock(path);
    if (held) return held;
    const waited = Date.now() - started;
    if (waited >= timeoutMs) throw new LockTimeoutError(path, waited);
    await sleep(delay);
    delay = Math.min(delay * 2, LOCK_POLL_MAX_MS);
  }
}

/** Runs fn while holding the lock. */
export async function withLock<T>(path: string, fn: () => Promise<T> | T, timeoutMs?: number): Promise<T> {
  const held = await acquireLock(path, timeoutMs);
  try {
    return await fn();
  } finally {
    held.release();
  }
}
