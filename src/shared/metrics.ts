/**
 * The optional Prometheus endpoint (`NOTIFY_METRICS_ADDR`, off by default): one registry per
 * program, served as Prometheus text at `GET /metrics` on a TCP address of its own. Label
 * values come from small fixed sets (channel, reason, result): never a user name or a chat
 * id, whose number has no bound. This module reads the address and serves a registry;
 * prom-client itself (metricsRegistry.ts and each program's metrics) is loaded only when
 * the endpoint is configured, so a program without metrics does not hold it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { EnvReader } from './config.js';
import type { Logger } from './logger.js';

/** Where the metrics endpoint listens. */
export interface MetricsAddress {
  host: string;
  port: number;
}

/** Parses `127.0.0.1:9464`, `[::1]:9464` or `:9464` (all interfaces); null when invalid. */
export function parseMetricsAddress(text: string): MetricsAddress | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/** Reads NOTIFY_METRICS_ADDR (undefined when unset: no endpoint). */
export function readMetricsAddress(r: EnvReader): MetricsAddress | undefined {
  const raw = r.get('NOTIFY_METRICS_ADDR');
  if (raw === undefined) return undefined;
  const addr = parseMetricsAddress(raw);
  if (!addr) r.problem(`NOTIFY_METRICS_ADDR must be <host>:<port>, e.g. 127.0.0.1:9464 (got '${raw}')`);
  return addr ?? undefined;
}

/** A running metrics endpoint. */
export interface MetricsServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** Serves `registry` at `GET /metrics` on addr. */
export async function serveMetrics(registry: Registry, addr: MetricsAddress, log: Logger): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Metrics are at GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => {
        log.error({ err }, 'could not collect metrics');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('could not collect metrics (see the log)\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  log.info({ host: address.address, port: address.port }, 'metrics endpoint listening at /metrics');
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Starts the endpoint when configured. A failure to listen (the port taken) is logged and
 * leaves the program running without metrics: notifications matter more than their counts.
 */
export async function startMetrics(registry: Registry, addr: MetricsAddress | undefined, log: Logger): Promise<MetricsServer | null> {
  if (!addr) return null;
  try {
    return await serveMetrics(registry, addr, log);
  } catch (err) {
    log.error({ err, host: addr.host, port: addr.port }, `cannot serve metrics on ${addr.host}:${addr.port} (NOTIFY_METRICS_ADDR); running without them`);
    return null;
  }
}
