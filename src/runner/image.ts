/**
 * Images a script names in `image_path`: read by the runner, which runs as the analyst, and
 * uploaded as bytes (the bot never needs to read the analyst's files).
 */
import { constants, promises as fsp } from 'node:fs';
import { basename } from 'node:path';
import { readAtMost } from '../shared/boundedRead.js';
import type { PhotoUpload } from '../shared/sendClient.js';

/** The image cannot be sent; the message says why, for the analyst. */
export class ImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageError';
  }
}

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const JPEG_MAGIC = Buffer.from([0xff, 0xd8, 0xff]);

/** `image/png` or `image/jpeg` from the first bytes; null for anything else. */
export function imageType(head: Uint8Array): 'image/png' | 'image/jpeg' | null {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.subarray(0, PNG_MAGIC.length).equals(PNG_MAGIC)) return 'image/png';
  if (b.subarray(0, JPEG_MAGIC.length).equals(JPEG_MAGIC)) return 'image/jpeg';
  return null;
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${n} bytes`;
}

/** Reads and checks an image: a regular file, PNG or JPEG by its bytes, at most maxBytes. */
export async function loadImage(path: string, maxBytes: number): Promise<PhotoUpload> {
  let fh: fsp.FileHandle;
  try {
    // O_NONBLOCK: a FIFO (or device) at the path must not hang the runner, which holds its lock.
    fh = await fsp.open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ImageError(`image ${path} does not exist`);
    if (code === 'EACCES') throw new ImageError(`image ${path} cannot be read (permission denied)`);
    throw new ImageError(`image ${path} cannot be opened: ${(err as Error).message}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ImageError(`image ${path} is not a regular file`);
    if (st.size > maxBytes) throw new ImageError(`image ${path} is too large (${formatBytes(st.size)}; at most ${formatBytes(maxBytes)})`);
    if (st.size === 0) throw new ImageError(`image ${path} is empty`);
    const bytes = await readAtMost(fh, maxBytes, st.size);
    if (bytes === null) throw new ImageError(`image ${path} is too large (at most ${formatBytes(maxBytes)})`);
    const contentType = imageType(bytes.subarray(0, 8));
    if (contentType === null) throw new ImageError(`image ${path} is not a PNG or JPEG file`);
    return { bytes, filename: basename(path), contentType };
  } finally {
    await fh.close();
  }
}

/** A short description of a loaded image (for logs and dry runs). */
export function describeImage(img: PhotoUpload): string {
  return `${img.filename}, ${img.contentType === 'image/png' ? 'PNG' : 'JPEG'}, ${formatBytes(img.bytes.length)}`;
}
