/** Builds and starts the bot service: outbox and delivery, send API, Telegram polling. */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { Api, Bot } from 'grammy';
import { z } from 'zod';
import type { FastifyInstance } from 'fastify';
import { AlertRulesStore } from '../shared/alertRules.js';
import { type Clock, systemClock } from '../shared/clock.js';
import { GatewayClient } from '../gateway/client.js';
import { LinkStore } from '../shared/linking.js';
import { LinkTokenStore } from '../shared/linkTokens.js';
import { type HeldLock, tryLock } from '../shared/lock.js';
import { DiskGuard } from '../shared/diskSpace.js';
import { CorruptFileError, removeOrphanTemps } from '../shared/jsonFile.js';
import { type Logger, logFileState } from '../shared/logger.js';
import { ScriptsHelper } from '../scripts/client.js';
import { startMetrics } from '../shared/metrics.js';
import { trimMemoryPeriodically } from '../shared/memoryTrim.js';
import { Lease } from '../shared/db/lease.js';
import { databaseProblem } from '../shared/db/database.js';
import { sharedDocument } from '../shared/documents.js';
import { openSharedState } from '../shared/sharedState.js';
import { TeamChatStore } from '../shared/teamChats.js';
import { listenOnUnixSocket } from '../shared/unixSocket.js';
import type { BotMetrics } from './metrics.js';
import type { BotConfig } from './config.js';
import { alertCommands, rulesStatus } from './commands/alertCommands.js';
import { scheduleDigests } from './delivery/digests.js';
import { resolvedKeyboard, ScriptKeys } from './commands/alertKeyboard.js';
import { Deliverer } from './delivery/deliverer.js';
import { linkCommands } from './commands/linkCommands.js';
import { BOT_COMMANDS, fallbackReplies, unreadableDataNotice } from './commands/menu.js';
import { Notifier } from './delivery/notifier.js';
import { FileOutbox, type OutboxRecord, type OutboxStore } from './delivery/outbox.js';
import { latestOutcomeOf } from '../shared/outcomeLog.js';
import { PgOutbox } from './delivery/pgOutbox.js';
import { AlertThreads } from './delivery/alertThreads.js';
import { paceInteractiveApi } from './telegram/pacedApi.js';
import { Pacer } from './telegram/pacer.js';
import { Poller, type PollingState } from './telegram/polling.js';
import { buildSendApi } from './intake/sendApi.js';
import { scriptCommands } from './commands/scriptCommands.js';
import { teamCommands } from './commands/teamCommands.js';
import { GrammyTransport } from './telegram/transport.js';

/** A running bot service. */
export interface RunningBot {
  readonly deliverer: Deliverer;
  readonly notifier: Notifier;
  readonly sendApi: FastifyInstance;
  readonly bot: Bot;
  /** Stops everything; resolves when stopped. */
  stop(): Promise<void>;
  /** Resolves with an error if the service cannot go on (e.g. the token was refused). */
  readonly fatal: Promise<Error>;
}

/** Another bot already runs on this data directory. */
export class AlreadyRunningError extends Error {
  constructor(dataDir: string) {
    super(`Another notify-bot is already running with the data directory ${dataDir}; two would answer Telegram twice. Stop the other one first.`);
    this.name = 'AlreadyRunningError';
  }
}

export { BOT_COMMANDS } from './commands/menu.js';

/**
 * What `/health` says of polling: `telegram_polling` is true only while calls to Telegram
 * succeed; while they fail, why and since when.
 */
export function pollingHealth(state: PollingState | undefined): Record<string, unknown> {
  if (!state) return { telegram_polling: false, telegram_polling_error: 'not started yet' };
  if (state.ok) return { telegram_polling: true };
  return { telegram_polling: false, telegram_polling_error: state.reason, ...(state.since ? { telegram_polling_failing_since: state.since } : {}) };
}

/** The Telegram update offset kept in the shared state (the fleet's pollers take turns). */
function updateOffsets(dataDir: string): { load(): Promise<number>; save(offset: number): Promise<void> } {
  const doc = sharedDocument(dataDir, 'telegram_offset.json', z.looseObject({ offset: z.number().int() }), () => ({ offset: 0 }));
  return {
    load: async () => (await doc.read()).offset,
    save: (offset) => doc.update((cur) => ({ ...(offset > cur.offset ? { next: { ...cur, offset } } : {}), result: undefined })),
  };
}

/** Starts the bot service. */
export async function startBotService(cfg: BotConfig, log: Logger, clock: Clock = systemClock): Promise<RunningBot> {
  await fsp.mkdir(cfg.dataDir, { recursive: true, mode: 0o770 });
  const instance: HeldLock | null = tryLock(join(cfg.dataDir, '.notify-bot.lock'));
  if (!instance) throw new AlreadyRunningError(cfg.dataDir);

  const stoppers: Array<() => Promise<void> | void> = [() => instance.release()];
  const stopAll = async (): Promise<void> => {
    for (const s of stoppers.splice(0).reverse()) {
      try {
        await s();
      } catch (err) {
        log.error({ err }, 'error while stopping');
      }
    }
  };

  try {
    // Leftovers of writes a killed process never finished (ours, or the dashboard's).
    const orphans = await removeOrphanTemps(cfg.dataDir);
    if (orphans.length > 0) log.info({ files: orphans }, 'removed temporary files left by interrupted writes');
    // Before any store is built: with a database, the stores keep their documents there.
    const shared = await openSharedState(cfg.dataDir, cfg.databaseUrl);
    stoppers.push(() => shared.close());
    if (shared.database) log.info({ database: shared.where, instance: cfg.instance }, 'shared state in PostgreSQL');
    let lease: Lease | null = null;
    let roleChange: Promise<void> = Promise.resolve();
    let stopDigests: (() => void) | null = null;
    /** In a fleet: takes the shared outbox while this replica holds the lease. */
    let startDelivering: () => Promise<void> = async () => undefined;
    const links = new LinkStore(cfg.dataDir, clock);
    try {
      await links.users.read();
      await links.codes.read();
    } catch (err) {
      log.error({ err }, 'a shared data file is unreadable; linking and sending will fail until it is repaired');
    }
    const linkTokens = new LinkTokenStore(cfg.dataDir, clock);

    const teams = new TeamChatStore(cfg.dataDir, clock);
    const leaseRenewMs = Math.max(200, Math.round(cfg.leaseTtlMs / 3));
    // With a database the outbox is shared: any replica adds, the lease holder delivers.
    const outbox: FileOutbox | PgOutbox = shared.database
      ? new PgOutbox(shared.database.sql, () => ({ name: 'telegram', holder: lease?.holder ?? '', generation: lease?.generation ?? null }), {
          claimMarginMs: leaseRenewMs,
          onProblem: (message, detail) => log.error(detail, message),
        })
      : new FileOutbox(cfg.dataDir, {
          commitIntervalMs: cfg.outboxCommitMs,
          segmentBytes: cfg.outboxSegmentBytes,
          onProblem: (message, detail) => log.error(detail, message),
        });
    const store: OutboxStore = outbox;
    const pacer = new Pacer(
      { botPerWindow: cfg.botPerWindow, windowMs: cfg.botWindowMs, chatBurst: cfg.chatBurst, chatIntervalMs: cfg.chatIntervalMs, groupPerWindow: cfg.groupPerWindow, groupWindowMs: cfg.groupWindowMs },
      clock,
    );
    // Built (and prom-client loaded) only when asked for; reads the deliverer's queue at scrape time.
    const metrics: BotMetrics | null = cfg.metricsAddr
      ? new (await import('./metrics.js')).BotMetrics(
          {
            get size(): number {
              return deliverer.size;
            },
            oldestAcceptedAt: (): number | null => deliverer.oldestAcceptedAt(),
          },
          () => clock.now(),
          () => !shared.database || lease?.role === 'leader',
        )
      : null;
    const threads = new AlertThreads(cfg.dataDir, clock);
    const sendingApi = new Api(cfg.token, { apiRoot: cfg.apiRoot, timeoutSeconds: cfg.requestTimeoutSeconds });
    // The outbox paces its own sends; an edit beside them (a resolved alert's buttons) waits
    // for the same pacer and honours retry_after, as interactive replies do.
    const editingApi = new Api(cfg.token, { apiRoot: cfg.apiRoot, timeoutSeconds: cfg.requestTimeoutSeconds });
    paceInteractiveApi(editingApi, pacer);
    let bot: Bot | null = null;
    let pollerRef: Poller | null = null;
    const deliverer: Deliverer = new Deliverer(
      store,
      new GrammyTransport(sendingApi),
      pacer,
      {
        maxAgeMs: cfg.retryMaxAgeMs,
        stuckMs: cfg.stuckMessageMs,
        retryBaseMs: cfg.retryBaseMs,
        retryMaxMs: cfg.retryMaxMs,
        concurrency: cfg.concurrency,
        queueMax: cfg.queueMax,
        // Shared: other replicas' records are announced (LISTEN); the scan is the fallback.
        rescanMs: shared.database ? Math.min(cfg.rescanMs, 1000) : cfg.rescanMs,
      },
      clock,
      log,
      {
        onRefused: (user, chatId, reason) => {
          if (chatId < 0) teams.markDeliveryRefused(chatId, reason).catch((err: unknown) => log.error({ err, chat: chatId }, 'could not mark the team chat as refused'));
          else links.markDeliveryRefused(user, chatId, reason).catch((err: unknown) => log.error({ err, user }, 'could not mark the link as refused'));
        },
        ...(metrics ? { metrics } : {}),
        onMigrated: async (from, to) => {
          const team = await teams.migrateChat(from, to);
          log.info({ chat: from, to, team }, team ? 'the team chat now lives in the supergroup' : 'a chat not linked as a team chat moved to a supergroup');
        },
        // Fenced off while the lease may still be ours (it ran out unrenewed, nobody took it):
        // once the deliverer has let go, take the queue again if the lease is still held.
        onFenced: () => {
          roleChange = roleChange
            .then(async () => {
              await deliverer.suspend();
              await startDelivering();
            })
            .catch((err: unknown) => log.error({ err }, 'could not resume delivery after being fenced'));
        },
        // A resolved notice replies to its alert (sent by then: a chat's messages go in order).
        replyTarget: (record) => threads.replyTarget(record),
        onDelivered: (record, answeredAt) => {
          // A chat that refused earlier (blocked the bot, removed it) takes messages again:
          // one rule for both kinds of chat clears its mark (shared/refusalMark.ts).
          if (record.chat_id < 0) teams.noteDelivery(record.chat_id, answeredAt).catch((err: unknown) => log.error({ err, chat: record.chat_id }, 'could not note the team chat delivery'));
          else links.noteDelivery(record.user, record.chat_id, answeredAt).catch((err: unknown) => log.error({ err, user: record.user }, 'could not clear the refusal mark'));
          if (record.attempts > 0) log.info({ id: record.id, attempts: record.attempts }, 'delivered after retries');
          void followThread(record);
        },
      },
    );
    /**
     * Condition alerts are remembered; a delivered resolved notice updates the buttons of
     * every alert of its condition in that chat still showing them (one edit failing does
     * not keep the others as they were).
     */
    const followThread = async (record: OutboxRecord): Promise<void> => {
      try {
        if (record.send_resolved && record.message_ids && record.message_ids.length > 0) {
          await threads.remember(record.id, { user: record.user, chat_id: record.chat_id, message_ids: record.message_ids, ...(record.script ? { script: record.script } : {}) });
        } else if (record.resolves) {
          const open = await threads.openThreadsOf(record);
          for (const { id, thread } of open) {
            if (!thread.script) continue;
            await editingApi
              .editMessageReplyMarkup(thread.chat_id, thread.message_ids[thread.message_ids.length - 1]!, { reply_markup: resolvedKeyboard(thread.script, thread.user, thread.chat_id < 0) })
              .catch((err: unknown) => log.warn({ err, id: record.id, alert: id }, 'could not mark an alert of a resolved condition as resolved'));
          }
          if (open.length > 0) await threads.forget(open.map((o) => o.id));
        }
      } catch (err) {
        log.warn({ err, id: record.id }, 'could not keep or update the alert thread of a resolved notice');
      }
    };
    // On the files this process delivers; in a fleet only while it holds the lease (below).
    if (!shared.database) await deliverer.start();
    stoppers.push(() => deliverer.stop(3000));

    const disk = new DiskGuard(cfg.dataDir, cfg.minFreeDiskBytes);
    const gateway = new GatewayClient(cfg.gatewaySocketPath, cfg.gatewayTimeoutMs);
    stoppers.push(() => gateway.close());
    const rules = new AlertRulesStore(cfg.dataDir, clock);
    const scriptKeys = new ScriptKeys(cfg.dataDir);
    const notifier = new Notifier(
      links,
      store,
      deliverer,
      gateway,
      { dataDir: cfg.dataDir, gatewayTimeoutMs: cfg.gatewayTimeoutMs, imageRetentionMs: 7 * 86_400_000, disk, userQuota: { count: cfg.userQueueMax, bytes: cfg.userQueueBytes, imageBytes: cfg.userImageBytes } },
      clock,
      log,
      rules,
      scriptKeys,
      metrics,
    );
    // In a fleet only the lease holder releases digests (below), so none goes out twice.
    const startDigests = (): (() => void) => scheduleDigests({ rules, notifier, clock, log }, cfg.digestCheckMs);
    if (!shared.database) stoppers.push(startDigests());
    const housekeeping = setInterval(() => {
      pacer.sweep();
      void notifier.pruneImages();
    }, 3_600_000);
    housekeeping.unref();
    stoppers.push(() => clearInterval(housekeeping));

    const startedAt = clock.now();
    const sendApi = await buildSendApi({
      notifier,
      teams,
      clock,
      log,
      trustedUsers: cfg.trustedUsers,
      analystGroup: cfg.analystGroup,
      sendWaitMs: cfg.sendWaitMs,
      sendWaitMaxMs: cfg.sendWaitMaxMs,
      maxBodyBytes: cfg.maxBodyBytes,
      maxPhotoBytes: cfg.maxPhotoBytes,
      requestTimeoutMs: cfg.requestTimeoutMs,
      maxConnectionsPerUid: cfg.maxConnectionsPerUid,
      channels: async (user) => {
        const [link, gw] = await Promise.all([links.linkOf(user), gateway.health()]);
        let telegram: Record<string, unknown> = { linked: false };
        if (link) {
          const state = deliverer.telegramState(user, link.chat_id);
          if (!state.last) {
            // Nothing finished here since this start (or, in a fleet, another replica delivers): the newest outcome on record.
            const newest = await latestOutcomeOf(cfg.dataDir, user);
            if (newest) state.last = { status: newest.status, at: newest.at, ...(newest.detail !== undefined ? { detail: newest.detail } : {}) };
          }
          telegram = { linked: true, ...state, ...(link.delivery_refused ? { refused: link.delivery_refused } : {}) };
        }
        const polling = pollerRef?.state;
        return {
          telegram: { ...telegram, polling: polling?.ok ?? false, ...(polling && !polling.ok ? { polling_error: polling.reason, ...(polling.since ? { polling_failing_since: polling.since } : {}) } : {}) },
          desktop: 'error' in gw ? { connections: null, error: `the desktop gateway did not answer (${gw.error})` } : { connections: gw.users[user] ?? 0 },
        };
      },
      health: async () => {
        const problems: string[] = [];
        const diskState = await disk.state();
        if (diskState.problem) problems.push(`data disk full: ${diskState.problem}; new notifications are refused with 507`);
        const logFile = logFileState(log);
        const db = shared.database ? await databaseProblem(shared.database.sql, 1000) : null;
        if (db) problems.push(`the database is unreachable (${db}): sends are refused with 503 and nothing is delivered until it is back; this replica reconnects by itself`);
        try {
          // (Not asked of a database that is away: the answer would only wait for it.)
          if (!db) await links.users.read();
        } catch (err) {
          if (err instanceof CorruptFileError) problems.push(`${err.message} Linked chats get no notifications and commands are answered with an apology until then.`);
        }
        if (logFile && !logFile.ok) problems.push(`bot.log cannot be written (${logFile.error}); ${logFile.dropped} line(s) dropped so far`);
        return {
          instance: cfg.instance,
          role: lease?.role ?? 'leader',
          store: shared.backend,
          queued: deliverer.size,
          outbox: outbox instanceof FileOutbox ? outbox.stats : { store: 'postgres', delivering: deliverer.active },
          uptime_s: Math.round((clock.now() - startedAt) / 1000),
          delivery: deliverer.stats,
          ...pollingHealth(pollerRef?.state),
          ...(pollerRef ? { telegram_updates: { waiting: pollerRef.backlog, ...pollerRef.stats } } : {}),
          disk: diskState,
          ...(problems.length > 0 ? { problems } : {}),
        };
      },
    });
    await listenOnUnixSocket(sendApi, cfg.socketPath, 'notify-bot', { name: cfg.socketGroup, setting: 'NOTIFY_SOCKET_GROUP' });
    stoppers.push(() => sendApi.close());
    log.info({ socket: cfg.socketPath }, 'send API listening');

    bot = new Bot(cfg.token, { client: { apiRoot: cfg.apiRoot, timeoutSeconds: cfg.pollTimeoutSeconds + 15 } });
    paceInteractiveApi(bot.api, pacer);
    bot.catch((err) => log.error({ err: err.error, update_id: err.ctx.update.update_id }, 'a Telegram update could not be handled'));
    bot.use(teamCommands({ links, teams, scriptKeys, notifier, log, clock, publicUrl: cfg.publicUrl }));
    bot.use(unreadableDataNotice(log));
    bot.use(linkCommands({ links, linkTokens, notifier, log, publicUrl: cfg.publicUrl, clock }));
    const helper = new ScriptsHelper({ command: cfg.scriptsCommand, timeoutMs: cfg.scriptsHelperTimeoutMs });
    bot.use(alertCommands({ links, rules, scriptKeys, notifier, clock, log }));
    bot.use(scriptCommands({ links, helper, notifier, log, clock, scriptKeys, statusExtras: rulesStatus(rules, clock) }));
    bot.use(fallbackReplies());

    let fatalResolve: (e: Error) => void = () => undefined;
    const fatal = new Promise<Error>((resolve) => {
      fatalResolve = resolve;
    });
    const offsets = shared.database ? updateOffsets(cfg.dataDir) : undefined;
    const poller = new Poller(bot, log, {
      timeoutSeconds: cfg.pollTimeoutSeconds,
      minBackoffMs: 500,
      maxBackoffMs: 30_000,
      onFatal: fatalResolve,
      spoolPath: join(cfg.dataDir, 'telegram_updates.json'),
      maxHandlers: cfg.updateConcurrency,
      maxBacklog: cfg.updateBacklog,
      stopGraceMs: 3000, ...(metrics ? { onPoll: (ok: boolean) => metrics.polled(ok) } : {}), ...(offsets ? { offsets } : {}),
    });
    pollerRef = poller;
    if (shared.database) {
      // A fleet: only the holder of the Telegram lease polls (Telegram allows one consumer).
      startDelivering = async (): Promise<void> => {
        // The database may be away at the change: retry while the lease is still held.
        for (let pause = 250; lease?.role === 'leader' && !deliverer.active; pause = Math.min(pause * 2, 5000)) {
          try {
            await deliverer.start();
          } catch (err) {
            log.error({ err }, 'could not take the shared outbox; retrying');
            await new Promise((r) => setTimeout(r, pause).unref());
          }
        }
      };
      lease = new Lease(shared.database.sql, 'telegram', cfg.instance, { ttlMs: cfg.leaseTtlMs, renewMs: leaseRenewMs }, log, (role, generation) => {
        log.info({ role, generation, instance: cfg.instance }, role === 'leader' ? 'holding the Telegram lease: polling and delivering' : 'not holding the Telegram lease: accepting only');
        stopDigests?.();
        stopDigests = role === 'leader' ? startDigests() : null;
        roleChange = roleChange
          .then(() => {
            if (role !== 'leader') return Promise.all([poller.stop(), deliverer.suspend()]).then(() => undefined);
            poller.start();
            return startDelivering();
          })
          .then(() => undefined)
          .catch((err: unknown) => log.error({ err }, 'could not change polling role'));
      });
      stoppers.push(() => stopDigests?.());
      const held = lease;
      stoppers.push(() => poller.stop());
      stoppers.push(() => held.stop());
      held.start();
    } else {
      poller.start();
      stoppers.push(() => poller.stop());
    }
    const theBot = bot;
    void (async () => {
      for (let attempt = 0; attempt < 20; attempt += 1) {
        try {
          await theBot.api.setMyCommands([...BOT_COMMANDS]);
          return;
        } catch (err) {
          log.debug({ err }, 'setMyCommands failed; retrying');
          await new Promise((r) => setTimeout(r, 3000).unref());
        }
      }
    })();
    if (metrics) {
      const server = await startMetrics(metrics.registry, cfg.metricsAddr, log);
      if (server) stoppers.push(() => server.close());
    }
    stoppers.push(trimMemoryPeriodically());
    log.info({ dataDir: cfg.dataDir, queued: deliverer.size }, 'notify-bot started');

    return { deliverer, notifier, sendApi, bot, stop: stopAll, fatal };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
