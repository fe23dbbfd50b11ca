/**
 * The bot's Prometheus metrics: what the send API accepted, what reached Telegram and the
 * desktops, what was retried, dead-lettered or held back by the analysts' rules, the queue,
 * 429s, delivery latency and the health of polling. Labels are channels, reasons and
 * results, never users or chats.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { newRegistry } from '../shared/metricsRegistry.js';

/** Why a notification accepted by the send API was not sent. */
export type SuppressionReason = 'snoozed' | 'muted' | 'unchanged' | 'quiet_hours';
const SUPPRESSION_REASONS: readonly SuppressionReason[] = ['snoozed', 'muted', 'unchanged', 'quiet_hours'];

/** A channel a notification goes to: a Telegram chat (personal or team) or the desktop app. */
export type Channel = 'telegram' | 'desktop';

/** What the notifier reports. */
export interface IntakeMetrics {
  /** A notification taken for a channel (Telegram: on disk in the outbox; desktop: handed to the gateway). */
  accepted(channel: 'telegram' | 'desktop'): void;
  /** Held back by a rule from a channel it would have gone to (once per such channel). */
  suppressed(channel: Channel, reason: SuppressionReason): void;
  /** The gateway's answer for one desktop copy. */
  desktop(result: 'delivered' | 'no_connection' | 'failed'): void;
}

/** What the deliverer reports. */
export interface DeliveryMetrics {
  /** A notification the deliverer itself queued (the notice about a dead letter). */
  accepted(channel: 'telegram'): void;
  /** Telegram took the whole notification, latencyMs after it was accepted. */
  delivered(latencyMs: number): void;
  /** A failed attempt that will be retried. */
  retried(reason: string): void;
  /** Telegram answered 429. */
  rateLimited(): void;
  /** Moved to the dead-letter queue. */
  deadLettered(reason: 'retries_exhausted' | 'rejected' | 'stuck'): void;
  /** The chat refuses the bot (blocked, left, gone). */
  refused(): void;
}

/** What the poller reports. */
export interface PollingMetrics {
  polled(ok: boolean): void;
}

/** The queue, read at scrape time. */
export interface QueueView {
  readonly size: number;
  /** Acceptance time (ms) of the oldest queued notification, or null when empty. */
  oldestAcceptedAt(): number | null;
}

/** Latency buckets (seconds): paced delivery is seconds, an outage hours. */
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 21_600, 86_400];

/** Every metric of the bot, on its own registry. */
export class BotMetrics implements IntakeMetrics, DeliveryMetrics, PollingMetrics {
  readonly registry: Registry;
  private readonly acceptedTotal: Counter<'channel'>;
  private readonly deliveredTotal: Counter<'channel'>;
  private readonly retriedTotal: Counter<'channel' | 'reason'>;
  private readonly deadTotal: Counter<'channel' | 'reason'>;
  private readonly refusedTotal: Counter<'channel'>;
  private readonly suppressedTotal: Counter<'channel' | 'reason'>;
  private readonly desktopTotal: Counter<'result'>;
  private readonly tooMany: Counter;
  private readonly latency: Histogram;
  private readonly pollFailures: Counter;
  private readonly pollUp: Gauge;
  private readonly pollLastOk: Gauge;

  /** leads: whether this replica polls and delivers (in a fleet, holds the Telegram lease). */
  constructor(queue: QueueView, now: () => number, leads: () => boolean = () => true) {
    const registry = newRegistry('notify_bot_');
    this.registry = registry;
    const r = [registry];
    this.acceptedTotal = new Counter({ name: 'notify_notifications_accepted_total', help: 'Notifications accepted for a channel (telegram: stored in the outbox; desktop: handed to the gateway)', labelNames: ['channel'], registers: r });
    this.deliveredTotal = new Counter({ name: 'notify_notifications_delivered_total', help: 'Notifications delivered (telegram: every part taken by Telegram; desktop: reached at least one connection)', labelNames: ['channel'], registers: r });
    this.retriedTotal = new Counter({ name: 'notify_notifications_retried_total', help: 'Failed delivery attempts that will be retried, by reason', labelNames: ['channel', 'reason'], registers: r });
    this.deadTotal = new Counter({ name: 'notify_notifications_dead_lettered_total', help: 'Notifications moved to the dead-letter queue, by reason', labelNames: ['channel', 'reason'], registers: r });
    this.refusedTotal = new Counter({ name: 'notify_notifications_refused_total', help: 'Notifications not delivered because the chat refuses the bot (blocked, left, gone)', labelNames: ['channel'], registers: r });
    this.suppressedTotal = new Counter({ name: 'notify_notifications_suppressed_total', help: "Notifications held back by a rule (the analyst's, or a team chat's), by the channel they would have gone to and the reason", labelNames: ['channel', 'reason'], registers: r });
    this.desktopTotal = new Counter({ name: 'notify_desktop_dispatches_total', help: 'Desktop copies handed to the gateway, by result', labelNames: ['result'], registers: r });
    this.tooMany = new Counter({ name: 'notify_telegram_rate_limited_total', help: 'Answers 429 (Too Many Requests) received from Telegram while delivering', registers: r });
    this.latency = new Histogram({ name: 'notify_delivery_latency_seconds', help: "From acceptance to Telegram's acceptance of the last part", buckets: LATENCY_BUCKETS, registers: r });
    this.pollFailures = new Counter({ name: 'notify_telegram_polling_failures_total', help: 'getUpdates calls that failed', registers: r });
    this.pollUp = new Gauge({ name: 'notify_telegram_polling_up', help: '1 when the last getUpdates succeeded, else 0', registers: r });
    this.pollLastOk = new Gauge({ name: 'notify_telegram_polling_last_success_timestamp_seconds', help: 'When getUpdates last succeeded (unix seconds; 0 = not yet)', registers: r });
    new Gauge({
      name: 'notify_telegram_lease_held',
      help: 'This replica polls Telegram and delivers (1), or only accepts (0: another replica of a fleet holds the lease); without a database always 1',
      registers: r,
      collect() {
        this.set(leads() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'notify_queue_depth',
      help: 'Notifications accepted and not yet delivered, refused or dead-lettered',
      registers: r,
      collect() {
        this.set(queue.size);
      },
    });
    new Gauge({
      name: 'notify_queue_oldest_age_seconds',
      help: 'Age of the oldest queued notification (0 when the queue is empty)',
      registers: r,
      collect() {
        const oldest = queue.oldestAcceptedAt();
        this.set(oldest === null ? 0 : Math.max(0, (now() - oldest) / 1000));
      },
    });
    // Present from the first scrape, so rate() and absent() work before the first event.
    for (const channel of ['telegram', 'desktop']) {
      this.acceptedTotal.inc({ channel }, 0);
      this.deliveredTotal.inc({ channel }, 0);
    }
    this.retriedTotal.inc({ channel: 'telegram', reason: 'transient' }, 0);
    for (const reason of ['retries_exhausted', 'rejected', 'stuck']) this.deadTotal.inc({ channel: 'telegram', reason }, 0);
    this.refusedTotal.inc({ channel: 'telegram' }, 0);
    for (const channel of ['telegram', 'desktop']) for (const reason of SUPPRESSION_REASONS) this.suppressedTotal.inc({ channel, reason }, 0);
    for (const result of ['delivered', 'no_connection', 'failed']) this.desktopTotal.inc({ result }, 0);
  }

  accepted(channel: 'telegram' | 'desktop'): void {
    this.acceptedTotal.inc({ channel });
  }

  suppressed(channel: Channel, reason: SuppressionReason): void {
    this.suppressedTotal.inc({ channel, reason });
  }

  desktop(result: 'delivered' | 'no_connection' | 'failed'): void {
    this.desktopTotal.inc({ result });
    if (result === 'delivered') this.deliveredTotal.inc({ channel: 'desktop' });
  }

  delivered(latencyMs: number): void {
    this.deliveredTotal.inc({ channel: 'telegram' });
    this.latency.observe(Math.max(0, latencyMs) / 1000);
  }

  retried(reason: string): void {
    this.retriedTotal.inc({ channel: 'telegram', reason });
  }

  rateLimited(): void {
    this.tooMany.inc();
  }

  deadLettered(reason: 'retries_exhausted' | 'rejected' | 'stuck'): void {
    this.deadTotal.inc({ channel: 'telegram', reason });
  }

  refused(): void {
    this.refusedTotal.inc({ channel: 'telegram' });
  }

  polled(ok: boolean): void {
    this.pollUp.set(ok ? 1 : 0);
    if (ok) this.pollLastOk.setToCurrentTime();
    else this.pollFailures.inc();
  }
}
