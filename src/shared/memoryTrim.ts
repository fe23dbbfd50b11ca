/**
 * A long-running service's resident memory, kept to what it uses: the memory the C
 * allocator holds freed is given back to the system (shared/posix.ts, releaseFreedMemory)
 * shortly after start-up, when parsing and compiling the program is over, and then at an
 * interval, after whatever a burst of work left behind. One give-back costs the bot about
 * 0.3 ms.
 */
import { releaseFreedMemory } from './posix.js';

/** Starts giving freed memory back: after `firstMs`, then every `everyMs`. Returns the stop. */
export function trimMemoryPeriodically(firstMs = 3000, everyMs = 30_000): () => void {
  let interval: NodeJS.Timeout | null = null;
  const first = setTimeout(() => {
    if (!releaseFreedMemory()) return;
    interval = setInterval(releaseFreedMemory, everyMs);
    interval.unref();
  }, firstMs);
  first.unref();
  return () => {
    clearTimeout(first);
    if (interval) clearInterval(interval);
  };
}
