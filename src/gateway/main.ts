/**
 * `notify-gateway`: reads the configuration, starts the gateway, and stops it gracefully
 * on SIGTERM or SIGINT.
 */
import { ConfigError } from '../shared/config.js';
import { databasePassword } from '../shared/db/database.js';
import { openSharedState, type SharedState } from '../shared/sharedState.js';
import { createLogger } from '../shared/logger.js';
import { helpText, readGatewayConfig } from './config.js';
import { Gateway } from './gateway.js';
import { trimMemoryPeriodically } from '../shared/memoryTrim.js';

/** How long a graceful stop may take before the process exits anyway. */
const STOP_DEADLINE_MS = 10_000;

/** Runs the gateway until a termination signal; sets a non-zero exit code on failure. */
export async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText());
    return;
  }
  if (argv.length > 0) {
    process.stderr.write(`notify-gateway: unexpected argument '${argv[0]}'\n\n${helpText()}`);
    process.exitCode = 2;
    return;
  }

  let config;
  try {
    config = readGatewayConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`notify-gateway: ${err.message}\n`);
    process.exitCode = 1;
    return;
  }

  const logger = createLogger({ name: 'notify-gateway', secrets: [...config.secrets, ...(config.databaseUrl ? [databasePassword(config.databaseUrl) ?? ''] : [])], level: config.logLevel });
  if (Buffer.byteLength(config.jwtSecret) < 32) {
    logger.warn('DESKTOP_JWT_SECRET is shorter than 32 bytes; use a long random value (e.g. `openssl rand -hex 32`)');
  }
  let shared: SharedState | null = null;
  let gateway: Gateway;
  try {
    // Before the gateway's stores are built: with a database, they keep their documents there.
    shared = await openSharedState(config.dataDir, config.databaseUrl);
    if (shared.database) logger.info({ database: shared.where, instance: config.instance }, 'shared state in PostgreSQL');
    gateway = new Gateway(config, { logger, database: shared.database });
    await gateway.start();
    // What start-up and bursts leave freed in the C allocator goes back to the system.
    trimMemoryPeriodically();
  } catch (err) {
    await shared?.close().catch(() => undefined);
    const message = (err as Error).message;
    logger.fatal({ err }, 'notify-gateway could not start');
    process.stderr.write(`notify-gateway: cannot start: ${message}\n`);
    process.exitCode = 1;
    return;
  }

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping notify-gateway');
    setTimeout(() => {
      logger.error('graceful stop took too long; exiting');
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    gateway
      .stop()
      .then(() => shared?.close())
      .then(() => {
        logger.info('notify-gateway stopped');
        process.exitCode = 0;
      })
      .catch((err: Error) => {
        logger.error({ err }, 'error while stopping');
        process.exitCode = 1;
      })
      .finally(() => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
