/**
 * The delivery outcome log, `$NOTIFY_DATA_DIR/deliveries.jsonl` (rotated once to
 * `deliveries.jsonl.1`): one JSON line per notification that reached its final state. The
 * bot's outbox appends it; the dashboard and the bot's own history views read it here,
 * through the one reader, without importing the bot. In a fleet (a data directory bound to
 * the database, documents.ts) the history is the database's table `deliveries` instead,
 * and the same readers read it there.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { documentBackend } from './documents.js';

/** The log's file name in the data directory, and the name of its previous part. */
export const OUTCOME_LOG = 'deliveries.jsonl';
export const OUTCOME_LOG_ROTATED = 'deliveries.jsonl.1';

/** Size after which the log is rotated. */
export const MAX_OUTCOME_LOG = 8 * 1024 * 1024;

/** Final delivery outcome of a notification. */
export type DeliveryStatus = 'delivered' | 'refused' | 'given_up';

/** One line of deliveries.jsonl. */
export interface DeliveryOutcome {
  id: string;
  user: string;
  script?: string | undefined;
  status: DeliveryStatus;
  at: string;
  detail?: string | undefined;
}

/** Final outcomes by id (all, or those in `ids`), newest line winning. */
export async function readOutcomes(dataDir: string, ids?: ReadonlySet<string>): Promise<Map<string, DeliveryOutcome>> {
  const shared = documentBackend(dataDir);
  if (shared?.outcomes) return shared.outcomes(ids);
  const out = new Map<string, DeliveryOutcome>();
  for (const name of [OUTCOME_LOG_ROTATED, OUTCOME_LOG]) {
    let text: string;
    try {
      text = await fsp.readFile(join(dataDir, name), 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const o = JSON.parse(line) as DeliveryOutcome;
        if (!ids || ids.has(o.id)) out.set(o.id, o);
      } catch {
        // A torn last line after a crash; skip it.
      }
    }
  }
  return out;
}

/** The newest final outcome of `user`'s notifications, or null. */
export async function latestOutcomeOf(dataDir: string, user: string): Promise<DeliveryOutcome | null> {
  const shared = documentBackend(dataDir);
  if (shared?.latestOutcome) return shared.latestOutcome(user);
  let newest: DeliveryOutcome | null = null;
  for (const o of (await readOutcomes(dataDir)).values()) if (o.user === user && (!newest || o.at > newest.at)) newest = o;
  return newest;
}
