/**
 * Resolved notices. A scheduled run whose alert said `"send_resolved": true` and was sent
 * leaves the alert "active" in the script's state (`active_alert`); the next scheduled run
 * that prints `{"notify": false}` sends one short "Resolved" notice for it (the bot puts it
 * in Telegram as a reply to the alert) and clears it.
 *
 * Flapping: the cooldown is not reset by a resolution, and only an alert that was really
 * sent becomes active. A condition that comes back within the cooldown is held by it, so
 * there is nothing to resolve when it clears again: a flapping script sends at most one
 * alert and one resolved notice per cooldown period. The notice goes through the analyst's
 * rules like the alert (a snoozed or muted script's notice is not sent; quiet hours hold
 * it for the digest unless the alert was urgent).
 */
import { z } from 'zod';
import { deliver, type DeliveryResult, escapeLegacyMarkdown } from './deliver.js';
import type { ScriptState } from './cooldown.js';
import { localTimestamp } from './runLog.js';
import { lastedText } from '../shared/history.js';

/** The state key of the script's active condition alert. */
export const ACTIVE_ALERT = 'active_alert';

const ActiveAlertSchema = z.looseObject({
  /** The notification id of the latest alert of the condition (the notice replies to it). */
  id: z.string().min(1),
  /** When the condition was first alerted, unix seconds. */
  since: z.number(),
  title: z.string().optional(),
  urgent: z.boolean().optional(),
  /** The alert's destinations (`to`), when it named any: the notice goes to the same. */
  to: z.array(z.string()).optional(),
});
export type ActiveAlert = z.infer<typeof ActiveAlertSchema>;

/** The script's active condition alert, or null. */
export function activeAlertOf(state: ScriptState): ActiveAlert | null {
  const r = ActiveAlertSchema.safeParse(state[ACTIVE_ALERT]);
  return r.success ? r.data : null;
}

/** The alert to keep active after a sent condition alert (an ongoing condition keeps its start). */
export function nextActiveAlert(previous: ActiveAlert | null, id: string, nowSeconds: number, title: string | undefined, urgent: boolean, to: readonly string[] | undefined): ActiveAlert {
  return { id, since: previous?.since ?? nowSeconds, ...(title !== undefined ? { title } : {}), ...(urgent ? { urgent: true } : {}), ...(to ? { to: [...to] } : {}) };
}

/** The send API fields of the resolved notice of `alert`. */
export function resolvedFields(script: string, alert: ActiveAlert, nowMs: number): Record<string, unknown> {
  const lasted = lastedText(nowMs - alert.since * 1000);
  return {
    script,
    resolves: alert.id,
    title: `✅ Resolved: ${alert.title ?? script}`,
    message: `${escapeLegacyMarkdown(script)} reports the condition cleared, after ${lasted} (alerted ${localTimestamp(new Date(alert.since * 1000))}).`,
    ...(alert.urgent ? { urgent: true } : {}),
    ...(alert.to ? { to: alert.to } : {}),
  };
}

/** Sends the resolved notice (the runner's own request, like any notification of the script). */
export function sendResolvedNotice(client: Parameters<typeof deliver>[0], script: string, alert: ActiveAlert, nowMs: number): Promise<DeliveryResult> {
  return deliver(client, resolvedFields(script, alert, nowMs), null, 'respond-async');
}
