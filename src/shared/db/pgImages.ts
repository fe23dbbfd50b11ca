/**
 * Desktop notifications' images in a fleet: rows of `desktop_images` (migration 5), so the
 * dashboard replica a desktop's fetch reaches serves an image whichever bot replica stored it.
 */
import type { ImageKeeper, ImageRecord, StoredImage } from '../desktopImages.js';
import { guarded, type Sql } from './database.js';

/** Images as rows of the database. */
export class PgImages implements ImageKeeper {
  constructor(private readonly sql: Sql) {}

  async put(name: string, r: ImageRecord, bytes: Buffer): Promise<void> {
    await guarded(
      () => this.sql`
        INSERT INTO desktop_images (name, username, content_type, bytes, created_at, expires_at)
        VALUES (${name}, ${r.user}, ${r.contentType}, ${bytes}, to_timestamp(${r.createdAt / 1000}), to_timestamp(${r.expiresAt / 1000}))`,
    );
  }

  async get(name: string, nowMs: number): Promise<StoredImage | null> {
    const rows = await guarded(
      () => this.sql<Array<{ username: string; content_type: string; bytes: Buffer }>>`
        SELECT username, content_type, bytes FROM desktop_images WHERE name = ${name} AND expires_at > to_timestamp(${nowMs / 1000})`,
    );
    const row = rows[0];
    return row ? { user: row.username, contentType: row.content_type, bytes: row.bytes } : null;
  }

  async prune(nowMs: number): Promise<void> {
    await guarded(() => this.sql`DELETE FROM desktop_images WHERE expires_at <= to_timestamp(${nowMs / 1000})`);
  }
}
