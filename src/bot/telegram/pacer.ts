/**
 * Keeping under Telegram's limits instead of hitting them: a sliding window for the whole
 * bot (about 30 messages per second) and a token bucket per chat (short bursts, then about
 * one per second), plus a bot-wide pause when Telegram asks for one (429 retry_after).
 *
 * Telegram counts a message when it arrives, somewhere between take() and the answer. The
 * bot's window therefore holds each message from take() until its answer as "now" and from
 * then on counts it from the answer: however unevenly requests arrive on a busy host (or
 * the server takes them in a bunch after a pause), no window of Telegram's ever holds more
 * than the limit.
 */
import type { Clock } from '../../shared/clock.js';

/** Pacing limits. */
export interface PacerLimits {
  /** Messages allowed in any window of `windowMs` for the whole bot. */
  botPerWindow: number;
  windowMs: number;
  /** Per-chat bucket size and refill interval. */
  chatBurst: number;
  chatIntervalMs: number;
  /** Group chats (negative ids): at most groupPerWindow messages in any window of groupWindowMs (Telegram: about 20 a minute). */
  groupPerWindow?: number;
  groupWindowMs?: number;
}

/** A message taken this long ago and never settled no longer counts as in flight. */
const FLYING_LIMIT_MS = 120_000;
/** With the window full of messages in flight, look again this soon (an answer frees a place). */
const FLYING_RECHECK_MS = 50;

interface Bucket {
  tokens: number;
  updatedAt: number;
  /** take() of a full bucket, not yet settled: Telegram's refill starts when it arrives. */
  fullTakenAt?: number;
}

/** Decides when the next message may go out, for the bot and for each chat. */
export class Pacer {
  /** Answered messages of the bot's window: when Telegram answered each, oldest first. */
  private readonly sent: number[] = [];
  /** Messages taken and not yet answered: when each was taken. */
  private readonly flying: number[] = [];
  private readonly buckets = new Map<number, Bucket>();
  private readonly groupSends = new Map<number, number[]>();
  private pausedUntil = 0;

  constructor(
    private readonly limits: PacerLimits,
    private readonly clock: Clock,
  ) {}

  private bucket(chatId: number, now: number): Bucket {
    let b = this.buckets.get(chatId);
    if (!b) {
      b = { tokens: this.limits.chatBurst, updatedAt: now };
      this.buckets.set(chatId, b);
    }
    const refill = (now - b.updatedAt) / this.limits.chatIntervalMs;
    if (refill > 0) {
      b.tokens = Math.min(this.limits.chatBurst, b.tokens + refill);
      b.updatedAt = now;
    }
    return b;
  }

  private prune(now: number): void {
    while (this.sent.length > 0 && this.sent[0]! <= now - this.limits.windowMs) this.sent.shift();
    // A take never settled (a caller that lost track of it) stops counting after a while.
    while (this.flying.length > 0 && this.flying[0]! <= now - FLYING_LIMIT_MS) this.flying.shift();
  }

  /** Milliseconds until the bot as a whole may send (0 = now). */
  botDelay(): number {
    const now = this.clock.now();
    this.prune(now);
    let wait = Math.max(0, this.pausedUntil - now);
    // Messages in flight count as sent now; answered ones leave the window in answer order.
    const over = this.sent.length + this.flying.length - this.limits.botPerWindow;
    if (over >= 0) {
      const leaving = this.sent[over];
      wait = Math.max(wait, leaving !== undefined ? leaving + this.limits.windowMs - now : FLYING_RECHECK_MS);
    }
    return wait;
  }

  /** Milliseconds until this chat may receive (0 = now). */
  chatDelay(chatId: number): number {
    const now = this.clock.now();
    const b = this.bucket(chatId, now);
    const groupWait = this.groupDelay(chatId, now);
    if (b.tokens >= 1) return groupWait;
    return Math.max(groupWait, Math.ceil((1 - b.tokens) * this.limits.chatIntervalMs));
  }

  private groupDelay(chatId: number, now: number): number {
    const { groupPerWindow, groupWindowMs } = this.limits;
    if (chatId >= 0 || !groupPerWindow || !groupWindowMs) return 0;
    const sends = (this.groupSends.get(chatId) ?? []).filter((t) => t > now - groupWindowMs);
    this.groupSends.set(chatId, sends);
    if (sends.length < groupPerWindow) return 0;
    return Math.max(1, sends[sends.length - groupPerWindow]! + groupWindowMs - now);
  }

  /** Records a message sent now to chatId; returns when (for settled()). */
  take(chatId: number): number {
    const now = this.clock.now();
    this.prune(now);
    this.flying.push(now);
    const b = this.bucket(chatId, now);
    if (b.tokens >= this.limits.chatBurst) b.fullTakenAt = now;
    b.tokens = Math.max(0, b.tokens - 1);
    if (chatId < 0 && this.limits.groupPerWindow) this.groupSends.set(chatId, [...(this.groupSends.get(chatId) ?? []), now]);
    return now;
  }

  /**
   * The request take() paced at takenAt has been answered. Telegram counts a message when
   * it arrives, and on a busy host that can be well after take(): the bot's window and a
   * group's minute count it from now, and a chat's bucket that was full refills from now
   * (counted from take(), the window would end early, or the bucket refill early, and earn
   * a 429).
   */
  settled(chatId: number, takenAt: number): void {
    const now = this.clock.now();
    const f = this.flying.lastIndexOf(takenAt);
    if (f >= 0) {
      this.flying.splice(f, 1);
      const at = Math.max(takenAt, now);
      let i = this.sent.length;
      while (i > 0 && this.sent[i - 1]! > at) i--;
      this.sent.splice(i, 0, at);
    }
    const b = this.buckets.get(chatId);
    if (b && b.fullTakenAt === takenAt) {
      delete b.fullTakenAt;
      this.bucket(chatId, now);
      b.tokens = Math.max(0, b.tokens - Math.max(0, now - takenAt) / this.limits.chatIntervalMs);
    }
    if (chatId >= 0) return;
    const sends = this.groupSends.get(chatId);
    const i = sends ? sends.lastIndexOf(takenAt) : -1;
    if (!sends || i < 0) return;
    sends[i] = Math.max(takenAt, now);
    sends.sort((a, b) => a - b);
  }

  /** Telegram asked the bot to wait (429 retry_after). */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.clock.now() + ms);
  }

  /** Forgets idle chats' buckets (they are full again anyway). */
  sweep(): void {
    const now = this.clock.now();
    for (const [chatId, b] of this.buckets) {
      if (now - b.updatedAt > this.limits.chatBurst * this.limits.chatIntervalMs) this.buckets.delete(chatId);
    }
  }
}
