/**
 * Per-script state, `~/.notifications/state/<stem>.json` = `{"last_sent": <unix seconds>}`
 * (the cooldown) plus the script-health keys (health.ts); other keys are kept. Written
 * atomically; a file that cannot be parsed is reported and left alone, never replaced.
 * Only the scheduled runner writes it, under its lock (on-demand runs leave it alone), so
 * a read-modify-write here does not race another writer.
 */
import { z } from 'zod';
import { CorruptFileError, readJsonIfExists, writeFileAtomic } from '../shared/jsonFile.js';

const StateSchema = z.looseObject({ last_sent: z.number().optional() });
export type ScriptState = z.infer<typeof StateSchema>;

/** Reads a state file; `{}` when there is none. Throws CorruptFileError when unreadable. */
export async function readState(path: string): Promise<ScriptState> {
  const value = await readJsonIfExists(path);
  if (value === undefined) return {};
  const r = StateSchema.safeParse(value);
  if (!r.success) throw new CorruptFileError(path, 'expected {"last_sent": <unix seconds>}');
  return r.data;
}

/**
 * Sets the given keys (a key set to undefined is removed), keeping the file's other keys.
 * Throws CorruptFileError, leaving the file alone, when the current one is unreadable.
 */
export async function updateState(path: string, changes: Record<string, unknown>): Promise<ScriptState> {
  const next: Record<string, unknown> = { ...(await readState(path)) };
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete next[k];
    else next[k] = v;
  }
  await writeFileAtomic(path, `${JSON.stringify(next)}\n`, 0o600);
  return next;
}

/** Sets last_sent (and the given extra keys), keeping the file's other keys. */
export async function recordSent(path: string, nowSeconds: number, extra: Record<string, unknown> = {}): Promise<void> {
  await updateState(path, { ...extra, last_sent: nowSeconds });
}

/** Whether the cooldown holds a notification now. */
export interface CooldownDecision {
  held: boolean;
  /** Unix seconds when the next notification may go, when held. */
  until?: number;
}

/** A notification is held while fewer than `cooldownSeconds` passed since the last one sent. */
export function cooldownDecision(state: ScriptState, cooldownSeconds: number, nowSeconds: number): CooldownDecision {
  if (state.last_sent === undefined) return { held: false };
  const until = state.last_sent + cooldownSeconds;
  return nowSeconds < until ? { held: true, until } : { held: false };
}
