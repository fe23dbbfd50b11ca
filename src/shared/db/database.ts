/**
 * The PostgreSQL connection of a fleet (NOTIFY_DATABASE_URL): opened once per program,
 * schema migrated on start under an advisory lock (replicas starting at once take turns),
 * and every failure to reach the server turned into one typed error the edges answer
 * with 503 and Retry-After. The client library is loaded only here, on first use, so
 * programs on the data files never load it.
 */
import type { Sql, Options } from 'postgres';
import { StoreUnavailableError } from '../documents.js';
import { MIGRATIONS } from './migrations.js';

export type { Sql } from 'postgres';


/** The parts of a libpq URL. */
export interface DatabaseAddress {
  user: string | undefined;
  password: string | undefined;
  /** A host name, or a unix-socket directory (starts with /). */
  host: string | undefined;
  port: number | undefined;
  database: string | undefined;
  /** The remaining query parameters (sslmode, application_name, ...). */
  params: Record<string, string>;
}

const URL_RE = /^(?:postgres|postgresql):\/\/(?:([^@/?#]*)@)?([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?$/;

/**
 * Parses a libpq URL, `postgres://user:password@host:port/db?param=value`, including the
 * forms WHATWG URLs refuse: no host (`postgres://user@/db`), a socket directory in the
 * host (`%2Frun%2Fpostgresql`) or in `?host=/run/postgresql`. Null when it is not one.
 */
export function parseDatabaseUrl(url: string): DatabaseAddress | null {
  const m = URL_RE.exec(url.trim());
  if (!m) return null;
  try {
    const [, auth, hostPort, db, query] = m;
    let user: string | undefined;
    let password: string | undefined;
    if (auth !== undefined) {
      const i = auth.indexOf(':');
      user = decodeURIComponent(i < 0 ? auth : auth.slice(0, i)) || undefined;
      password = i < 0 ? undefined : decodeURIComponent(auth.slice(i + 1));
    }
    let host: string | undefined;
    let port: number | undefined;
    const hp = decodeURIComponent(hostPort ?? '');
    if (hp.startsWith('/')) host = hp;
    else if (hp !== '') {
      const pm = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hp);
      if (!pm) return null;
      host = pm[1]!.replace(/^\[|\]$/g, '');
      if (pm[2]) port = Number(pm[2]);
    }
    const params: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(query ?? '')) params[k] = v;
    if (params.host !== undefined) {
      host = params.host;
      delete params.host;
    }
    if (params.port !== undefined) {
      port = Number(params.port);
      delete params.port;
      if (!Number.isInteger(port) || port <= 0 || port > 65535) return null;
    }
    if (params.user !== undefined) {
      user = params.user;
      delete params.user;
    }
    if (params.password !== undefined) {
      password = params.password;
      delete params.password;
    }
    const database = db ? decodeURIComponent(db) : params.dbname;
    delete params.dbname;
    return { user, password, host, port, database: database || undefined, params };
  } catch {
    return null;
  }
}

/** The URL with its password replaced, for logs and messages. */
export function redactDatabaseUrl(url: string): string {
  const a = parseDatabaseUrl(url);
  if (!a) return '(an unparsable database URL)';
  const q = new URLSearchParams(a.params);
  if (a.host?.startsWith('/')) q.set('host', a.host);
  const host = a.host && !a.host.startsWith('/') ? (a.host.includes(':') ? `[${a.host}]` : a.host) : '';
  const auth = a.user !== undefined ? `${encodeURIComponent(a.user)}${a.password !== undefined ? ':***' : ''}@` : '';
  const qs = q.toString();
  return `postgres://${auth}${host}${a.port && host ? `:${a.port}` : ''}/${encodeURIComponent(a.database ?? '')}${qs ? `?${qs.replace(/%2F/g, '/')}` : ''}`;
}

/** The password of the URL (to keep out of every log line), or null. */
export function databasePassword(url: string): string | null {
  const p = parseDatabaseUrl(url)?.password;
  return p === undefined || p === '' ? null : p;
}

/** Client options from a libpq URL (see parseDatabaseUrl). */
export function clientOptions(url: string): Options<Record<string, never>> {
  const a = parseDatabaseUrl(url);
  if (!a) throw new Error('NOTIFY_DATABASE_URL is not a PostgreSQL URL (postgres://user:password@host:port/db or postgres://user@/db?host=/socket/dir)');
  const { sslmode, application_name: appName, ...rest } = a.params;
  const options: Options<Record<string, never>> = {
    max: 10,
    connect_timeout: 5,
    idle_timeout: 60,
    // The client's own default waits up to 20 s between attempts after a long outage: the
    // queries waiting meanwhile would hold senders and /health that long, and service would
    // resume that late after the database is back. One second at most.
    backoff: (attempt: number) => Math.min(0.05 * 2 ** attempt, 1),
    onnotice: () => undefined,
    connection: { ...rest, application_name: appName ?? 'notify-engine' },
  };
  if (a.host !== undefined) options.host = a.host;
  if (a.port !== undefined) options.port = a.port;
  if (a.user !== undefined) options.user = a.user;
  if (a.password !== undefined) options.pass = a.password;
  if (a.database !== undefined) options.database = a.database;
  if (sslmode !== undefined && sslmode !== 'disable') options.ssl = sslmode as Options<Record<string, never>>['ssl'];
  return options;
}

/** SQLSTATE classes that mean "the server is not there for now". */
const UNAVAILABLE_SQLSTATE = /^(08|57P|53)/;
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED']);

/** True when err says the server could not be reached (rather than the query being wrong). */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return UNAVAILABLE_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code);
}

/** Runs fn, turning "cannot reach the server" into StoreUnavailableError. */
export async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isUnavailable(err) && !(err instanceof StoreUnavailableError)) {
      const e = err as { code?: string; message?: string };
      throw new StoreUnavailableError(e.code ?? e.message ?? 'connection failed');
    }
    throw err;
  }
}

/**
 * Why the database cannot be used now (for /health), or null when it answers. Bounded by
 * timeoutMs: a partitioned server is reported rather than waited for.
 */
export async function databaseProblem(sql: Sql, timeoutMs: number): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    return await Promise.race([
      sql`SELECT 1`.then(
        () => null,
        (err: unknown) => {
          const e = err as { code?: string; message?: string };
          return e.code ?? e.message ?? 'connection failed';
        },
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** An open database: the client, and the URL with its password hidden. */
export interface Database {
  readonly sql: Sql;
  /** For logs: the URL without its password. */
  readonly where: string;
  close(): Promise<void>;
}

/** Key of the advisory lock that serialises migrations across replicas. */
const MIGRATION_LOCK = 7_461_927_301;

/** Opens the database and brings its schema up to date. */
export async function openDatabase(url: string): Promise<Database> {
  const { default: postgres } = await import('postgres');
  const sql = postgres(clientOptions(url)) as unknown as Sql;
  const db: Database = { sql, where: redactDatabaseUrl(url), close: () => sql.end({ timeout: 5 }) };
  try {
    await guarded(() => migrate(sql));
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => undefined);
    throw err;
  }
  return db;
}

/**
 * Applies the migrations this version knows and the database lacks, each once, in order.
 * The transaction-scoped advisory lock makes replicas starting together take turns; the
 * second finds the work done.
 */
export async function migrate(sql: Sql): Promise<number[]> {
  return sql.begin<number[]>(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
    const rows = await tx<{ version: number }[]>`SELECT version FROM schema_migrations`;
    const have = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (have.has(m.version)) continue;
      await tx.unsafe(m.sql);
      await tx`INSERT INTO schema_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      applied.push(m.version);
    }
    return applied;
  });
}
