/**
 * Handing a notification to the send API (the runner asks for `Prefer: respond-async`, the
 * `notify` command may wait), and reading its answer: sent (or queued), or accepted but
 * suppressed or held by the analyst's rules.
 */
import type { ScriptOutput, TelegramChannelStatus } from '../shared/contract.js';
import { errorText, type PhotoUpload, type Prefer, type SendClient, SocketUnavailableError } from '../shared/sendClient.js';

/** What the send API did with a notification. */
export type DeliveryResult =
  | {
      ok: true;
      id: string;
      queued: boolean;
      status: number;
      /** Not sent, by the analyst's rules (a snooze or mute of the script, or unchanged data). */
      suppressed?: Suppression;
      /** Kept for the digest at the end of the analyst's quiet hours. */
      held?: 'quiet_hours';
      /** Until when the snooze, mute or quiet hours hold, ISO-8601 UTC, when the API said. */
      until?: string;
      /** What the Telegram channel did, when the API said. */
      telegram?: TelegramChannelStatus;
      /** Desktop connections reached, or 'pending' / 'unavailable', when the API said. */
      desktop?: number | string;
      /** With several destinations (`to`): what each did, in the order asked. */
      destinations?: Array<{ name: string; result: DestinationResult }>;
    }
  | {
      ok: false;
      error: string;
      status?: number;
      /** The API could not be reached or answered 5xx: nothing the script can change. */
      unavailable: boolean;
    };

/** What one destination of a send with `to` did: the fields of an accepted answer, or why not. */
export type DestinationResult =
  | { ok: true; id: string; suppressed?: Suppression; held?: 'quiet_hours'; until?: string; telegram?: TelegramChannelStatus; desktop?: number | string }
  | { ok: false; error: string };

/** The per-destination answers of a send with `to` (the API's `to` object), in order. */
function destinationsOf(body: Record<string, unknown>): Array<{ name: string; result: DestinationResult }> | undefined {
  const to = body.to;
  if (!to || typeof to !== 'object' || Array.isArray(to)) return undefined;
  return Object.entries(to as Record<string, unknown>).map(([name, raw]) => {
    const b = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
    if (typeof b.id === 'string' && b.id !== '') return { name, result: { ok: true, id: b.id, ...ruleOutcome(b), ...channels(b) } };
    return { name, result: { ok: false, error: typeof b.error === 'string' ? b.error : 'not accepted' } };
  });
}

/** Why the send API did not send an accepted notification. */
export const SUPPRESSIONS = ['snoozed', 'muted', 'unchanged'] as const;
export type Suppression = (typeof SUPPRESSIONS)[number];

/**
 * The fields sent for a script's output (the script contract's names). `urgent` and
 * `only_if_changed` go as JSON booleans (in multipart, SendClient writes them 'true'/'false').
 */
export function notificationFields(output: ScriptOutput, scriptName: string): Record<string, unknown> {
  const fields: Record<string, unknown> = { script: scriptName };
  if (typeof output.title === 'string' && output.title.trim() !== '') fields.title = output.title;
  if (typeof output.message === 'string') fields.message = output.message;
  if (output.data) fields.data = output.data;
  if (typeof output.urgent === 'boolean') fields.urgent = output.urgent;
  if (typeof output.only_if_changed === 'boolean') fields.only_if_changed = output.only_if_changed;
  if (output.send_resolved === true) fields.send_resolved = true;
  if (Array.isArray(output.to)) fields.to = output.to;
  return fields;
}

/** Escapes Telegram legacy Markdown's special characters in text we add to a message. */
export function escapeLegacyMarkdown(text: string): string {
  return text.replace(/([_*`[])/g, '\\$1');
}

/** The rule outcome of a 2xx answer: suppressed or held, with until when. */
function ruleOutcome(body: Record<string, unknown>): { suppressed?: Suppression; held?: 'quiet_hours'; until?: string } {
  const out: { suppressed?: Suppression; held?: 'quiet_hours'; until?: string } = {};
  const s = body.suppressed;
  if (typeof s === 'string' && (SUPPRESSIONS as readonly string[]).includes(s)) out.suppressed = s as Suppression;
  else if (body.held === 'quiet_hours') out.held = 'quiet_hours';
  if ((out.suppressed !== undefined || out.held !== undefined) && typeof body.until === 'string' && !Number.isNaN(Date.parse(body.until))) {
    out.until = new Date(body.until).toISOString();
  }
  return out;
}

const TELEGRAM_STATUSES: readonly TelegramChannelStatus[] = ['delivered', 'queued', 'not_linked', 'refused', 'failed', 'suppressed', 'held'];

/** The channel fields of a 2xx answer. */
function channels(body: Record<string, unknown>): { telegram?: TelegramChannelStatus; desktop?: number | string } {
  const out: { telegram?: TelegramChannelStatus; desktop?: number | string } = {};
  if (typeof body.telegram === 'string' && (TELEGRAM_STATUSES as readonly string[]).includes(body.telegram)) out.telegram = body.telegram as TelegramChannelStatus;
  if (typeof body.desktop === 'number' || typeof body.desktop === 'string') out.desktop = body.desktop;
  return out;
}

/**
 * Sends the notification (as multipart with the image bytes when there is an image);
 * `prefer` says how long the API may wait for delivery before answering.
 */
export async function deliver(client: SendClient, fields: Record<string, unknown>, image: PhotoUpload | null, prefer: Prefer): Promise<DeliveryResult> {
  let res;
  try {
    res = image ? await client.sendPhoto(fields, image, prefer) : await client.send(fields, prefer);
  } catch (err) {
    if (err instanceof SocketUnavailableError) {
      return { ok: false, unavailable: true, error: `the send API is unreachable: ${err.message}` };
    }
    return { ok: false, unavailable: true, error: `sending failed: ${(err as Error).message}` };
  }
  if (res.status >= 200 && res.status < 300) {
    const body = res.body && typeof res.body === 'object' && !Array.isArray(res.body) ? (res.body as Record<string, unknown>) : {};
    const id = typeof body.id === 'string' || typeof body.id === 'number' ? String(body.id) : '';
    if (id === '') {
      return { ok: false, unavailable: true, status: res.status, error: `the send API answered ${res.status} without a notification id` };
    }
    const destinations = destinationsOf(body);
    return { ok: true, id, queued: res.status === 202, status: res.status, ...ruleOutcome(body), ...channels(body), ...(destinations ? { destinations } : {}) };
  }
  const retry = res.headers['retry-after'];
  const retryNote = res.status === 503 && retry ? ` (it asked to retry after ${String(retry)} s)` : '';
  return {
    ok: false,
    unavailable: res.status >= 500,
    status: res.status,
    error: `the send API refused it (HTTP ${res.status}): ${errorText(res)}${retryNote}`,
  };
}
