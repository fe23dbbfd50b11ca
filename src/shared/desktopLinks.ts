/**
 * Which analysts have linked the desktop app: `$NOTIFY_DATA_DIR/desktop_users.json`,
 * `{"<username>": {"linked_at": "<ISO-8601 UTC>"}}` (extra keys allowed), as the original
 * dashboard kept it. Set when the app is authorized and on the app's authenticated calls;
 * removed by unlinking (which also revokes the user's desktop tokens).
 */
import { z } from 'zod';
import { type Clock, systemClock } from './clock.js';
import { type SharedDocument, sharedDocument } from './documents.js';

/** The file's name inside the data directory. */
export const DESKTOP_USERS_FILE = 'desktop_users.json';

const DesktopLinkSchema = z.looseObject({ linked_at: z.string() });
const DesktopUsersSchema = z.record(z.string(), DesktopLinkSchema);

/** One user's link. */
export type DesktopLink = z.infer<typeof DesktopLinkSchema>;

/** The shared record of linked desktop apps. */
export class DesktopLinkStore {
  readonly file: SharedDocument<Record<string, DesktopLink>>;

  constructor(
    dataDir: string,
    private readonly clock: Clock = systemClock,
  ) {
    this.file = sharedDocument(dataDir, DESKTOP_USERS_FILE, DesktopUsersSchema, () => ({}));
  }

  /** `user`'s link, or null. */
  async linkOf(user: string): Promise<DesktopLink | null> {
    return (await this.file.read())[user] ?? null;
  }

  /** Records `user` as linked (the first time counts: an existing link is kept, and no write happens). */
  async mark(user: string): Promise<void> {
    if ((await this.file.read())[user]) return;
    await this.file.update((users) => (users[user] ? { result: undefined } : { next: { ...users, [user]: { linked_at: new Date(this.clock.now()).toISOString() } }, result: undefined }));
  }

  /** Forgets `user`'s link; false when there was none. */
  async unlink(user: string): Promise<boolean> {
    return this.file.update((users) => {
      if (!users[user]) return { result: false };
      const next = { ...users };
      delete next[user];
      return { next, result: true };
    });
  }
}
