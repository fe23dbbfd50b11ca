/** Handing a script's notification to the send API (`Prefer: respond-async`). */
import type { ScriptOutput } from '../shared/contract.js';
import { errorText, type PhotoUpload, type SendClient, SocketUnavailableError } from '../shared/sendClient.js';

/** What the send API did with a notification. */
export type DeliveryResult =
  | { ok: true; id: string; queued: boolean; status: number }
  | {
      ok: false;
      error: string;
      status?: number;
      /** The API could not be reached or answered 5xx: nothing the script can change. */
      unavailable: boolean;
    };

/** The fields sent for a script's output (the script contract's names). */
export function notificationFields(output: ScriptOutput, scriptName: string): Record<string, unknown> {
  const fields: Record<string, unknown> = { script: scriptName };
  if (typeof output.title === 'string' && output.title.trim() !== '') fields.title = output.title;
  if (typeof output.message === 'string') fields.message = output.message;
  if (output.data) fields.data = output.data;
  return fields;
}

/** Sends the notification (as multipart with the image bytes when there is an image). */
export async function deliver(client: SendClient, fields: Record<string, unknown>, image: PhotoUpload | null): Promise<DeliveryResult> {
  let res;
  try {
    res = image ? await client.sendPhoto(fields, image, 'respond-async') : await client.send(fields, 'respond-async');
  } catch (err) {
    if (err instanceof SocketUnavailableError) {
      return { ok: false, unavailable: true, error: `the send API is unreachable: ${err.message}` };
    }
    return { ok: false, unavailable: true, error: `sending failed: ${(err as Error).message}` };
  }
  if (res.status >= 200 && res.status < 300) {
    const body = res.body as { id?: unknown } | null;
    const id = body && typeof body === 'object' && (typeof body.id === 'string' || typeof body.id === 'number') ? String(body.id) : '';
    if (id === '') {
      return { ok: false, unavailable: true, status: res.status, error: `the send API answered ${res.status} without a notification id` };
    }
    return { ok: true, id, queued: res.status === 202, status: res.status };
  }
  const retry = res.headers['retry-after'];
  const retryNote = res.status === 503 && retry ? ` (it asked to retry after ${String(retry)} s; the next run will)` : '';
  return {
    ok: false,
    unavailable: res.status >= 500,
    status: res.status,
    error: `the send API refused it (HTTP ${res.status}): ${errorText(res)}${retryNote}`,
  };
}
