/**
 * Shared documents as rows of PostgreSQL (`documents`): what JsonFile does with a lock file
 * and an atomic rename, a row lock and a transaction do here. An update started inside
 * another one (verifying a code links the chat: codes, then users) joins the outer
 * transaction, so both change together and a nested update never waits for a second
 * connection from the pool.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { join } from 'node:path';
import type { z } from 'zod';
import { CorruptFileError, readJsonIfExists, writeFileAtomic } from '../jsonFile.js';
import type { DocumentBackend, SharedDocument } from '../documents.js';
import type { DeliveryOutcome } from '../outcomeLog.js';
import { guarded, type Sql } from './database.js';
import { latestPgOutcome, readPgOutcomes } from './pgOutcomes.js';
import type { ImageKeeper } from '../desktopImages.js';
import { PgImages } from './pgImages.js';

/** The transaction of the update in progress on this async path, if any. */
const current = new AsyncLocalStorage<Sql>();

/** A document stored as one row. */
export class PgDocument<T> implements SharedDocument<T> {
  constructor(
    private readonly sql: Sql,
    readonly name: string,
    private readonly schema: z.ZodType<T>,
    private readonly empty: () => T,
  ) {}

  private parse(body: string | null | undefined): T {
    if (body === null || body === undefined) return this.empty();
    const where = `the database document '${this.name}'`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (err) {
      throw new CorruptFileError(where, `not valid JSON: ${(err as Error).message}`);
    }
    const result = this.schema.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0];
      const at = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
      throw new CorruptFileError(where, `unexpected content${at}: ${issue?.message ?? 'invalid'}`);
    }
    return result.data;
  }

  async read(): Promise<T> {
    const sql = current.getStore() ?? this.sql;
    const rows = await guarded(() => sql<{ body: string | null }[]>`SELECT body FROM documents WHERE name = ${this.name}`);
    return this.parse(rows[0]?.body);
  }

  async pick<R>(select: (current: T) => R): Promise<R> {
    return select(await this.read());
  }

  async update<R>(change: (current: T) => { next?: T; result: R } | Promise<{ next?: T; result: R }>): Promise<R> {
    const run = async (tx: Sql): Promise<R> => {
      // The row exists before it is locked, so two first writers also take turns.
      await tx`INSERT INTO documents (name, body) VALUES (${this.name}, NULL) ON CONFLICT (name) DO NOTHING`;
      const rows = await tx<{ body: string | null }[]>`SELECT body FROM documents WHERE name = ${this.name} FOR UPDATE`;
      const { next, result } = await current.run(tx, () => change(this.parse(rows[0]?.body)));
      if (next !== undefined) {
        await tx`UPDATE documents SET body = ${JSON.stringify(next)}, version = version + 1, updated_at = now() WHERE name = ${this.name}`;
      }
      return result;
    };
    const outer = current.getStore();
    if (outer) return run(outer);
    return guarded(() => this.sql.begin((tx) => run(tx as unknown as Sql)) as Promise<R>);
  }
}

/** The documents of one database. */
export class PgDocuments implements DocumentBackend {
  constructor(private readonly sql: Sql) {}

  open<T>(name: string, schema: z.ZodType<T>, empty: () => T): SharedDocument<T> {
    return new PgDocument(this.sql, name, schema, empty);
  }

  /** The delivery history: the table `deliveries`. */
  outcomes(ids?: ReadonlySet<string>): Promise<Map<string, DeliveryOutcome>> {
    return readPgOutcomes(this.sql, ids);
  }

  latestOutcome(user: string): Promise<DeliveryOutcome | null> {
    return latestPgOutcome(this.sql, user);
  }

  /** Desktop images: the table `desktop_images`. */
  images(): ImageKeeper {
    return new PgImages(this.sql);
  }

  /** The raw text of a document, or null when it has none. */
  async rawBody(name: string): Promise<string | null> {
    const rows = await guarded(() => this.sql<{ body: string | null }[]>`SELECT body FROM documents WHERE name = ${name}`);
    return rows[0]?.body ?? null;
  }

  /** True when any of the named documents has content. */
  async holdsAny(names: readonly string[]): Promise<boolean> {
    const rows = await guarded(() => this.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM documents WHERE name = ANY(${names as string[]}) AND body IS NOT NULL`);
    return (rows[0]?.n ?? 0) > 0;
  }

  /**
   * Copies the named files of dataDir into the database, all or nothing. Each must hold a
   * JSON object; a document already holding the same value is left alone, so a second run
   * changes nothing. Returns, per file, whether it changed the database.
   */
  async importFiles(dataDir: string, names: readonly string[]): Promise<Array<{ name: string; entries: number; changed: boolean }>> {
    const bodies: Array<{ name: string; body: string; entries: number }> = [];
    for (const name of names) {
      const path = join(dataDir, name);
      const value = await readJsonIfExists(path);
      if (value === undefined) continue;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CorruptFileError(path, 'not a JSON object');
      bodies.push({ name, body: JSON.stringify(value), entries: Object.keys(value).length });
    }
    return guarded(
      () =>
        this.sql.begin(async (tx) => {
          const out: Array<{ name: string; entries: number; changed: boolean }> = [];
          for (const b of bodies) {
            const rows = await tx<{ name: string }[]>`
              INSERT INTO documents (name, body) VALUES (${b.name}, ${b.body})
              ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body, version = documents.version + 1, updated_at = now()
                WHERE documents.body IS DISTINCT FROM EXCLUDED.body
              RETURNING name`;
            out.push({ name: b.name, entries: b.entries, changed: rows.length > 0 });
          }
          return out;
        }) as Promise<Array<{ name: string; entries: number; changed: boolean }>>,
    );
  }

  /** Writes each named document that has content to its file in dataDir (atomically). */
  async exportFiles(dataDir: string, names: readonly string[]): Promise<Array<{ name: string; entries: number }>> {
    const rows = await guarded(() => this.sql<{ name: string; body: string }[]>`SELECT name, body FROM documents WHERE name = ANY(${names as string[]}) AND body IS NOT NULL ORDER BY name`);
    const out: Array<{ name: string; entries: number }> = [];
    for (const r of rows) {
      const value = JSON.parse(r.body) as Record<string, unknown>;
      await writeFileAtomic(join(dataDir, r.name), `${JSON.stringify(value, null, 2)}\n`);
      out.push({ name: r.name, entries: Object.keys(value).length });
    }
    return out;
  }
}
