/**
 * A whole runner pass: find the analyst's scripts and run them concurrently (bounded), so a
 * slow script does not delay the rest. Locking and the command line are in main.ts.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { type Outcome, OUTCOME_WORDS, OUTCOMES, scriptNameProblem, type Trigger } from '../shared/history.js';
import { updateHealth } from './health.js';
import { runScript, type RunMode, type ScriptContext, type ScriptRunResult } from './runScript.js';

/** The scripts found in `~/user/notifications`. */
export interface Discovery {
  /** Runnable script file names, sorted. */
  scripts: string[];
  /** `.py` files not run, with the reason. */
  skipped: { name: string; reason: string }[];
  /** The scripts directory does not exist. */
  missingDir: boolean;
}

/** Lists `*.py` files (not hidden ones, like a shell glob) that are regular files with valid names. */
export async function discoverScripts(dir: string): Promise<Discovery> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { scripts: [], skipped: [], missingDir: true };
    throw err;
  }
  const scripts: string[] = [];
  const skipped: Discovery['skipped'] = [];
  for (const name of names.sort()) {
    if (!name.endsWith('.py') || name.startsWith('.')) continue;
    const problem = scriptNameProblem(name);
    if (problem) {
      skipped.push({ name, reason: problem });
      continue;
    }
    try {
      const st = await fsp.stat(join(dir, name));
      if (!st.isFile()) {
        skipped.push({ name, reason: 'not a regular file' });
        continue;
      }
    } catch (err) {
      skipped.push({ name, reason: `cannot be read: ${(err as Error).message}` });
      continue;
    }
    scripts.push(name);
  }
  return { scripts, skipped, missingDir: false };
}

/** The results of a pass. */
export interface RunSummary {
  results: ScriptRunResult[];
  counts: Record<Outcome, number>;
  /** Sends attempted, and those that failed because the send API was unreachable or 5xx. */
  deliveryAttempts: number;
  deliveryUnavailable: number;
  durationMs: number;
}

/** Runs the scripts with at most `concurrency` at once; results in the order of `names`. */
export async function runScripts(
  ctx: ScriptContext,
  names: readonly string[],
  opts: { mode: RunMode; trigger: Trigger; force?: boolean },
): Promise<RunSummary> {
  const started = ctx.clock.now();
  const results: ScriptRunResult[] = new Array<ScriptRunResult>(names.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const i = next++;
      const result = await runScript(ctx, names[i]!, { mode: opts.mode, trigger: opts.trigger, force: opts.force ?? false });
      // Script health follows real scheduled runs only (never dry runs; on-demand runs go
      // through runScript directly and are left out on purpose, see health.ts).
      if (opts.mode === 'send' && opts.trigger === 'schedule') await updateHealth(ctx, result.record);
      results[i] = result;
    }
  };
  const workers = Array.from({ length: Math.min(ctx.config.concurrency, names.length) }, () => worker());
  await Promise.all(workers);

  const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  let deliveryAttempts = 0;
  let deliveryUnavailable = 0;
  for (const r of results) {
    counts[r.record.outcome]++;
    if (r.delivery) {
      deliveryAttempts++;
      if (!r.delivery.ok && r.delivery.unavailable) deliveryUnavailable++;
    }
  }
  return { results, counts, deliveryAttempts, deliveryUnavailable, durationMs: ctx.clock.now() - started };
}


/** `2 sent, 1 held by cooldown, 1 failed`. */
export function describeCounts(counts: Record<Outcome, number>): string {
  const parts = OUTCOMES.filter((o) => counts[o] > 0).map((o) => `${counts[o]} ${OUTCOME_WORDS[o]}`);
  return parts.length > 0 ? parts.join(', ') : 'no scripts';
}
