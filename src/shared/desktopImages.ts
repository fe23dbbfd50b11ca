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
 *
 * In a fleet (the data directory bound to the database, documents.ts) images are rows of
 * the table `desktop_images` instead (db/pgImages.ts): the bot that accepted the alert may
 * run on another host than the dashboard replica the desktop's fetch reaches.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { documentBackend } from './documents.js';
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

/** An image to keep: who it is for, its type, when it was made and until when it may be served. */
export interface ImageRecord {
  user: string;
  contentType: string;
  createdAt: number;
  expiresAt: number;
}

/** Where images are kept: the data directory's files, or the database. */
export interface ImageKeeper {
  /** Stores an image under a new, valid name. */
  put(name: string, record: ImageRecord, bytes: Buffer): Promise<void>;
  /** The image called `name` (a valid name), or null when there is none or it has expired at nowMs. */
  get(name: string, nowMs: number): Promise<StoredImage | null>;
  /** Forgets images past their retention. */
  prune(nowMs: number, retentionMs: number): Promise<void>;
}

/** The images of one data directory (its files, or the database it is bound to). */
export class DesktopImageStore {
  readonly dir: string;
  private readonly keeper: ImageKeeper;

  constructor(dataDir: string) {
    this.dir = join(dataDir, IMAGES_DIR);
    this.keeper = documentBackend(dataDir)?.images?.() ?? new FileImages(this.dir);
  }

  /** Stores `bytes` for `user`, kept `retentionMs` from `nowMs`; returns the new name. */
  async put(user: string, bytes: Buffer, contentType: string, nowMs: number, retentionMs: number): Promise<string> {
    const name = randomBytes(24).toString('base64url');
    await this.keeper.put(name, { user, contentType, createdAt: nowMs, expiresAt: nowMs + retentionMs }, bytes);
    return name;
  }

  /** The image called `name`, or null when there is none or it has expired. */
  async get(name: string, nowMs: number): Promise<StoredImage | null> {
    if (!IMAGE_NAME_RE.test(name)) return null;
    return this.keeper.get(name, nowMs);
  }

  /** Forgets images older than `retentionMs`. */
  prune(nowMs: number, retentionMs: number): Promise<void> {
    return this.keeper.prune(nowMs, retentionMs);
  }
}

/** Images as files in the data directory's `images/`. */
class FileImages implements ImageKeeper {
  constructor(private readonly dir: string) {}

  async put(name: string, r: ImageRecord, bytes: Buffer): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o770 });
    await writeFileAtomic(join(this.dir, `${name}.img`), bytes);
    const record = { user: r.user, content_type: r.contentType, created_at: new Date(r.createdAt).toISOString(), expires_at: new Date(r.expiresAt).toISOString() };
    await writeFileAtomic(join(this.dir, `${name}.json`), JSON.stringify(record));
  }

  async get(name: string, nowMs: number): Promise<StoredImage | null> {
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
