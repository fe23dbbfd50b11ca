/**
 * The commands of `notify-scripts` (list, history, run, record-delivery), loaded by main.ts
 * once there is a command to run.
 */
import { mkdirSync, promises as fsp, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { systemClock } from '../shared/clock.js';
import { ConfigError, EnvReader } from '../shared/config.js';
import { parseCooldownSeconds } from '../shared/contract.js';
import {
  HistoryStore,
  lastRunPerScript,
  newRunId,
  recentRuns,
  RULE_OUTCOMES,
  type RuleOutcome,
  RUN_ID_RE,
  type RunRecord,
  scriptNameProblem,
  scriptStem,
} from '../shared/history.js';
import { userByUid } from '../shared/posix.js';
import { SendClient } from '../shared/sendClient.js';
import { readRunnerConfig, type RunnerConfig } from '../runner/config.js';
import { readState, type ScriptState } from '../runner/cooldown.js';
import { killAllRunning } from '../runner/execute.js';
import { analystPaths, type AnalystPaths, stateFile } from '../runner/paths.js';
import { fileRunLog } from '../runner/runLog.js';
import { discoverScripts } from '../runner/runner.js';
import { runScript } from '../runner/runScript.js';
import { readSchedule, scheduleReference, scheduleStatus } from '../runner/schedule.js';
import { type ErrorAnswer, type ErrorCode, HISTORY_LIMIT, type ListedScript, RUN_META_KEY, type RunMeta } from './protocol.js';


class CliError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: Omit<ErrorAnswer, 'error' | 'code'> = {},
  ) {
    super(message);
  }
}

/** Where the helper writes. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Runs one command; returns the exit status. */
export async function runCommand(command: string, rest: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  try {
    const paths = analystPaths(resolveHome(env));
    switch (command) {
      case 'list':
        parseArgs({ args: rest, options: {}, strict: true, allowPositionals: false });
        return print(io, await listScripts(paths, systemClock.now()), true);
      case 'history':
        return print(io, await history(paths, rest), true);
      case 'run':
        return await runOnDemand(paths, env, rest, io);
      case 'record-delivery':
        return print(io, await recordDelivery(paths, rest), false);
      default:
        throw new CliError('usage', `unknown command '${command}' (commands: list, history, run, record-delivery; see --help)`);
    }
  } catch (err) {
    const answer = (a: ErrorAnswer): number => {
      io.out(`${JSON.stringify(a)}\n`);
      return 1;
    };
    if (err instanceof CliError) return answer({ error: err.message, code: err.code, ...err.extra });
    if (err instanceof ConfigError) return answer({ error: err.message, code: 'usage' });
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) return answer({ error: (err as Error).message, code: 'usage' });
    io.err(`${(err as Error).stack ?? String(err)}\n`);
    return answer({ error: `internal error: ${(err as Error).message}`, code: 'internal' });
  }
}

function print(io: Io, value: unknown, pretty: boolean): number {
  io.out(`${pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value)}\n`);
  return 0;
}

/**
 * $HOME, as docs/notifications.md says; but when it is not the home of the user we run as (sudo
 * configured to keep the caller's HOME), the passwd entry's home instead: the helper must
 * work on the analyst's files, never on the calling service's.
 */
function resolveHome(env: NodeJS.ProcessEnv): string {
  const uid = process.getuid?.();
  const fromEnv = env.HOME && isAbsolute(env.HOME) ? env.HOME : undefined;
  if (fromEnv !== undefined) {
    try {
      if (uid === undefined || statSync(fromEnv).uid === uid) return fromEnv;
    } catch {
      // fall through to the passwd entry
    }
  }
  const entry = uid !== undefined ? userByUid(uid) : null;
  return entry?.home ?? fromEnv ?? homedir();
}

function checkName(name: string | undefined): string {
  if (name === undefined) throw new CliError('usage', 'give the script name, such as report.py');
  const problem = scriptNameProblem(name);
  if (problem) throw new CliError('invalid_name', problem);
  return name;
}

function readConfig(env: NodeJS.ProcessEnv): RunnerConfig {
  const reader = new EnvReader('scripts', env);
  const config = readRunnerConfig(reader);
  reader.done();
  return config;
}

async function listScripts(paths: AnalystPaths, nowMs: number): Promise<ListedScript[]> {
  const found = await discoverScripts(paths.scriptsDir);
  const records = await new HistoryStore(paths.history).readAll();
  const last = lastRunPerScript(records);
  const lastCooldown = new Map<string, string>();
  for (const r of records) if (r.cooldown) lastCooldown.set(r.script, r.cooldown);
  const out: ListedScript[] = [];
  for (const name of found.scripts) {
    const stem = scriptStem(name);
    const run = last.get(name);
    const item: ListedScript = {
      name,
      stem,
      last_run: run?.time ?? null,
      last_outcome: run?.outcome ?? null,
      last_sent: null,
    };
    if (run) item.last_trigger = run.trigger;
    if (run?.error) item.last_error = run.error;
    if (run?.warning) item.last_warning = run.warning;
    const cooldown = lastCooldown.get(name);
    if (cooldown) item.cooldown = cooldown;
    let state: ScriptState = {};
    try {
      state = await readState(stateFile(paths, stem));
      if (state.last_sent !== undefined) {
        item.last_sent = new Date(state.last_sent * 1000).toISOString();
        const seconds = cooldown ? parseCooldownSeconds(cooldown) : null;
        if (seconds !== null && (state.last_sent + seconds) * 1000 > nowMs) {
          item.cooldown_until = new Date((state.last_sent + seconds) * 1000).toISOString();
        }
      }
      const failures = state.consecutive_failures;
      if (typeof failures === 'number' && Number.isInteger(failures) && failures > 0) item.consecutive_failures = failures;
      if (state.health_state === 'failing') item.health_failing = true;
    } catch (err) {
      item.state_error = (err as Error).message;
    }
    await addSchedule(item, join(paths.scriptsDir, name), state, nowMs);
    out.push(item);
  }
  return out;
}

/** Adds the script's schedule and next run to its list entry, when it has a schedule. */
async function addSchedule(item: ListedScript, path: string, state: Record<string, unknown>, nowMs: number): Promise<void> {
  let read;
  let mtimeMs;
  try {
    read = await readSchedule(path);
    mtimeMs = (await fsp.stat(path)).mtimeMs;
  } catch {
    return;
  }
  if (read.kind === 'invalid') {
    item.schedule = read.text;
    item.schedule_error = read.error;
  } else if (read.kind === 'ok') {
    const status = scheduleStatus(read.schedule, scheduleReference(state, mtimeMs), nowMs);
    item.schedule = status.schedule;
    item.schedule_zone = status.schedule_zone;
    item.next_run = status.next_run;
    item.schedule_due = status.due;
  }
}

async function history(paths: AnalystPaths, argv: string[]): Promise<RunRecord[]> {
  const { values } = parseArgs({
    args: argv,
    options: { limit: { type: 'string' }, script: { type: 'string' } },
    strict: true,
    allowPositionals: false,
  });
  let limit: number = HISTORY_LIMIT.default;
  if (values.limit !== undefined) {
    limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > HISTORY_LIMIT.max) {
      throw new CliError('usage', `--limit must be a whole number from 1 to ${HISTORY_LIMIT.max} (got '${values.limit}')`);
    }
  }
  const script = values.script === undefined ? undefined : checkName(values.script);
  const records = await new HistoryStore(paths.history).readAll();
  return recentRuns(records, { limit, ...(script !== undefined ? { script } : {}) });
}

async function runOnDemand(paths: AnalystPaths, env: NodeJS.ProcessEnv, argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { 'run-id': { type: 'string' }, 'with-image': { type: 'boolean', default: false } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 1) throw new CliError('usage', 'give one script name');
  const name = checkName(positionals[0]);
  const runId = values['run-id'];
  if (runId !== undefined && !RUN_ID_RE.test(runId)) throw new CliError('usage', '--run-id must be 1 to 64 letters, digits, "_" or "-"');
  const config = readConfig(env);
  const found = await discoverScripts(paths.scriptsDir);
  if (!found.scripts.includes(name)) throw new CliError('not_found', `no script ${name} in ${paths.scriptsDir}`);

  let history: HistoryStore | null = null;
  try {
    for (const dir of [paths.baseDir, paths.logsDir]) mkdirSync(dir, { recursive: true, mode: 0o700 });
    history = new HistoryStore(paths.history, config.history);
  } catch (err) {
    io.err(`notify-scripts: cannot create ${paths.baseDir} (the run is not recorded): ${(err as Error).message}\n`);
  }
  const log = fileRunLog(paths.runnerLog);
  const onTerm = (): void => {
    killAllRunning();
    process.exit(143);
  };
  process.once('SIGTERM', onTerm);
  let result;
  try {
    // Script health (src/runner/health.ts) is left alone on purpose: an on-demand run's
    // result is shown to the analyst who asked for it, so its failures need no alert, and
    // the state file keeps one writer (notify-runner, under its lock). The next scheduled
    // run reports a fixed script as recovered.
    result = await runScript(
      { paths, config, env, clock: systemClock, log, history, client: new SendClient(config.socketPath, config.sendTimeoutMs) },
      name,
      { mode: 'hand_over', trigger: 'on_demand', runId: runId ?? newRunId(), loadImage: values['with-image'] },
    );
  } finally {
    process.off('SIGTERM', onTerm);
  }
  const rec = result.record;
  if ((rec.outcome === 'pending_delivery' || rec.outcome === 'nothing_to_send') && result.raw) {
    const out: Record<string, unknown> = { ...result.raw };
    if (!(RUN_META_KEY in out)) {
      const meta: RunMeta = { id: rec.run_id, outcome: rec.outcome, duration_ms: rec.duration_ms };
      if (rec.warning) meta.warning = rec.warning;
      if (result.image) {
        meta.image = {
          filename: result.image.filename,
          content_type: result.image.contentType as NonNullable<RunMeta['image']>['content_type'],
          size: result.image.bytes.length,
          base64: Buffer.from(result.image.bytes).toString('base64'),
        };
      }
      if (result.imageError) meta.image_error = result.imageError;
      out[RUN_META_KEY] = meta;
    }
    return print(io, out, false);
  }
  const phrase =
    rec.outcome === 'timed_out'
      ? `${name} ${rec.error ?? 'timed out'}`
      : rec.outcome === 'invalid_output'
        ? `${name} printed invalid output: ${rec.error ?? ''}`
        : `${name} failed: ${rec.error ?? 'unknown error'}`;
  const code: ErrorCode = rec.outcome === 'timed_out' || rec.outcome === 'invalid_output' ? rec.outcome : 'failed';
  throw new CliError(code, phrase, { outcome: rec.outcome, run_id: rec.run_id, ...(rec.exit_code !== null ? { exit_code: rec.exit_code } : {}) });
}

async function recordDelivery(paths: AnalystPaths, argv: string[]): Promise<RunRecord> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { queued: { type: 'boolean', default: false }, failed: { type: 'string' }, outcome: { type: 'string' }, until: { type: 'string' } },
    strict: true,
    allowPositionals: true,
  });
  const [runId, notificationId, ...extra] = positionals;
  if (runId === undefined || !RUN_ID_RE.test(runId)) throw new CliError('usage', 'give the run id (from "_run.id" of notify-scripts run)');
  if (extra.length > 0) throw new CliError('usage', 'too many arguments');
  let report;
  if (values.failed !== undefined) {
    if (notificationId !== undefined) throw new CliError('usage', 'give either a notification id or --failed REASON, not both');
    report = { error: values.failed.slice(0, 1000) };
  } else {
    if (notificationId === undefined || notificationId.length > 200) throw new CliError('usage', 'give the notification id the send API returned, or --failed REASON');
    const outcome = values.outcome;
    if (outcome !== undefined && !(RULE_OUTCOMES as readonly string[]).includes(outcome)) {
      throw new CliError('usage', `--outcome must be one of ${RULE_OUTCOMES.join(', ')}`);
    }
    if (values.until !== undefined && Number.isNaN(Date.parse(values.until))) throw new CliError('usage', '--until must be an ISO-8601 time');
    report = {
      id: notificationId,
      queued: values.queued,
      ...(outcome !== undefined ? { outcome: outcome as RuleOutcome } : {}),
      ...(values.until !== undefined ? { until: values.until } : {}),
    };
  }
  const updated = await new HistoryStore(paths.history).recordDelivery(runId, report);
  if (!updated) throw new CliError('unknown_run', `no on-demand run ${runId} in ${paths.history}`);
  return updated;
}
