/** Reading files whose size may change under us (a caller's or a script's file). */
import type { promises as fsp } from 'node:fs';

/**
 * Reads at most maxBytes from an open file; null when it holds more (also when it grew
 * after its size was checked). `sizeHint` sizes the first buffer.
 */
export async function readAtMost(fh: fsp.FileHandle, maxBytes: number, sizeHint = 64 * 1024): Promise<Buffer | null> {
  let buf = Buffer.alloc(Math.min(Math.max(sizeHint, 1), maxBytes) + 1);
  let total = 0;
  for (;;) {
    if (total === buf.length) {
      if (buf.length > maxBytes) return null;
      const bigger = Buffer.alloc(Math.min(buf.length * 2, maxBytes + 1));
      buf.copy(bigger, 0, 0, total);
      buf = bigger;
    }
    const { bytesRead } = await fh.read(buf, total, buf.length - total, total);
    if (bytesRead === 0) break;
    total += bytesRead;
    if (total > maxBytes) return null;
  }
  return buf.subarray(0, total);
}
