/**
 * Photos for notifications: taken as uploaded bytes, or from a path the caller owns. The
 * path is opened first and the checks are made on the opened file (fstat), so a file
 * swapped in after the check cannot be read, and the bot never reads what the caller
 * could not.
 */
import { constants, promises as fsp } from 'node:fs';
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

/** Reads a photo from a path on the caller's behalf, under the ownership rule. */
export async function readCallerPhoto(path: string, caller: Caller, maxBytes: number): Promise<Buffer> {
  if (!path.startsWith('/')) throw new PhotoError(400, `photo_path must be an absolute path (got '${path}')`);
  let real: string;
  try {
    real = await fsp.realpath(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new PhotoError(400, `photo_path '${path}' does not exist`);
    throw new PhotoError(403, `photo_path '${path}' cannot be read by the bot (${code}); upload the image bytes instead (multipart field 'photo')`);
  }
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PhotoError(403, `photo_path '${path}' cannot be read by the bot (${code}); upload the image bytes instead (multipart field 'photo')`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new PhotoError(400, `photo_path '${path}' is not a regular file`);
    if (st.uid !== caller.uid && !caller.trusted) throw new PhotoError(403, `photo_path '${path}' is not owned by you; only your own files can be sent`);
    if (st.size > maxBytes) throw new PhotoError(413, `photo_path '${path}' is larger than ${maxBytes} bytes`);
    const bytes = await fh.readFile();
    if (!imageType(bytes)) throw new PhotoError(400, `photo_path '${path}' is not a PNG or JPEG image`);
    return bytes;
  } finally {
    await fh.close();
  }
}
