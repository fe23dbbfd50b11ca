/** `notify-bot`: the Telegram bot service, and its operator commands for the outbox. */
import { promises as fsp } from 'node:fs';
import { EnvReader, ConfigError, readCommonConfig } from '../shared/config.js';
import { databasePassword } from '../shared/db/database.js';
import { SHARED_DOCUMENTS } from '../shared/documents.js';
import { openSharedState } from '../shared/sharedState.js';
import { createLogger } from '../shared/logger.js';
import { settingsHelp } from '../shared/settingsDocs.js';
import { readBotConfig } from './config.js';
import { FileOutbox, type OutboxRecord, type OutboxStore } from './delivery/outbox.js';
import { startBotService } from './service.js';

const USAGE = `Usage:
  notify-bot                    run the bot service (Telegram polling + send API)
  notify-bot queue list         list undeliverable notifications (the dead-letter queue)
  notify-bot queue pending      list notifications accepted and not yet delivered
  notify-bot queue show <id>    show one of them (dead or pending) in full
  notify-bot queue requeue <id>|--all
                                put them back in the delivery queue (the running bot picks them up)
  notify-bot import-files       copy this host's shared data files into the database of
                                NOTIFY_DATABASE_URL (a second run changes nothing)
  notify-bot export-files       write the database's shared state back to the data files
  notify-bot --help             this help

Environment (default in brackets):
${settingsHelp('bot')}
`;

/** The longest a stop may take (SIGTERM, SIGINT) before the process exits anyway. */
const STOP_BUDGET_MS = 9000;

async function queueCommand(args: string[]): Promise<number> {
  const r = new EnvReader('bot');
  const common = readCommonConfig(r);
  r.done();
  const onProblem = (message: string, detail: Record<string, unknown>): void => console.error(`${message}: ${JSON.stringify(detail)}`);
  if (!common.databaseUrl) return queueCommandOn(new FileOutbox(common.dataDir, { onProblem }), args);
  // The fleet's shared outbox; an operator holds no lease, so it only reads and re-queues.
  const { openDatabase } = await import('../shared/db/database.js');
  const { PgOutbox } = await import('./delivery/pgOutbox.js');
  const db = await openDatabase(common.databaseUrl);
  try {
    return await queueCommandOn(new PgOutbox(db.sql, () => ({ name: 'telegram', holder: 'operator', generation: null }), { onProblem }), args);
  } finally {
    await db.close();
  }
}

async function queueCommandOn(store: OutboxStore, args: string[]): Promise<number> {
  const [sub, arg] = args;
  const line = (d: OutboxRecord): string => {
    const first = d.parts[0]?.text.split('\n')[0]?.slice(0, 60) ?? '';
    return `${d.id}  ${new Date(d.accepted_at).toISOString()}  user=${d.user}  script=${d.script ?? '-'}  attempts=${d.attempts}  "${first}"`;
  };
  if (sub === 'list') {
    const dead = await store.deadLetters();
    const damaged = (await store.damagedLetters?.()) ?? [];
    if (dead.length === 0 && damaged.length === 0) {
      console.log('The dead-letter queue is empty.');
      return 0;
    }
    for (const d of dead) console.log(`${line(d)}\n    reason: ${d.last_error ?? 'unknown'}`);
    if (dead.length > 0) console.log(`${dead.length} undeliverable notification(s). Re-queue with: notify-bot queue requeue <id> (or --all)`);
    for (const d of damaged) console.log(`${d.id}  ${d.found_at || '-'}  unreadable record from ${d.source}\n    reason: ${d.reason}`);
    if (damaged.length > 0) console.log(`${damaged.length} record(s) that could not be read; they cannot be re-queued. See what was read with: notify-bot queue show <id>`);
    return 0;
  }
  if (sub === 'pending') {
    const pending = await store.pending();
    for (const d of pending) console.log(`${line(d)}  sent_parts=${d.sent_parts}/${d.parts.length}${d.last_error ? `\n    last error: ${d.last_error}` : ''}`);
    console.log(`${pending.length} notification(s) waiting for delivery.`);
    return 0;
  }
  if (sub === 'show' && arg) {
    const d = (await store.deadLetters()).find((x) => x.id === arg) ?? (await store.pending()).find((x) => x.id === arg) ?? (await store.damagedLetters?.())?.find((x) => x.id === arg);
    if (!d) {
      console.error(`No dead letter or pending notification with id ${arg}.`);
      return 1;
    }
    console.log(JSON.stringify(d, null, 2));
    return 0;
  }
  if (sub === 'requeue' && arg) {
    const ids = arg === '--all' ? (await store.deadLetters()).map((d) => d.id) : [arg];
    let n = 0;
    for (const id of ids) {
      if (await store.requeue(id, Date.now())) n += 1;
      else if ((await store.damagedLetters?.())?.some((x) => x.id === id)) console.error(`${id} is a record that could not be read; it cannot be re-queued (notify-bot queue show ${id} prints what was read).`);
      else console.error(`No dead letter with id ${id}.`);
    }
    console.log(`Re-queued ${n} notification(s); the running bot delivers them within a few seconds.`);
    return n === ids.length ? 0 : 1;
  }
  console.error(USAGE);
  return 2;
}

/** `import-files` / `export-files`: moves the shared data files into the database and back. */
async function filesCommand(direction: 'import-files' | 'export-files'): Promise<number> {
  const r = new EnvReader('bot');
  const common = readCommonConfig(r);
  r.done();
  if (!common.databaseUrl) {
    console.error(`notify-bot ${direction}: NOTIFY_DATABASE_URL is not set; it names the database to ${direction === 'import-files' ? 'import into' : 'export from'}.`);
    return 1;
  }
  const shared = await openSharedState(common.dataDir, common.databaseUrl, { refuseUnimported: false });
  try {
    const docs = shared.documents!;
    if (direction === 'import-files') {
      const done = await docs.importFiles(common.dataDir, SHARED_DOCUMENTS);
      if (done.length === 0) console.log(`No shared data files in ${common.dataDir}; nothing imported.`);
      for (const d of done) console.log(`${d.changed ? 'imported ' : 'unchanged'} ${d.name} (${d.entries} entries)`);
      const changed = done.filter((d) => d.changed).length;
      console.log(`${changed} of ${done.length} file(s) imported into ${shared.where}${changed === 0 && done.length > 0 ? ' (the database already held them)' : ''}.`);
    } else {
      await fsp.mkdir(common.dataDir, { recursive: true, mode: 0o770 });
      const done = await docs.exportFiles(common.dataDir, SHARED_DOCUMENTS);
      for (const d of done) console.log(`exported ${d.name} (${d.entries} entries)`);
      console.log(`${done.length} file(s) written to ${common.dataDir} from ${shared.where}.`);
    }
    return 0;
  } finally {
    await shared.close();
  }
}

/** Entry point. */
export async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  if (argv[0] === 'queue') {
    try {
      process.exitCode = await queueCommand(argv.slice(1));
    } catch (err) {
      process.stderr.write(`notify-bot queue: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
    return;
  }
  if (argv[0] === 'import-files' || argv[0] === 'export-files') {
    try {
      process.exitCode = await filesCommand(argv[0]);
    } catch (err) {
      process.stderr.write(`notify-bot ${argv[0]}: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
    return;
  }
  if (argv.length > 0) {
    process.stderr.write(`Unknown arguments: ${argv.join(' ')}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  let cfg;
  try {
    cfg = readBotConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`notify-bot: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw err;
  }
  const log = createLogger({ name: 'notify-bot', file: `${cfg.dataDir}/bot.log`, secrets: [...cfg.secrets, ...(cfg.databaseUrl ? [databasePassword(cfg.databaseUrl) ?? ''] : [])], level: cfg.logLevel });
  let running;
  try {
    running = await startBotService(cfg, log);
  } catch (err) {
    log.fatal({ err }, 'notify-bot could not start');
    process.stderr.write(`notify-bot: ${err instanceof Error ? err.message : String(err)}\n`);
    log.flush();
    process.exitCode = 1;
    return;
  }
  const stop = async (why: string, code: number): Promise<void> => {
    log.info(`stopping (${why})`);
    // systemd waits 90 s; operators and restarts should not. What is accepted is on disk
    // (the outbox, the spool of Telegram updates), so a stop that overruns loses nothing.
    setTimeout(() => {
      log.error(`could not stop cleanly within ${STOP_BUDGET_MS / 1000} s; exiting anyway (queued notifications and updates are kept on disk)`);
      log.flush();
      process.exit(code);
    }, STOP_BUDGET_MS).unref();
    await running.stop();
    log.flush();
    process.exit(code);
  };
  process.once('SIGTERM', () => void stop('SIGTERM', 0));
  process.once('SIGINT', () => void stop('SIGINT', 0));
  void running.fatal.then((err) => stop(err.message, 1));
}
