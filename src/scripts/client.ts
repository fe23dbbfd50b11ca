/**
 * How services (the bot, the dashboard) see an analyst's scripts without reading their
 * home: they run `notify-scripts` as the analyst through the configurable command
 * `NOTIFY_SCRIPTS_COMMAND` (default in shared/settings.ts),
 * split into an argv without a shell, and validate its JSON answers. Every failure is a
 * ScriptsHelperError whose `kind` tells sudo's "no" from a missing helper, a failing
 * script, or a run that took too long.
 */
import { spawn } from 'node:child_process';
import { z } from 'zod';
import { ScriptOutputSchema, type ScriptOutput } from '../shared/contract.js';
import { type DeliveryReport, newRunId, OUTCOMES, RunRecordSchema, type RunRecord, scriptNameProblem, TRIGGERS } from '../shared/history.js';
import type { PhotoUpload } from '../shared/sendClient.js';
import { userNameProblem } from '../shared/userName.js';
import { ERROR_CODES, type ErrorCode, HISTORY_LIMIT, historyArgs, type ListedScript, RUN_ID_RE, RUN_META_KEY, type RunMeta, recordDeliveryArgs, runArgs } from './protocol.js';

export { scriptNameProblem } from '../shared/history.js';
export type { DeliveryReport, RunRecord } from '../shared/history.js';

/** Why a helper call failed. */
export type ScriptsHelperErrorKind =
  /** Bad user or script name: refused before anything ran. */
  | 'invalid_request'
  /** sudo would not run the helper as that user (no rule for it, a password asked, unknown user). */
  | 'sudo_refused'
  /** The command (sudo, node, notify-scripts) is not installed where configured. */
  | 'helper_missing'
  /** No script of that name. */
  | 'not_found'
  /** The script failed (non-zero exit, killed, too much output); the message says how. */
  | 'script_failed'
  /** The script's output is not a valid notification object. */
  | 'invalid_output'
  /** The script timed out, or the helper itself did not answer in time. */
  | 'timed_out'
  /** record-delivery: no run with that id. */
  | 'unknown_run'
  /** Anything else: the helper crashed or answered something unreadable. */
  | 'helper_failed';

/** A helper call failed; `message` is readable by a person, `kind` by a program. */
export class ScriptsHelperError extends Error {
  constructor(
    readonly kind: ScriptsHelperErrorKind,
    message: string,
    readonly details: { outcome?: string; runId?: string; exitCode?: number; stderr?: string } = {},
  ) {
    super(message);
    this.name = 'ScriptsHelperError';
  }
}

/** What each error code of the helper means to a service. */
const ERROR_KIND: Record<ErrorCode, ScriptsHelperErrorKind> = {
  usage: 'invalid_request',
  invalid_name: 'invalid_request',
  not_found: 'not_found',
  failed: 'script_failed',
  timed_out: 'timed_out',
  invalid_output: 'invalid_output',
  unknown_run: 'unknown_run',
  internal: 'helper_failed',
};

/** One script as `notify-scripts list` describes it (protocol.ts: ListedScript). */
export const ScriptInfoSchema = z.looseObject({
  name: z.string(),
  stem: z.string(),
  /** When it last ran (ISO-8601 UTC), null if never. */
  last_run: z.string().nullable(),
  last_outcome: z.enum(OUTCOMES).nullable().optional(),
  last_trigger: z.enum(TRIGGERS).optional(),
  last_error: z.string().optional(),
  last_warning: z.string().optional(),
  /** When the runner last sent its notification (ISO-8601 UTC), null if never. */
  last_sent: z.string().nullable().optional(),
  /** The cooldown it last asked for. */
  cooldown: z.string().optional(),
  /** Until when the cooldown holds its notifications, when it does now. */
  cooldown_until: z.string().optional(),
  /** Its cooldown state file is unreadable (the runner reports it as a failure). */
  state_error: z.string().optional(),
  /** Its `# schedule:` line as written (cron expression and zone), when it has one. */
  schedule: z.string().optional(),
  /** The time zone the schedule is read in. */
  schedule_zone: z.string().optional(),
  /** The next scheduled time the runner acts on (ISO-8601 UTC); past when due. */
  next_run: z.string().nullable().optional(),
  /** A scheduled time passed since its last scheduled run: the next runner pass runs it. */
  schedule_due: z.boolean().optional(),
  /** Why its schedule is invalid. */
  schedule_error: z.string().optional(),
  consecutive_failures: z.number().optional(),
  health_failing: z.literal(true).optional(),
});
export type ScriptInfo = z.infer<typeof ScriptInfoSchema>;

/** protocol.ts: RunMeta. */
const RunMetaSchema = z.looseObject({
  id: z.string(),
  outcome: z.enum(['pending_delivery', 'nothing_to_send']),
  duration_ms: z.number(),
  warning: z.string().optional(),
  image: z
    .object({
      filename: z.string(),
      content_type: z.enum(['image/png', 'image/jpeg']),
      size: z.number().int(),
      base64: z.string(),
    })
    .optional(),
  image_error: z.string().optional(),
});

const ErrorAnswerSchema = z.looseObject({
  error: z.string(),
  code: z.string().optional(),
  outcome: z.string().optional(),
  run_id: z.string().optional(),
  exit_code: z.number().optional(),
});

/** The result of an on-demand run, ready for the service to deliver. */
export interface OnDemandRun {
  /** Pass to recordDelivery once the notification was sent (or not). */
  runId: string;
  /** `pending_delivery` when the script asked to notify, else `nothing_to_send`. */
  outcome: 'pending_delivery' | 'nothing_to_send';
  /** null when the script printed its own `_run` key (then its output is kept whole). */
  durationMs: number | null;
  /** The script's output, validated by the script contract (its own keys, as printed). */
  output: ScriptOutput;
  /** The image, read and checked by the helper as the analyst, to upload as bytes. */
  image?: PhotoUpload;
  /** Why the script's image could not be attached. */
  imageError?: string;
  /** Problems that did not stop the run (invalid cooldown, image not attached). */
  warning?: string;
}

/** How to call the helper. */
export interface ScriptsHelperOptions {
  /** The command template (NOTIFY_SCRIPTS_COMMAND); `{user}` becomes the analyst's user name. */
  command: string;
  /** Longest a call may take, including the script's own timeout (NOTIFY_SCRIPTS_HELPER_TIMEOUT). */
  timeoutMs: number;
  /** Largest answer read (a run's answer carries its image in base64) [16 MiB]. */
  maxOutputBytes?: number;
  /** Environment of the helper process [process.env]. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Splits a command template into argv like a shell would split words, without a shell:
 * whitespace separates, '...' and "..." quote, a backslash escapes the next character.
 * Nothing is expanded.
 */
export function splitCommand(template: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < template.length) cur += template[++i]!;
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < template.length) {
      cur += template[++i]!;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unbalanced ${quote} quote in the command '${template}'`);
  if (inWord) out.push(cur);
  return out;
}

/** The helper's argv for a user: `{user}` replaced inside each word (after splitting). */
export function commandFor(template: string, user: string): string[] {
  const argv = splitCommand(template).map((w) => w.split('{user}').join(user));
  if (argv.length === 0) throw new Error('the script-helper command is empty');
  return argv;
}

interface RawAnswer {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Calls `notify-scripts` as an analyst. */
export class ScriptsHelper {
  readonly command: string;
  private readonly timeoutMs: number;
  private readonly maxOutputBytes: number;
  private readonly env: NodeJS.ProcessEnv;

  constructor(opts: ScriptsHelperOptions) {
    this.command = opts.command;
    this.timeoutMs = opts.timeoutMs;
    this.maxOutputBytes = opts.maxOutputBytes ?? 16 * 1024 * 1024;
    this.env = opts.env ?? process.env;
    splitCommand(this.command); // fail early on a malformed template
  }

  /** The user's scripts with their last run. */
  async list(user: string): Promise<ScriptInfo[]> {
    const answer = await this.call(user, ['list']);
    return this.parse(answer, z.array(ScriptInfoSchema), 'list');
  }

  /** The user's recent runs, newest first. */
  async history(user: string, opts: { limit?: number; script?: string } = {}): Promise<RunRecord[]> {
    if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > HISTORY_LIMIT.max)) {
      throw new ScriptsHelperError('invalid_request', `the history limit must be a whole number from 1 to ${HISTORY_LIMIT.max}`);
    }
    if (opts.script !== undefined) checkScript(opts.script);
    const answer = await this.call(user, historyArgs(opts));
    return this.parse(answer, z.array(RunRecordSchema), 'history');
  }

  /**
   * Runs a script now, as the user, like the runner (same timeout and checks) but ignoring
   * its cooldown. The caller delivers the result, then calls recordDelivery.
   */
  async run(user: string, name: string): Promise<OnDemandRun> {
    checkScript(name);
    const runId = newRunId();
    const answer = await this.call(user, runArgs(runId, name));
    const value = this.parse(answer, z.record(z.string(), z.unknown()), 'run');
    const out: Record<string, unknown> = { ...value };
    const meta = RunMetaSchema.safeParse(out[RUN_META_KEY]);
    const ours = meta.success && meta.data.id === runId;
    if (ours) delete out[RUN_META_KEY];
    const parsed = ScriptOutputSchema.safeParse(out);
    if (!parsed.success) throw new ScriptsHelperError('helper_failed', `the helper's answer for ${name} is not a valid script output`);
    const output = parsed.data;
    const result: OnDemandRun = {
      runId,
      outcome: output.notify ? 'pending_delivery' : 'nothing_to_send',
      durationMs: ours ? meta.data.duration_ms : null,
      output,
    };
    if (ours && meta.data.image) {
      result.image = {
        bytes: Buffer.from(meta.data.image.base64, 'base64'),
        filename: meta.data.image.filename,
        contentType: meta.data.image.content_type,
      };
    }
    if (ours && meta.data.image_error) result.imageError = meta.data.image_error;
    if (ours && meta.data.warning) result.warning = meta.data.warning;
    return result;
  }

  /** Joins an on-demand run to its notification id (or records why it was not delivered). */
  async recordDelivery(user: string, runId: string, report: DeliveryReport): Promise<RunRecord> {
    if (!RUN_ID_RE.test(runId)) throw new ScriptsHelperError('invalid_request', 'not a run id');
    if ('id' in report && (report.id === '' || report.id.length > 200 || report.id.startsWith('-'))) {
      throw new ScriptsHelperError('invalid_request', 'not a notification id');
    }
    const answer = await this.call(user, recordDeliveryArgs(runId, report));
    return this.parse(answer, RunRecordSchema, 'record-delivery');
  }

  private parse<T>(answer: RawAnswer, schema: z.ZodType<T>, what: string): T {
    let value: unknown;
    try {
      value = JSON.parse(answer.stdout);
    } catch {
      throw this.failure(answer, what);
    }
    if (answer.status !== 0) throw this.failure(answer, what, value);
    const r = schema.safeParse(value);
    if (!r.success) {
      throw new ScriptsHelperError('helper_failed', `the script helper's ${what} answer is not what was expected: ${r.error.issues[0]?.message ?? 'invalid'}`);
    }
    return r.data;
  }

  /** Turns a failed call into an error that says why. */
  private failure(answer: RawAnswer, what: string, value?: unknown): ScriptsHelperError {
    const err = ErrorAnswerSchema.safeParse(value);
    if (err.success) {
      const e = err.data;
      const kind = (e.code !== undefined && (ERROR_CODES as readonly string[]).includes(e.code) ? ERROR_KIND[e.code as ErrorCode] : 'helper_failed');
      return new ScriptsHelperError(kind, e.error, {
        ...(e.outcome !== undefined ? { outcome: e.outcome } : {}),
        ...(e.run_id !== undefined ? { runId: e.run_id } : {}),
        ...(e.exit_code !== undefined ? { exitCode: e.exit_code } : {}),
      });
    }
    const stderr = answer.stderr.trim();
    const details = { ...(answer.status !== null ? { exitCode: answer.status } : {}), stderr: stderr.slice(-2000) };
    const lastLine = stderr.split('\n').pop() ?? '';
    if (/^sudo: .*(password is required|not allowed|is not in the sudoers|may not run|a terminal is required)/m.test(stderr)) {
      return new ScriptsHelperError('sudo_refused', `sudo refused to run the script helper: ${lastLine}`, details);
    }
    if (/^sudo: unknown user/m.test(stderr)) {
      return new ScriptsHelperError('sudo_refused', `sudo refused: ${lastLine}`, details);
    }
    if (/command not found|No such file or directory|Cannot find module|ERR_MODULE_NOT_FOUND/.test(stderr)) {
      return new ScriptsHelperError('helper_missing', `the script helper is not installed where configured (${this.command}): ${lastLine}`, details);
    }
    if (answer.status === 0) return new ScriptsHelperError('helper_failed', `the script helper's ${what} answer is not JSON`, details);
    return new ScriptsHelperError(
      'helper_failed',
      `the script helper failed (exit ${answer.status ?? 'by signal'})${lastLine ? `: ${lastLine}` : ''}`,
      details,
    );
  }

  /** Runs the helper for a user with bounded time and output. */
  private call(user: string, args: string[]): Promise<RawAnswer> {
    const problem = userNameProblem(user);
    if (problem) return Promise.reject(new ScriptsHelperError('invalid_request', problem));
    const argv = commandFor(this.command, user);
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, [...argv.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: this.env });
      const out: Buffer[] = [];
      let outBytes = 0;
      let errText = '';
      let failure: ScriptsHelperError | null = null;
      let killTimer: NodeJS.Timeout | null = null;
      const stop = (err: ScriptsHelperError): void => {
        failure ??= err;
        child.kill('SIGTERM'); // sudo relays it; the helper stops its script's processes
        killTimer ??= setTimeout(() => child.kill('SIGKILL'), 3000);
      };
      const timer = setTimeout(
        () => stop(new ScriptsHelperError('timed_out', `the script helper did not answer within ${Math.round(this.timeoutMs / 1000)} s`)),
        this.timeoutMs,
      );
      child.stdout.on('data', (c: Buffer) => {
        outBytes += c.length;
        if (outBytes > this.maxOutputBytes) {
          stop(new ScriptsHelperError('helper_failed', `the script helper's answer is larger than ${this.maxOutputBytes} bytes`));
          return;
        }
        out.push(c);
      });
      child.stderr.on('data', (c: Buffer) => {
        errText = (errText + c.toString('utf8')).slice(-8192);
      });
      child.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (killTimer) clearTimeout(killTimer);
        if (err.code === 'ENOENT') {
          reject(new ScriptsHelperError('helper_missing', `the script-helper command ${argv[0]!} was not found (NOTIFY_SCRIPTS_COMMAND is '${this.command}')`));
        } else if (err.code === 'EACCES') {
          reject(new ScriptsHelperError('helper_missing', `the script-helper command ${argv[0]!} cannot be executed (permission denied)`));
        } else {
          reject(new ScriptsHelperError('helper_failed', `the script helper could not be started: ${err.message}`));
        }
      });
      child.on('close', (status) => {
        clearTimeout(timer);
        if (killTimer) clearTimeout(killTimer);
        if (failure) reject(failure);
        else resolve({ status, stdout: Buffer.concat(out).toString('utf8'), stderr: errText });
      });
    });
  }
}

function checkScript(name: string): string {
  const problem = scriptNameProblem(name);
  if (problem) throw new ScriptsHelperError('invalid_request', problem);
  return name;
}

// Both ends agree: what the helper prints is what the client's schemas accept.
type Agrees<A, B> = [A] extends [B] ? true : never;
const _protocolAgrees: [Agrees<ListedScript, ScriptInfo>, Agrees<RunMeta, z.infer<typeof RunMetaSchema>>] = [true, true];
void _protocolAgrees;
