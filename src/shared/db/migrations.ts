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
  {
    version: 3,
    name: 'outbox',
    // The shared outbox (bot/delivery/pgOutbox.ts). Every replica inserts what it accepts;
    // the lease holder takes the queued rows for its lease generation (taken_gen) and is the
    // only one whose progress, removals and outcomes are written: each such statement checks
    // the lease in the same statement. body is the record's JSON. A statement trigger
    // wakes the holder (LISTEN notify_outbox) when rows arrive.
    sql: `
      CREATE TABLE outbox (
        id text PRIMARY KEY,
        seq bigint NOT NULL,
        user_name text NOT NULL,
        state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'dead')),
        taken_gen bigint,
        body text NOT NULL,
        bytes integer NOT NULL,
        accepted_at timestamptz NOT NULL DEFAULT now(),
        dead_at timestamptz
      );
      CREATE INDEX outbox_queued ON outbox (seq) WHERE state = 'queued';
      CREATE TABLE outbox_photos (
        name text PRIMARY KEY,
        bytes bytea NOT NULL,
        stored_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE deliveries (
        id text PRIMARY KEY,
        at timestamptz NOT NULL,
        body text NOT NULL
      );
      CREATE INDEX deliveries_at ON deliveries (at);
      CREATE FUNCTION outbox_wake() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('notify_outbox', ''); RETURN NULL; END $$;
      CREATE TRIGGER outbox_wake AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_wake();
    `,
  },
  {
    version: 4,
    name: 'desktop fan-out',
    // Gateway replicas (gateway/fanout.ts): each notification dispatched to one replica is
    // an event the others read (announced by NOTIFY notify_desktop); each replica's
    // desktops per user, for the count the dispatch answers.
    sql: `
      CREATE TABLE desktop_events (
        id bigserial PRIMARY KEY,
        origin text NOT NULL,
        username text NOT NULL,
        body text NOT NULL,
        at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX desktop_events_at ON desktop_events (at);
      CREATE TABLE desktop_presence (
        gateway text NOT NULL,
        username text NOT NULL,
        connections integer NOT NULL,
        seen_at timestamptz NOT NULL,
        PRIMARY KEY (gateway, username)
      );
      CREATE FUNCTION desktop_wake() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('notify_desktop', ''); RETURN NULL; END $$;
      CREATE TRIGGER desktop_wake AFTER INSERT ON desktop_events FOR EACH STATEMENT EXECUTE FUNCTION desktop_wake();
    `,
  },
  {
    version: 5,
    name: 'desktop images',
    // Images of desktop notifications (shared/desktopImages.ts): stored by the bot replica
    // that accepted the alert, served by any dashboard replica.
    sql: `
      CREATE TABLE desktop_images (
        name text PRIMARY KEY,
        username text NOT NULL,
        content_type text NOT NULL,
        bytes bytea NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX desktop_images_expires ON desktop_images (expires_at);
    `,
  },
  {
    version: 6,
    name: 'outbox acceptance order',
    // The order in which the replicas' inserts happened, one sequence for all of them: the
    // holder delivers a chat's records in this order. A record's own seq comes from the
    // accepting host's clock, which does not order two hosts' records within a millisecond.
    sql: `
      CREATE SEQUENCE outbox_order;
      ALTER TABLE outbox ADD COLUMN pos bigint NOT NULL DEFAULT nextval('outbox_order');
      ALTER SEQUENCE outbox_order OWNED BY outbox.pos;
    `,
  },
  {
    version: 7,
    name: 'desktop images by analyst',
    // What one analyst keeps (the per-analyst image quota, db/pgImages.ts keptBy).
    sql: `CREATE INDEX desktop_images_user ON desktop_images (username, expires_at);`,
  },
];
