/**
 * One pass of `notify-runner` once its command line and settings are read: the scheduled
 * run under the lock, or --dry-run. Loaded by main.ts only when there is a pass to do.
 */
import { mkdirSync } from 'node:fs';
import type { Clock } from '../shared/clock.js';
import { HistoryStore, scriptNameProblem } from '../shared/history.js';
import { type HeldLock, tryLock } from '../shared/lock.js';
import { SendClient } from '../shared/sendClient.js';
import type { RunnerConfig } from './config.js';
import { killAllRunning } from './execute.js';
import { describeImage } from './image.js';
import { EXIT, type Io } from './main.js';
import type { AnalystPaths } from './paths.js';
import { fileRunLog, localTimestamp, memoryRunLog, rotateIfLarge, type RunLog } from './runLog.js';
import { discoverScripts, describeCounts, type PassPlan, planPass, runScripts, type RunSummary } from './runner.js';
import { formatDuration, type ScriptContext } from './runScript.js';

const LOG_ROTATE_BYTES = 5 * 1024 * 1024;

/** The command line's choices for a pass. */
export interface PassArgs {
  script: string | undefined;
  dryRun: boolean;
  force: boolean;
}

/** Runs one pass; returns the exit status. */
export async function runPass(args: PassArgs, config: RunnerConfig, paths: AnalystPaths, env: NodeJS.ProcessEnv, io: Io, clock: Clock): Promise<number> {
  let only: string | undefined;
  if (args.script !== undefined) {
    only = args.script.endsWith('.py') ? args.script : `${args.script}.py`;
    const problem = scriptNameProblem(only);
    if (problem) {
      io.err(`notify-runner: --script: ${problem}\n`);
      return EXIT.usage;
    }
  }

  if (args.dryRun) return dryRun(paths, config, env, io, only, args.force, clock);

  try {
    for (const dir of [paths.baseDir, paths.stateDir, paths.logsDir]) mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    io.err(`notify-runner: cannot create ${paths.baseDir}: ${(err as Error).message}\n`);
    return EXIT.cannotRun;
  }
  const log = fileRunLog(paths.runnerLog, io.isTty ? io.out : undefined);

  let lock: HeldLock | null;
  try {
    lock = tryLock(paths.runnerLock, 0o600);
  } catch (err) {
    log.line(`cannot take the lock ${paths.runnerLock}: ${(err as Error).message}`);
    io.err(`notify-runner: cannot take the lock ${paths.runnerLock}: ${(err as Error).message}\n`);
    return EXIT.cannotRun;
  }
  if (lock === null) {
    log.line(`another notify-runner is still running (it holds ${paths.runnerLock}); leaving it to finish, nothing run`);
    return EXIT.ok;
  }

  const onSignal = (signal: NodeJS.Signals, code: number): void => {
    killAllRunning();
    log.line(`interrupted by ${signal}; the running scripts were stopped`);
    lock?.release();
    process.exit(code);
  };
  const onTerm = (): void => onSignal('SIGTERM', 143);
  const onInt = (): void => onSignal('SIGINT', 130);
  const onHup = (): void => onSignal('SIGHUP', 129);
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  process.once('SIGHUP', onHup);
  try {
    rotateIfLarge(paths.runnerLog, LOG_ROTATE_BYTES);
    return await scheduledRun(paths, config, env, log, io, only, args.force, clock);
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    process.off('SIGHUP', onHup);
    lock.release();
  }
}

function context(paths: AnalystPaths, config: RunnerConfig, env: NodeJS.ProcessEnv, log: RunLog, history: HistoryStore | null, clock: Clock): ScriptContext {
  return { paths, config, env, clock, log, history, client: new SendClient(config.socketPath, config.sendTimeoutMs) };
}

/** Finds the scripts to run, or the exit status and message of why it cannot. */
async function selectScripts(paths: AnalystPaths, only: string | undefined, log: RunLog): Promise<string[] | { status: number; message: string }> {
  let found;
  try {
    found = await discoverScripts(paths.scriptsDir);
  } catch (err) {
    return { status: EXIT.cannotRun, message: `cannot read ${paths.scriptsDir}: ${(err as Error).message}` };
  }
  for (const s of found.skipped) log.line(`${s.name}: skipped: ${s.reason}`);
  if (only !== undefined) {
    if (!found.scripts.includes(only)) return { status: EXIT.usage, message: `no script ${only} in ${paths.scriptsDir}` };
    return [only];
  }
  return found.scripts;
}

async function scheduledRun(
  paths: AnalystPaths,
  config: RunnerConfig,
  env: NodeJS.ProcessEnv,
  log: RunLog,
  io: Io,
  only: string | undefined,
  force: boolean,
  clock: Clock,
): Promise<number> {
  const selected = await selectScripts(paths, only, log);
  if (!Array.isArray(selected)) {
    log.line(selected.message);
    io.err(`notify-runner: ${selected.message}\n`);
    return selected.status;
  }
  if (selected.length === 0) {
    log.line(`no scripts to run in ${paths.scriptsDir}`);
    return EXIT.ok;
  }
  const ctx = context(paths, config, env, log, new HistoryStore(paths.history, config.history), clock);
  const plan = await planPass(ctx, selected, { ignoreSchedules: only !== undefined });
  log.line(`run started: ${plan.run.length} script${plan.run.length === 1 ? '' : 's'}${force ? ' (--force: cooldowns ignored)' : ''}${describeWaiting(plan)}`);
  const summary = await runScripts(ctx, plan.run, { mode: 'send', trigger: 'schedule', force, plan });
  log.line(`run finished in ${formatDuration(summary.durationMs)}: ${describeCounts(summary.counts)}`);
  return exitStatus(summary, config, log, io);
}

/** `; 2 waiting for their schedule (daily.py next 2026-05-04T09:00:00+02:00, ...)`, or ''. */
function describeWaiting(plan: PassPlan): string {
  if (plan.waiting.length === 0) return '';
  const each = plan.waiting.map((w) => `${w.name} next ${w.next ? localTimestamp(new Date(w.next)) : 'never'}`).join(', ');
  return `; ${plan.waiting.length} waiting for ${plan.waiting.length === 1 ? 'its' : 'their'} schedule (${each})`;
}

function exitStatus(summary: RunSummary, config: RunnerConfig, log: RunLog, io: Io): number {
  if (summary.deliveryAttempts > 0 && summary.deliveryUnavailable === summary.deliveryAttempts) {
    const message = `the send API at ${config.socketPath} was unreachable or failing for every notification (${summary.deliveryAttempts}); they will be sent by the next run`;
    log.line(message);
    io.err(`notify-runner: ${message}\n`);
    return EXIT.sendApiUnavailable;
  }
  return EXIT.ok;
}

function indent(label: string, text: string): string {
  const lines = text.split('\n');
  return `  ${label.padEnd(8)} ${lines.join(`\n  ${' '.repeat(8)} `)}\n`;
}

/** --dry-run: what would happen, on stdout; nothing is sent, written or recorded. */
async function dryRun(
  paths: AnalystPaths,
  config: RunnerConfig,
  env: NodeJS.ProcessEnv,
  io: Io,
  only: string | undefined,
  force: boolean,
  clock: Clock,
): Promise<number> {
  const log = memoryRunLog();
  const selected = await selectScripts(paths, only, log);
  for (const l of log.lines) io.out(`${l}\n`);
  if (!Array.isArray(selected)) {
    io.err(`notify-runner: ${selected.message}\n`);
    return selected.status;
  }
  if (selected.length === 0) {
    io.out(`No scripts in ${paths.scriptsDir}.\n`);
    return EXIT.ok;
  }
  const ctx = context(paths, config, env, log, null, clock);
  const plan = await planPass(ctx, selected, { ignoreSchedules: only !== undefined });
  for (const w of plan.waiting) {
    io.out(`${w.name}: waiting for its schedule ${plan.status.get(w.name)?.schedule ?? ''}; next run ${w.next ? localTimestamp(new Date(w.next)) : 'never'} (--script ${w.name} runs it now)\n`);
  }
  const summary = await runScripts(ctx, plan.run, { mode: 'dry_run', trigger: 'schedule', force, plan });
  for (const r of summary.results) {
    const rec = r.record;
    const sched = plan.status.get(rec.script);
    if (sched) io.out(`${rec.script}: schedule ${sched.schedule}${only !== undefined && !sched.due ? ' (not due; run because you named it)' : ' (due)'}\n`);
    const cd = r.cooldown;
    const lastSent = cd?.lastSent !== undefined ? `last sent ${localTimestamp(new Date(cd.lastSent * 1000))}` : 'never sent before';
    switch (rec.outcome) {
      case 'sent': {
        const why = force && cd?.held ? `cooldown ${cd.text} ignored (--force)` : `cooldown ${cd?.text ?? '?'} does not hold it`;
        io.out(`${rec.script}: would send (${why}; ${lastSent}) [${formatDuration(rec.duration_ms)}]\n`);
        const f = r.fields ?? {};
        if (typeof f.title === 'string') io.out(indent('title:', f.title));
        if (typeof f.message === 'string') io.out(indent('message:', f.message));
        if (r.image) io.out(indent('image:', describeImage(r.image)));
        if (f.data !== undefined) io.out(indent('data:', JSON.stringify(f.data)));
        if (f.urgent === true) io.out(indent('urgent:', 'yes: breaks through your quiet hours'));
        if (f.only_if_changed === true) io.out(indent('changed:', 'only_if_changed: the bot sends it only if data differs from the last alert it sent'));
        break;
      }
      case 'held_by_cooldown':
        io.out(
          `${rec.script}: would be held by cooldown ${cd?.text ?? ''} until ${rec.held_until ? localTimestamp(new Date(rec.held_until)) : '?'} (${lastSent}); --force would send it\n`,
        );
        break;
      case 'nothing_to_send':
        io.out(`${rec.script}: nothing to send (notify is false) [${formatDuration(rec.duration_ms)}]\n`);
        break;
      default:
        io.out(`${rec.script}: ${rec.outcome.replace(/_/g, ' ')}: ${rec.error ?? ''}\n`);
    }
    if (rec.warning) io.out(indent('warning:', rec.warning));
  }
  io.out('Dry run: nothing was sent, no state or history was changed. (A real run may still be snoozed, muted or held for quiet hours by your rules in the bot.)\n');
  return EXIT.ok;
}
