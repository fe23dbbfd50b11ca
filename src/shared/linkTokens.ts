/**
 * One-tap linking: the dashboard issues a short-lived, single-use token for a signed-in
 * analyst and shows `https://t.me/<bot>?start=<token>`; the bot receives `/start <token>`,
 * consumes the token and links that chat to the analyst at once.
 *
 * The tokens live in `$NOTIFY_DATA_DIR/link_tokens.json` (the bot and the dashboard are
 * separate processes). Only a SHA-256 digest of each token is stored, so the file alone
 * links nobody.
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { type Clock, systemClock, unixSeconds } from './clock.js';
import { type SharedDocument, sharedDocument } from './documents.js';

/** How long a deep-link token is valid, in seconds (as long as a code). */
export const LINK_TOKEN_TTL_SECONDS = 600;

/** What a token looks like: Telegram's start parameter allows 1-64 of [A-Za-z0-9_-]. */
export const LINK_TOKEN_RE = /^[A-Za-z0-9_-]{1,64}$/;

const EntrySchema = z.looseObject({ username: z.string().min(1), expires_at: z.number() });
const TokensSchema = z.record(z.string(), EntrySchema);
type Tokens = z.infer<typeof TokensSchema>;

/** A freshly issued token. */
export interface IssuedLinkToken {
  /** 32 url-safe characters: use it as the deep link's start parameter. */
  token: string;
  /** When it stops working (ISO-8601 UTC). */
  expiresAt: string;
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** The deep-link tokens of one data directory. */
export class LinkTokenStore {
  readonly file: SharedDocument<Tokens>;

  constructor(
    readonly dataDir: string,
    private readonly clock: Clock = systemClock,
    private readonly ttlSeconds: number = LINK_TOKEN_TTL_SECONDS,
  ) {
    this.file = sharedDocument(dataDir, 'link_tokens.json', TokensSchema, () => ({}));
  }

  /**
   * Issues a token for `username`, replacing any earlier one of theirs (only the newest
   * link works) and dropping expired ones, so the file stays one entry per analyst at most.
   */
  async issue(username: string): Promise<IssuedLinkToken> {
    const token = randomBytes(24).toString('base64url');
    return this.file.update((tokens) => {
      const now = unixSeconds(this.clock);
      const next: Tokens = {};
      for (const [key, entry] of Object.entries(tokens)) {
        if (entry.username !== username && entry.expires_at > now) next[key] = entry;
      }
      const expires = now + this.ttlSeconds;
      next[digest(token)] = { username, expires_at: expires };
      return { next, result: { token, expiresAt: new Date(expires * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') } };
    });
  }

  /**
   * Consumes a token: the username it was issued to, or null when it is unknown, already
   * used or expired. Either way a known token is gone afterwards.
   */
  async consume(token: string): Promise<string | null> {
    if (!LINK_TOKEN_RE.test(token)) return null;
    const key = digest(token);
    return this.file.update((tokens) => {
      const now = unixSeconds(this.clock);
      const entry = tokens[key];
      const next: Tokens = {};
      for (const [k, e] of Object.entries(tokens)) {
        if (k !== key && e.expires_at > now) next[k] = e;
      }
      const changed = Object.keys(next).length !== Object.keys(tokens).length;
      const result = entry && entry.expires_at > now ? entry.username : null;
      return changed ? { next, result } : { result };
    });
  }
}
