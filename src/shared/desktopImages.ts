/**
 * Images of desktop notifications: the bot keeps a copy of each notification's image in
 * `$NOTIFY_DATA_DIR/images/` under a random name, and the dashboard serves it at
 * `/api/notifications/images/<name>.png` while it is kept. The desktop app fetches that
 * path with no header, so the name itself is the permission (a capability URL): 192 random
 * bits, never derived from anything else, and refused once the retention has passed even
 * before the bot's sweep removes the files.
 *
 * Each image is two files: `<name>.img` (the bytes) and `<name>.json` (`{"user",
 * "content_type", "created_at", "expires_at"}`), each written atomically, the bytes first, so
 * a reader that finds the record always finds the bytes.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from './jsonFile.js';

/** The directory inside the data directory. */
export const IMAGES_DIR = 'images';

/** A stored image's name: 32 base64url characters (24 random bytes). */
export const IMAGE_NAME_RE = /^[A-Za-z0-9_-]{32}$/;

/** Where the dashboard serves images (the app fetches it relative to the dashboard). */
export const IMAGE_URL_PREFIX = '/api/notifications/images/';

/** The path an image is served at (`image_url` in desktop notifications). */
export function imageUrlPath(name: string): string {
  return `${IMAGE_URL_PREFIX}${name}.png`;
}

/** The image name in a served path, or null when the path is not one. */
export function imageNameOf(path: string): string | null {
  if (!path.startsWith(IMAGE_URL_PREFIX) || !path.endsWith('.png')) return null;
  const name = path.slice(IMAGE_URL_PREFIX.length, -'.png'.length);
  return IMAGE_NAME_RE.test(name) ? name : null;
}

const ImageRecordSchema = z.looseObject({
  user: z.string(),
  content_type: z.string(),
  created_at: z.string(),
  expires_at: z.string().optional(),
});

/** A stored image, as read back. */
export interface StoredImage {
  user: string;
  contentType: string;
  bytes: Buffer;
}

/** The images of one data directory. */
export class DesktopImageStore {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, IMAGES_DIR);
  }

  /** Stores `bytes` for `user`, kept `retentionMs` from `nowMs`; returns the new name. */
  async put(user: string, bytes: Buffer, contentType: string, nowMs: number, retentionMs: number): Promise<string> {
    const name = randomBytes(24).toString('base64url');
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o770 });
    await writeFileAtomic(join(this.dir, `${name}.img`), bytes);
    const record = { user, content_type: contentType, created_at: new Date(nowMs).toISOString(), expires_at: new Date(nowMs + retentionMs).toISOString() };
    await writeFileAtomic(join(this.dir, `${name}.json`), JSON.stringify(record));
    return name;
  }

  /** The image called `name`, or null when there is none or it has expired. */
  async get(name: string, nowMs: number): Promise<StoredImage | null> {
    if (!IMAGE_NAME_RE.test(name)) return null;
    let record: z.infer<typeof ImageRecordSchema>;
    try {
      record = ImageRecordSchema.parse(JSON.parse(await fsp.readFile(join(this.dir, `${name}.json`), 'utf8')));
    } catch {
      return null;
    }
    const expires = record.expires_at === undefined ? Number.NaN : Date.parse(record.expires_at);
    // A record without a valid expiry is treated as expired: the name alone must not live forever.
    if (Number.isNaN(expires) || expires <= nowMs) return null;
    try {
      const bytes = await fsp.readFile(join(this.dir, `${name}.img`));
      return { user: record.user, contentType: record.content_type, bytes };
    } catch {
      return null;
    }
  }

  /** Removes the files of images older than `retentionMs` (and stray temporary files). */
  async prune(nowMs: number, retentionMs: number): Promise<void> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch {
      return;
    }
    const cutoff = nowMs - retentionMs;
    for (const n of names) {
      const p = join(this.dir, n);
      try {
        const st = await fsp.stat(p);
        if (st.mtimeMs < cutoff) await fsp.rm(p, { force: true });
      } catch {
        // Raced with another prune.
      }
    }
  }
}
