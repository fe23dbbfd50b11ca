/**
 * The delivery history of a fleet: the table `deliveries` (final outcome per notification
 * id, written by the lease holder's outbox), read by every replica's history views.
 */
import type { DeliveryOutcome } from '../outcomeLog.js';
import type { Sql } from './database.js';
import { guarded } from './database.js';

function parse(rows: Array<{ body: string }>): DeliveryOutcome[] {
  const out: DeliveryOutcome[] = [];
  for (const r of rows) {
    try {
      out.push(JSON.parse(r.body) as DeliveryOutcome);
    } catch {
      // Written by the outbox as one JSON value; never torn.
    }
  }
  return out;
}

/** Final outcomes by id from the database: all, or those in `ids`. */
export async function readPgOutcomes(sql: Sql, ids?: ReadonlySet<string>): Promise<Map<string, DeliveryOutcome>> {
  const out = new Map<string, DeliveryOutcome>();
  if (ids && ids.size === 0) return out;
  const rows = await guarded(() =>
    ids ? sql<{ body: string }[]>`SELECT body FROM deliveries WHERE id = ANY(${[...ids]}::text[])` : sql<{ body: string }[]>`SELECT body FROM deliveries ORDER BY at`,
  );
  for (const o of parse(rows)) out.set(o.id, o);
  return out;
}

/** The newest final outcome of `user`'s notifications, or null. */
export async function latestPgOutcome(sql: Sql, user: string): Promise<DeliveryOutcome | null> {
  const rows = await guarded(() => sql<{ body: string }[]>`SELECT body FROM deliveries WHERE (body::jsonb)->>'user' = ${user} ORDER BY at DESC LIMIT 1`);
  return parse(rows)[0] ?? null;
}
