/**
 * "Run a script now and deliver its result", once for every place that offers it (the
 * dashboard's Run now, the desktop app's run endpoint, the bot's Run button): one
 * "already running" guard, one delivery path, the run joined to its notification in the
 * analyst's history, and one table of failure texts and HTTP statuses.
 */
import type { DeliveryReport, RuleOutcome } from '../shared/history.js';
import { errorText, type PhotoUpload, type SendClient, SocketUnavailableError } from '../shared/sendClient.js';
import { type OnDemandRun, type ScriptsHelper, ScriptsHelperError, type ScriptsHelperErrorKind } from './client.js';

/** The notification an on-demand run asks for. */
export interface OnDemandNotification {
  user: string;
  script: string;
  title?: string;
  message?: string;
  data?: Record<string, unknown>;
  image?: PhotoUpload;
}

/** How a channel took the notification. */
export type Handover =
  | {
      accepted: true;
      id: string;
      /** Not delivered yet (202). */
      queued: boolean;
      /** The analyst's alert rules held it back (snoozed, muted, unchanged, held for quiet hours). */
      rule?: RuleOutcome;
      /** Until when the rule holds it, ISO-8601. */
      until?: string;
      /** The send API's answer, for callers that pass it on. */
      answer?: unknown;
    }
  | {
      accepted: false;
      reason: string;
      /** The user has no channel to receive it (nothing is linked). */
      noChannel?: boolean;
      /** The bot could not be reached at all. */
      unavailable?: boolean;
    };

/** Hands a notification to the bot (the send API, or the bot's own notifier). */
export type Deliver = (n: OnDemandNotification) => Promise<Handover>;

/** Why an on-demand run did not end in a notification handed over. */
export type RunNowFailure = ScriptsHelperErrorKind | 'busy' | 'not_delivered' | 'no_channel' | 'bot_unavailable' | 'internal';

/** Each failure's HTTP status and text; `name` is the script, `user` the analyst. */
export const RUN_NOW_FAILURES: Record<RunNowFailure, { status: number; text: (f: { name: string; user: string; detail: string }) => string }> = {
  busy: { status: 409, text: ({ name }) => `${name} is already running. Wait for it to finish.` },
  invalid_request: { status: 400, text: ({ name, detail }) => prefixed(name, detail) },
  not_found: { status: 404, text: ({ name }) => `${name} is not in ~/user/notifications/ (any more).` },
  unknown_run: { status: 502, text: ({ name, detail }) => prefixed(name, `the script helper failed: ${detail}`) },
  script_failed: { status: 422, text: ({ name, detail }) => prefixed(name, detail) },
  invalid_output: { status: 422, text: ({ name, detail }) => prefixed(name, detail) },
  timed_out: { status: 422, text: ({ name, detail }) => prefixed(name, detail) },
  sudo_refused: { status: 503, text: ({ name, user, detail }) => `The server is not set up to run scripts as ${user}, so ${name} could not be run (${detail}). Tell an administrator.` },
  helper_missing: { status: 503, text: ({ name, user, detail }) => `The server is not set up to run scripts as ${user}, so ${name} could not be run (${detail}). Tell an administrator.` },
  helper_failed: { status: 502, text: ({ name, detail }) => prefixed(name, `the script helper failed: ${detail}`) },
  internal: { status: 500, text: ({ name, detail }) => `${name} could not be run: ${detail}` },
  no_channel: { status: 409, text: ({ name, detail }) => `${name} ran, but its notification was not accepted: ${detail}. Link Telegram (or a desktop client) to receive notifications.` },
  not_delivered: { status: 502, text: ({ name, detail }) => `${name} ran, but its notification was not accepted: ${detail}.` },
  bot_unavailable: { status: 503, text: ({ name, detail }) => `${name} ran, but its notification could not be sent: ${detail}. Try again later.` },
};

function prefixed(name: string, message: string): string {
  return message.includes(name) ? message : `${name}: ${message}`;
}

/** What listing the scripts failing means, in the same words (no script named). */
export function listFailure(err: unknown, user: string): { status: number; error: string } {
  if (!(err instanceof ScriptsHelperError)) return { status: 500, error: `Your scripts could not be read: ${err instanceof Error ? err.message : String(err)}` };
  if (err.kind === 'sudo_refused' || err.kind === 'helper_missing') {
    return { status: 503, error: `The server is not set up to run scripts as ${user}, so your scripts cannot be shown (${err.message}). Tell an administrator.` };
  }
  const f = RUN_NOW_FAILURES[err.kind];
  return { status: f.status, error: err.kind === 'helper_failed' ? `the script helper failed: ${err.message}` : err.message };
}

/** The outcome of a run-now request. */
export type RunNowResult =
  | { ok: false; failure: RunNowFailure; status: number; text: string; run?: OnDemandRun }
  | { ok: true; outcome: 'nothing_to_send'; run: OnDemandRun; text: string }
  | { ok: true; outcome: 'sent' | RuleOutcome; run: OnDemandRun; handover: Extract<Handover, { accepted: true }>; text: string };

/** Runs scripts on demand for one service; at most one run per user and script at a time. */
export class RunNow {
  private readonly running = new Set<string>();

  constructor(
    private readonly helper: () => ScriptsHelper,
    private readonly deliver: Deliver,
    private readonly log: { warn: (obj: object, msg: string) => void },
    /** Formats a rule's "until" for the analyst [ISO time]. */
    private readonly formatUntil: (user: string, iso: string) => Promise<string> = async (_u, iso) => iso,
  ) {}

  /** Whether `name` is running for `user` right now (started here and not finished). */
  isRunning(user: string, name: string): boolean {
    return this.running.has(`${user}/${name}`);
  }

  /** Runs `name` as `user` now and hands its notification over; the busy guard is taken before the first await. */
  async run(user: string, name: string): Promise<RunNowResult> {
    const key = `${user}/${name}`;
    if (this.running.has(key)) return fail('busy', name, user, '');
    this.running.add(key);
    try {
      return await this.runAndDeliver(user, name);
    } finally {
      this.running.delete(key);
    }
  }

  private async runAndDeliver(user: string, name: string): Promise<RunNowResult> {
    let helper: ScriptsHelper;
    let run: OnDemandRun;
    try {
      helper = this.helper();
      run = await helper.run(user, name);
    } catch (err) {
      this.log.warn({ user, script: name, err }, 'on-demand run failed');
      if (err instanceof ScriptsHelperError) return fail(err.kind, name, user, err.message);
      return fail('internal', name, user, err instanceof Error ? err.message : String(err));
    }
    if (run.outcome === 'nothing_to_send') {
      return { ok: true, outcome: 'nothing_to_send', run, text: `${name} ran: nothing to report right now (it printed "notify": false).` };
    }
    const out = run.output;
    const notification: OnDemandNotification = { user, script: name };
    if (typeof out.title === 'string') notification.title = out.title;
    if (typeof out.message === 'string') notification.message = out.message;
    if (out.data !== undefined && out.data !== null) notification.data = out.data;
    if (run.image) notification.image = run.image;
    let handover: Handover;
    try {
      handover = await this.deliver(notification);
    } catch (err) {
      handover = { accepted: false, reason: err instanceof Error ? err.message : String(err) };
    }
    const record = (report: DeliveryReport): Promise<unknown> =>
      helper.recordDelivery(user, run.runId, report).catch((err: unknown) => this.log.warn({ user, script: name, err }, 'could not record the delivery in the run history'));
    if (!handover.accepted) {
      await record({ error: handover.reason });
      this.log.warn({ user, script: name, reason: handover.reason }, 'could not hand the on-demand result to the bot');
      const failure: RunNowFailure = handover.unavailable ? 'bot_unavailable' : handover.noChannel ? 'no_channel' : 'not_delivered';
      return { ...fail(failure, name, user, handover.reason), run };
    }
    await record({ id: handover.id, queued: handover.queued, ...(handover.rule ? { outcome: handover.rule } : {}), ...(handover.until ? { until: handover.until } : {}) });
    const until = handover.until && !Number.isNaN(Date.parse(handover.until)) ? ` until ${await this.formatUntil(user, handover.until)}` : '';
    const outcome = handover.rule ?? 'sent';
    const text =
      outcome === 'muted' || outcome === 'snoozed'
        ? `${name} ran, but its alert is ${outcome}${until}, so it was not sent. Unmute it to get it.`
        : outcome === 'unchanged'
          ? `${name} ran; its data has not changed since the last alert, so nothing was sent.`
          : outcome === 'held_quiet_hours'
            ? `${name} ran; it is quiet hours, so the alert comes in the digest${until}.`
            : `${name} ran and its notification is on its way${out.title ? `: "${out.title}"` : ''}${run.imageError ? ` (its image was not attached: ${run.imageError})` : ''}.`;
    return { ok: true, outcome, run, handover, text };
  }
}

function fail(failure: RunNowFailure, name: string, user: string, detail: string): Extract<RunNowResult, { ok: false }> {
  const f = RUN_NOW_FAILURES[failure];
  return { ok: false, failure, status: f.status, text: f.text({ name, user, detail }) };
}

/** The history outcome of a send API answer that held a notification back, if it did. */
export function ruleOutcome(body: { suppressed?: unknown; held?: unknown; until?: unknown }): { rule?: RuleOutcome; until?: string } {
  const until = typeof body.until === 'string' ? { until: body.until } : {};
  if (body.suppressed === 'snoozed' || body.suppressed === 'muted' || body.suppressed === 'unchanged') return { rule: body.suppressed, ...until };
  if (body.held === 'quiet_hours') return { rule: 'held_quiet_hours', ...until };
  return {};
}

/** Delivery through the bot's send API (the dashboard and the desktop app). */
export function throughSendApi(send: SendClient): Deliver {
  return async (n) => {
    const fields = { user: n.user, script: n.script, title: n.title, message: n.message, data: n.data };
    let res;
    try {
      res = n.image ? await send.sendPhoto(fields, n.image, 'respond-async') : await send.send(fields, 'respond-async');
    } catch (err) {
      const reason = err instanceof SocketUnavailableError ? 'the notifications bot is not running' : err instanceof Error ? err.message : String(err);
      return { accepted: false, reason, unavailable: true };
    }
    const body = (res.body ?? {}) as { id?: unknown; suppressed?: unknown; held?: unknown; until?: unknown };
    if (res.status >= 200 && res.status < 300 && typeof body.id === 'string') {
      return { accepted: true, id: body.id, queued: res.status === 202, ...ruleOutcome(body), answer: res.body };
    }
    return { accepted: false, reason: errorText(res), noChannel: res.status === 404 };
  };
}
