/**
 * The database schema, as numbered steps applied in order and never edited once released:
 * a later change is a new step. `migrate()` (database.ts) records each applied step in
 * `schema_migrations`.
 */

/** One schema step. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'shared documents',
    // One row per shared document (documents.ts names them); body is the document's JSON
    // text, validated by the same schema as its file; NULL until first written.
    sql: `
      CREATE TABLE documents (
        name text PRIMARY KEY,
        body text,
        version bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 2,
    name: 'leases',
    // One row per lease (the Telegram lease: polling and answering). generation grows by
    // one at every change of holder, so a holder that lost the lease can tell.
    sql: `
      CREATE TABLE leases (
        name text PRIMARY KEY,
        holder text NOT NULL,
        generation bigint NOT NULL,
        expires_at timestamptz NOT NULL
      );
    `,
  },
];
