/**
 * The dashboard's Prometheus metrics: sign-ins and Telegram code verifications by result
 * (a run of failed codes is someone guessing). No label names a user or an address.
 */
import { Counter, type Registry } from 'prom-client';
import { newRegistry } from '../shared/metricsRegistry.js';

/** How a sign-in ended. */
export type SignInResult = 'ok' | 'refused' | 'failed';
/** How a code verification ended. */
export type VerificationResult = 'ok' | 'invalid' | 'rate_limited';

/** Every metric of the dashboard, on its own registry. */
export class WebMetrics {
  readonly registry: Registry;
  private readonly signIns: Counter<'result'>;
  private readonly verifications: Counter<'result'>;

  constructor() {
    const registry = newRegistry('notify_web_');
    this.registry = registry;
    this.signIns = new Counter({ name: 'notify_web_sign_ins_total', help: 'Sign-ins by result: ok, refused (account not allowed), failed (cancelled, expired or altered)', labelNames: ['result'], registers: [registry] });
    this.verifications = new Counter({ name: 'notify_web_code_verifications_total', help: 'Telegram link codes typed on the dashboard by result: ok, invalid (wrong or expired), rate_limited', labelNames: ['result'], registers: [registry] });
    for (const result of ['ok', 'refused', 'failed']) this.signIns.inc({ result }, 0);
    for (const result of ['ok', 'invalid', 'rate_limited']) this.verifications.inc({ result }, 0);
  }

  signIn(result: SignInResult): void {
    this.signIns.inc({ result });
  }

  codeVerification(result: VerificationResult): void {
    this.verifications.inc({ result });
  }
}
