/** The Prometheus registry of one program (loaded only when its metrics are served). */
import { collectDefaultMetrics, Registry } from 'prom-client';

/** A registry for one program, with Node's process metrics under `<prefix>`. */
export function newRegistry(prefix: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return registry;
}
