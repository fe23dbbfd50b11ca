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
 * a reader that finds the record always finds the bytes. When the same image is queued for
 * Telegram, `<name>.img` is a hard link to the outbox's copy: the bytes are stored once, and
 * each side lets go of its name when it is done with it. The bot, the only writer, keeps an
 * index of what each analyst keeps (for the per-analyst quota), read from the directory on
 * first use and kept up to date by put, remove and prune.
 *
 * In a fleet (the data directory bound to the database, documents.ts) images are rows of
 * the table `desktop_images` instead (db/pgImages.ts): the bot that accepted the alert may
 * run on another host than the dashboard replica the desktop's fetch reaches.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { documentBackend } from './documents.js';
import { fsyncDir, writeFileAtomic } from './jsonFile.js';

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

/** What one analyst keeps: images, their bytes, and when the oldest of them expires. */
export interface KeptImages {
  count: number;
  bytes: number;
  /** Milliseconds since the epoch; absent when nothing is kept. */
  oldestExpiresAt?: number;
}

/** Where images are kept: the data directory's files, or the database. */
export interface ImageKeeper {
  /**
   * Stores an image under a new, valid name. `linkFrom`: a file holding the same bytes,
   * which a keeper of files may give a second name instead of writing a copy.
   */
  put(name: string, record: ImageRecord, bytes: Buffer, linkFrom?: string): Promise<void>;
  /** Forgets one image (stored for a notification that was not taken after all). */
  remove?(name: string): Promise<void>;
  /** What `user` keeps now (for the per-analyst quota); absent: not counted. */
  keptBy?(user: string): Promise<KeptImages>;
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

  /**
   * Stores `bytes` for `user`, kept `retentionMs` from `nowMs`; returns the new name. With
   * `linkFrom` (a file holding the same bytes) the files keeper links it instead of copying.
   */
  async put(user: string, bytes: Buffer, contentType: string, nowMs: number, retentionMs: number, linkFrom?: string): Promise<string> {
    const name = randomBytes(24).toString('base64url');
    await this.keeper.put(name, { user, contentType, createdAt: nowMs, expiresAt: nowMs + retentionMs }, bytes, linkFrom);
    return name;
  }

  /** Removes an image stored for a notification that was not taken after all. */
  async remove(name: string): Promise<void> {
    if (IMAGE_NAME_RE.test(name)) await this.keeper.remove?.(name);
  }

  /** What `user` keeps now: nothing counted where the keeper does not count. */
  keptBy(user: string): Promise<KeptImages> {
    return this.keeper.keptBy?.(user) ?? Promise.resolve({ count: 0, bytes: 0 });
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

interface IndexEntry {
  user: string;
  bytes: number;
  expiresAt: number;
}

/** Images as files in the data directory's `images/`. */
class FileImages implements ImageKeeper {
  private index: Map<string, IndexEntry> | null = null;
  private indexing: Promise<Map<string, IndexEntry>> | null = null;

  constructor(private readonly dir: string) {}

  async put(name: string, r: ImageRecord, bytes: Buffer, linkFrom?: string): Promise<void> {
    const index = await this.loaded();
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o770 });
    const path = join(this.dir, `${name}.img`);
    if (!(linkFrom && (await linkAtomic(linkFrom, path)))) await writeFileAtomic(path, bytes);
    const record = { user: r.user, content_type: r.contentType, created_at: new Date(r.createdAt).toISOString(), expires_at: new Date(r.expiresAt).toISOString() };
    try {
      await writeFileAtomic(join(this.dir, `${name}.json`), JSON.stringify(record));
    } catch (err) {
      await fsp.rm(path, { force: true });
      throw err;
    }
    index.set(name, { user: r.user, bytes: bytes.length, expiresAt: r.expiresAt });
  }

  async remove(name: string): Promise<void> {
    await fsp.rm(join(this.dir, `${name}.json`), { force: true });
    await fsp.rm(join(this.dir, `${name}.img`), { force: true });
    this.index?.delete(name);
  }

  async keptBy(user: string): Promise<KeptImages> {
    const kept: KeptImages = { count: 0, bytes: 0 };
    for (const e of (await this.loaded()).values()) {
      if (e.user !== user) continue;
      kept.count += 1;
      kept.bytes += e.bytes;
      if (kept.oldestExpiresAt === undefined || e.expiresAt < kept.oldestExpiresAt) kept.oldestExpiresAt = e.expiresAt;
    }
    return kept;
  }

  /** The index, read from the directory once. */
  private loaded(): Promise<Map<string, IndexEntry>> {
    if (this.index) return Promise.resolve(this.index);
    this.indexing ??= this.readIndex().then((index) => {
      this.index = index;
      return index;
    });
    return this.indexing;
  }

  private async readIndex(): Promise<Map<string, IndexEntry>> {
    const index = new Map<string, IndexEntry>();
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch {
      return index;
    }
    for (const n of names) {
      if (!n.endsWith('.json')) continue;
      const name = n.slice(0, -'.json'.length);
      if (!IMAGE_NAME_RE.test(name)) continue;
      try {
        const record = ImageRecordSchema.parse(JSON.parse(await fsp.readFile(join(this.dir, n), 'utf8')));
        const st = await fsp.stat(join(this.dir, `${name}.img`));
        const expiresAt = record.expires_at === undefined ? Number.NaN : Date.parse(record.expires_at);
        index.set(name, { user: record.user, bytes: st.size, expiresAt: Number.isNaN(expiresAt) ? 0 : expiresAt });
      } catch {
        // Half of a pair (the sweep removes it) or unreadable: not served, not counted.
      }
    }
    return index;
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
        if (st.mtimeMs < cutoff) {
          await fsp.rm(p, { force: true });
          if (n.endsWith('.img')) this.index?.delete(n.slice(0, -'.img'.length));
        }
      } catch {
        // Raced with another prune.
      }
    }
  }
}

/** Hard-links `from` to `to` (a temporary name, then a rename); false when it cannot. */
async function linkAtomic(from: string, to: string): Promise<boolean> {
  const tmp = join(dirname(to), `.${basename(to)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await fsp.link(from, tmp);
  } catch {
    // Gone already (delivered meanwhile), another file system, or links not allowed.
    return false;
  }
  try {
    await fsp.rename(tmp, to);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(to));
  return true;
}
