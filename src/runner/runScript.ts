/**
 * One run of one script, the same way for the scheduled runner and for on-demand runs:
 * execute with the limits, validate the output, then (scheduled) apply the cooldown and
 * send, or (on demand) hand the result back to the caller; record the run in the history
 * and the log in words the analyst can act on.
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../shared/clock.js';
import type { ScriptOutput } from '../shared/contract.js';
import { type HistoryStore, lastedText, newRunId, type Outcome, type RunRecord, scriptStem, type Trigger } from '../shared/history.js';
import type { PhotoUpload, SendClient } from '../shared/sendClient.js';
import type { RunnerConfig } from './config.js';
import { type CooldownDecision, cooldownDecision, readState, recordSent, updateState } from './cooldown.js';
import { ACTIVE_ALERT, activeAlertOf, nextActiveAlert, sendResolvedNotice } from './resolved.js';
import { deliver, type DeliveryResult, escapeLegacyMarkdown, notificationFields } from './deliver.js';
import { executeScript, type ExecResult, stderrExcerpt } from './execute.js';
import { ImageError, loadImage } from './image.js';
import { effectiveCooldown, parseScriptOutput } from './output.js';
import { type AnalystPaths, stateFile } from './paths.js';
import { localTimestamp, type RunLog } from './runLog.js';

/** What running scripts needs from the outside world. */
export interface ScriptContext {
  paths: AnalystPaths;
  config: RunnerConfig;
  /** Environment the scripts get (plus NOTIFY_TRIGGER). */
  env: NodeJS.ProcessEnv;
  clock: Clock;
  log: RunLog;
  /** Where runs are recorded; null records nothing (dry runs). */
  history: HistoryStore | null;
  client: SendClient;
}

/**
 * What to do with a valid result: `send` applies the cooldown and sends (the runner);
 * `dry_run` only says what would happen; `hand_over` returns it to the caller, which
 * delivers it (on-demand runs: no cooldown, no state change).
 */
export type RunMode = 'send' | 'dry_run' | 'hand_over';

export interface ScriptRunOptions {
  trigger: Trigger;
  mode: RunMode;
  /** Ignore the cooldown (send mode). */
  force?: boolean;
  /** Use this run id instead of a new one. */
  runId?: string;
  /** Read and check the image in hand_over mode, so the caller can upload its bytes. */
  loadImage?: boolean;
  /** Do not run the script: record a failed run with this error (an invalid schedule). */
  refuse?: string;
}

/** The result of one script's run. */
export interface ScriptRunResult {
  record: RunRecord;
  output?: ScriptOutput;
  /** The object the script printed, as printed. */
  raw?: Record<string, unknown>;
  /** The fields that were (or would be) sent. */
  fields?: Record<string, unknown>;
  image?: PhotoUpload;
  imageError?: string;
  cooldown?: CooldownDecision & { text: string; lastSent?: number };
  delivery?: DeliveryResult;
}

/** `~/.venv/bin/python` when it is there, else `python3` from PATH. */
export function pythonFor(paths: AnalystPaths): string {
  try {
    accessSync(paths.venvPython, constants.X_OK);
    return paths.venvPython;
  } catch {
    return 'python3';
  }
}

/** A duration for people: `500 ms`, `2 s`, `1 min`, `1.5 h`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
  if (s < 3600) return `${+(s / 60).toFixed(1)} min`;
  return `${+(s / 3600).toFixed(1)} h`;
}

function formatSize(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / 1024 / 1024} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}


/** Why an execution did not produce a usable result, or null when it exited 0. */
function executionFailure(exec: ExecResult, config: RunnerConfig, python: string): { outcome: Outcome; error: string } | null {
  const stderr = stderrExcerpt(exec.stderrTail);
  const withStderr = (text: string): string => (stderr ? `${text}: ${stderr}` : text);
  switch (exec.end.kind) {
    case 'spawn_failed':
      return {
        outcome: 'failed',
        error: `could not start ${python}: ${exec.end.error}${/ENOENT/.test(exec.end.error) ? ' (is Python installed and on PATH?)' : ''}`,
      };
    case 'timed_out':
      return { outcome: 'timed_out', error: withStderr(`timed out after ${formatDuration(config.timeoutMs)} and was stopped`) };
    case 'output_too_large':
      return {
        outcome: 'failed',
        error: `printed more than ${formatSize(config.maxOutputBytes)} on stdout and was stopped; print one small JSON object (debug output goes to stderr, data to files)`,
      };
    case 'interrupted':
      return { outcome: 'failed', error: 'stopped because the runner was interrupted' };
    case 'exited':
      if (exec.end.signal) return { outcome: 'failed', error: withStderr(`was killed by ${exec.end.signal}`) };
      if (exec.end.exitCode !== 0) return { outcome: 'failed', error: stderr ? `exited with code ${exec.end.exitCode}: ${stderr}` : `exited with code ${exec.end.exitCode} (no error output)` };
      return null;
  }
}

function shortTitle(title: string | null | undefined): string | undefined {
  if (typeof title !== 'string' || title.trim() === '') return undefined;
  return title.length > 200 ? `${title.slice(0, 199)}…` : title;
}

/** ` until 2025-05-01T14:05:00+02:00` (local time), or '' without a time. */
function untilText(word: string, iso: string | undefined): string {
  return iso ? ` ${word} ${localTimestamp(new Date(iso))}` : '';
}

/** One line describing a finished run (the log's wording). */
export function describeRun(record: RunRecord): string {
  const took = ` [${formatDuration(record.duration_ms)}]`;
  const tag = record.trigger === 'on_demand' ? ' (on demand)' : '';
  const warn = record.warning ? `; warning: ${record.warning}` : '';
  switch (record.outcome) {
    case 'sent':
      return `${record.script}${tag}: sent, id ${record.id ?? '?'}${record.queued ? ' (queued for delivery)' : ''}${warn}${took}`;
    case 'pending_delivery':
      return `${record.script}${tag}: result handed to the service that asked for the run${warn}${took}`;
    case 'held_by_cooldown': {
      const until = record.held_until ? ` until ${localTimestamp(new Date(record.held_until))}` : '';
      return `${record.script}${tag}: held by cooldown ${record.cooldown ?? ''}${until} (use --force to send anyway)${warn}${took}`;
    }
    case 'nothing_to_send': {
      const resolved = record.resolved_alert
        ? `; the condition of alert ${record.resolved_alert} cleared after ${lastedText(record.resolved_after_ms ?? 0)}, resolved notice ${record.resolved_notice ?? 'not sent'}${record.resolved_notice_held ? ` held for the quiet-hours digest${untilText('sent at', record.resolved_notice_until)}` : ''}`
        : '';
      return `${record.script}${tag}: nothing to send${resolved}${warn}${took}`;
    }
    case 'failed':
      return `${record.script}${tag}: failed: ${record.error ?? 'unknown error'}${took}`;
    case 'timed_out':
      return `${record.script}${tag}: timed out: ${record.error ?? ''}${took}`;
    case 'invalid_output':
      return `${record.script}${tag}: invalid output: ${record.error ?? ''}${took}`;
    case 'delivery_failed':
      return `${record.script}${tag}: delivery failed (will try again next run): ${record.error ?? ''}${warn}${took}`;
    case 'snoozed':
      return `${record.script}${tag}: not sent: snoozed${untilText('until', record.held_until)}, id ${record.id ?? '?'}${warn}${took}`;
    case 'muted':
      return `${record.script}${tag}: not sent: muted${untilText('until', record.held_until) || ' until unmuted'}, id ${record.id ?? '?'}${warn}${took}`;
    case 'unchanged':
      return `${record.script}${tag}: not sent: unchanged (only_if_changed, and the data is the same as in the last sent alert), id ${record.id ?? '?'}${warn}${took}`;
    case 'held_quiet_hours':
      return `${record.script}${tag}: held for the quiet-hours digest${untilText('sent at', record.held_until)}, id ${record.id ?? '?'}${warn}${took}`;
  }
}

/**
 * A scheduled run printed notify: false: when the script's last alert was a condition
 * (send_resolved) still active, send its resolved notice and clear it. Returns what goes
 * into the run's record; a notice the send API could not take stays due for the next run.
 */
async function resolveActiveAlert(ctx: ScriptContext, name: string, warnings: string[]): Promise<Partial<RunRecord>> {
  const statePath = stateFile(ctx.paths, scriptStem(name));
  let alert;
  try {
    alert = activeAlertOf(await readState(statePath));
  } catch (err) {
    warnings.push(`could not read the state to see whether an alert is to be resolved: ${(err as Error).message}`);
    return {};
  }
  if (!alert) return {};
  const nowMs = ctx.clock.now();
  const lastedMs = Math.max(0, nowMs - alert.since * 1000);
  const res = await sendResolvedNotice(ctx.client, name, alert, nowMs);
  if (!res.ok && (res.unavailable || res.status === 429)) {
    warnings.push(`the resolved notice of alert ${alert.id} could not be sent (${res.error}); the next run tries again`);
    return {};
  }
  // Refused (a destination no longer allowed, nothing linked to take it): asking again on
  // every run would not change that, so the condition is closed without its notice.
  if (!res.ok) warnings.push(`the resolved notice of alert ${alert.id} was refused (${res.error}); the condition is closed without it`);
  try {
    await updateState(statePath, { [ACTIVE_ALERT]: undefined });
  } catch (err) {
    warnings.push(`resolved notice sent, but the state could not be saved (${(err as Error).message}); the next run may send it again`);
  }
  if (ctx.history) {
    await ctx.history.markResolved(alert.id, new Date(nowMs), lastedMs).catch((err: unknown) => ctx.log.line(`${name}: could not mark alert ${alert.id} resolved in the history: ${(err as Error).message}`));
  }
  if (res.ok && res.suppressed !== undefined) warnings.push(`the resolved notice was not sent: ${res.suppressed} by your rules`);
  const notice: Partial<RunRecord> =
    res.ok && res.suppressed === undefined
      ? { resolved_notice: res.id, ...(res.held !== undefined ? { resolved_notice_held: res.held, ...(res.until !== undefined ? { resolved_notice_until: res.until } : {}) } : {}) }
      : {};
  return { resolved_alert: alert.id, resolved_after_ms: lastedMs, ...notice };
}

/** The "execution" of a script that was not started. */
function refusedExec(): ExecResult {
  return { stdout: Buffer.alloc(0), stderrTail: '', durationMs: 0, exitCode: null, signal: null, end: { kind: 'exited', exitCode: null, signal: null } };
}

/** Runs one script and records the run. Never throws for a script's own problems. */
export async function runScript(ctx: ScriptContext, name: string, opts: ScriptRunOptions): Promise<ScriptRunResult> {
  const startedMs = ctx.clock.now();
  const runId = opts.runId ?? newRunId(startedMs);
  const python = pythonFor(ctx.paths);
  const exec: ExecResult = opts.refuse !== undefined ? refusedExec() : await executeScript({
    command: python,
    args: [join(ctx.paths.scriptsDir, name)],
    cwd: ctx.paths.home,
    env: { ...ctx.env, NOTIFY_TRIGGER: opts.trigger },
    timeoutMs: ctx.config.timeoutMs,
    killGraceMs: ctx.config.killGraceMs,
    maxStdoutBytes: ctx.config.maxOutputBytes,
  });

  const record: RunRecord = {
    run_id: runId,
    time: new Date(startedMs).toISOString(),
    script: name,
    trigger: opts.trigger,
    outcome: 'failed',
    duration_ms: exec.durationMs,
    exit_code: exec.exitCode,
  };
  if (exec.signal) record.signal = exec.signal;
  const result: ScriptRunResult = { record };
  const warnings: string[] = [];

  const finish = async (outcome: Outcome, extra: Partial<RunRecord> = {}): Promise<ScriptRunResult> => {
    Object.assign(record, extra, { outcome });
    if (warnings.length > 0) record.warning = warnings.join('; ');
    if (opts.mode !== 'dry_run') {
      ctx.log.line(describeRun(record));
      if (ctx.history) {
        try {
          await ctx.history.append(record);
        } catch (err) {
          ctx.log.line(`${name}: could not record the run in ${ctx.history.path}: ${(err as Error).message}`);
        }
      }
    }
    return result;
  };

  if (opts.refuse !== undefined) return finish('failed', { error: opts.refuse });
  const failure = executionFailure(exec, ctx.config, python);
  if (failure) return finish(failure.outcome, { error: failure.error });

  const parsed = parseScriptOutput(exec.stdout.toString('utf8'));
  if (!parsed.ok) return finish('invalid_output', { error: parsed.error });
  const { output } = parsed;
  result.output = output;
  result.raw = parsed.raw;
  if (!output.notify) return finish('nothing_to_send', opts.mode === 'send' ? await resolveActiveAlert(ctx, name, warnings) : {});

  const cooldown = effectiveCooldown(output);
  if (cooldown.warning) warnings.push(cooldown.warning);
  const title = shortTitle(output.title);
  const fields = notificationFields(output, name);
  result.fields = fields;
  const base: Partial<RunRecord> = { cooldown: cooldown.text, ...(title !== undefined ? { title } : {}) };

  if (opts.mode === 'hand_over') {
    if (opts.loadImage && output.image_path) {
      try {
        result.image = await loadImage(output.image_path, ctx.config.maxImageBytes);
      } catch (err) {
        if (!(err instanceof ImageError)) throw err;
        result.imageError = err.message;
        warnings.push(`${err.message}; the text is sent without it`);
      }
    }
    return finish('pending_delivery', base);
  }

  // The cooldown (send and dry_run).
  const statePath = stateFile(ctx.paths, scriptStem(name));
  let state;
  try {
    state = await readState(statePath);
  } catch (err) {
    return finish('failed', { ...base, error: `cannot apply the cooldown: ${(err as Error).message}` });
  }
  const nowSeconds = Math.floor(ctx.clock.now() / 1000);
  const decision = cooldownDecision(state, cooldown.seconds, nowSeconds);
  result.cooldown = { ...decision, text: cooldown.text, ...(state.last_sent !== undefined ? { lastSent: state.last_sent } : {}) };
  if (decision.held && !opts.force) {
    return finish('held_by_cooldown', { ...base, held_until: new Date((decision.until ?? nowSeconds) * 1000).toISOString() });
  }

  // The image: read as the analyst, uploaded as bytes. A missing or bad image does not
  // cost the analyst the alert: the text goes, saying why the image is not there.
  let image: PhotoUpload | null = null;
  if (output.image_path) {
    try {
      image = await loadImage(output.image_path, ctx.config.maxImageBytes);
      result.image = image;
    } catch (err) {
      if (!(err instanceof ImageError)) throw err;
      result.imageError = err.message;
      warnings.push(`${err.message}; sent the text without it`);
      fields.message = `${typeof fields.message === 'string' ? fields.message : ''}\n\n(Not attached: ${escapeLegacyMarkdown(err.message)})`;
    }
  }

  if (opts.mode === 'dry_run') return finish('sent', base);

  const delivery = await deliver(ctx.client, fields, image, 'respond-async');
  result.delivery = delivery;
  if (!delivery.ok) return finish('delivery_failed', { ...base, error: delivery.error });
  const accepted: Partial<RunRecord> = { ...base, id: delivery.id, ...(delivery.until !== undefined ? { held_until: delivery.until } : {}) };
  // Suppressed by the analyst's rules (snoozed, muted, unchanged data): nothing was sent,
  // so last_sent stays as it is and the cooldown does not start; the next alert of this
  // script is judged against the last one that really went out.
  if (delivery.suppressed !== undefined) return finish(delivery.suppressed, accepted);
  // Held for the quiet-hours digest (and any plain send): it will go out, so the cooldown
  // starts now, or the script would pile up one held alert per run during the quiet hours.
  const sentAt = Math.floor(ctx.clock.now() / 1000);
  // A condition alert stays active until a later run prints notify: false (resolved.ts).
  const active = output.send_resolved === true ? { [ACTIVE_ALERT]: nextActiveAlert(activeAlertOf(state), delivery.id, sentAt, title, output.urgent === true, Array.isArray(output.to) ? output.to : undefined) } : {};
  try {
    await recordSent(statePath, sentAt, active);
  } catch (err) {
    warnings.push(`${delivery.held ? 'held for the digest' : 'sent'}, but the cooldown state could not be saved (${(err as Error).message}); the next run may send again`);
  }
  if (delivery.held !== undefined) return finish('held_quiet_hours', accepted);
  return finish('sent', { ...base, id: delivery.id, ...(delivery.queued ? { queued: true } : {}) });
}
