/**
 * Delivers the outbox to Telegram: one FIFO per chat (order kept, one request in flight
 * per chat), paced under Telegram's limits, with every failure sorted into what to do:
 * wait as told (429), retry with backoff and jitter (network, 5xx) for a bounded time and
 * then dead-letter, fall back to plain text (markup refused), or stop for good (the user
 * blocked the bot, the chat is gone).
 */
import type { Logger } from '../../shared/logger.js';
import type { Clock } from '../../shared/clock.js';
import type { DeliveryOutcome, DeliveryStatus, OutboxRecord, OutboxStore } from './outbox.js';
import type { Pacer } from '../telegram/pacer.js';
import type { DeliveryMetrics } from '../metrics.js';
import { type Part, plainFallback } from '../format/render.js';
import { newOutboxId } from './outbox.js';
import { FencedError } from './pgOutbox.js';
import { StoreUnavailableError } from '../../shared/documents.js';

/** Why Telegram (or the way to it) did not take a message. */
export type SendFailureKind = 'rate_limited' | 'markup' | 'refused' | 'image' | 'bad_request' | 'migrated' | 'transient';

/** A classified send failure. */
export class SendFailure extends Error {
  constructor(
    readonly kind: SendFailureKind,
    message: string,
    readonly retryAfterMs = 0,
    /** For 'migrated': the chat's new id (a group upgraded to a supergroup). */
    readonly migrateTo?: number,
  ) {
    super(message);
    this.name = 'SendFailure';
  }
}

/** What the deliverer needs from Telegram. Implementations throw SendFailure. */
export interface TelegramTransport {
  /** Sends one part (as a reply to `replyTo` when given); returns Telegram's message_id. */
  send(chatId: number, part: Part, photo: Buffer | null, replyMarkup: unknown, replyTo?: number): Promise<number>;
}

/** Tunables of delivery. */
export interface DelivererOptions {
  /** Give up retrying after this long (from acceptance or re-queue). */
  maxAgeMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Requests to Telegram in flight at once (across chats). */
  concurrency: number;
  /** Notifications queued at most; more are refused (503). */
  queueMax: number;
  /** How often to look for records operators put back in the queue (re-queues). */
  rescanMs: number;
  /**
   * A message failing this long while other messages go through is dead-lettered (with a
   * notice to the analyst), so it cannot hold its chat's later messages (default: never).
   */
  stuckMs?: number;
}

/** Called when a chat refused delivery for good. */
export type RefusalHook = (user: string, chatId: number, reason: string) => void;
/** Called when a group moved to a new chat id (upgraded to a supergroup), before its queue follows. */
export type MigratedHook = (fromChatId: number, toChatId: number) => Promise<void>;
/** Called when a chat accepted a message (clears an earlier refusal mark). */
/** `answeredAt`: when Telegram answered the last part (ms since the epoch). */
export type DeliveredHook = (record: OutboxRecord, answeredAt: number) => void;
/** The Telegram message a record's first part replies to, asked just before it is sent. */
export type ReplyTargetHook = (record: OutboxRecord) => Promise<number | undefined>;

/** The queue is full; retry later. */
export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('The notification queue is full; try again shortly.');
    this.name = 'QueueFullError';
  }
}

interface ChatQueue {
  queue: OutboxRecord[];
  busy: boolean;
  readyAt: number;
  /** On a shared store: the head's claim is being asked for. */
  claiming?: boolean;
}

/** The last final outcome of a user's Telegram delivery. */
export interface LastDelivery {
  status: DeliveryStatus;
  /** ISO-8601 UTC. */
  at: string;
  detail?: string;
}

/** What an analyst's Telegram delivery is doing, for the dashboard. */
export interface TelegramDeliveryState {
  /** Notifications of theirs waiting in the queue. */
  queued: number;
  /** The last one that finished (since the bot started), if any. */
  last?: LastDelivery;
  /** The next one keeps failing and is retried: since when, how often, why. */
  retrying?: { since: string; attempts: number; reason: string };
}

/** A claim this short of its end is not used: the send might not make it in time. */
const CLAIM_SLACK_MS = 300;

/** The claim ran out before the part could go (a slow moment): claim again, nothing sent. */
class ClaimExpiredError extends Error {}

/** Final state reported to a waiting send request. */
export type WaitResult = DeliveryStatus | 'pending';

/** Serializes appends: items arriving during a flush go together in the next one. */
class OutcomeWriter {
  private batch: DeliveryOutcome[] = [];
  private flushing: Promise<void> | null = null;

  constructor(private readonly store: OutboxStore, private readonly log: Logger) {}

  /** Resolves when every outcome handed in so far is written. */
  async idle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  write(o: DeliveryOutcome): Promise<void> {
    this.batch.push(o);
    if (!this.flushing) this.flushing = this.flushLoop();
    return this.flushing;
  }

  private async flushLoop(): Promise<void> {
    await Promise.resolve();
    while (this.batch.length > 0) {
      const items = this.batch;
      this.batch = [];
      try {
        await this.store.recordOutcomes(items);
      } catch (err) {
        this.log.error({ err }, 'could not append to the delivery outcome log');
      }
    }
    this.flushing = null;
  }
}

/** Schedules and performs deliveries of the outbox. */
export class Deliverer {
  private readonly chats = new Map<number, ChatQueue>();
  private readonly known = new Set<string>();
  private readonly waiters = new Map<string, Set<(r: WaitResult) => void>>();
  /** Outcomes of recently finished records, for waiters that arrive after the fact. */
  private readonly recent = new Map<string, DeliveryStatus>();
  /** The last finished delivery of each user (one entry per user). */
  private readonly lastByUser = new Map<string, LastDelivery>();
  private readonly outcomes: OutcomeWriter;
  private inFlight = 0;
  private queued = 0;
  /** Shared store: record id -> local time until which its next part may be sent. */
  private readonly claims = new Map<string, number>();
  private claimsAsked = 0;
  /** Records being written by accept(): they count against the bound before they are queued. */
  private accepting = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private rescanTimer: NodeJS.Timeout | null = null;
  private stopped = true;
  private idle: Array<() => void> = [];
  /** Counters for /health and benchmarks. */
  readonly stats = { delivered: 0, refused: 0, givenUp: 0, rateLimited: 0, retries: 0, plainFallbacks: 0, stuck: 0, migrated: 0 };
  /** When Telegram last took a message (any chat): tells a stuck message from Telegram being down. */
  private lastSentAt = 0;
  /** Groups upgraded to supergroups: old chat id -> new. */
  private readonly migrations = new Map<number, number>();

  constructor(
    private readonly store: OutboxStore,
    private readonly transport: TelegramTransport,
    private readonly pacer: Pacer,
    private readonly opts: DelivererOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly hooks: {
      onRefused?: RefusalHook;
      onDelivered?: DeliveredHook;
      onMigrated?: MigratedHook;
      replyTarget?: ReplyTargetHook;
      metrics?: DeliveryMetrics;
      onFenced?: (err: FencedError) => void;
    } = {},
  ) {
    this.outcomes = new OutcomeWriter(store, log);
  }

  /** Notifications accepted and not yet finished. */
  get size(): number {
    return this.queued;
  }

  /** True while this deliverer sends (between start and stop or suspend). */
  get active(): boolean {
    return !this.stopped;
  }

  /**
   * Loads what a previous run (or, on a shared store, the previous lease holder) left in the
   * queue and starts delivering.
   */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    // The first take and its load hold the rescan slot: a rescan meanwhile (a record accepted
    // here, another replica's notice) waits for it, or it could queue a chat's later record
    // ahead of an earlier one still being loaded.
    const opening = this.store.open().then((found) => this.loadNew(found));
    this.rescanning = opening.then(
      () => undefined,
      () => undefined,
    );
    let loaded: number;
    try {
      loaded = await opening;
    } catch (err) {
      this.stopped = true;
      this.rescanAgain = false;
      throw err;
    } finally {
      this.rescanning = null;
    }
    if (loaded > 0) this.log.info({ count: loaded }, 'resuming delivery of notifications queued before the restart');
    if (this.rescanAgain) {
      this.rescanAgain = false;
      this.rescan();
    }
    this.rescanTimer = setInterval(() => this.rescan(), this.opts.rescanMs);
    this.rescanTimer.unref();
    this.store.watch?.(() => this.rescanSoon());
    this.pump();
  }

  private rescanning: Promise<void> | null = null;
  private rescanAgain = false;

  private rescan(): void {
    if (this.stopped) return;
    if (this.rescanning) {
      this.rescanAgain = true;
      return;
    }
    this.rescanning = this.store
      .takeRequeued()
      .then((records) => this.loadNew(records))
      .then(() => undefined)
      .catch((err: unknown) => {
        if (err instanceof FencedError) this.fenced(err);
        else this.log.error({ err }, 'could not take re-queued notifications');
      })
      .finally(() => {
        this.rescanning = null;
        if (this.rescanAgain) {
          this.rescanAgain = false;
          this.rescan();
        }
      });
  }

  /** Another replica added work: take it after a short pause that gathers a burst into one query. */
  private rescanSoon(): void {
    if (this.stopped || this.rescanSoonTimer) return;
    this.rescanSoonTimer = setTimeout(() => {
      this.rescanSoonTimer = null;
      this.rescan();
    }, 20);
  }

  private rescanSoonTimer: NodeJS.Timeout | null = null;

  /** This replica was fenced off the shared queue (it lost the lease): stop sending at once. */
  private fenced(err: FencedError): void {
    if (this.stopped) return;
    this.log.warn({ reason: err.message }, 'fenced off the shared outbox; delivery stops on this replica');
    this.hooks.onFenced?.(err);
    void this.suspend();
  }

  /**
   * Stops delivering but keeps the store open (a replica that lost the lease): forgets the
   * queue it held, which the next holder takes from the shared store.
   */
  async suspend(timeoutMs = 10_000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.rescanSoonTimer) clearTimeout(this.rescanSoonTimer);
    this.timer = null;
    this.rescanTimer = null;
    this.rescanSoonTimer = null;
    if (this.inFlight > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.idle.push(resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
      ]);
    }
    await this.outcomes.idle();
    if (!this.stopped) return;
    this.chats.clear();
    this.known.clear();
    this.claims.clear();
    this.queued = 0;
  }

  /** Stops scheduling and waits (bounded) for requests in flight. */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.rescanSoonTimer) clearTimeout(this.rescanSoonTimer);
    this.timer = null;
    if (this.inFlight > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.idle.push(resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
      ]);
    }
    await this.outcomes.idle();
    await this.store.close();
  }

  private async loadNew(found: OutboxRecord[]): Promise<number> {
    const records = found.filter((r) => !this.known.has(r.id));
    if (records.length === 0) return 0;
    // A crash between recording the final outcome and taking the record out must not resend.
    const done = await this.store.outcomesOf(new Set(records.map((r) => r.id)));
    records.sort((a, b) => a.seq - b.seq);
    let count = 0;
    for (const r of records) {
      if (this.known.has(r.id)) continue;
      const outcome = done.get(r.id);
      // An outcome older than an operator's re-queue belongs to the earlier round.
      if (outcome && !(r.retry_from !== undefined && Date.parse(outcome.at) < r.retry_from)) {
        // Given up but not yet buried when the bot died: bury it now, never drop it.
        if (outcome.status === 'given_up') await this.store.bury({ ...r, last_error: outcome.detail ?? r.last_error });
        else await this.store.remove(r);
        continue;
      }
      this.enqueue(r);
      count += 1;
    }
    if (count > 0) this.pump();
    return count;
  }

  /** Takes a record that is not sending out of its chat's queue (it was not accepted after all). */
  private unqueue(id: string): void {
    for (const c of this.chats.values()) {
      const i = c.queue.findIndex((r) => r.id === id);
      if (i < 0 || (i === 0 && c.busy)) continue;
      c.queue.splice(i, 1);
      this.claims.delete(id);
      if (this.known.delete(id)) this.queued -= 1;
      return;
    }
  }

  private enqueue(record: OutboxRecord): void {
    this.known.add(record.id);
    this.queued += 1;
    // A group that became a supergroup: what is accepted for its old id goes to the new one.
    const moved = this.migrations.get(record.chat_id);
    if (moved !== undefined) record.chat_id = moved;
    this.queueFor(record.chat_id).queue.push(record);
  }

  /** Acceptance time (ms) of the oldest notification waiting for delivery, or null when none waits. */
  oldestAcceptedAt(): number | null {
    let oldest: number | null = null;
    for (const c of this.chats.values()) for (const r of c.queue) if (oldest === null || r.accepted_at < oldest) oldest = r.accepted_at;
    return oldest;
  }

  /** Refuses new work when the queue is at its bound. */
  checkCapacity(): void {
    const held = this.queued + this.accepting;
    if (held >= this.opts.queueMax) throw new QueueFullError(Math.max(1, Math.ceil(held / 30)));
  }

  /**
   * Persists a new record (fsync) and schedules it. Resolves once it is on disk. A replica
   * that does not deliver (a follower on a shared store) only stores it, for the holder.
   */
  async accept(record: OutboxRecord): Promise<void> {
    this.checkCapacity();
    // Shared: the record reaches the queue through a take (below), which must not skip it as known.
    const shared = this.store.claim !== undefined;
    if (!shared) this.known.add(record.id);
    this.accepting += 1;
    try {
      await this.store.add(record);
    } catch (err) {
      if (!shared) this.known.delete(record.id);
      // Not accepted: nothing of it may stay behind to be found and delivered by a rescan.
      const takeBack = this.store.withdraw ? this.store.withdraw.bind(this.store) : this.store.remove.bind(this.store);
      await takeBack(record).catch((e: unknown) => this.log.error({ err: e, id: record.id }, 'could not remove a record that was not accepted'));
      // Shared: the insert may have committed before its answer was lost, and a take queued it.
      if (shared && this.known.has(record.id)) this.unqueue(record.id);
      throw err;
    } finally {
      this.accepting -= 1;
    }
    if (shared) {
      // Not marked known here: a take may already have queued it (and marked it) meanwhile.
      // Shared: the holder takes it from the store with the other replicas' records, in order.
      this.rescanSoon();
      return;
    }
    this.enqueue(record);
    this.pump();
  }

  /** Waits up to ms for a record's final outcome. */
  waitFor(id: string, ms: number): Promise<WaitResult> {
    const finished = this.recent.get(id);
    if (finished) return Promise.resolve(finished);
    if (ms > 0 && !this.known.has(id) && this.store.claim) return this.waitForShared(id, ms);
    if (ms <= 0 || !this.known.has(id)) return Promise.resolve('pending');
    return new Promise((resolve) => {
      let set = this.waiters.get(id);
      if (!set) {
        set = new Set();
        this.waiters.set(id, set);
      }
      const done = (r: WaitResult): void => {
        clearTimeout(t);
        set.delete(done);
        if (set.size === 0) this.waiters.delete(id);
        resolve(r);
      };
      const t = setTimeout(() => done('pending'), ms);
      set.add(done);
    });
  }

  /** On a shared store another replica delivers: look for the outcome it records. */
  private async waitForShared(id: string, ms: number): Promise<WaitResult> {
    const until = Date.now() + ms;
    for (let pause = 50; ; pause = Math.min(pause * 2, 500)) {
      const finished = this.recent.get(id);
      if (finished) return finished;
      try {
        const o = (await this.store.outcomesOf(new Set([id]))).get(id);
        if (o) return o.status;
      } catch {
        // The database is away: the answer stays 'pending' (accepted, durable).
      }
      const left = until - Date.now();
      if (left <= 0) return 'pending';
      await new Promise((r) => setTimeout(r, Math.min(pause, left)));
    }
  }

  private wake(at: number): void {
    if (this.stopped || at === Infinity) return;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.pump();
    }, Math.max(0, at - this.clock.now()));
  }

  /** What `user`'s delivery to `chatId` is doing now (this replica's view). */
  telegramState(user: string, chatId: number): TelegramDeliveryState {
    const mine = (this.chats.get(chatId)?.queue ?? []).filter((r) => r.user === user);
    const head = mine[0];
    const last = this.lastByUser.get(user);
    return {
      queued: mine.length,
      ...(last ? { last } : {}),
      ...(head && head.attempts > 0
        ? { retrying: { since: new Date(head.retry_from ?? head.accepted_at).toISOString(), attempts: head.attempts, reason: head.last_error ?? 'unknown' } }
        : {}),
    };
  }

  /** Starts every send that may go now; arranges to be called again when more may. */
  private pump(): void {
    if (this.stopped) return;
    let wake = Infinity;
    const started: number[] = [];
    for (const [chatId, c] of this.chats) {
      if (c.busy) continue;
      if (c.queue.length === 0) {
        this.chats.delete(chatId);
        continue;
      }
      if (this.inFlight >= this.opts.concurrency) break;
      const now = this.clock.now();
      if (c.readyAt > now) {
        wake = Math.min(wake, c.readyAt);
        continue;
      }
      const chatWait = this.pacer.chatDelay(chatId);
      if (chatWait > 0) {
        wake = Math.min(wake, now + chatWait);
        continue;
      }
      // On a shared store the claim is asked for before the pacing slot is taken, so the
      // database's latency never bunches sends up at Telegram.
      if (this.store.claim && !this.claimed(chatId, c)) continue;
      const botWait = this.pacer.botDelay();
      if (botWait > 0) {
        wake = Math.min(wake, now + botWait);
        break;
      }
      const takenAt = this.pacer.take(chatId);
      c.busy = true;
      this.inFlight += 1;
      started.push(chatId);
      void this.sendHead(chatId, c, takenAt);
    }
    // Round robin: chats just served go to the back.
    for (const chatId of started) {
      const c = this.chats.get(chatId);
      if (c) {
        this.chats.delete(chatId);
        this.chats.set(chatId, c);
      }
    }
    this.wake(wake);
  }

  /** True when the chat's head holds a claim good for a send now; else asks for one (bounded). */
  private claimed(chatId: number, c: ChatQueue): boolean {
    const head = c.queue[0]!;
    const until = this.claims.get(head.id);
    if (until !== undefined && until - Date.now() > CLAIM_SLACK_MS) return true;
    if (c.claiming || this.claimsAsked >= this.opts.concurrency) return false;
    c.claiming = true;
    this.claimsAsked += 1;
    const claim = this.store.claim!.bind(this.store);
    claim(head)
      .then(
        (got) => {
          if (got === null) {
            this.fenced(new FencedError('claiming a message for sending'));
            return;
          }
          if (got === 0) c.readyAt = this.clock.now() + 200;
          else this.claims.set(head.id, got);
        },
        (err: unknown) => {
          c.readyAt = this.clock.now() + 1000;
          if (err instanceof StoreUnavailableError) this.log.warn({ id: head.id, chat: chatId, reason: err.message }, 'the database is unreachable; this chat waits for it');
          else this.log.error({ err, id: head.id }, 'could not claim a message for sending');
        },
      )
      .finally(() => {
        c.claiming = false;
        this.claimsAsked -= 1;
        this.pump();
      });
    return false;
  }

  private backoff(attempts: number): number {
    const exp = Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** Math.min(attempts - 1, 30));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  private async sendHead(chatId: number, c: ChatQueue, takenAt: number): Promise<void> {
    const record = c.queue[0]!;
    try {
      try {
        await this.sendPart(record);
      } finally {
        this.pacer.settled(chatId, takenAt);
      }
    } catch (err) {
      if (err instanceof FencedError) {
        this.fenced(err);
        return;
      }
      if (err instanceof ClaimExpiredError) {
        this.claims.delete(record.id);
        return;
      }
      if (err instanceof StoreUnavailableError) {
        // The shared store is away: not a failure of Telegram, so no attempt is counted.
        c.readyAt = this.clock.now() + 1000;
        this.log.warn({ id: record.id, reason: err.message }, 'the database is unreachable; this chat waits for it');
        return;
      }
      try {
        await this.handleFailure(chatId, c, record, err);
      } catch (e) {
        // Recording the failure failed too (a full disk): keep the record and try later.
        c.readyAt = this.clock.now() + this.opts.retryMaxMs;
        this.log.error({ err: e, id: record.id }, 'could not record a delivery failure; the message stays queued');
      }
    } finally {
      c.busy = false;
      this.inFlight -= 1;
      if (this.inFlight === 0 && this.idle.length > 0) for (const f of this.idle.splice(0)) f();
      this.pump();
    }
  }

  private async sendPart(record: OutboxRecord): Promise<void> {
    // Every part went, but taking it out of the queue failed (the database away): finish only.
    if (record.sent_parts >= record.parts.length) {
      await this.delivered(record, this.clock.now());
      return;
    }
    // On a shared store: only under a claim (taken in pump), and only in time.
    const until = this.store.claim ? (this.claims.get(record.id) ?? 0) : Infinity;
    const index = record.sent_parts;
    let part = record.parts[index]!;
    const last = index === record.parts.length - 1;
    const markup = last ? record.reply_markup : undefined;
    let replyTo = index === 0 ? record.reply_to : undefined;
    if (index === 0 && replyTo === undefined && this.hooks.replyTarget) {
      // Without a target the message still goes, as a plain message.
      replyTo = await this.hooks.replyTarget(record).catch((err: unknown) => {
        this.log.warn({ err, id: record.id }, 'could not find the message to reply to; sending without the reply');
        return undefined;
      });
    }
    let photo: Buffer | null = null;
    if (part.kind === 'photo') {
      try {
        photo = record.photo ? await this.store.getPhoto(record.photo) : null;
      } catch {
        photo = null;
      }
      if (!photo) part = this.photoUnavailable(record, index, 'the image file is missing from the outbox');
    }
    let messageId: number;
    const inTime = (): void => {
      if (Date.now() >= until) throw new ClaimExpiredError('the claim ran out before the message could go');
    };
    try {
      inTime();
      messageId = await this.transport.send(record.chat_id, part, photo, markup, replyTo);
    } catch (err) {
      if (!(err instanceof SendFailure)) throw err;
      if (err.kind === 'markup') {
        this.stats.plainFallbacks += 1;
        this.log.warn({ id: record.id, reason: err.message }, 'Telegram refused the formatting; sending as plain text');
        inTime();
        messageId = await this.transport.send(record.chat_id, plainFallback(part), photo, markup, replyTo);
      } else if ((err.kind === 'image' || err.kind === 'bad_request') && part.kind === 'photo') {
        // Whatever Telegram holds against the image, the text still goes.
        this.log.warn({ id: record.id, reason: err.message }, 'Telegram refused the image; sending the text alone');
        inTime();
        messageId = await this.transport.send(record.chat_id, this.photoUnavailable(record, index, err.message), null, markup, replyTo);
      } else throw err;
    }
    const answeredAt = this.clock.now();
    this.lastSentAt = answeredAt;
    record.sent_parts += 1;
    record.message_ids = [...(record.message_ids ?? []), messageId];
    delete record.failing_since;
    if (record.sent_parts < record.parts.length) {
      await this.store.update(record);
      return;
    }
    await this.delivered(record, answeredAt);
  }

  private async delivered(record: OutboxRecord, answeredAt: number): Promise<void> {
    await this.finish(record, 'delivered');
    this.hooks.metrics?.delivered(this.clock.now() - record.accepted_at);
    this.hooks.onDelivered?.(record, answeredAt);
  }

  private photoUnavailable(record: OutboxRecord, index: number, why: string): Part {
    const part = record.parts[index]!;
    const note = `[image not delivered: ${why}]`;
    const text = part.text ? `${part.text}\n${note}` : note;
    const replaced: Part = { kind: 'text', text, ...(part.entities ? { entities: part.entities } : {}), ...(part.parseMode ? { parseMode: part.parseMode } : {}) };
    record.parts[index] = replaced;
    return replaced;
  }

  /**
   * Records the outcome and takes the record out of the queue. The record leaves its chat's
   * queue only once the store let go of it: when that fails (a full disk, the database away)
   * it stays at the head, and the next turn finishes it instead of sending it again.
   */
  private async finish(record: OutboxRecord, status: DeliveryStatus, detail?: string): Promise<void> {
    await this.outcomes.write({ id: record.id, user: record.user, script: record.script, status, at: new Date(this.clock.now()).toISOString(), detail });
    if (status === 'given_up') await this.store.bury({ ...record, last_error: detail ?? record.last_error });
    else await this.store.remove(record);
    const c = this.chats.get(record.chat_id);
    if (c && c.queue[0] === record) c.queue.shift();
    else if (c) c.queue = c.queue.filter((r) => r !== record);
    this.claims.delete(record.id);
    if (this.known.delete(record.id)) this.queued -= 1;
    if (status === 'delivered') this.stats.delivered += 1;
    else if (status === 'refused') this.stats.refused += 1;
    else this.stats.givenUp += 1;
    this.recent.set(record.id, status);
    this.lastByUser.set(record.user, { status, at: new Date(this.clock.now()).toISOString(), ...(detail !== undefined ? { detail } : {}) });
    if (this.recent.size > 1000) this.recent.delete(this.recent.keys().next().value!);
    const set = this.waiters.get(record.id);
    if (set) for (const f of [...set]) f(status);
  }

  private async handleFailure(chatId: number, c: ChatQueue, record: OutboxRecord, err: unknown): Promise<void> {
    const failure = err instanceof SendFailure ? err : new SendFailure('transient', err instanceof Error ? err.message : String(err));
    const now = this.clock.now();
    switch (failure.kind) {
      case 'rate_limited': {
        this.stats.rateLimited += 1;
        this.hooks.metrics?.rateLimited();
        this.pacer.pause(failure.retryAfterMs);
        c.readyAt = now + failure.retryAfterMs;
        this.log.warn({ id: record.id, chat: chatId, retryAfterMs: failure.retryAfterMs }, 'Telegram asked to slow down (429); waiting as told');
        return;
      }
      case 'refused': {
        this.log.warn({ user: record.user, chat: chatId, reason: failure.message }, 'Telegram refused delivery for good; not retrying');
        this.hooks.onRefused?.(record.user, chatId, failure.message);
        // Everything queued for this chat would meet the same answer.
        for (const r of [...c.queue]) {
          await this.finish(r, 'refused', failure.message);
          this.hooks.metrics?.refused();
        }
        return;
      }
      case 'bad_request': {
        this.log.error({ id: record.id, user: record.user, reason: failure.message }, 'Telegram rejected the message; moved to the dead-letter queue');
        await this.finish(record, 'given_up', `rejected by Telegram: ${failure.message}`);
        this.hooks.metrics?.deadLettered('rejected');
        await this.tellAnalyst(record, `Telegram rejected it (${failure.message})`);
        return;
      }
      case 'migrated': {
        await this.followMigration(chatId, c, failure.migrateTo!);
        return;
      }
      default: {
        record.attempts += 1;
        record.last_error = failure.message;
        const age = now - (record.retry_from ?? record.accepted_at);
        if (age >= this.opts.maxAgeMs) {
          this.log.error({ id: record.id, user: record.user, attempts: record.attempts, reason: failure.message }, 'delivery retries exhausted; moved to the dead-letter queue');
          await this.finish(record, 'given_up', `gave up after ${record.attempts} attempts: ${failure.message}`);
          this.hooks.metrics?.deadLettered('retries_exhausted');
          return;
        }
        record.failing_since ??= now;
        if (await this.unstick(c, record, failure.message, now)) return;
        const delay = this.backoff(record.attempts);
        c.readyAt = now + delay;
        this.stats.retries += 1;
        this.hooks.metrics?.retried(failure.kind);
        this.log.warn({ id: record.id, chat: chatId, attempt: record.attempts, retryInMs: delay, reason: failure.message }, 'delivery failed; will retry');
        try {
          await this.store.update(record);
        } catch (e) {
          this.log.error({ err: e, id: record.id }, 'could not record the failed attempt');
        }
      }
    }
  }
  /**
   * A message that has failed for the stuck bound: a photo goes on as its text; a message
   * failing while Telegram takes others is dead-lettered with a notice; otherwise the
   * chat's next message is tried first, to tell which it is. True when it was dealt with.
   */
  private async unstick(c: ChatQueue, record: OutboxRecord, reason: string, now: number): Promise<boolean> {
    const bound = this.opts.stuckMs;
    if (bound === undefined || record.failing_since === undefined || now - record.failing_since < bound) return false;
    const part = record.parts[record.sent_parts];
    if (part?.kind === 'photo') {
      this.log.warn({ id: record.id, reason }, 'Telegram keeps refusing the photo; sending the text alone');
      this.photoUnavailable(record, record.sent_parts, `Telegram kept refusing it (${reason})`);
      delete record.failing_since;
      await this.store.update(record);
      c.readyAt = now;
      return true;
    }
    if (this.lastSentAt > record.failing_since) {
      this.stats.stuck += 1;
      const minutes = Math.max(1, Math.round((now - record.failing_since) / 60_000));
      this.log.error({ id: record.id, user: record.user, attempts: record.attempts, reason }, 'Telegram keeps refusing this message while others go through; moved to the dead-letter queue so the chat goes on');
      await this.finish(record, 'given_up', `Telegram kept refusing it for ${minutes} min while other messages went through: ${reason}`);
      this.hooks.metrics?.deadLettered('stuck');
      await this.tellAnalyst(record, `Telegram kept refusing it for ${minutes} min (${reason})`);
      return true;
    }
    if (c.queue.length > 1 && c.queue[0] === record) {
      // Telegram took nothing since: down, or only this message? The next one tells.
      c.queue.splice(0, 1);
      c.queue.splice(1, 0, record);
      this.log.warn({ id: record.id, reason }, 'a message keeps failing; trying the chat\'s next message first');
    }
    return false;
  }

  /** Tells the analyst, in the same chat, that a notification went to the dead letters. */
  private async tellAnalyst(record: OutboxRecord, why: string): Promise<void> {
    if (record.notice) return;
    const first = (record.parts[0]?.text ?? '').split('\n')[0]!.slice(0, 80);
    const now = this.clock.now();
    const { id, seq } = newOutboxId(now);
    const text = `A notification${record.script ? ` of ${record.script}` : ''} could not be delivered: "${first}". ${why}. It is kept for the operator (dead letter ${record.id}); later notifications go on.`;
    const notice: OutboxRecord = { id, seq, user: record.user, chat_id: record.chat_id, accepted_at: now, parts: [{ kind: 'text', text }], sent_parts: 0, attempts: 0, notice: true };
    try {
      await this.accept(notice);
      this.hooks.metrics?.accepted('telegram');
    } catch (err) {
      this.log.error({ err, id: record.id, user: record.user }, 'could not queue the notice about a dead-lettered notification');
    }
  }

  /**
   * A group became a supergroup: everything queued for it moves to the new id, in order,
   * and then its link follows (so what is accepted for the new id queues behind the moved).
   */
  private async followMigration(fromChatId: number, c: ChatQueue, toChatId: number): Promise<void> {
    this.stats.migrated += 1;
    this.log.warn({ chat: fromChatId, to: toChatId }, 'the group was upgraded to a supergroup; its link and queued messages move to the new chat');
    this.migrations.set(fromChatId, toChatId);
    while (c.queue.length > 0) {
      const moving = c.queue.splice(0);
      let done = 0;
      try {
        // Durably readdressed: a failure halfway leaves each record sendable, never lost.
        for (const r of moving) {
          r.chat_id = toChatId;
          await this.store.update(r);
          done += 1;
        }
      } finally {
        c.queue.unshift(...moving.slice(done + 1));
        this.queueFor(toChatId).queue.push(...moving.slice(0, done + 1));
      }
    }
    await this.hooks.onMigrated?.(fromChatId, toChatId);
  }

  /** The queue of a chat, made when it has none (taken just before use: pump drops empty ones). */
  private queueFor(chatId: number): ChatQueue {
    let q = this.chats.get(chatId);
    if (!q) {
      q = { queue: [], busy: false, readyAt: 0 };
      this.chats.set(chatId, q);
    }
    return q;
  }


}
