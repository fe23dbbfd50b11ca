/**
 * The quiet-hours digest: alerts the analyst's rules held during quiet hours are released,
 * once those hours end, as one message (in order, each with its title and time), through
 * the notifier like any notification (bypassing the rules that held them).
 */
import type { MessageEntity } from 'grammy/types';
import { type AlertRulesStore, formatLocalTime, type HeldAlert, inQuietHours } from '../../shared/alertRules.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { TextBuilder } from '../format/textBuilder.js';
import type { Notifier } from './notifier.js';

/** What releasing digests needs. */
export interface DigestDeps {
  rules: AlertRulesStore;
  notifier: Notifier;
  clock: Clock;
  log: Logger;
}

/** Builds the digest of held alerts: one message, in order, each with its title. */
export function digestText(alerts: HeldAlert[], tz: string): { text: string; entities: MessageEntity[] } {
  const b = new TextBuilder();
  b.styled(`🌙 While you were in quiet hours: ${alerts.length} alert${alerts.length === 1 ? '' : 's'}`, 'bold').line();
  for (const a of alerts) {
    b.line().styled(a.title || a.script || 'Alert', 'bold').add(` - ${formatLocalTime(Date.parse(a.at), tz)}${a.script ? ` (${a.script})` : ''}`).line();
    if (a.message) b.add(a.message).line();
    if (a.had_image) b.styled('(image not included: press Run now or see the dashboard)', 'italic').line();
  }
  return { text: b.text.replace(/\n+$/, ''), entities: b.entities as MessageEntity[] };
}

/** No channel took a digest; its alerts stay held for the next pass. */
class NoChannelError extends Error {}

/**
 * Releases held alerts of users whose quiet hours have ended. A digest no channel takes
 * (Telegram unlinked, no desktop connected) stays held and is tried on the next pass; that
 * is logged once an hour per user (`noChannelLogged`: when it was last logged, by user;
 * one map per scheduler, so two bots in one process do not silence each other).
 */
export async function releaseDigests(deps: DigestDeps, noChannelLogged: Map<string, number> = new Map()): Promise<number> {
  let released = 0;
  for (const user of await deps.rules.heldUsers()) {
    const r = await deps.rules.forUser(user);
    if (inQuietHours(r.quiet_hours, deps.clock.now())) continue;
    try {
      released += await deps.rules.releaseHeld(user, async (alerts) => {
        const digest = digestText(alerts, r.quiet_hours?.tz ?? 'UTC');
        const res = await deps.notifier.submit({ user, content: { rich: digest }, bypassRules: true, script: undefined }, { respondAsync: true, waitMs: 0 });
        if (res.status === 404) throw new NoChannelError(res.body.error);
        deps.log.info({ user, count: alerts.length, id: res.body.id }, 'quiet-hours digest queued');
      });
      noChannelLogged.delete(user);
    } catch (err) {
      if (!(err instanceof NoChannelError)) throw err;
      const last = noChannelLogged.get(user) ?? 0;
      if (deps.clock.now() - last > 3_600_000) {
        deps.log.warn({ user, err }, 'quiet-hours digest kept: no channel takes it yet; retrying');
        noChannelLogged.set(user, deps.clock.now());
      }
    }
  }
  return released;
}

/** Runs releaseDigests every intervalMs, never two passes at once. */
export function scheduleDigests(deps: DigestDeps, intervalMs: number): () => void {
  let running = false;
  const noChannelLogged = new Map<string, number>();
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    releaseDigests(deps, noChannelLogged)
      .catch((err: unknown) => deps.log.error({ err }, 'could not release quiet-hours digests'))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
