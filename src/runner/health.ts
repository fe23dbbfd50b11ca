/**
 * Script health: a script that fails NOTIFY_HEALTH_FAILURES scheduled runs in a row
 * (failed, timed_out, invalid_output) gets its owner one "is failing" alert through the
 * send API, and one "recovered" message when it next runs without failing (any other
 * outcome: the script itself worked, even if the delivery of its alert did not).
 *
 * - The alerts carry `script` = the script's name, so the bot's buttons (snooze, mute, run
 *   now) and the analyst's rules apply to them like to the script's own alerts; they are
 *   not `urgent` (quiet hours hold them for the digest).
 * - A "failing" alert is sent only when no health alert about the script went out in the
 *   last 24 hours; the "recovered" that closes a failing alert is always sent. So a script
 *   that recovers and breaks again the same day stays quiet (logged) until the day has
 *   passed; if it is still failing then, the alert goes out.
 * - A health alert the send API could not take is retried by the next run.
 * - They are not runs, so they are not in the history; each one is a line in runner.log.
 *
 * Only scheduled runs (`notify-runner`, with or without --script/--force) count. On-demand
 * runs (`notify-scripts run`, the "Run now" buttons) neither count toward a streak nor end
 * it: the analyst watching them already sees their result, and the state file then has one
 * writer, the runner under its lock. A fixed script is reported "recovered" by the next
 * scheduled run.
 *
 * State, in the script's `~/.notifications/state/<stem>.json` next to `last_sent` (other
 * keys kept, written atomically): `consecutive_failures` (absent when 0),
 * `health_state` ('failing' after a failing alert, 'ok' after its recovered message) and
 * `health_alert_at` (unix seconds of the last health alert sent).
 */
import type { Outcome, RunRecord } from '../shared/history.js';
import { scriptStem } from '../shared/history.js';
import { readState, updateState } from './cooldown.js';
import { deliver } from './deliver.js';
import { stateFile } from './paths.js';
import { localTimestamp } from './runLog.js';
import type { ScriptContext } from './runScript.js';

/** Outcomes that count as the script failing (delivery_failed is not the script's fault). */
export const FAILURE_OUTCOMES: ReadonlySet<Outcome> = new Set<Outcome>(['failed', 'timed_out', 'invalid_output']);

/** At most one new "failing" alert per script in this many seconds. */
export const HEALTH_ALERT_INTERVAL_SECONDS = 24 * 3600;

const MAX_EXCERPT = 800;

function count(value: unknown): number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : 0;
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

const FAILURE_WORDS: Partial<Record<Outcome, string>> = {
  failed: 'failed',
  timed_out: 'timed out',
  invalid_output: 'printed invalid output',
};

/** The "is failing" alert's fields. */
export function failingAlert(record: RunRecord, failures: number): Record<string, unknown> {
  const name = record.script;
  const how = FAILURE_WORDS[record.outcome] ?? record.outcome;
  const message = [
    `${name} has failed ${failures} runs in a row. The last run (${localTimestamp(new Date(record.time))}) ${how}:`,
    '',
    clip(record.error ?? '(no error text)', MAX_EXCERPT),
    '',
    'Try it by hand on the server:',
    `notify-runner --dry-run --script ${name}`,
    '',
    `Its recent runs: notify-scripts history --script ${name}`,
    'You get one message when it works again.',
  ].join('\n');
  return { script: name, title: `⚠️ ${name} is failing`, message, parse_mode: 'plain', urgent: false };
}

/** The "recovered" message's fields. */
export function recoveredAlert(record: RunRecord, failures: number): Record<string, unknown> {
  const name = record.script;
  const after = failures > 0 ? ` after ${failures} failed run${failures === 1 ? '' : 's'} in a row` : '';
  const message = `${name} works again${after}: its run at ${localTimestamp(new Date(record.time))} succeeded (${record.outcome.replace(/_/g, ' ')}).`;
  return { script: name, title: `✅ ${name} recovered`, message, parse_mode: 'plain', urgent: false };
}

/** Sends a health alert; true when the send API took it (sent, held, or suppressed by the analyst's rules). */
async function sendHealthAlert(ctx: ScriptContext, kind: string, fields: Record<string, unknown>): Promise<boolean> {
  const name = String(fields.script);
  const result = await deliver(ctx.client, fields, null, 'respond-async');
  if (!result.ok) {
    ctx.log.line(`${name}: health: the "${kind}" alert could not be sent (the next run tries again): ${result.error}`);
    return false;
  }
  const fate = result.suppressed
    ? `accepted but not sent (${result.suppressed}${result.until ? ` until ${localTimestamp(new Date(result.until))}` : ''})`
    : result.held
      ? `held for the quiet-hours digest${result.until ? ` sent at ${localTimestamp(new Date(result.until))}` : ''}`
      : 'sent';
  ctx.log.line(`${name}: health: "${kind}" alert ${fate}, id ${result.id}`);
  return true;
}

/**
 * Updates the script's health after a scheduled run and sends the alert it calls for.
 * Never throws: a problem is a line in the log.
 */
export async function updateHealth(ctx: ScriptContext, record: RunRecord): Promise<void> {
  const threshold = ctx.config.healthFailures;
  if (threshold <= 0) return;
  const name = record.script;
  const path = stateFile(ctx.paths, scriptStem(name));
  try {
    const state = await readState(path);
    const failures = count(state.consecutive_failures);
    const failing = state.health_state === 'failing';
    const lastAlert = count(state.health_alert_at);
    const now = Math.floor(ctx.clock.now() / 1000);

    if (FAILURE_OUTCOMES.has(record.outcome)) {
      const n = failures + 1;
      const changes: Record<string, unknown> = { consecutive_failures: n };
      if (n >= threshold && !failing) {
        if (lastAlert > 0 && now - lastAlert < HEALTH_ALERT_INTERVAL_SECONDS) {
          // Logged once per streak, not on every run of a long one.
          if (n === threshold) {
            ctx.log.line(
              `${name}: health: failed ${n} runs in a row; no alert, because one about it went out at ` +
                `${localTimestamp(new Date(lastAlert * 1000))} (at most one a day); it is sent after ` +
                `${localTimestamp(new Date((lastAlert + HEALTH_ALERT_INTERVAL_SECONDS) * 1000))} if it still fails then`,
            );
          }
        } else if (await sendHealthAlert(ctx, 'failing', failingAlert(record, n))) {
          changes.health_state = 'failing';
          changes.health_alert_at = now;
        }
      }
      await updateState(path, changes);
      return;
    }

    if (failures === 0 && !failing) return;
    const changes: Record<string, unknown> = { consecutive_failures: undefined };
    if (failing && (await sendHealthAlert(ctx, 'recovered', recoveredAlert(record, failures)))) {
      changes.health_state = 'ok';
      changes.health_alert_at = now;
    }
    await updateState(path, changes);
  } catch (err) {
    ctx.log.line(`${name}: health: could not update ${path}: ${(err as Error).message}`);
  }
}
