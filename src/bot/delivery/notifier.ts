/**
 * The one door every notification passes: it resolves the channels of the user, puts a
 * Telegram-bound notification in the durable outbox, hands a copy to the desktop gateway
 * without ever letting the gateway hold the Telegram path up, and says what each channel did.
 */
import { AlertDataUnreadableError, type AlertRulesStore, inQuietHours, quietHoursEnd, suppressionFor } from '../../shared/alertRules.js';
import type { Clock } from '../../shared/clock.js';
import { DesktopImageStore, imageUrlPath, type KeptImages } from '../../shared/desktopImages.js';
import { desktopTimestamp } from '../../gateway/client.js';
import type { SendResponse, TelegramChannelStatus } from '../../shared/contract.js';
import type { LinkStore } from '../../shared/linking.js';
import type { DiskGuard } from '../../shared/diskSpace.js';
import type { Logger } from '../../shared/logger.js';
import { alertKeyboard, type ScriptKeys, teamAlertKeyboard } from '../commands/alertKeyboard.js';
import type { Deliverer } from './deliverer.js';
import type { IntakeMetrics } from '../metrics.js';
import { newOutboxId, type OutboxRecord, type OutboxStore } from './outbox.js';
import { imageType } from '../intake/photos.js';
import { type Content, photoParts, textParts } from '../format/render.js';

/** A notification as the desktop gateway carries it (gateway/client.ts declares them). */
export interface DesktopNotification {
  id: string;
  title: string;
  message: string;
  script: string;
  timestamp: string;
  image_url?: string;
}

/** The desktop channel, as the bot sees it. Never throws; bounded in time. */
export interface DesktopChannel {
  dispatch(user: string, notification: DesktopNotification): Promise<{ sent: number } | { error: string }>;
}

/** A notification to deliver. */
export interface Submission {
  user: string;
  content: Content;
  photo?: Buffer | undefined;
  script?: string | undefined;
  data?: Record<string, unknown> | undefined;
  /** Inline keyboard under the (last) message; by default script alerts get the alert buttons. */
  replyMarkup?: unknown;
  /** Break through quiet hours. */
  urgent?: boolean | undefined;
  /** Send only if `data` (or the text) changed since the last sent one of this script. */
  onlyIfChanged?: boolean | undefined;
  /** Skip the analyst's rules (answers to their own requests: welcome, /test, Run now, digests). */
  bypassRules?: boolean;
  /** Put the alert buttons under it (default: for script alerts that obey the rules). */
  buttons?: boolean;
  /** A condition that will clear: keep its Telegram messages for the resolved notice. */
  sendResolved?: boolean | undefined;
  /** The id of the alert this notice resolves: sent as a reply to it, without buttons. */
  resolves?: string | undefined;
  /**
   * A team chat to send to instead of the user's own chat (`user` is the sender). Team
   * messages skip the sender's personal rules and get no desktop copy; a script's alert
   * carries the team chat's own buttons, and `silence` (that script muted or snoozed in
   * that chat) stops it.
   */
  team?: { name: string; chatId: number; silence?: { kind: 'muted' } | { kind: 'snoozed'; until: string } | null };
}

/** How long to wait before answering. */
export interface SubmitOptions {
  /** Answer as soon as the notification is on disk. */
  respondAsync: boolean;
  waitMs: number;
}

/** An answer for the send API. */
export type SubmitResult = { status: 200 | 202; body: SendResponse } | { status: 404; body: { error: string } };

/** Settings of the notifier. */
export interface NotifierOptions {
  dataDir: string;
  gatewayTimeoutMs: number;
  /** How long images for desktop clients are kept. */
  imageRetentionMs: number;
  /** Free space of the data directory: new work is refused when it is short. */
  disk?: DiskGuard;
  /** What one analyst may have queued at once (notifications, and bytes with their photos). */
  userQuota?: UserQuota;
}

/** Per-analyst bounds on the queue, so one analyst cannot take the queue or the disk from the others. */
export interface UserQuota {
  count: number;
  bytes: number;
  /** Bytes of images one analyst may keep for desktop apps (over the image retention). */
  imageBytes?: number;
}

/** One analyst's queue (or kept images) is at its quota: that analyst waits, the others go on sending. */
export class UserQuotaError extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds = 60,
  ) {
    super(message);
    this.name = 'UserQuotaError';
  }
}

const mib = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;

function plainOf(content: Content): { title: string; message: string } {
  if (content.rich) return { title: '', message: content.rich.text };
  if (content.text !== undefined) return { title: '', message: content.text };
  return { title: content.title ?? '', message: content.message ?? '' };
}

/** Accepts notifications and routes them to the channels. */
export class Notifier {
  readonly images: DesktopImageStore;
  /** Notifications (and desktop images) being stored now, per analyst (not yet in the outbox's usage or the image index). */
  private readonly storing = new Map<string, { count: number; bytes: number; imageBytes: number }>();

  constructor(
    private readonly links: LinkStore,
    private readonly outbox: OutboxStore,
    private readonly deliverer: Deliverer,
    private readonly desktop: DesktopChannel | null,
    private readonly opts: NotifierOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly rules: AlertRulesStore | null = null,
    private readonly scriptKeys: ScriptKeys | null = null,
    private readonly metrics: IntakeMetrics | null = null,
  ) {
    this.images = new DesktopImageStore(opts.dataDir);
  }

  /**
   * Applies the analyst's rules. Returns an answer when the notification stops here
   * (suppressed or held), else the submission to deliver (possibly with a change summary).
   */
  private async applyRules(sub: Submission, id: string, now: number): Promise<{ stop: SubmitResult } | { go: Submission; accepted?: () => Promise<void> }> {
    if (!this.rules || sub.bypassRules) return { go: sub };
    const rules = await this.rules.forUser(sub.user);
    const s = suppressionFor(rules, sub.script, now);
    if (s) {
      this.log.info({ id, user: sub.user, script: sub.script, rule: s.kind }, 'notification suppressed by the analyst\'s rule');
      return { stop: { status: 200, body: { ok: true, id, telegram: 'suppressed', desktop: 0, suppressed: s.kind, ...(s.until ? { until: s.until } : {}) } } };
    }
    let go = sub;
    let changes: string[] | undefined;
    let accepted: (() => Promise<void>) | undefined;
    if (sub.onlyIfChanged && sub.script) {
      const plain = plainOf(sub.content);
      const data = sub.data ?? { title: plain.title, message: plain.message };
      let compared: string[] | null;
      try {
        compared = await this.rules.changesSince(sub.user, sub.script, data);
      } catch (err) {
        if (!(err instanceof AlertDataUnreadableError)) throw err;
        // That analyst's feature is broken, not the send: it goes out as if changed.
        this.log.error({ err, id, user: sub.user, script: sub.script }, 'only_if_changed state unreadable; the notification is sent as changed');
        compared = [];
      }
      const rules = this.rules;
      const script = sub.script;
      // Recorded only once the notification is accepted, so a refused send is retried.
      accepted = () => rules.recordData(sub.user, script, data).catch((err: unknown) => this.log.error({ err, id, user: sub.user, script }, 'could not record the data of an only-if-changed notification'));
      if (compared === null) {
        return { stop: { status: 200, body: { ok: true, id, telegram: 'suppressed', desktop: 0, suppressed: 'unchanged' } } };
      }
      changes = compared;
      if (compared.length > 0 && sub.data) {
        const summary = `\n\nChanged since the last alert:\n${compared.map((l) => `• ${l}`).join('\n')}`;
        const c = sub.content;
        go = { ...sub, content: c.text !== undefined ? { ...c, text: `${c.text}${summary}` } : { ...c, message: `${c.message ?? ''}${(c.parseMode ?? 'Markdown') === 'Markdown' ? summary.replace(/[_*`[]/g, (m) => `\\${m}`) : summary}` } };
      }
    }
    if (!sub.urgent && inQuietHours(rules.quiet_hours, now)) {
      const plain = plainOf(go.content);
      await this.rules.hold(sub.user, { id, at: new Date(now).toISOString(), title: plain.title, message: plain.message, ...(sub.script ? { script: sub.script } : {}), ...(sub.photo ? { had_image: true } : {}) });
      await accepted?.();
      const until = new Date(quietHoursEnd(rules.quiet_hours!, now)).toISOString();
      this.log.info({ id, user: sub.user, until }, 'notification held for the quiet-hours digest');
      return { stop: { status: 202, body: { ok: true, id, queued: true, telegram: 'held', desktop: 'pending', held: 'quiet_hours', until, ...(changes ? { changes } : {}) } } };
    }
    return accepted ? { go, accepted } : { go };
  }

  /** A team chat's own rule: the script muted or snoozed there stops its alert. */
  private teamRule(sub: Submission, id: string): { stop: SubmitResult } | { go: Submission; accepted?: () => Promise<void> } {
    const s = sub.team?.silence;
    if (!s || sub.bypassRules) return { go: sub };
    this.log.info({ id, user: sub.user, script: sub.script, team: sub.team?.name, rule: s.kind }, 'team chat notification suppressed by the chat\'s rule');
    return { stop: { status: 200, body: { ok: true, id, telegram: 'suppressed', desktop: 0, suppressed: s.kind, ...('until' in s ? { until: s.until } : {}) } } };
  }

  /**
   * The channels a notification would go to: a team chat's Telegram group alone; for an
   * analyst, their Telegram chat when linked and the desktop app when a gateway is set up.
   */
  private async channelsOf(sub: Submission): Promise<Array<'telegram' | 'desktop'>> {
    if (sub.team) return ['telegram'];
    const channels: Array<'telegram' | 'desktop'> = [];
    if (await this.links.linkOf(sub.user).catch(() => null)) channels.push('telegram');
    if (this.desktop) channels.push('desktop');
    return channels;
  }

  /**
   * Keeps the image for desktop clients, at an unguessable, expiring path; with `linkFrom`
   * (the outbox's copy) as a second name of the same bytes. Returns its name.
   */
  private async storeImage(id: string, user: string, bytes: Buffer, linkFrom?: string): Promise<string | undefined> {
    try {
      return await this.images.put(user, bytes, imageType(bytes) ?? 'image/png', this.clock.now(), this.opts.imageRetentionMs, linkFrom);
    } catch (err) {
      this.log.error({ err, id }, 'could not keep the image for desktop clients');
      return undefined;
    }
  }

  /** Removes desktop images older than the retention. */
  async pruneImages(): Promise<void> {
    await this.images.prune(this.clock.now(), this.opts.imageRetentionMs);
  }

  private dispatchDesktop(user: string, n: DesktopNotification): Promise<{ sent: number } | { error: string }> {
    if (!this.desktop) return Promise.resolve({ error: 'no desktop gateway configured' });
    this.metrics?.accepted('desktop');
    return this.desktop
      .dispatch(user, n)
      .catch((err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }))
      .then((d) => {
        this.metrics?.desktop('sent' in d ? (d.sent > 0 ? 'delivered' : 'no_connection') : 'failed');
        return d;
      });
  }

  /**
   * Counts a notification of `bytes` (queued for Telegram; none: not queued) and a desktop
   * image of `imageBytes` against the analyst's quotas while they are stored; throws
   * UserQuotaError when they would not fit. Returns the release (call once they are in the
   * outbox's usage and the image index, or refused). `kept`: what the analyst keeps now
   * (images.keptBy, asked for just before).
   */
  private reserveQuota(user: string, bytes: number | null, imageBytes: number, kept: KeptImages = { count: 0, bytes: 0 }): () => void {
    const quota = this.opts.userQuota;
    if (!quota) return () => undefined;
    const pending = this.storing.get(user) ?? { count: 0, bytes: 0, imageBytes: 0 };
    if (imageBytes > 0 && quota.imageBytes !== undefined) {
      if (kept.bytes + pending.imageBytes + imageBytes > quota.imageBytes) {
        const retention = `${Math.round(this.opts.imageRetentionMs / 86_400_000)} days`;
        const freed = kept.oldestExpiresAt ?? this.clock.now() + this.opts.imageRetentionMs;
        const wait = Math.max(60, Math.ceil((freed - this.clock.now()) / 1000));
        throw new UserQuotaError(
          `'${user}' keeps ${mib(kept.bytes + pending.imageBytes)} of images for desktop apps (each is kept ${retention}); this one (${mib(imageBytes)}) would pass the ${mib(quota.imageBytes)} one analyst may keep (NOTIFY_USER_IMAGE_BYTES); nothing was stored. Send it without the image, or try again once older images expire (the oldest at ${new Date(freed).toISOString()}).`,
          wait,
        );
      }
    }
    if (bytes === null) return this.hold(user, pending, 0, 0, imageBytes);
    const queued = this.outbox.usage(user);
    if (queued.count + pending.count + 1 > quota.count) {
      throw new UserQuotaError(`'${user}' has ${queued.count + pending.count} notifications waiting for delivery, the most one analyst may have queued (NOTIFY_USER_QUEUE_MAX=${quota.count}); nothing was stored. Try again once they are delivered.`);
    }
    if (queued.bytes + pending.bytes + bytes > quota.bytes) {
      throw new UserQuotaError(
        `'${user}' has ${mib(queued.bytes + pending.bytes)} of notifications and photos waiting for delivery; this one (${mib(bytes)}) would pass the ${mib(quota.bytes)} one analyst may have queued (NOTIFY_USER_QUEUE_BYTES); nothing was stored. Try again once they are delivered.`,
      );
    }
    return this.hold(user, pending, 1, bytes, imageBytes);
  }

  private hold(user: string, pending: { count: number; bytes: number; imageBytes: number }, count: number, bytes: number, imageBytes: number): () => void {
    pending.count += count;
    pending.bytes += bytes;
    pending.imageBytes += imageBytes;
    this.storing.set(user, pending);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      pending.count -= count;
      pending.bytes -= bytes;
      pending.imageBytes -= imageBytes;
      if (pending.count === 0 && pending.imageBytes === 0) this.storing.delete(user);
    };
  }

  /** Accepts a notification; a notification on disk is never lost (README, docs/notifications.md). */
  async submit(original: Submission, opts: SubmitOptions): Promise<SubmitResult> {
    const disk = this.opts.disk;
    if (!disk) return this.accept(original, opts);
    await disk.check();
    try {
      const result = await this.accept(original, opts);
      disk.noteSuccess();
      return result;
    } catch (err) {
      if (disk.noteFailure(err)) this.log.error({ err, user: original.user }, 'the data disk is full; a notification was refused');
      throw err;
    }
  }

  private async accept(original: Submission, opts: SubmitOptions): Promise<SubmitResult> {
    const now = this.clock.now();
    const { id, seq } = newOutboxId(now);
    const ruled = original.team ? this.teamRule(original, id) : await this.applyRules(original, id, now);
    if ('stop' in ruled) {
      const body = ruled.stop.body as Partial<SendResponse>;
      const reason = body.suppressed ?? (body.held ? 'quiet_hours' : undefined);
      if (reason && this.metrics) for (const channel of await this.channelsOf(original)) this.metrics.suppressed(channel, reason);
      return ruled.stop;
    }
    const sub = ruled.go;
    const onAccepted = async (): Promise<void> => {
      await ruled.accepted?.().catch((err: unknown) => this.log.error({ err, id }, 'could not record the data of an only-if-changed notification'));
    };
    const link = sub.team ? { chat_id: sub.team.chatId } : await this.links.linkOf(sub.user);
    // Team messages get no desktop copy, so no image is kept for them.
    const desktopImage = sub.photo && !sub.team ? sub.photo : undefined;
    const plain = plainOf(sub.content);
    const desktopNoteWith = (image: string | undefined): DesktopNotification => ({
      id,
      title: plain.title,
      message: plain.message,
      script: sub.script ?? '',
      timestamp: desktopTimestamp(now),
      ...(image ? { image_url: imageUrlPath(image) } : {}),
    });

    if (!link) {
      // Only the desktop can take it: wait for the gateway (bounded).
      const release = this.reserveQuota(sub.user, null, desktopImage?.length ?? 0, desktopImage ? await this.images.keptBy(sub.user) : undefined);
      let image: string | undefined;
      try {
        image = desktopImage ? await this.storeImage(id, sub.user, desktopImage) : undefined;
      } finally {
        release();
      }
      const d = await this.dispatchDesktop(sub.user, desktopNoteWith(image));
      if ('sent' in d && d.sent > 0) {
        await onAccepted();
        return { status: 200, body: { ok: true, id, telegram: 'not_linked', desktop: d.sent } };
      }
      if (image) await this.images.remove(image).catch(() => undefined);
      return {
        status: 404,
        body: { error: `'${sub.user}' has not linked Telegram (link it on the dashboard) and no desktop app of theirs is connected` },
      };
    }

    const record: OutboxRecord = {
      id,
      seq,
      user: sub.user,
      chat_id: link.chat_id,
      accepted_at: now,
      ...(sub.script ? { script: sub.script } : {}),
      parts: sub.photo ? photoParts(sub.content) : textParts(sub.content),
      ...(sub.replyMarkup
        ? { reply_markup: sub.replyMarkup }
        : sub.script && !sub.resolves && sub.team
          ? { reply_markup: teamAlertKeyboard(sub.script, sub.user) }
          : sub.script && !sub.resolves && (sub.buttons ?? !sub.bypassRules)
            ? { reply_markup: alertKeyboard(sub.script, sub.user) }
            : {}),
      ...(sub.sendResolved && !sub.resolves ? { send_resolved: true } : {}),
      ...(sub.resolves ? { resolves: sub.resolves } : {}),
      sent_parts: 0,
      attempts: 0,
    };
    if (sub.script && this.scriptKeys) await this.scriptKeys.remember(sub.user, sub.script, sub.team !== undefined);
    // Refuse early when full, so no photo is stored for a notification that is not taken.
    this.deliverer.checkCapacity();
    // Asked for right before the reservation, which then counts what is being stored meanwhile.
    const kept = desktopImage ? await this.images.keptBy(sub.user) : undefined;
    const release = this.reserveQuota(sub.user, Buffer.byteLength(JSON.stringify(record)) + (sub.photo?.length ?? 0), desktopImage?.length ?? 0, kept);
    let image: string | undefined;
    try {
      try {
        if (sub.photo) record.photo = await this.outbox.putPhoto(id, sub.photo);
        await this.deliverer.accept(record);
        this.metrics?.accepted('telegram');
      } catch (err) {
        if (record.photo) await this.outbox.removePhoto(record.photo).catch(() => undefined);
        throw err;
      }
      // The desktop's image is the outbox's copy under a second name: stored once.
      if (desktopImage) image = await this.storeImage(id, sub.user, desktopImage, record.photo ? this.outbox.photoPath?.(record.photo) : undefined);
    } finally {
      release();
    }
    const desktopNote = desktopNoteWith(image);
    await onAccepted();

    // The desktop copy goes its own way; its answer is reported only if already in.
    let desktop: SendResponse['desktop'] = sub.team ? 0 : 'pending';
    if (!sub.team) {
      void this.dispatchDesktop(sub.user, desktopNote).then((d) => {
        desktop = 'sent' in d ? d.sent : 'unavailable';
        if ('error' in d) this.log.debug({ id, reason: d.error }, 'desktop dispatch failed');
      });
    }

    if (opts.respondAsync) {
      return { status: 202, body: { ok: true, id, queued: true, telegram: 'queued', desktop } };
    }
    const result = await this.deliverer.waitFor(id, opts.waitMs);
    if (result === 'pending') return { status: 202, body: { ok: true, id, queued: true, telegram: 'queued', desktop } };
    const telegram: TelegramChannelStatus = result === 'delivered' ? 'delivered' : result === 'refused' ? 'refused' : 'failed';
    return { status: 200, body: { ok: true, id, telegram, desktop } };
  }
}
