/**
 * Long polling that never stops on its own: network and Telegram errors back off and
 * retry; a 409 (another getUpdates consumer with this token) is reported clearly and
 * retried slowly; a 401 (bad token) is fatal; an API root that answers at once with
 * nothing (a proxy without long polling) is polled with growing pauses, not in a loop.
 *
 * Every update Telegram gives is kept in a spool file before the next getUpdates tells
 * Telegram it was received, and leaves the spool once handled: a stop or a crash with
 * updates still waiting hands them to the next start, so no acknowledged update is lost.
 *
 * Handling is bounded: updates of one chat are handled in order, one at a time; at most
 * `maxHandlers` chats are served at once, round robin, so a chat (or thousands of chats)
 * sending a flood of commands never holds the others up; while `maxBacklog` updates wait,
 * polling pauses (they are safe in the spool and with Telegram).
 *
 * An outage (Telegram unreachable, a wrong API root, a conflict) is logged once, at warning
 * with its reason, when it starts, and once when polling works again; the failed attempts
 * between go to the debug level. `state` says at any time whether polling works, for
 * `/health` and the dashboard.
 */
import { promises as fsp } from 'node:fs';
import { type Bot, GrammyError, HttpError } from 'grammy';
import type { Update } from 'grammy/types';
import { readJsonIfExists, writeFileAtomic } from '../../shared/jsonFile.js';
import { type Logger, redact } from '../../shared/logger.js';

/** Polling settings. */
export interface PollerOptions {
  timeoutSeconds: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  /** Called when polling cannot go on (bad token). */
  onFatal: (err: Error) => void;
  /**
   * Where the next update offset is kept across pollers (a fleet: the replica taking over
   * polling goes on where the last one stopped, so no update is answered twice).
   */
  offsets?: { load(): Promise<number>; save(offset: number): Promise<void> };
  /** Called after each getUpdates: whether it succeeded (for metrics). */
  onPoll?: (ok: boolean) => void;
  /** The spool file of updates received and not yet handled; none: kept in memory only. */
  spoolPath?: string;
  /** Chats whose updates are handled at once (default 16). */
  maxHandlers?: number;
  /** Updates waiting to be handled at which polling pauses (default 5000). */
  maxBacklog?: number;
  /** On stop, how long handlers in progress may take to finish (default 5 s). */
  stopGraceMs?: number;
}

/** The longest pause between two polls answered at once with nothing. */
const EMPTY_POLL_MAX_WAIT_MS = 2000;
/** A failed handler is tried this many times in all before the update is given up. */
const HANDLER_ATTEMPTS = 3;
/** Waiting updates of one chat beyond which a repeat of a waiting message is answered once. */
const CHAT_REPEATS_KEPT = 10;

/** Whether polling works, as `/health` reports it. */
export interface PollingState {
  /** The last call to Telegram (getMe, getUpdates) succeeded. */
  ok: boolean;
  /** Since when (ISO-8601 UTC): the first failure of this outage, or the last recovery; undefined before the first answer. */
  since?: string;
  /** Why it fails, for a person (while !ok). */
  reason?: string;
}

function chatOf(u: Update): number {
  return u.message?.chat.id ?? u.callback_query?.message?.chat.id ?? u.callback_query?.from.id ?? u.my_chat_member?.chat.id ?? u.channel_post?.chat.id ?? 0;
}

interface ChatLane {
  waiting: Update[];
  busy: boolean;
}

/** Drives a grammY bot by long polling. */
export class Poller {
  private running = false;
  private abort: AbortController | null = null;
  private loop: Promise<void> | null = null;
  /** Chats with updates waiting or in hand, in the order they are served. */
  private readonly lanes = new Map<number, ChatLane>();
  /** Updates received and not yet handled (what the spool holds), by update_id. */
  private readonly unhandled = new Map<number, Update>();
  private readonly handlers = new Set<Promise<void>>();
  private spoolDirty = false;
  private spoolWrite: Promise<void> = Promise.resolve();
  private spoolTimer: NodeJS.Timeout | null = null;
  /** Bumped by each start and stop: handlers of an earlier round leave the spool alone. */
  private generation = 0;
  private backlogFreed: (() => void) | null = null;
  /** Counters for /health and benchmarks. */
  readonly stats = { received: 0, handled: 0, failed: 0, coalesced: 0, emptyPolls: 0 };
  private current: PollingState = { ok: false, reason: 'not connected to Telegram yet' };
  /** The outage in progress: when it started and how many attempts failed. */
  private outage: { startedMs: number; failures: number } | null = null;

  constructor(
    private readonly bot: Bot,
    private readonly log: Logger,
    private readonly opts: PollerOptions,
  ) {}

  private get maxHandlers(): number {
    return this.opts.maxHandlers ?? 16;
  }

  private get maxBacklog(): number {
    return this.opts.maxBacklog ?? 5000;
  }

  /** Updates received and not yet handled. */
  get backlog(): number {
    return this.unhandled.size;
  }

  /** Whether polling works now (a copy). */
  get state(): PollingState {
    return { ...this.current };
  }

  /** A call to Telegram succeeded: ends the outage in progress, saying so. */
  private succeeded(): void {
    if (this.outage) {
      const seconds = Math.round((Date.now() - this.outage.startedMs) / 1000);
      this.log.info({ outageSeconds: seconds, failedAttempts: this.outage.failures }, `polling Telegram works again after ${seconds} s`);
      this.outage = null;
    }
    if (!this.current.ok) this.current = { ok: true, since: new Date().toISOString() };
  }

  /** A call to Telegram failed: the first failure of an outage is logged at `level`, later ones at debug. */
  private failed(rawReason: string, retryInMs: number, level: 'warn' | 'error' = 'warn'): void {
    // Network errors name the request's URL, which holds the token.
    const reason = redact(rawReason, [this.bot.token]);
    if (!this.outage) {
      this.outage = { startedMs: Date.now(), failures: 0 };
      this.log[level]({ reason, retryInMs }, `polling Telegram fails: ${reason}; retrying (logged again when it works)`);
    } else this.log.debug({ reason, retryInMs, failures: this.outage.failures + 1 }, 'polling Telegram still fails');
    this.outage.failures += 1;
    this.current = { ok: false, since: new Date(this.outage.startedMs).toISOString(), reason };
  }

  /** Starts polling in the background. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.generation += 1;
    this.loop = this.run();
  }

  /**
   * Stops polling; handlers in progress get a bounded time to finish. What is not handled
   * stays in the spool for the next start.
   */
  async stop(): Promise<void> {
    this.running = false;
    this.outage = null;
    this.current = { ok: false, reason: 'not polling (stopped, or another replica polls)' };
    this.abort?.abort();
    this.backlogFreed?.();
    await this.loop;
    const grace = this.opts.stopGraceMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.handlers]),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, grace);
      }),
    ]);
    clearTimeout(timer);
    if (this.handlers.size > 0) this.log.warn({ inProgress: this.handlers.size }, 'stopping with update handlers still running; their updates stay in the spool and are handled again at the next start');
    if (this.spoolTimer) clearTimeout(this.spoolTimer);
    this.spoolTimer = null;
    await this.saveSpool();
    this.generation += 1;
    if (this.unhandled.size > 0) this.log.info({ updates: this.unhandled.size }, 'updates not yet handled are kept for the next start');
    this.lanes.clear();
    this.unhandled.clear();
  }

  private async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.abort?.signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Takes an update in: queued behind its chat's earlier ones. */
  private dispatch(update: Update): void {
    if (this.unhandled.has(update.update_id)) return;
    const chat = chatOf(update);
    let lane = this.lanes.get(chat);
    if (!lane) {
      lane = { waiting: [], busy: false };
      this.lanes.set(chat, lane);
    }
    // A chat repeating itself faster than it is answered gets one answer per distinct text
    // (a /start replaces the chat's code anyway): its work stays bounded by what it says.
    const text = update.message?.text;
    if (lane.waiting.length >= CHAT_REPEATS_KEPT && text !== undefined && lane.waiting.some((u) => u.message?.text === text)) {
      this.stats.coalesced += 1;
      return;
    }
    this.unhandled.set(update.update_id, update);
    lane.waiting.push(update);
    this.pump();
  }

  /** Starts handlers for waiting chats, round robin, up to the bound. */
  private pump(): void {
    if (!this.running) return;
    for (const [chat, lane] of this.lanes) {
      if (this.handlers.size >= this.maxHandlers) return;
      if (lane.busy) continue;
      const update = lane.waiting.shift();
      if (!update) {
        this.lanes.delete(chat);
        continue;
      }
      lane.busy = true;
      // Served chats go to the back of the round.
      this.lanes.delete(chat);
      this.lanes.set(chat, lane);
      const job: Promise<void> = this.handle(update).finally(() => {
        this.handlers.delete(job);
        lane.busy = false;
        if (lane.waiting.length === 0 && this.lanes.get(chat) === lane) this.lanes.delete(chat);
        this.pump();
      });
      this.handlers.add(job);
    }
  }

  private async handle(update: Update): Promise<void> {
    const generation = this.generation;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.bot.handleUpdate(update);
        this.stats.handled += 1;
        break;
      } catch (err) {
        if (attempt >= HANDLER_ATTEMPTS || !this.running) {
          if (!this.running) return; // kept in the spool: tried again at the next start
          this.stats.failed += 1;
          this.log.error({ err, update_id: update.update_id, attempts: attempt }, 'update handler failed; giving the update up');
          break;
        }
        this.log.warn({ err, update_id: update.update_id, attempt }, 'update handler failed; trying again');
        await this.sleep(this.opts.minBackoffMs * attempt);
      }
    }
    if (generation !== this.generation) return;
    this.unhandled.delete(update.update_id);
    this.spoolDirty = true;
    if (this.unhandled.size < this.maxBacklog) this.backlogFreed?.();
    // The spool drops handled updates lazily: a crash before then only repeats an answer.
    this.spoolTimer ??= setTimeout(() => {
      this.spoolTimer = null;
      void this.saveSpool();
    }, 1000);
  }

  /**
   * Writes the spool if it changed (one write at a time, the last state wins); false when
   * it could not be written (reported).
   */
  private async saveSpool(): Promise<boolean> {
    const path = this.opts.spoolPath;
    if (!path) return true;
    const write = this.spoolWrite.then(async () => {
      if (!this.spoolDirty) return true;
      this.spoolDirty = false;
      try {
        if (this.unhandled.size === 0) await fsp.rm(path, { force: true });
        else await writeFileAtomic(path, JSON.stringify({ updates: [...this.unhandled.values()] }));
        return true;
      } catch (err) {
        this.spoolDirty = true;
        this.log.error({ err, spool: path }, 'could not write the spool of Telegram updates');
        return false;
      }
    });
    this.spoolWrite = write.then(() => undefined);
    return write;
  }

  /** Updates a previous run received and did not handle. */
  private async loadSpool(): Promise<Update[]> {
    if (!this.opts.spoolPath) return [];
    try {
      const stored = (await readJsonIfExists(this.opts.spoolPath)) as { updates?: unknown } | undefined;
      const updates = Array.isArray(stored?.updates) ? (stored.updates as Update[]).filter((u) => typeof u?.update_id === 'number') : [];
      return updates.sort((a, b) => a.update_id - b.update_id);
    } catch (err) {
      this.log.error({ err, spool: this.opts.spoolPath }, 'the spool of Telegram updates is unreadable; it is left in place and not replayed');
      return [];
    }
  }

  private async waitForRoom(): Promise<void> {
    if (this.unhandled.size < this.maxBacklog) return;
    this.log.warn({ backlog: this.unhandled.size }, 'many Telegram updates wait to be handled; polling pauses until fewer do');
    while (this.running && this.unhandled.size >= this.maxBacklog) {
      await new Promise<void>((resolve) => {
        this.backlogFreed = resolve;
      });
      this.backlogFreed = null;
    }
  }

  private async run(): Promise<void> {
    let offset = 0;
    if (this.opts.offsets) {
      try {
        offset = await this.opts.offsets.load();
      } catch (err) {
        this.log.warn({ reason: (err as Error).message }, 'could not read the stored update offset; starting from Telegram\'s');
      }
    }
    const left = await this.loadSpool();
    if (left.length > 0) {
      this.log.info({ updates: left.length }, 'handling Telegram updates received before the last stop');
      for (const u of left) {
        offset = Math.max(offset, u.update_id + 1);
        this.dispatch(u);
      }
    }
    let backoff = this.opts.minBackoffMs;
    let emptyWait = this.opts.minBackoffMs;
    const fastMs = this.opts.timeoutSeconds > 0 ? (this.opts.timeoutSeconds * 1000) / 2 : 1000;
    while (this.running) {
      await this.waitForRoom();
      if (!this.running) break;
      this.abort = new AbortController();
      try {
        // Not bot.init(): it retries network errors forever, so an outage would never show.
        if (!this.bot.isInited()) this.bot.botInfo = await this.bot.api.getMe(this.abort.signal as never);
        const asked = Date.now();
        const updates = await this.bot.api.getUpdates(
          { offset, timeout: this.opts.timeoutSeconds, allowed_updates: ['message', 'callback_query', 'my_chat_member', 'channel_post'] },
          this.abort.signal as never,
        );
        backoff = this.opts.minBackoffMs;
        this.succeeded();
        this.opts.onPoll?.(true);
        for (const u of updates) {
          offset = Math.max(offset, u.update_id + 1);
          this.stats.received += 1;
          this.dispatch(u);
        }
        if (updates.length > 0) {
          emptyWait = this.opts.minBackoffMs;
          // On disk before the next getUpdates confirms them to Telegram.
          this.spoolDirty = true;
          let wait = this.opts.minBackoffMs;
          while (!(await this.saveSpool()) && this.running) {
            await this.sleep(wait);
            wait = Math.min(this.opts.maxBackoffMs, wait * 2);
          }
          await this.opts.offsets?.save(offset).catch((err: unknown) => this.log.warn({ reason: (err as Error).message }, 'could not store the update offset'));
        } else if (Date.now() - asked < fastMs) {
          // Nothing, and at once: this API root does not hold the request open.
          this.stats.emptyPolls += 1;
          if (emptyWait === this.opts.minBackoffMs) this.log.warn({ apiAnsweredInMs: Date.now() - asked }, 'getUpdates answered at once with nothing (no long polling on the way to Telegram?); polling with pauses');
          await this.sleep(emptyWait);
          emptyWait = Math.min(EMPTY_POLL_MAX_WAIT_MS, emptyWait * 2);
        }
      } catch (err) {
        if (!this.running) break;
        this.opts.onPoll?.(false);
        if (err instanceof GrammyError && err.error_code === 401) {
          this.log.fatal('Telegram refused the bot token (401 Unauthorized); check TELEGRAM_BOT_TOKEN');
          this.current = { ok: false, since: new Date().toISOString(), reason: 'Telegram refused the bot token (401 Unauthorized)' };
          this.running = false;
          this.opts.onFatal(new Error('Telegram refused the bot token (401 Unauthorized)'));
          break;
        }
        if (err instanceof GrammyError && err.error_code === 409) {
          this.failed('another process polls with this bot token (409 Conflict); is a second notify-bot running elsewhere?', 30_000, 'error');
          await this.sleep(30_000);
          continue;
        }
        this.failed(failureReason(err), backoff);
        await this.sleep(backoff);
        backoff = Math.min(this.opts.maxBackoffMs, backoff * 2);
      }
    }
  }
}

/** Why a call to Telegram failed, in words an operator can act on. */
export function failureReason(err: unknown): string {
  if (err instanceof GrammyError) {
    return err.error_code === 404 ? 'Telegram answered 404 Not Found (is TELEGRAM_API_ROOT right?)' : `Telegram answered ${err.error_code}: ${err.description}`;
  }
  if (err instanceof HttpError) {
    const cause: unknown = err.error;
    const text = cause instanceof Error ? cause.message : String(cause);
    const code = errnoCode(cause) ?? (cause instanceof Error ? errnoCode(cause.cause) : undefined);
    return `cannot reach Telegram (${code ? `${code}: ` : ''}${text})`;
  }
  return err instanceof Error ? err.message : String(err);
}

function errnoCode(e: unknown): string | undefined {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}
