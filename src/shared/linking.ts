/**
 * Linking a server account to a Telegram chat: the two shared files in the data directory
 * (`telegram_users.json`, `pending_codes.json`) and the operations on them. The bot issues
 * codes; the dashboard verifies them. Lock order is always codes, then users.
 */
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import { type Clock, systemClock, unixSeconds } from './clock.js';
import { type SharedDocument, sharedDocument } from './documents.js';
import { deliveryClears, RefusalMarkSchema, refusalMark } from './refusalMark.js';

/** How long a code is valid, in seconds (10 minutes). */
export const CODE_TTL_SECONDS = 600;

const LinkSchema = z.looseObject({
  chat_id: z.number().int(),
  linked_at: z.string(),
  /** Set when Telegram refused delivery for good (blocked the bot, chat gone). */
  delivery_refused: z.optional(RefusalMarkSchema),
});
const UsersSchema = z.record(z.string(), LinkSchema);
const PendingSchema = z.looseObject({
  chat_id: z.number().int(),
  created_at: z.number(),
  /** A group's code: its title, and the Telegram user ids who may link it (see teamChats.ts). */
  title: z.string().optional(),
  linkers: z.array(z.number().int()).optional(),
});
const CodesSchema = z.record(z.string(), PendingSchema);

export type Link = z.infer<typeof LinkSchema>;
export type Users = z.infer<typeof UsersSchema>;
export type PendingCodes = z.infer<typeof CodesSchema>;
/** What a group's code carries besides its chat. */
export type CodeExtra = { title?: string; linkers?: number[] };

/** Why a code was not accepted. */
export type VerifyFailure = 'missing' | 'invalid' | 'expired' | 'group';

/** A code was refused; `message` is for the analyst. */
export class VerifyError extends Error {
  constructor(readonly reason: VerifyFailure) {
    super(
      reason === 'missing'
        ? 'Enter the 6-digit code the bot sent you.'
        : reason === 'expired'
          ? 'This code has expired. Send /start to the bot for a new one.'
          : reason === 'group'
            ? 'This code came from a group chat: enter it under "Team chats" to link the group. For your own chat, send /start to the bot in a private chat.'
            : 'This code is not valid. Check it, or send /start to the bot for a new one.',
    );
    this.name = 'VerifyError';
  }
}

/** The shared link state of one data directory. */
export class LinkStore {
  readonly users: SharedDocument<Users>;
  readonly codes: SharedDocument<PendingCodes>;

  constructor(
    readonly dataDir: string,
    private readonly clock: Clock = systemClock,
  ) {
    this.users = sharedDocument(dataDir, 'telegram_users.json', UsersSchema, () => ({}));
    this.codes = sharedDocument(dataDir, 'pending_codes.json', CodesSchema, () => ({}));
  }

  private isExpired(entry: { created_at: number }, nowSec: number): boolean {
    return nowSec - entry.created_at >= CODE_TTL_SECONDS;
  }

  /** Code requests waiting for the next write of the codes file. */
  private codeRequests: Array<{ chatId: number; extra: CodeExtra; resolve: (code: string) => void; reject: (err: unknown) => void }> = [];
  private codeWriter: Promise<void> | null = null;

  /**
   * Issues a fresh code for a chat, replacing its earlier one and pruning expired ones.
   * Requests arriving together share one locked write of the file, so thousands of chats
   * sending /start at once are served by a few writes instead of queueing on the lock.
   */
  issueCode(chatId: number, extra: CodeExtra = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      this.codeRequests.push({ chatId, extra, resolve, reject });
      this.codeWriter ??= this.writeCodes();
    });
  }

  private async writeCodes(): Promise<void> {
    while (this.codeRequests.length > 0) {
      const batch = this.codeRequests.splice(0);
      try {
        const issued = await this.codes.update((codes) => {
          const now = unixSeconds(this.clock);
          const asking = new Set(batch.map((r) => r.chatId));
          const next: PendingCodes = {};
          for (const [code, entry] of Object.entries(codes)) {
            if (!asking.has(entry.chat_id) && !this.isExpired(entry, now)) next[code] = entry;
          }
          const result: string[] = [];
          const latest = new Map<number, string>();
          for (const { chatId, extra } of batch) {
            // A later /start of the same chat replaces the code an earlier one got.
            const earlier = latest.get(chatId);
            if (earlier !== undefined) delete next[earlier];
            let code: string;
            do code = String(randomInt(0, 1_000_000)).padStart(6, '0');
            while (code in next);
            next[code] = { chat_id: chatId, created_at: now, ...extra };
            latest.set(chatId, code);
            result.push(code);
          }
          return { next, result };
        });
        batch.forEach((r, i) => r.resolve(issued[i]!));
      } catch (err) {
        for (const r of batch) r.reject(err);
      }
    }
    this.codeWriter = null;
  }

  /** Consumes a code and links `username` to its chat; throws VerifyError when refused. */
  async verifyCode(username: string, rawCode: unknown): Promise<Link> {
    return this.consumeCode(rawCode, (chatId) => {
      if (chatId < 0) throw new VerifyError('group');
      return this.linkChat(username, chatId);
    });
  }

  /**
   * Consumes a code, handing its chat to `use` under the codes' lock (a team chat's link
   * uses it too); throws VerifyError when refused. When `use` throws, the code stays.
   */
  async consumeCode<T>(rawCode: unknown, use: (chatId: number, entry: PendingCodes[string]) => Promise<T>): Promise<T> {
    const code = typeof rawCode === 'string' ? rawCode.replace(/\s+/g, '') : typeof rawCode === 'number' ? String(rawCode) : rawCode === undefined || rawCode === null ? '' : '?';
    if (code === '') throw new VerifyError('missing');
    if (!/^\d{6}$/.test(code)) throw new VerifyError('invalid');
    const outcome = await this.codes.update<{ ok: T } | VerifyFailure>(async (codes) => {
      const now = unixSeconds(this.clock);
      const entry = codes[code];
      if (!entry) return { result: 'invalid' };
      const next = { ...codes };
      delete next[code];
      if (this.isExpired(entry, now)) return { next, result: 'expired' };
      return { next, result: { ok: await use(entry.chat_id, entry) } };
    });
    if (typeof outcome === 'string') throw new VerifyError(outcome);
    return outcome.ok;
  }

  /** Links username to chatId (replacing the user's earlier chat); returns the link. */
  async linkChat(username: string, chatId: number): Promise<Link> {
    const linkedAt = new Date(this.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    return this.users.update((users) => {
      const next: Users = {};
      for (const [name, link] of Object.entries(users)) {
        // One chat speaks for one account: a chat relinked elsewhere leaves its old account.
        if (link.chat_id !== chatId || name === username) next[name] = link;
      }
      const link: Link = { chat_id: chatId, linked_at: linkedAt };
      next[username] = link;
      return { next, result: link };
    });
  }

  /** Removes username's link; false when it was not linked. */
  async unlink(username: string): Promise<boolean> {
    return this.users.update((users) => {
      if (!(username in users)) return { result: false };
      const next = { ...users };
      delete next[username];
      return { next, result: true };
    });
  }

  /** Removes whichever account is linked to chatId; returns its name or null. */
  async unlinkChat(chatId: number): Promise<string | null> {
    return this.users.update((users) => {
      const name = Object.keys(users).find((n) => users[n]!.chat_id === chatId);
      if (name === undefined) return { result: null };
      const next = { ...users };
      delete next[name];
      return { next, result: name };
    });
  }

  /** The link of username, or null. */
  async linkOf(username: string): Promise<Link | null> {
    return this.users.pick((users) => users[username] ?? null);
  }

  /** The account linked to chatId, or null. */
  async userOfChat(chatId: number): Promise<string | null> {
    const users = await this.users.read();
    return Object.keys(users).find((n) => users[n]!.chat_id === chatId) ?? null;
  }

  /** Records that Telegram refused delivery to username's chat for good (or clears it). */
  async markDeliveryRefused(username: string, chatId: number, reason: string | null): Promise<void> {
    await this.users.update((users) => {
      const link = users[username];
      if (!link || link.chat_id !== chatId) return { result: undefined };
      const next = { ...users };
      const updated: Link = { ...link };
      if (reason === null) {
        if (!link.delivery_refused) return { result: undefined };
        delete updated.delivery_refused;
      } else {
        updated.delivery_refused = refusalMark(this.clock.now(), reason);
      }
      next[username] = updated;
      return { next, result: undefined };
    });
  }

  /**
   * Telegram took a notification for username's chat at `answeredAt` (ms): clears the chat's
   * refusal mark when the rule of refusalMark.ts says so. Only reads when there is nothing to
   * clear (every delivery calls this).
   */
  async noteDelivery(username: string, chatId: number, answeredAt: number): Promise<void> {
    const clears = (users: Users): boolean => {
      const link = users[username];
      return link !== undefined && link.chat_id === chatId && deliveryClears(link.delivery_refused, answeredAt);
    };
    if (!(await this.users.pick(clears))) return;
    await this.users.update((users) => {
      if (!clears(users)) return { result: undefined };
      const updated: Link = { ...users[username]! };
      delete updated.delivery_refused;
      return { next: { ...users, [username]: updated }, result: undefined };
    });
  }
}
