/**
 * The gateway's Prometheus metrics: desktop connections and users connected now, and the
 * notifications dispatched to them. No label names a user.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { newRegistry } from '../shared/metricsRegistry.js';

/** What the metrics read at scrape time. */
export interface ConnectionCounts {
  readonly connectionCount: number;
  readonly userCount: number;
}

/** Every metric of the gateway, on its own registry. */
export class GatewayMetrics {
  readonly registry: Registry;
  private readonly dispatches: Counter<'result'>;
  private readonly frames: Counter;

  constructor(counts: ConnectionCounts) {
    const registry = newRegistry('notify_gateway_');
    this.registry = registry;
    const r = [registry];
    new Gauge({
      name: 'notify_desktop_connections',
      help: 'Authenticated desktop connections',
      registers: r,
      collect() {
        this.set(counts.connectionCount);
      },
    });
    new Gauge({
      name: 'notify_desktop_users',
      help: 'Users with at least one desktop connected',
      registers: r,
      collect() {
        this.set(counts.userCount);
      },
    });
    this.dispatches = new Counter({ name: 'notify_gateway_dispatches_total', help: 'Notifications dispatched by the bot, by whether a desktop of the user was connected', labelNames: ['result'], registers: r });
    this.frames = new Counter({ name: 'notify_gateway_notifications_sent_total', help: 'Notification messages written to desktop connections', registers: r });
    for (const result of ['delivered', 'no_connection']) this.dispatches.inc({ result }, 0);
  }

  /** One dispatch that reached `sent` connections. */
  dispatched(sent: number): void {
    this.dispatches.inc({ result: sent > 0 ? 'delivered' : 'no_connection' });
    this.frames.inc(sent);
  }
}
