/**
 * A whole runner pass: find the analyst's scripts and run them concurrently (bounded), so a
 * slow script does not delay the rest. Locking and the command line are in main.ts.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { type Outcome, OUTCOME_WORDS, OUTCOMES, scriptNameProblem, scriptStem, type Trigger } from '../shared/history.js';
import { readState, updateState } from './cooldown.js';
import { updateHealth } from './health.js';
import { stateFile } from './paths.js';
import { runScript, type RunMode, type ScriptContext, type ScriptRunResult } from './runScript.js';
import { LAST_SCHEDULED_RUN, readSchedule, scheduleReference, type ScheduleStatus, scheduleStatus } from './schedule.js';

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

/** Which scripts a pass runs, given their schedules. */
export interface PassPlan {
  /** Scripts to run now, in order. */
  run: string[];
  /** Scripts not run: their schedule has no time since their last scheduled run. */
  waiting: { name: string; next: string | null }[];
  /** Scripts with an invalid schedule: a failed run with this error, not a silent skip. */
  refused: Map<string, string>;
  /** Scripts run because of their schedule (their last scheduled run is recorded). */
  scheduled: Set<string>;
  /** Each scheduled script's schedule status, for dry runs. */
  status: Map<string, ScheduleStatus>;
}

/**
 * Decides which scripts run in this pass: those without a schedule, always; those with one
 * when a scheduled time passed since their last scheduled run (or, never run on schedule,
 * since their file was last changed); with `ignoreSchedules` (a script named on the command
 * line) every valid one.
 */
export async function planPass(ctx: ScriptContext, names: readonly string[], opts: { ignoreSchedules?: boolean } = {}): Promise<PassPlan> {
  const plan: PassPlan = { run: [], waiting: [], refused: new Map(), scheduled: new Set(), status: new Map() };
  const nowMs = ctx.clock.now();
  for (const name of names) {
    const path = join(ctx.paths.scriptsDir, name);
    let read;
    let mtimeMs: number;
    try {
      read = await readSchedule(path);
      mtimeMs = (await fsp.stat(path)).mtimeMs;
    } catch {
      plan.run.push(name); // unreadable: running it reports why
      continue;
    }
    if (read.kind === 'none') {
      plan.run.push(name);
      continue;
    }
    if (read.kind === 'invalid') {
      plan.refused.set(name, `${read.error}. The script was not run; fix the "# schedule:" line (or remove it to run on every runner pass)`);
      plan.run.push(name);
      continue;
    }
    let state: Record<string, unknown> = {};
    try {
      state = await readState(stateFile(ctx.paths, scriptStem(name)));
    } catch {
      // An unreadable state file: judged as never run on schedule; the run reports the file.
    }
    const status = scheduleStatus(read.schedule, scheduleReference(state, mtimeMs), nowMs);
    plan.status.set(name, status);
    if (opts.ignoreSchedules || status.due) {
      plan.run.push(name);
      plan.scheduled.add(name);
    } else {
      plan.waiting.push({ name, next: status.next_run });
    }
  }
  return plan;
}

/** Runs the scripts with at most `concurrency` at once; results in the order of `names`. */
export async function runScripts(
  ctx: ScriptContext,
  names: readonly string[],
  opts: { mode: RunMode; trigger: Trigger; force?: boolean; plan?: PassPlan },
): Promise<RunSummary> {
  const started = ctx.clock.now();
  const results: ScriptRunResult[] = new Array<ScriptRunResult>(names.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const i = next++;
      const name = names[i]!;
      const refuse = opts.plan?.refused.get(name);
      const result = await runScript(ctx, name, { mode: opts.mode, trigger: opts.trigger, force: opts.force ?? false, ...(refuse !== undefined ? { refuse } : {}) });
      if (opts.mode === 'send' && opts.trigger === 'schedule') {
        // Script health follows real scheduled runs only (never dry runs; on-demand runs go
        // through runScript directly and are left out on purpose, see health.ts).
        await updateHealth(ctx, result.record);
        // The scheduled time is used up by this run, unless the send API could not take the
        // notification: then the next pass tries again, as for unscheduled scripts.
        if (opts.plan?.scheduled.has(name) && result.record.outcome !== 'delivery_failed') {
          try {
            await updateState(stateFile(ctx.paths, scriptStem(name)), { [LAST_SCHEDULED_RUN]: Math.floor(started / 1000) });
          } catch (err) {
            ctx.log.line(`${name}: could not record the scheduled run (${(err as Error).message}); the next pass may run it again`);
          }
        }
      }
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
