/**
 * Where a condition alert (`send_resolved`) went in Telegram, so its resolved notice can
 * reply to it and update its buttons: `alert_threads.json` =
 * `{"<notification id>": {"user", "chat_id", "message_ids", "script"?, "at"}}`. Only
 * condition alerts are kept, and only for THREAD_TTL_MS, so the file stays small.
 */
import { z } from 'zod';
import type { Clock } from '../../shared/clock.js';
import { type SharedDocument, sharedDocument } from '../../shared/documents.js';

/** How long an alert's messages are remembered for its resolved notice. */
export const THREAD_TTL_MS = 30 * 86_400_000;

const ThreadSchema = z.looseObject({
  user: z.string(),
  chat_id: z.number().int(),
  message_ids: z.array(z.number().int()).min(1),
  script: z.string().optional(),
  /** When it was delivered, ISO-8601 UTC. */
  at: z.string(),
});
export type AlertThread = z.infer<typeof ThreadSchema>;
const ThreadsSchema = z.record(z.string(), ThreadSchema);

/** The messages of condition alerts, by notification id. */
export class AlertThreads {
  private readonly file: SharedDocument<z.infer<typeof ThreadsSchema>>;
  /**
   * Alerts delivered a moment ago whose write is not done yet: the chat's next message may
   * be their resolved notice, and it must find them.
   */
  private readonly writing = new Map<string, AlertThread>();

  constructor(
    dataDir: string,
    private readonly clock: Clock,
  ) {
    this.file = sharedDocument(dataDir, 'alert_threads.json', ThreadsSchema, () => ({}));
  }

  /**
   * Remembers a delivered condition alert (and forgets those past THREAD_TTL_MS). `find`
   * sees it from the moment this is called, before it is written.
   */
  async remember(id: string, thread: { user: string; chat_id: number; message_ids: number[]; script?: string }): Promise<void> {
    const now = this.clock.now();
    const entry: AlertThread = { ...thread, at: new Date(now).toISOString() };
    this.writing.set(id, entry);
    try {
      await this.file.update((all) => {
        const next: Record<string, AlertThread> = {};
        for (const [k, v] of Object.entries(all)) if (now - Date.parse(v.at) < THREAD_TTL_MS) next[k] = v;
        next[id] = entry;
        return { next, result: undefined };
      });
    } finally {
      if (this.writing.get(id) === entry) this.writing.delete(id);
    }
  }

  /** The alert's messages, or null when unknown (never delivered, or long ago). */
  async find(id: string): Promise<AlertThread | null> {
    return this.writing.get(id) ?? (await this.file.read())[id] ?? null;
  }

  /**
   * The alert a resolved notice is about, in the notice's own chat: the alert it names, when
   * that went to this chat; else (a notice to several destinations names the alert of the
   * first) the latest alert of the same analyst's same script in this chat still open.
   */
  async threadOf(notice: { resolves?: string | undefined; user: string; chat_id: number; script?: string | undefined }): Promise<{ id: string; thread: AlertThread } | null> {
    if (!notice.resolves) return null;
    const fits = (t: AlertThread): boolean => t.user === notice.user && t.chat_id === notice.chat_id;
    const named = await this.find(notice.resolves);
    if (named && fits(named)) return { id: notice.resolves, thread: named };
    if (notice.script === undefined) return null;
    let latest: { id: string; thread: AlertThread } | null = null;
    for (const [id, t] of [...Object.entries(await this.file.read()), ...this.writing.entries()]) {
      if (fits(t) && t.script === notice.script && (!latest || t.at > latest.thread.at)) latest = { id, thread: t };
    }
    return latest;
  }

  /**
   * Every alert a resolved notice closes in its own chat, each still showing its buttons:
   * the alert it names, and the other alerts of the same analyst's same script in this chat
   * not resolved yet (a condition that lasted past its cooldown alerted more than once).
   */
  async openThreadsOf(notice: { resolves?: string | undefined; user: string; chat_id: number; script?: string | undefined }): Promise<Array<{ id: string; thread: AlertThread }>> {
    const found = await this.threadOf(notice);
    if (!found) return [];
    const open = new Map<string, AlertThread>([[found.id, found.thread]]);
    const script = found.thread.script ?? notice.script;
    if (script !== undefined) {
      for (const [id, t] of [...Object.entries(await this.file.read()), ...this.writing.entries()]) {
        if (t.user === notice.user && t.chat_id === notice.chat_id && t.script === script) open.set(id, t);
      }
    }
    return [...open].map(([id, thread]) => ({ id, thread }));
  }

  /**
   * The message a resolved notice replies to: the first message of its alert in the same chat
   * (asked when the notice is sent, so an alert still queued when its notice was accepted is
   * found too).
   */
  async replyTarget(notice: { resolves?: string | undefined; user: string; chat_id: number; script?: string | undefined }): Promise<number | undefined> {
    return (await this.threadOf(notice))?.thread.message_ids[0];
  }

  /** Forgets resolved alerts (their notice went out): a later notice never finds them again. */
  async forget(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.writing.delete(id);
    await this.file.update((all) => {
      if (!ids.some((id) => id in all)) return { next: all, result: undefined };
      const next = { ...all };
      for (const id of ids) delete next[id];
      return { next, result: undefined };
    });
  }
}
