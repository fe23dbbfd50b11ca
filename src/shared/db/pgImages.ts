/**
 * Desktop notifications' images in a fleet: rows of `desktop_images` (migration 5), so the
 * dashboard replica a desktop's fetch reaches serves an image whichever bot replica stored it.
 * What an analyst keeps is counted over the table (keptBy), so the per-analyst quota
 * (NOTIFY_USER_IMAGE_BYTES, checked in bot/delivery/notifier.ts) holds for the whole fleet.
 */
import type { ImageKeeper, ImageRecord, KeptImages, StoredImage } from '../desktopImages.js';
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

  async remove(name: string): Promise<void> {
    await guarded(() => this.sql`DELETE FROM desktop_images WHERE name = ${name}`);
  }

  /** What `user` keeps now, over every replica (the per-analyst quota is the fleet's). */
  async keptBy(user: string): Promise<KeptImages> {
    const rows = await guarded(
      () => this.sql<Array<{ count: number; bytes: string | null; oldest: number | null }>>`
        SELECT count(*)::int AS count, sum(octet_length(bytes))::text AS bytes, (extract(epoch FROM min(expires_at)) * 1000)::float8 AS oldest
        FROM desktop_images WHERE username = ${user} AND expires_at > now()`,
    );
    const r = rows[0];
    const kept: KeptImages = { count: r?.count ?? 0, bytes: Number(r?.bytes ?? 0) };
    if (r && r.oldest !== null) kept.oldestExpiresAt = r.oldest;
    return kept;
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
