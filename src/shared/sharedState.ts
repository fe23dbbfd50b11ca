/**
 * Where a program keeps the shared state, chosen once at its start: the data files (no
 * NOTIFY_DATABASE_URL, the default) or PostgreSQL. With a database, the shared documents
 * of the data directory are bound to it (documents.ts) before any store is built; the
 * client library is loaded only then.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Database } from './db/database.js';
import type { PgDocuments } from './db/pgDocument.js';
import { bindDocuments, SHARED_DOCUMENTS, unbindDocuments } from './documents.js';

/** The shared state of a running program. */
export interface SharedState {
  readonly backend: 'files' | 'postgres';
  /** For logs and /health: the data directory, or the database URL without its password. */
  readonly where: string;
  /** The open database, when there is one. */
  readonly database: Database | null;
  readonly documents: PgDocuments | null;
  close(): Promise<void>;
}

/** The database is empty but this host's data files hold state: starting would lose it. */
export class UnimportedFilesError extends Error {
  constructor(dataDir: string, files: string[]) {
    super(
      `The database holds no shared state yet, but ${dataDir} has data files (${files.join(', ')}). ` +
        'Starting on the empty database would leave these links and settings behind: run `notify-bot import-files` on this host first ' +
        '(or move the files away to start empty on purpose).',
    );
    this.name = 'UnimportedFilesError';
  }
}

/** The shared data files present in dataDir. */
export async function presentDataFiles(dataDir: string): Promise<string[]> {
  const present: string[] = [];
  for (const name of SHARED_DOCUMENTS) {
    try {
      const st = await fsp.stat(join(dataDir, name));
      if (st.isFile()) present.push(name);
    } catch {
      // Absent.
    }
  }
  return present;
}

/** Opens the shared state for dataDir: the files, or the database of databaseUrl. */
export async function openSharedState(dataDir: string, databaseUrl: string | undefined, opts: { refuseUnimported?: boolean } = {}): Promise<SharedState> {
  if (!databaseUrl) {
    return { backend: 'files', where: dataDir, database: null, documents: null, close: async () => undefined };
  }
  const { openDatabase } = await import('./db/database.js');
  const { PgDocuments } = await import('./db/pgDocument.js');
  const database = await openDatabase(databaseUrl);
  try {
    const documents = new PgDocuments(database.sql);
    if (opts.refuseUnimported !== false && !(await documents.holdsAny(SHARED_DOCUMENTS))) {
      const files = await presentDataFiles(dataDir);
      if (files.length > 0) throw new UnimportedFilesError(dataDir, files);
    }
    bindDocuments(dataDir, documents);
    return {
      backend: 'postgres',
      where: database.where,
      database,
      documents,
      close: async () => {
        unbindDocuments(dataDir);
        await database.close();
      },
    };
  } catch (err) {
    await database.close().catch(() => undefined);
    throw err;
  }
}
