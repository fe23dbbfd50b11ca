/**
 * Shared documents: each piece of shared state (links, codes, tokens, rules...) is one
 * schema-validated JSON document that several processes read and change. By default a
 * document is a file in the data directory (JsonFile); a program started with
 * NOTIFY_DATABASE_URL binds its data directory to the database once at start, and from
 * then on the same stores keep the same documents as rows of PostgreSQL (db/pgDocument.ts),
 * shared by every replica. Stores name their documents and never know which it is.
 */
import { join } from 'node:path';
import type { z } from 'zod';
import { JsonFile } from './jsonFile.js';
import type { DeliveryOutcome } from './outcomeLog.js';
import type { ImageKeeper } from './desktopImages.js';

/** One shared document: read it, or change it so no concurrent writer's update is lost. */
export interface SharedDocument<T> {
  /** The document's name (its file name in the data directory). */
  readonly name: string;
  /** Current contents; the empty value when there is none yet. */
  read(): Promise<T>;
  /**
   * One part of the current contents, e.g. one user's entry: cheaper than read() on a hot
   * path, as only the part is copied. `select` must not change what it is given.
   */
  pick<R>(select: (current: T) => R): Promise<R>;
  /**
   * Read-modify-write, exclusive across processes. `change` gets the current value and
   * returns the next one plus a result; returning `undefined` as next changes nothing.
   */
  update<R>(change: (current: T) => { next?: T; result: R } | Promise<{ next?: T; result: R }>): Promise<R>;
}

/** Where the shared documents of a data directory are kept, when not in its files. */
export interface DocumentBackend {
  open<T>(name: string, schema: z.ZodType<T>, empty: () => T): SharedDocument<T>;
  /** The delivery history kept with the documents (instead of the data directory's log): by id, all or those in `ids`. */
  outcomes?(ids?: ReadonlySet<string>): Promise<Map<string, DeliveryOutcome>>;
  /** The newest final outcome of one user's notifications, or null. */
  latestOutcome?(user: string): Promise<DeliveryOutcome | null>;
  /** Where desktop notifications' images are kept (instead of the data directory's `images/`). */
  images?(): ImageKeeper;
}

/** The database cannot be reached (down, restarting, cut off); nothing was stored. */
export class StoreUnavailableError extends Error {
  constructor(
    detail: string,
    readonly retryAfterSeconds = 5,
  ) {
    super(`The database is unreachable (${detail}); nothing was stored. Try again shortly.`);
    this.name = 'StoreUnavailableError';
  }
}

const backends = new Map<string, DocumentBackend>();

/**
 * Keeps the shared documents of dataDir in backend from now on (a program calls this once,
 * at start, before building its stores).
 */
export function bindDocuments(dataDir: string, backend: DocumentBackend): void {
  backends.set(dataDir, backend);
}

/** Where dataDir's shared state is kept when not in its files (null: the files). */
export function documentBackend(dataDir: string): DocumentBackend | null {
  return backends.get(dataDir) ?? null;
}

/** Back to the files for dataDir (tests, and programs that close their database). */
export function unbindDocuments(dataDir: string): void {
  backends.delete(dataDir);
}

/** The shared document `name` of dataDir: its file, or its row when dataDir is bound. */
export function sharedDocument<T>(dataDir: string, name: string, schema: z.ZodType<T>, empty: () => T): SharedDocument<T> {
  const backend = backends.get(dataDir);
  if (backend) return backend.open(name, schema, empty);
  return new JsonFile(join(dataDir, name), schema, empty);
}

/**
 * The documents that are shared state (moved by `notify-bot import-files` / `export-files`).
 * Per-host things (the outbox spool, logs, the bot's instance lock) and the desktop images
 * (a table of their own in a fleet) are not here, nor the analysts' own only-if-changed
 * state (alert_data/<user>.json, one document each).
 */
export const SHARED_DOCUMENTS = [
  'telegram_users.json',
  'pending_codes.json',
  'link_tokens.json',
  'desktop_tokens.json',
  'alert_rules.json',
  'held_alerts.json',
  'script_keys.json',
  'web_revoked_sessions.json',
  'team_chats.json',
  'desktop_users.json',
  'alert_threads.json',
] as const;
