/**
 * Long polling that never stops on its own: network and Telegram errors back off and
 * retry; a 409 (another getUpdates consumer with this token) is reported clearly and
 * retried slowly; a 401 (bad token) is fatal. Updates of one chat are handled in order,
 * different chats concurrently, so a slow handler never holds the others up.
 */
import { type Bot, GrammyError, HttpError } from 'grammy';
import type { Update } from 'grammy/types';
import type { Logger } from '../../shared/logger.js';

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
}

function chatOf(u: Update): number {
  return u.message?.chat.id ?? u.callback_query?.message?.chat.id ?? u.callback_query?.from.id ?? u.my_chat_member?.chat.id ?? u.channel_post?.chat.id ?? 0;
}

/** Drives a grammY bot by long polling. */
export class Poller {
  private running = false;
  private abort: AbortController | null = null;
  private loop: Promise<void> | null = null;
  private readonly chains = new Map<number, Promise<void>>();

  constructor(
    private readonly bot: Bot,
    private readonly log: Logger,
    private readonly opts: PollerOptions,
  ) {}

  /** Starts polling in the background. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops polling and waits for handlers in progress. */
  async stop(): Promise<void> {
    this.running = false;
    this.abort?.abort();
    await this.loop;
    await Promise.allSettled([...this.chains.values()]);
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

  private dispatch(update: Update): void {
    const chat = chatOf(update);
    const prev = this.chains.get(chat) ?? Promise.resolve();
    const next = prev
      .then(() => this.bot.handleUpdate(update))
      .catch((err: unknown) => this.log.error({ err, update_id: update.update_id }, 'update handler failed'))
      .finally(() => {
        if (this.chains.get(chat) === next) this.chains.delete(chat);
      });
    this.chains.set(chat, next);
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
    let backoff = this.opts.minBackoffMs;
    while (this.running) {
      this.abort = new AbortController();
      try {
        if (!this.bot.isInited()) await this.bot.init(this.abort.signal as never);
        const updates = await this.bot.api.getUpdates(
          { offset, timeout: this.opts.timeoutSeconds, allowed_updates: ['message', 'callback_query', 'my_chat_member', 'channel_post'] },
          this.abort.signal as never,
        );
        backoff = this.opts.minBackoffMs;
        this.opts.onPoll?.(true);
        for (const u of updates) {
          offset = u.update_id + 1;
          this.dispatch(u);
        }
        if (updates.length > 0) await this.opts.offsets?.save(offset).catch((err: unknown) => this.log.warn({ reason: (err as Error).message }, 'could not store the update offset'));
      } catch (err) {
        if (!this.running) break;
        this.opts.onPoll?.(false);
        if (err instanceof GrammyError && err.error_code === 401) {
          this.log.fatal('Telegram refused the bot token (401 Unauthorized); check TELEGRAM_BOT_TOKEN');
          this.running = false;
          this.opts.onFatal(new Error('Telegram refused the bot token (401 Unauthorized)'));
          break;
        }
        if (err instanceof GrammyError && err.error_code === 409) {
          this.log.error('Telegram reports another process polling with this bot token (409 Conflict); is a second notify-bot running elsewhere? Retrying in 30 s');
          await this.sleep(30_000);
          continue;
        }
        const reason = err instanceof GrammyError ? `${err.error_code}: ${err.description}` : err instanceof HttpError ? `network error: ${String(err.error)}` : String(err);
        this.log.warn({ retryInMs: backoff, reason }, 'polling Telegram failed; retrying');
        await this.sleep(backoff);
        backoff = Math.min(this.opts.maxBackoffMs, backoff * 2);
      }
    }
  }
}
