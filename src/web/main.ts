/**
 * notify-web: parse arguments, read the configuration, build the app, listen, and close
 * cleanly on SIGTERM/SIGINT.
 */
import { constants, promises as fsp } from 'node:fs';
import { databasePassword } from '../shared/db/database.js';
import { createLogger } from '../shared/logger.js';
import { openSharedState, type SharedState } from '../shared/sharedState.js';
import { buildApp } from './app.js';
import { startMetrics } from '../shared/metrics.js';
import { ConfigError, helpText, readWebConfig, type WebConfig } from './config.js';
import { trimMemoryPeriodically } from '../shared/memoryTrim.js';

async function checkDataDir(dir: string): Promise<string | null> {
  try {
    await fsp.mkdir(dir, { recursive: true, mode: 0o770 });
    await fsp.access(dir, constants.R_OK | constants.W_OK | constants.X_OK);
    return null;
  } catch (err) {
    return `NOTIFY_DATA_DIR ${dir} cannot be used by this account (${(err as NodeJS.ErrnoException).code ?? String(err)}): it must exist and be writable by the dashboard's service account (group data-ops, mode 0770).`;
  }
}

/** Runs notify-web with its command-line arguments (without node and the script). */
export async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText());
    return;
  }
  if (argv.length > 0) {
    process.stderr.write(`notify-web: unknown argument '${argv[0]}'. It takes no arguments; it is configured by environment variables (see notify-web --help).\n`);
    process.exitCode = 2;
    return;
  }
  let config: WebConfig;
  try {
    config = readWebConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`notify-web: ${err.message}\nSee notify-web --help for every variable and its default.\n`);
    process.exitCode = 1;
    return;
  }
  const dirProblem = await checkDataDir(config.dataDir);
  if (dirProblem) {
    process.stderr.write(`notify-web: ${dirProblem}\n`);
    process.exitCode = 1;
    return;
  }
  const password = config.databaseUrl ? databasePassword(config.databaseUrl) : null;
  const logger = createLogger({ name: 'notify-web', secrets: password ? [...config.secrets, password] : config.secrets, level: config.logLevel });
  let shared: SharedState;
  try {
    // Before the app builds its stores: with a database, they keep their documents there.
    shared = await openSharedState(config.dataDir, config.databaseUrl);
  } catch (err) {
    process.stderr.write(`notify-web: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
    return;
  }
  if (!config.botUsername) logger.warn('TELEGRAM_BOT_USERNAME is not set: the card cannot name the bot, and one-tap linking is off');
  // prom-client is loaded only when the metrics are served.
  const metrics = config.metricsAddr ? new (await import('./metrics.js')).WebMetrics() : undefined;
  const app = await buildApp({ config, logger, ...(metrics ? { metrics } : {}) });
  app.addHook('onClose', () => shared.close());
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    process.stderr.write(`notify-web: cannot listen on ${config.host}:${config.port}: ${(err as Error).message}\n`);
    await app.close();
    process.exitCode = 1;
    return;
  }
  if (metrics) {
    const server = await startMetrics(metrics.registry, config.metricsAddr, logger);
    if (server) app.addHook('onClose', () => server.close());
  }
  // What start-up and bursts leave freed in the C allocator goes back to the system.
  trimMemoryPeriodically();
  logger.info(
    { public_url: config.publicUrl, issuer: config.oidc.issuer, bot: config.botUsername ?? null, analyst_group: config.analystGroup ?? null },
    'notify-web ready',
  );
  let closing = false;
  const stop = (signal: string): void => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'notify-web stopping');
    app.close().then(
      () => {
        process.exitCode = 0;
      },
      (err: unknown) => {
        logger.error({ err: String(err) }, 'error while stopping');
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
