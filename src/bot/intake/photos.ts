/**
 * Photos for notifications: taken as uploaded bytes, or from a path the caller owns. The
 * path is opened first and the checks are made on the opened file (fstat), so a file
 * swapped in after the check cannot be read, and the bot never reads what the caller
 * could not.
 */
import { constants, promises as fsp } from 'node:fs';
import { readAtMost } from '../../shared/boundedRead.js';
import type { Caller } from './identity.js';

/** The image type of bytes by their magic numbers, or null. */
export function imageType(bytes: Uint8Array): 'image/png' | 'image/jpeg' | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47 && bytes[4] === 0x0d && bytes[5] === 0x0a && bytes[6] === 0x1a && bytes[7] === 0x0a) {
    return 'image/png';
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  return null;
}

/** A photo refused, with the HTTP status to answer. */
export class PhotoError extends Error {
  constructor(
    readonly status: 400 | 403 | 413,
    message: string,
  ) {
    super(message);
    this.name = 'PhotoError';
  }
}

/** Checks uploaded bytes. */
export function checkUpload(bytes: Uint8Array, maxBytes: number): Buffer {
  if (bytes.length === 0) throw new PhotoError(400, 'the uploaded photo is empty');
  if (bytes.length > maxBytes) throw new PhotoError(413, `the photo is larger than ${maxBytes} bytes`);
  if (!imageType(bytes)) throw new PhotoError(400, 'the uploaded photo is not a PNG or JPEG image');
  return Buffer.from(bytes);
}

/**
 * Reads a photo from a path on the caller's behalf, under the ownership rule. Ownership and
 * type are checked before anything is opened (so no device or FIFO is touched), checked
 * again on the opened file (so a file swapped in between is refused), and the read is
 * bounded whatever the file does meanwhile. Every path that is not a regular file of the
 * caller's gets the same answer, so the bot's own files cannot be probed through it.
 */
export async function readCallerPhoto(path: string, caller: Caller, maxBytes: number): Promise<Buffer> {
  if (!path.startsWith('/')) throw new PhotoError(400, `photo_path must be an absolute path (got '${path}')`);
  const refused = (): PhotoError =>
    new PhotoError(403, `photo_path '${path}' is not a regular file of yours that the bot can read; send only your own files, or upload the image bytes (multipart field 'photo')`);
  const mine = (st: { uid: number; isFile(): boolean }): boolean => st.isFile() && (st.uid === caller.uid || caller.trusted);
  let real: string;
  let before;
  try {
    real = await fsp.realpath(path);
    before = await fsp.stat(real);
  } catch {
    throw refused();
  }
  if (!mine(before)) throw refused();
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    throw refused();
  }
  try {
    const st = await fh.stat();
    if (!mine(st) || st.ino !== before.ino || st.dev !== before.dev) throw refused();
    if (st.size > maxBytes) throw new PhotoError(413, `photo_path '${path}' is larger than ${maxBytes} bytes`);
    const bytes = await readAtMost(fh, maxBytes, st.size);
    if (bytes === null) throw new PhotoError(413, `photo_path '${path}' is larger than ${maxBytes} bytes`);
    if (!imageType(bytes)) throw new PhotoError(400, `photo_path '${path}' is not a PNG or JPEG image`);
    return bytes;
  } finally {
    await fh.close();
  }
}
