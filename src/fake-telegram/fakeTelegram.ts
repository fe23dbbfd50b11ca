// A fake Telegram Bot API server, used by the tests and by the first run's Telegram stand-in.
// Real grammY bots talk to it over HTTP exactly as they talk to api.telegram.org:
// `new Bot(fake.token, { client: { apiRoot: fake.apiRoot } })`. It keeps Telegram's rules
// that matter to a notification bot: update offsets and long polling, markup parsing with
// Telegram's own error messages, chat existence and blocking, flood limits (per bot and per
// chat) with retry_after, photo checks. Tests drive the user's side through the control
// methods (a message typed, a button pressed) and read what the bot sent. Faults (server
// errors, dropped connections, latency, outages, forced 429s) are injected with setFault.
//
// It imports nothing from node:test: it is part of the build and runs outside the tests.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import {
  addDetectedEntities,
  checkedLink,
  fixFormattedText,
  MarkupError,
  parseMarkup,
  sortEntities,
  type FakeEntity,
  type FormattedText,
} from './markup.js';
import {
  BodyError,
  isUploadedFile,
  parseParams,
  sniffImage,
  type ImageInfo,
  type ParamValue,
  type UploadedFile,
} from './body.js';

export type { FakeEntity, FormattedText } from './markup.js';
export { parseMarkup, fixFormattedText, MarkupError } from './markup.js';

// ---------------------------------------------------------------------------------------
// Public types

export interface FakeTelegramOptions {
  /** Bot token the fake accepts; others get 401. */
  token?: string;
  /** Flood limit for the whole bot: at most perWindow messages in any sliding windowMs. Default 30 per 1000 ms. */
  botRateLimit?: { perWindow: number; windowMs: number } | false;
  /** Flood limit per chat: a token bucket. Default burst 3, refilling 1 per second. */
  chatRateLimit?: { burst: number; perSecond: number } | false;
  /** Flood limit per group chat: at most perWindow messages in any sliding windowMs. Default 20 per minute. */
  groupRateLimit?: { perWindow: number; windowMs: number } | false;
  /** Milliseconds since the epoch; drives rate limits and message dates. Default Date.now. */
  clock?: () => number;
  /** Interface and port to listen on. Default 127.0.0.1 and a free port. */
  host?: string;
  port?: number;
  /** The bot's own identity, as getMe returns it. */
  bot?: { username?: string; first_name?: string };
  /** Add Telegram's automatic entities (bot_command, mention, hashtag, url) to stored messages. Default true. */
  detectEntities?: boolean;
}

/** Which methods a fault hits: the send methods (default), every method, or the listed ones. */
export type FaultScope = 'send' | 'all' | readonly string[];

interface FaultBase {
  /** How many requests the fault hits before it clears itself; default: until setFault(null). */
  count?: number;
  methods?: FaultScope;
}

export type Fault = FaultBase &
  (
    | { kind: 'status'; status: 500 | 502 | 503 | 504; body?: 'json' | 'html' }
    | { kind: 'drop-before' }
    | { kind: 'drop-after' }
    | { kind: 'latency'; ms: number }
    | { kind: 'outage'; as?: 'reset' | 'bad-gateway' }
    | { kind: '429'; retryAfter: number }
    /** Answers at once with success and no result (an empty update list), as a proxy without long polling. */
    | { kind: 'empty' }
  );

export interface InlineKeyboardButton {
  text: string;
  callback_data?: string;
  url?: string;
  [key: string]: unknown;
}

export interface ReplyMarkup {
  inline_keyboard?: InlineKeyboardButton[][];
  [key: string]: unknown;
}

/** A version of a message's content, kept in the edit history. */
export interface MessageVersion {
  text?: string;
  caption?: string;
  entities: FakeEntity[];
  reply_markup?: ReplyMarkup;
}

export interface MessageEdit {
  method: string;
  /** Clock time of the edit, ms. */
  at: number;
  /** The content before this edit. */
  previous: MessageVersion;
}

/** A message the bot sent, as stored by the fake. Edits update it in place. */
export interface SentMessage {
  kind: 'text' | 'photo';
  chat_id: number;
  message_id: number;
  /** Plain text (markup removed) for text messages. */
  text?: string;
  /** Plain caption for photos ('' when none). */
  caption?: string;
  /** `entities` of a text message or `caption_entities` of a photo. */
  entities: FakeEntity[];
  /** parse_mode of the latest send/edit, as the bot passed it. */
  parse_mode?: string;
  reply_markup?: ReplyMarkup;
  link_preview_options?: Record<string, unknown>;
  /** The bot's message this one replies to (`reply_parameters.message_id`), when it found it. */
  reply_to_message_id?: number;
  /** The photo's bytes (uploaded, or resolved from a file_id). */
  photo?: Buffer;
  photo_file_id?: string;
  /** The request parameters as received (files described, not included). */
  params: Record<string, unknown>;
  /** Unix seconds, as in Telegram's Message.date. */
  date: number;
  /** Clock time the fake accepted the message, ms. */
  receivedAt: number;
  edit_date?: number;
  edits: MessageEdit[];
  deleted: boolean;
}

export interface CallbackAnswer {
  callback_query_id: string;
  chat_id: number;
  message_id: number;
  data: string;
  text?: string;
  show_alert?: boolean;
  url?: string;
  cache_time?: number;
  at: number;
}

export interface FakeTelegramStats {
  /** Requests received per Bot API method (including refused and dropped ones). */
  requests: Record<string, number>;
  /** 429 answers given (rate limits and injected). */
  tooManyRequests: number;
  /** Answers with ok:false (any status, including 429 and injected statuses). */
  errors: number;
  /** Connections destroyed without an answer by faults. */
  dropped: number;
  /** Requests hit by an injected fault. */
  faultsInjected: number;
}

/** An ok:false answer the fake gave, for debugging tests. */
export interface ErrorRecord {
  method: string;
  chat_id?: number;
  error_code: number;
  description: string;
  at: number;
}

export interface TranscriptEntry {
  /** Position in the fake's change sequence. */
  seq: number;
  from: 'user' | 'bot';
  chat_id: number;
  message_id: number;
  /** Telegram's Message object for user messages; the stored SentMessage for bot ones. */
  message: Record<string, unknown>;
  sent?: SentMessage;
}

export interface BotCommand {
  command: string;
  description: string;
}

/** An update as getUpdates returns it. */
export type FakeUpdate = { update_id: number } & Record<string, unknown>;

// ---------------------------------------------------------------------------------------
// Internals

class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly description: string,
    readonly parameters?: { retry_after?: number; migrate_to_chat_id?: number },
  ) {
    super(description);
  }
}

/** The user Telegram shows as the sender of an anonymous administrator's message in a group. */
export const GROUP_ANONYMOUS_BOT_ID = 1087968824;

const badRequest = (description: string): ApiError => new ApiError(400, `Bad Request: ${description}`);
const tooManyRequests = (retryAfter: number): ApiError =>
  new ApiError(429, `Too Many Requests: retry after ${retryAfter}`, { retry_after: retryAfter });
const NOT_MODIFIED =
  'message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message';
const QUERY_INVALID = 'query is too old and response timeout expired or query ID is invalid';

const METHOD_NAMES = [
  'getMe', 'getUpdates', 'deleteWebhook', 'getWebhookInfo', 'sendMessage', 'sendPhoto', 'editMessageText',
  'editMessageCaption', 'editMessageReplyMarkup', 'deleteMessage', 'answerCallbackQuery', 'setMyCommands',
  'getMyCommands', 'deleteMyCommands', 'sendChatAction', 'getFile', 'getChat', 'getChatMember', 'getChatAdministrators',
] as const;
type MethodName = (typeof METHOD_NAMES)[number];
const METHODS = new Map<string, MethodName>(METHOD_NAMES.map((m) => [m.toLowerCase(), m]));
const SEND_METHODS = new Set<string>(['sendMessage', 'sendPhoto', 'editMessageText', 'editMessageCaption', 'editMessageReplyMarkup']);
const DEFAULT_ALLOWED_UPDATES = ['message', 'edited_message', 'channel_post', 'edited_channel_post', 'callback_query', 'inline_query', 'chosen_inline_result', 'shipping_query', 'pre_checkout_query', 'poll', 'poll_answer', 'my_chat_member', 'chat_join_request'];
const MAX_BODY = 60 * 1024 * 1024;
const MAX_TEXT = 4096;
const MAX_CAPTION = 1024;

const NGINX_PAGE = (status: number, reason: string): string =>
  `<html>\r\n<head><title>${status} ${reason}</title></head>\r\n<body>\r\n<center><h1>${status} ${reason}</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n`;
const REASONS: Record<number, string> = { 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Temporarily Unavailable', 504: 'Gateway Time-out' };

interface ChatState {
  id: number;
  username?: string;
  first_name: string;
  last_name?: string;
  blocked: boolean;
  nextMessageId: number;
  bucket: { tokens: number; at: number };
  log: TranscriptEntry[];
  /**
   * Set for group chats: their title, members (user ids), who created the group and who else
   * administers it, and recent sends (for the group limit).
   */
  group?: { title: string; members: Set<number>; creator: number | undefined; admins: Set<number>; sends: number[]; botRemoved: boolean; channel: boolean };
  /** Set when the group was upgraded to a supergroup: its new id. */
  migratedTo?: number;
}

/** Messages the fake refuses by their text (see FakeTelegram.refuseMessages). */
export interface MessageRefusal {
  /** Refuse sends whose text or caption contains this. */
  textIncludes: string;
  /** The methods refused (default both). */
  methods?: ReadonlyArray<'sendMessage' | 'sendPhoto'>;
  error_code: 400 | 403 | 413 | 500 | 502;
  description: string;
}

interface StoredFile {
  file_id: string;
  file_unique_id: string;
  data: Buffer;
  width: number;
  height: number;
  format: 'png' | 'jpeg';
  file_path: string;
}

interface PollWaiter {
  limit: number;
  resolve: (updates: FakeUpdate[]) => void;
  reject: (e: ApiError) => void;
  timer: NodeJS.Timeout;
  res: ServerResponse;
  /** The client closed the connection. */
  gone: boolean;
}

interface PendingCallback {
  chat_id: number;
  message_id: number;
  data: string;
  answered: boolean;
}

/** Parameter access with Telegram's coercions (form fields are strings, objects may be JSON strings). */
class Params {
  constructor(readonly map: Map<string, ParamValue>) {}

  has(name: string): boolean {
    const v = this.map.get(name);
    return v !== undefined && v !== null && v !== '';
  }

  raw(name: string): ParamValue | undefined {
    return this.map.get(name);
  }

  str(name: string): string | undefined {
    const v = this.map.get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (isUploadedFile(v)) return undefined;
    return JSON.stringify(v);
  }

  int(name: string): number | undefined {
    const v = this.map.get(name);
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    if (typeof v === 'string' && /^\s*[-+]?\d+\s*$/.test(v)) return Number(v.trim());
    throw badRequest(`invalid ${name} specified`);
  }

  bool(name: string): boolean | undefined {
    const v = this.map.get(name);
    if (v === undefined || v === null || v === '') return undefined;
    return v === true || v === 'true' || v === 'True' || v === '1' || v === 1;
  }

  /** An object or array, given as JSON or (form fields) as a JSON string. */
  json(name: string, error: string): unknown {
    const v = this.map.get(name);
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v === 'string') {
      try {
        return JSON.parse(v) as unknown;
      } catch {
        throw badRequest(error);
      }
    }
    return v;
  }

  /** The request parameters for the record, files described by name and size. */
  describe(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of this.map) {
      out[k] = isUploadedFile(v) ? { file: v.filename ?? v.field, size: v.data.length } : v;
    }
    return out;
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        done = true;
        reject(new ApiError(413, 'Request Entity Too Large'));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      if (done) return;
      done = true;
      reject(e);
    });
    req.on('close', () => {
      if (done) return;
      done = true;
      reject(new Error('client went away'));
    });
  });
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** A manually driven clock for rate-limit tests: `clock.now` is the option, `advance` moves time. */
export function manualClock(start = Date.UTC(2025, 0, 1, 12)): { now: () => number; advance: (ms: number) => void; set: (ms: number) => void } {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
    set: (ms: number) => {
      t = ms;
    },
  };
}

// ---------------------------------------------------------------------------------------
// The fake

export class FakeTelegram {
  readonly token: string;
  readonly botInfo: { id: number; is_bot: true; first_name: string; username: string };
  /** Every answerCallbackQuery the bot made, in order. */
  readonly callbackAnswers: CallbackAnswer[] = [];
  readonly stats: FakeTelegramStats = { requests: {}, tooManyRequests: 0, errors: 0, dropped: 0, faultsInjected: 0 };
  /** Every ok:false answer given, in order. */
  readonly errors: ErrorRecord[] = [];

  private readonly server: Server;
  private readonly clock: () => number;
  private readonly botLimit: { perWindow: number; windowMs: number } | false;
  private readonly chatLimit: { burst: number; perSecond: number } | false;
  private readonly groupLimit: { perWindow: number; windowMs: number } | false;
  private readonly detectEntities: boolean;
  private baseUrl = '';
  private closed = false;

  private readonly chats = new Map<number, ChatState>();
  private readonly sent: SentMessage[] = [];
  private readonly files = new Map<string, StoredFile>();
  private readonly commandSets = new Map<string, BotCommand[]>();
  private readonly callbacks = new Map<string, PendingCallback>();
  private updates: FakeUpdate[] = [];
  private nextUpdateId = 1000;
  private nextCallbackId = 1n;
  private allowedUpdates: string[] = DEFAULT_ALLOWED_UPDATES;
  private poll: PollWaiter | null = null;
  private botSends: number[] = [];
  private botRefusedUntil = 0;
  private currentFault: Fault | null = null;
  private faultRemaining = Infinity;
  private readonly refusals: MessageRefusal[] = [];
  private seq = 0;
  private version = 0;
  private readonly waiters = new Set<() => void>();
  private readonly closers = new Set<() => void>();

  private constructor(opts: FakeTelegramOptions) {
    this.token = opts.token ?? '7000000001:AAFakeTelegramTokenForTests-0123456';
    this.clock = opts.clock ?? Date.now;
    this.botLimit = opts.botRateLimit === undefined ? { perWindow: 30, windowMs: 1000 } : opts.botRateLimit;
    this.chatLimit = opts.chatRateLimit === undefined ? { burst: 3, perSecond: 1 } : opts.chatRateLimit;
    this.groupLimit = opts.groupRateLimit === undefined ? { perWindow: 20, windowMs: 60_000 } : opts.groupRateLimit;
    this.detectEntities = opts.detectEntities ?? true;
    const idFromToken = /^(\d+):/.exec(this.token)?.[1];
    this.botInfo = {
      id: idFromToken ? Number(idFromToken) : 7000000001,
      is_bot: true,
      first_name: opts.bot?.first_name ?? 'Notify Test Bot',
      username: opts.bot?.username ?? 'notify_test_bot',
    };
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          this.writeJson(res, 500, { ok: false, error_code: 500, description: `Internal Server Error: ${String(e)}` });
        }
      });
    });
  }

  /** Starts a fake on a free local port. */
  static async start(opts: FakeTelegramOptions = {}): Promise<FakeTelegram> {
    const fake = new FakeTelegram(opts);
    await new Promise<void>((resolve, reject) => {
      fake.server.once('error', reject);
      fake.server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
    });
    const addr = fake.server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    fake.baseUrl = `http://${host}:${addr.port}`;
    return fake;
  }

  /** What to pass as grammY's `client.apiRoot` (no trailing slash). */
  get apiRoot(): string {
    return this.baseUrl;
  }

  /** The current clock time, ms. */
  now(): number {
    return this.clock();
  }

  // ---- control: chats --------------------------------------------------------------------

  /** Makes a private chat known to the bot, as if the user had opened it. Idempotent; updates names. */
  registerChat(chatId: number, info: { username?: string; first_name?: string; last_name?: string } = {}): void {
    const chat = this.ensureChat(chatId);
    if (info.username !== undefined) chat.username = info.username;
    if (info.first_name !== undefined) chat.first_name = info.first_name;
    if (info.last_name !== undefined) chat.last_name = info.last_name;
  }

  /**
   * Creates a group chat (a negative id) with the bot in it and these users (private chat
   * ids) as members. The first member created the group (its creator, an administrator);
   * `admins` are further administrators. `channel`: a channel instead (its posts come from
   * the channel, not from a person; its members are subscribers).
   */
  createGroup(chatId: number, title: string, memberIds: readonly number[] = [], opts: { admins?: readonly number[]; channel?: boolean } = {}): void {
    if (chatId >= 0) throw new Error(`group chat ids are negative, got ${chatId}`);
    const chat = this.ensureChat(chatId);
    chat.first_name = title;
    const admins = new Set(opts.admins ?? []);
    chat.group = { title, members: new Set([...memberIds, ...admins]), creator: memberIds[0], admins, sends: [], botRemoved: false, channel: opts.channel ?? false };
  }

  /** Makes a member an administrator of the group, or a plain member again. */
  setGroupAdmin(chatId: number, userId: number, admin: boolean): void {
    const g = this.chats.get(chatId)?.group;
    if (!g) throw new Error(`chat ${chatId} is not a group`);
    g.members.add(userId);
    if (admin) g.admins.add(userId);
    else g.admins.delete(userId);
  }

  /** Adds a member to a group. */
  addGroupMember(chatId: number, userId: number): void {
    const g = this.chats.get(chatId)?.group;
    if (!g) throw new Error(`chat ${chatId} is not a group`);
    g.members.add(userId);
  }

  /**
   * The group is upgraded to a supergroup with a new id (same title and members): sends to
   * the old id get 400 with `migrate_to_chat_id`, as Telegram answers.
   */
  upgradeToSupergroup(chatId: number, newChatId: number): void {
    const g = this.chats.get(chatId)?.group;
    if (!g) throw new Error(`chat ${chatId} is not a group`);
    this.createGroup(newChatId, g.title, [...(g.creator !== undefined ? [g.creator] : []), ...g.members], { admins: [...g.admins], channel: g.channel });
    this.ensureChat(chatId).migratedTo = newChatId;
  }

  /**
   * From now on, sends whose text or caption contains `rule.textIncludes` get the given
   * error (a message Telegram keeps refusing for reasons of its own); null clears every rule.
   */
  refuseMessages(rule: MessageRefusal | null): void {
    if (rule === null) this.refusals.length = 0;
    else this.refusals.push(rule);
  }

  /**
   * The bot is removed from the group (by a member, or kicked): sends to it get 403, as
   * Telegram answers, and the bot gets a `my_chat_member` update saying so.
   */
  removeBotFromGroup(chatId: number, opts: { by?: number; kicked?: boolean } = {}): FakeUpdate {
    const chat = this.chats.get(chatId);
    if (!chat?.group) throw new Error(`chat ${chatId} is not a group`);
    chat.group.botRemoved = true;
    return this.enqueueMyChatMember(chat, opts.by, 'member', opts.kicked ? 'kicked' : 'left');
  }

  /** A member adds the bot (back) to the group: sends work again; a `my_chat_member` update says so. */
  addBotToGroup(chatId: number, opts: { by?: number } = {}): FakeUpdate {
    const chat = this.chats.get(chatId);
    if (!chat?.group) throw new Error(`chat ${chatId} is not a group`);
    chat.group.botRemoved = false;
    return this.enqueueMyChatMember(chat, opts.by, 'left', 'member');
  }

  private enqueueMyChatMember(chat: ChatState, by: number | undefined, was: string, now: string): FakeUpdate {
    const from = by !== undefined ? this.userJson(this.ensureChat(by)) : { id: 1, is_bot: false, first_name: 'Group Admin' };
    const bot = { id: this.botInfo.id, is_bot: true, first_name: this.botInfo.first_name, username: this.botInfo.username };
    const member = (status: string): Record<string, unknown> => (status === 'kicked' ? { status, user: bot, until_date: 0 } : { status, user: bot });
    return this.enqueue({
      my_chat_member: { chat: this.chatJson(chat), from, date: Math.floor(this.clock() / 1000), old_chat_member: member(was), new_chat_member: member(now) },
    });
  }

  /**
   * A member writes in a group (e.g. /start): queues a `message` update from that member.
   * `anonymous`: an administrator writing as the group, as Telegram shows it (from
   * GroupAnonymousBot, sender_chat the group).
   */
  sendGroupMessage(chatId: number, fromUserId: number, text: string, opts: { anonymous?: boolean } = {}): FakeUpdate {
    const chat = this.chats.get(chatId);
    if (!chat?.group) throw new Error(`chat ${chatId} is not a group`);
    const from = this.ensureChat(fromUserId);
    if (!chat.group.members.has(fromUserId)) chat.group.members.add(fromUserId);
    if (opts.anonymous && fromUserId !== chat.group.creator && !chat.group.admins.has(fromUserId)) throw new Error(`user ${fromUserId} is not an administrator of group ${chatId}: only administrators write anonymously`);
    const formatted = addDetectedEntities({ text, entities: [] });
    const message: Record<string, unknown> = {
      message_id: chat.nextMessageId++,
      from: opts.anonymous ? { id: GROUP_ANONYMOUS_BOT_ID, is_bot: true, first_name: 'Group', username: 'GroupAnonymousBot' } : this.userJson(from),
      ...(opts.anonymous ? { sender_chat: this.chatJson(chat) } : {}),
      chat: this.chatJson(chat),
      date: Math.floor(this.clock() / 1000),
      text,
    };
    if (formatted.entities.length > 0) message.entities = formatted.entities;
    chat.log.push({ seq: ++this.seq, from: 'user', chat_id: chat.id, message_id: message.message_id as number, message });
    return this.enqueue({ message });
  }

  /** An administrator posts in a channel (e.g. /start): queues a `channel_post` update, sent by the channel itself. */
  sendChannelPost(chatId: number, text: string): FakeUpdate {
    const chat = this.chats.get(chatId);
    if (!chat?.group?.channel) throw new Error(`chat ${chatId} is not a channel`);
    const formatted = addDetectedEntities({ text, entities: [] });
    const post: Record<string, unknown> = { message_id: chat.nextMessageId++, sender_chat: this.chatJson(chat), chat: this.chatJson(chat), date: Math.floor(this.clock() / 1000), text };
    if (formatted.entities.length > 0) post.entities = formatted.entities;
    chat.log.push({ seq: ++this.seq, from: 'user', chat_id: chat.id, message_id: post.message_id as number, message: post });
    return this.enqueue({ channel_post: post });
  }

  /** The user blocks the bot: sends to this chat get 403. */
  blockChat(chatId: number): void {
    this.ensureChat(chatId).blocked = true;
  }

  unblockChat(chatId: number): void {
    this.ensureChat(chatId).blocked = false;
  }

  isBlocked(chatId: number): boolean {
    return this.chats.get(chatId)?.blocked ?? false;
  }

  // ---- control: the user's side ----------------------------------------------------------

  /**
   * The user types a message. Registers (and unblocks: a user must unblock to write) the
   * chat and queues a `message` update. Returns the update.
   */
  sendUserMessage(chatId: number, text: string): FakeUpdate {
    const chat = this.ensureChat(chatId);
    chat.blocked = false;
    const formatted = addDetectedEntities({ text, entities: [] });
    const message: Record<string, unknown> = {
      message_id: chat.nextMessageId++,
      from: this.userJson(chat),
      chat: this.chatJson(chat),
      date: Math.floor(this.clock() / 1000),
      text,
    };
    if (formatted.entities.length > 0) message.entities = formatted.entities;
    chat.log.push({ seq: ++this.seq, from: 'user', chat_id: chat.id, message_id: message.message_id as number, message });
    return this.enqueue({ message });
  }

  /**
   * The user presses an inline button of a message the bot sent. Throws unless that message
   * has a button with this callback_data (pass `{ unchecked: true }` to send any data).
   * Queues a `callback_query` update and returns its id.
   */
  pressButton(chatId: number, messageId: number, callbackData: string, opts: { unchecked?: boolean; from?: number } = {}): string {
    const chat = this.chats.get(chatId);
    if (!chat) throw new Error(`pressButton: chat ${chatId} is unknown to the fake`);
    if (chat.group && opts.from === undefined) throw new Error(`pressButton: chat ${chatId} is a group: say which member presses ({ from: <user id> })`);
    if (chat.group && opts.from !== undefined && !chat.group.members.has(opts.from)) throw new Error(`pressButton: user ${opts.from} is not a member of group ${chatId}`);
    const presser = opts.from !== undefined ? this.ensureChat(opts.from) : chat;
    const msg = this.findSent(chatId, messageId);
    if (!opts.unchecked) {
      if (!msg) throw new Error(`pressButton: the bot sent no message #${messageId} to chat ${chatId}`);
      const buttons = (msg.reply_markup?.inline_keyboard ?? []).flat();
      if (!buttons.some((b) => b.callback_data === callbackData)) {
        const have = buttons.map((b) => JSON.stringify(b.callback_data ?? b.url ?? b.text)).join(', ') || 'none';
        throw new Error(`pressButton: message #${messageId} in chat ${chatId} has no button with callback_data ${JSON.stringify(callbackData)} (buttons: ${have})`);
      }
    }
    const id = (5000000000000000000n + this.nextCallbackId++).toString();
    this.callbacks.set(id, { chat_id: chatId, message_id: messageId, data: callbackData, answered: false });
    const query: Record<string, unknown> = {
      id,
      from: this.userJson(presser),
      chat_instance: (-4000000000000000000n - BigInt(chatId)).toString(),
      data: callbackData,
    };
    if (msg) query.message = this.messageJson(msg);
    this.enqueue({ callback_query: query });
    return id;
  }

  /** Updates not yet confirmed by the bot (getUpdates with a higher offset). */
  get pendingUpdates(): number {
    return this.updates.length;
  }

  /** Whether a long poll (getUpdates) is waiting for updates now. */
  get polling(): boolean {
    return this.poll !== null;
  }

  // ---- control: what the bot did ---------------------------------------------------------

  /** Every message the bot sent (to one chat, or all), in order. Edits update them in place. */
  sentMessages(chatId?: number): SentMessage[] {
    return chatId === undefined ? [...this.sent] : this.sent.filter((m) => m.chat_id === chatId);
  }

  /** One message the bot sent. */
  message(chatId: number, messageId: number): SentMessage | undefined {
    return this.findSent(chatId, messageId);
  }

  /** Both sides of a chat, in order. */
  transcript(chatId: number): TranscriptEntry[] {
    return [...(this.chats.get(chatId)?.log ?? [])];
  }

  /** Commands set with setMyCommands for the default scope and no language. */
  get commands(): BotCommand[] {
    return this.commandsFor();
  }

  /** Commands for a scope (default `{type:'default'}`) and language code. */
  commandsFor(scope: Record<string, unknown> = { type: 'default' }, languageCode = ''): BotCommand[] {
    return [...(this.commandSets.get(FakeTelegram.commandKey(scope, languageCode)) ?? [])];
  }

  /** Resolves with the chat's messages once it has at least `count`; rejects with what arrived on timeout. */
  waitForMessages(chatId: number, count: number, timeoutMs = 5000): Promise<SentMessage[]> {
    return this.waitFor(
      () => {
        const msgs = this.sentMessages(chatId);
        return msgs.length >= count ? msgs : undefined;
      },
      timeoutMs,
      () => {
        const msgs = this.sentMessages(chatId);
        const lines = msgs.map((m) => `  #${m.message_id} ${m.kind} ${JSON.stringify(m.kind === 'text' ? m.text : m.caption)}`);
        const others = [...new Set(this.sent.filter((m) => m.chat_id !== chatId).map((m) => m.chat_id))];
        const errors = this.errors.slice(-5).map((e) => `  ${e.method}${e.chat_id !== undefined ? ` chat ${e.chat_id}` : ''} -> ${e.error_code} ${e.description}`);
        return [
          `waitForMessages: chat ${chatId} expected ${count} message(s) within ${timeoutMs} ms but got ${msgs.length}${msgs.length ? ':' : '.'}`,
          ...lines,
          others.length ? `Messages went to other chats: ${others.join(', ')}` : '',
          errors.length ? 'Latest error answers:' : '',
          ...errors,
        ].filter((l) => l !== '').join('\n');
      },
    );
  }

  /** Resolves with the answer once the bot answers this callback query. */
  waitForCallbackAnswer(callbackQueryId: string, timeoutMs = 5000): Promise<CallbackAnswer> {
    return this.waitFor(
      () => this.callbackAnswers.find((a) => a.callback_query_id === callbackQueryId),
      timeoutMs,
      () => `waitForCallbackAnswer: callback query ${callbackQueryId} was not answered within ${timeoutMs} ms`,
    );
  }

  /** Resolves once `check` returns a value other than undefined (re-checked on every change). */
  waitFor<T>(check: () => T | undefined, timeoutMs: number, describe: () => string = () => 'condition'): Promise<T> {
    const first = check();
    if (first !== undefined) return Promise.resolve(first);
    return new Promise<T>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        this.closers.delete(onClose);
      };
      const waiter = (): void => {
        const value = check();
        if (value !== undefined) {
          finish();
          resolve(value);
        }
      };
      const onClose = (): void => {
        finish();
        reject(new Error(`fake Telegram closed while waiting: ${describe()}`));
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(describe()));
      }, timeoutMs);
      this.waiters.add(waiter);
      this.closers.add(onClose);
    });
  }

  // ---- control: faults -------------------------------------------------------------------

  /** Injects a fault (or clears it with null). See Fault. */
  setFault(fault: Fault | null): void {
    this.currentFault = fault;
    this.faultRemaining = fault?.count ?? Infinity;
  }

  get fault(): Fault | null {
    return this.currentFault;
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /** Answers pending long polls, fails pending waits and stops the server. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const poll = this.poll;
    this.poll = null;
    if (poll) {
      clearTimeout(poll.timer);
      poll.resolve([]);
    }
    for (const c of [...this.closers]) c();
    // let answered polls flush before the sockets go
    await new Promise((r) => setImmediate(r));
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ---- HTTP ------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    if (url.pathname.startsWith('/__control/')) return this.handleControl(req, res, url);
    if (url.pathname.startsWith('/file/bot')) return this.handleFileDownload(res, url);

    const m = /^\/bot([^/]*)\/([^/]*)$/.exec(url.pathname);
    if (!m) {
      this.writeJson(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
      return;
    }
    if (m[1] !== this.token) {
      this.answerError(res, m[2] ?? '', new ApiError(401, 'Unauthorized'));
      return;
    }
    const method = METHODS.get((m[2] ?? '').toLowerCase());
    if (!method) {
      this.answerError(res, m[2] ?? '', new ApiError(404, 'Not Found: method not found'));
      return;
    }
    this.stats.requests[method] = (this.stats.requests[method] ?? 0) + 1;

    const fault = this.takeFault(method);
    if (fault) {
      this.stats.faultsInjected++;
      switch (fault.kind) {
        case 'drop-before':
          this.drop(res);
          return;
        case 'outage':
          if (fault.as === 'bad-gateway') this.answerStatus(res, method, 502, 'html');
          else this.drop(res);
          return;
        case 'status':
          this.answerStatus(res, method, fault.status, fault.body ?? (fault.status === 500 ? 'json' : 'html'));
          return;
        case '429':
          this.answerError(res, method, tooManyRequests(fault.retryAfter));
          return;
        case 'empty':
          this.writeJson(res, 200, { ok: true, result: [] });
          return;
        case 'latency':
          await this.delay(fault.ms);
          if (this.closed || res.destroyed) return;
          break;
        case 'drop-after':
          break;
      }
    }

    let result: unknown;
    try {
      const body = await readBody(req);
      let map: Map<string, ParamValue>;
      try {
        map = parseParams(body, req.headers['content-type'], url.searchParams);
      } catch (e) {
        if (e instanceof BodyError) throw badRequest(e.message);
        throw e;
      }
      result = await this.dispatch(method, new Params(map), res);
    } catch (e) {
      if (fault?.kind === 'drop-after') {
        this.drop(res);
        return;
      }
      if (e instanceof ApiError) {
        this.answerError(res, method, e, chatIdOf(e));
        return;
      }
      if (res.destroyed) return;
      throw e;
    }
    if (fault?.kind === 'drop-after') {
      this.drop(res);
      return;
    }
    if (!res.destroyed) this.writeJson(res, 200, { ok: true, result });
  }

  private takeFault(method: string): Fault | null {
    const fault = this.currentFault;
    if (!fault) return null;
    const scope = fault.methods ?? 'send';
    const applies = scope === 'all' ? true : scope === 'send' ? SEND_METHODS.has(method) : scope.includes(method);
    if (!applies) return null;
    this.faultRemaining--;
    if (this.faultRemaining <= 0) this.setFault(null);
    return fault;
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.closers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.closers.add(done);
    });
  }

  private drop(res: ServerResponse): void {
    this.stats.dropped++;
    res.socket?.destroy();
    res.destroy();
  }

  private writeJson(res: ServerResponse, status: number, body: unknown): void {
    if (res.destroyed || res.headersSent) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private answerError(res: ServerResponse, method: string, e: ApiError, chatId?: number): void {
    this.stats.errors++;
    if (e.code === 429) this.stats.tooManyRequests++;
    this.errors.push({ method, chat_id: chatId, error_code: e.code, description: e.description, at: this.clock() });
    const body: Record<string, unknown> = { ok: false, error_code: e.code, description: e.description };
    if (e.parameters) body.parameters = e.parameters;
    this.writeJson(res, e.code, body);
  }

  private answerStatus(res: ServerResponse, method: string, status: number, body: 'json' | 'html'): void {
    const reason = REASONS[status] ?? 'Error';
    if (body === 'json') {
      this.answerError(res, method, new ApiError(status, reason));
      return;
    }
    this.stats.errors++;
    this.errors.push({ method, error_code: status, description: `${reason} (HTML page)`, at: this.clock() });
    if (res.destroyed) return;
    const page = NGINX_PAGE(status, reason);
    res.writeHead(status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(page) });
    res.end(page);
  }

  private handleFileDownload(res: ServerResponse, url: URL): void {
    const m = /^\/file\/bot([^/]*)\/(.+)$/.exec(url.pathname);
    if (!m || m[1] !== this.token) {
      this.writeJson(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
      return;
    }
    const file = [...this.files.values()].find((f) => f.file_path === m[2]);
    if (!file) {
      this.writeJson(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
      return;
    }
    res.writeHead(200, { 'content-type': file.format === 'png' ? 'image/png' : 'image/jpeg', 'content-length': file.data.length });
    res.end(file.data);
  }

  // ---- Bot API methods -------------------------------------------------------------------

  private dispatch(method: MethodName, p: Params, res: ServerResponse): unknown {
    switch (method) {
      case 'getMe':
        return {
          ...this.botInfo,
          can_join_groups: true,
          can_read_all_group_messages: false,
          supports_inline_queries: false,
          can_connect_to_business: false,
          has_main_web_app: false,
        };
      case 'getUpdates':
        return this.getUpdates(p, res);
      case 'deleteWebhook':
        if (p.bool('drop_pending_updates')) this.updates = [];
        return true;
      case 'getWebhookInfo':
        return { url: '', has_custom_certificate: false, pending_update_count: this.updates.length };
      case 'sendMessage':
        return this.sendMessage(p);
      case 'sendPhoto':
        return this.sendPhoto(p);
      case 'editMessageText':
        return this.editMessageText(p);
      case 'editMessageCaption':
        return this.editMessageCaption(p);
      case 'editMessageReplyMarkup':
        return this.editMessageReplyMarkup(p);
      case 'deleteMessage':
        return this.deleteMessage(p);
      case 'answerCallbackQuery':
        return this.answerCallbackQuery(p);
      case 'setMyCommands':
        return this.setMyCommands(p);
      case 'getMyCommands':
        return this.commandsFor(this.scopeOf(p), p.str('language_code') ?? '');
      case 'deleteMyCommands':
        this.commandSets.delete(FakeTelegram.commandKey(this.scopeOf(p), p.str('language_code') ?? ''));
        return true;
      case 'sendChatAction': {
        const chat = this.resolveChat(p);
        if (!p.has('action')) throw badRequest('action is empty');
        if (chat.blocked) throw withChat(new ApiError(403, 'Forbidden: bot was blocked by the user'), chat.id);
        return true;
      }
      case 'getFile': {
        const file = this.files.get(p.str('file_id') ?? '');
        if (!file) throw badRequest('invalid file_id');
        return { file_id: file.file_id, file_unique_id: file.file_unique_id, file_size: file.data.length, file_path: file.file_path };
      }
      case 'getChat':
        return this.chatJson(this.resolveChat(p));
      case 'getChatMember': {
        const chat = this.resolveChat(p);
        const userId = p.int('user_id');
        if (userId === undefined) throw withChat(badRequest('user_id is empty'), chat.id);
        const user = this.chats.get(userId);
        if (!user || user.group) throw withChat(badRequest('user not found'), chat.id);
        if (!chat.group) return { status: 'member', user: this.userJson(user) };
        if (chat.group.botRemoved) throw withChat(new ApiError(403, 'Forbidden: bot is not a member of the group chat'), chat.id);
        return this.memberJson(chat.group, user);
      }
      case 'getChatAdministrators': {
        const chat = this.resolveChat(p);
        if (!chat.group) throw withChat(badRequest('there are no administrators in the private chat'), chat.id);
        if (chat.group.botRemoved) throw withChat(new ApiError(403, 'Forbidden: bot is not a member of the group chat'), chat.id);
        const g = chat.group;
        const ids = [...(g.creator !== undefined ? [g.creator] : []), ...g.admins];
        return [...new Set(ids)].map((id) => this.memberJson(g, this.ensureChat(id)));
      }
    }
  }

  /** A ChatMember object: creator, administrator, member or left. */
  private memberJson(g: NonNullable<ChatState['group']>, user: ChatState): Record<string, unknown> {
    const u = this.userJson(user);
    if (user.id === g.creator) return { status: 'creator', user: u, is_anonymous: false };
    if (g.admins.has(user.id)) {
      return { status: 'administrator', user: u, can_be_edited: false, is_anonymous: false, can_manage_chat: true, can_delete_messages: true, can_manage_video_chats: true, can_restrict_members: true, can_promote_members: false, can_change_info: true, can_invite_users: true, can_post_stories: false, can_edit_stories: false, can_delete_stories: false };
    }
    return { status: g.members.has(user.id) ? 'member' : 'left', user: u };
  }

  private getUpdates(p: Params, res: ServerResponse): Promise<FakeUpdate[]> | FakeUpdate[] {
    const offset = p.int('offset') ?? 0;
    const limit = Math.min(100, Math.max(1, p.int('limit') ?? 100));
    const timeout = Math.max(0, p.int('timeout') ?? 0);
    const allowed = p.json('allowed_updates', "can't parse allowed_updates JSON array");
    if (Array.isArray(allowed)) {
      this.allowedUpdates = allowed.length === 0 ? DEFAULT_ALLOWED_UPDATES : allowed.map(String);
    }
    if (offset > 0) {
      this.updates = this.updates.filter((u) => u.update_id >= offset);
    } else if (offset < 0) {
      this.updates = this.updates.slice(offset);
    }
    // a newer getUpdates ends the older one, as Telegram does
    // (grammY's bot.stop() aborts its poll and polls again at once: give the abort a moment
    // to arrive so that a poll nobody waits for is not reported as a conflict)
    const previous = this.poll;
    if (previous) {
      this.poll = null;
      clearTimeout(previous.timer);
      setTimeout(() => {
        if (previous.gone) previous.resolve([]);
        else previous.reject(new ApiError(409, 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running'));
      }, 25);
    }
    const ready = this.deliverable(limit);
    if (ready.length > 0 || timeout === 0 || this.closed) return ready;
    return new Promise<FakeUpdate[]>((resolve, reject) => {
      const waiter: PollWaiter = {
        limit,
        resolve,
        reject,
        res,
        gone: false,
        timer: setTimeout(() => {
          if (this.poll === waiter) this.poll = null;
          resolve([]);
        }, timeout * 1000),
      };
      this.poll = waiter;
      res.on('close', () => {
        waiter.gone = true;
        if (this.poll === waiter) {
          this.poll = null;
          clearTimeout(waiter.timer);
        }
      });
    });
  }

  /** Updates the bot may receive now: drops those it did not subscribe to. */
  private deliverable(limit: number): FakeUpdate[] {
    const allowed = new Set(this.allowedUpdates);
    this.updates = this.updates.filter((u) => Object.keys(u).some((k) => k !== 'update_id' && allowed.has(k)));
    return this.updates.slice(0, limit);
  }

  private enqueue(payload: Record<string, unknown>): FakeUpdate {
    const update: FakeUpdate = { update_id: this.nextUpdateId++, ...payload };
    this.updates.push(update);
    const poll = this.poll;
    if (poll) {
      const ready = this.deliverable(poll.limit);
      if (ready.length > 0) {
        this.poll = null;
        clearTimeout(poll.timer);
        poll.resolve(ready);
      }
    }
    this.changed();
    return update;
  }

  private sendMessage(p: Params): Record<string, unknown> {
    const raw = p.str('text') ?? '';
    if (raw === '') throw badRequest('message text is empty');
    const parsed = this.parseText(raw, p.str('parse_mode'), p, 'entities');
    const markup = this.parseReplyMarkup(p);
    const chat = this.resolveChat(p);
    const formatted = this.finishText(parsed, false);
    if (formatted.text.length > MAX_TEXT) throw badRequest('message is too long');
    this.checkRefusals('sendMessage', chat, raw);
    this.checkCanSend(chat);
    const replyTo = this.replyTarget(p, chat.id);
    const now = this.clock();
    const msg: SentMessage = {
      kind: 'text',
      ...(replyTo !== undefined ? { reply_to_message_id: replyTo } : {}),
      chat_id: chat.id,
      message_id: chat.nextMessageId++,
      text: formatted.text,
      entities: formatted.entities,
      parse_mode: p.str('parse_mode'),
      reply_markup: markup,
      link_preview_options: this.linkPreviewOptions(p),
      params: p.describe(),
      date: Math.floor(now / 1000),
      receivedAt: now,
      edits: [],
      deleted: false,
    };
    return this.record(chat, msg);
  }

  private sendPhoto(p: Params): Record<string, unknown> {
    const photo = this.photoParam(p);
    const caption = this.parseText(p.str('caption') ?? '', p.str('parse_mode'), p, 'caption_entities');
    const markup = this.parseReplyMarkup(p);
    const chat = this.resolveChat(p);
    const image = isUploadedFile(photo) ? checkImage(photo) : undefined;
    const formatted = this.finishText(caption, true);
    if (formatted.text.length > MAX_CAPTION) throw badRequest('message caption is too long');
    this.checkRefusals('sendPhoto', chat, p.str('caption') ?? '');
    this.checkCanSend(chat);
    const replyTo = this.replyTarget(p, chat.id);
    const file = isUploadedFile(photo) && image ? this.storePhoto(photo, image) : (photo as StoredFile);
    const now = this.clock();
    const msg: SentMessage = {
      kind: 'photo',
      ...(replyTo !== undefined ? { reply_to_message_id: replyTo } : {}),
      chat_id: chat.id,
      message_id: chat.nextMessageId++,
      caption: formatted.text,
      entities: formatted.entities,
      parse_mode: p.str('parse_mode'),
      reply_markup: markup,
      photo: file.data,
      photo_file_id: file.file_id,
      params: p.describe(),
      date: Math.floor(now / 1000),
      receivedAt: now,
      edits: [],
      deleted: false,
    };
    return this.record(chat, msg);
  }

  private editMessageText(p: Params): Record<string, unknown> {
    const { chat, messageId } = this.editTarget(p);
    const raw = p.str('text') ?? '';
    if (raw === '') throw badRequest('message text is empty');
    const parsed = this.parseText(raw, p.str('parse_mode'), p, 'entities');
    const markup = this.parseReplyMarkup(p);
    const msg = this.editableMessage(chat, messageId);
    if (msg.kind !== 'text') throw badRequest('there is no text in the message to edit');
    const formatted = this.finishText(parsed, false);
    if (formatted.text.length > MAX_TEXT) throw badRequest('message is too long');
    const next: MessageVersion = { text: formatted.text, entities: formatted.entities, reply_markup: markup };
    return this.applyEdit('editMessageText', chat, msg, next, p);
  }

  private editMessageCaption(p: Params): Record<string, unknown> {
    const { chat, messageId } = this.editTarget(p);
    const parsed = this.parseText(p.str('caption') ?? '', p.str('parse_mode'), p, 'caption_entities');
    const markup = this.parseReplyMarkup(p);
    const msg = this.editableMessage(chat, messageId);
    if (msg.kind !== 'photo') throw badRequest('there is no caption in the message to edit');
    const formatted = this.finishText(parsed, true);
    if (formatted.text.length > MAX_CAPTION) throw badRequest('message caption is too long');
    const next: MessageVersion = { caption: formatted.text, entities: formatted.entities, reply_markup: markup };
    return this.applyEdit('editMessageCaption', chat, msg, next, p);
  }

  private editMessageReplyMarkup(p: Params): Record<string, unknown> {
    const { chat, messageId } = this.editTarget(p);
    const markup = this.parseReplyMarkup(p);
    const msg = this.editableMessage(chat, messageId);
    const next: MessageVersion = { text: msg.text, caption: msg.caption, entities: msg.entities, reply_markup: markup };
    return this.applyEdit('editMessageReplyMarkup', chat, msg, next, p);
  }

  private deleteMessage(p: Params): true {
    const chat = this.resolveChat(p);
    const messageId = p.int('message_id');
    if (messageId === undefined) throw badRequest('message identifier is not specified');
    const msg = this.findSent(chat.id, messageId);
    if (msg && !msg.deleted) {
      msg.deleted = true;
      this.changed();
      return true;
    }
    const userMessage = chat.log.some((e) => e.from === 'user' && e.message_id === messageId);
    if (userMessage) return true;
    throw badRequest('message to delete not found');
  }

  private answerCallbackQuery(p: Params): true {
    const id = p.str('callback_query_id') ?? '';
    const pending = this.callbacks.get(id);
    if (!pending || pending.answered) throw badRequest(QUERY_INVALID);
    pending.answered = true;
    const answer: CallbackAnswer = {
      callback_query_id: id,
      chat_id: pending.chat_id,
      message_id: pending.message_id,
      data: pending.data,
      at: this.clock(),
    };
    const text = p.str('text');
    if (text !== undefined) {
      if (text.length > 200) throw badRequest('MESSAGE_TOO_LONG');
      answer.text = text;
    }
    const showAlert = p.bool('show_alert');
    if (showAlert !== undefined) answer.show_alert = showAlert;
    const url = p.str('url');
    if (url !== undefined) answer.url = url;
    const cacheTime = p.int('cache_time');
    if (cacheTime !== undefined) answer.cache_time = cacheTime;
    this.callbackAnswers.push(answer);
    this.changed();
    return true;
  }

  private setMyCommands(p: Params): true {
    const commands = p.json('commands', "can't parse commands JSON object");
    if (!Array.isArray(commands)) throw badRequest("can't parse commands JSON object");
    if (commands.length > 100) throw badRequest('too many commands');
    const list: BotCommand[] = commands.map((c: unknown) => {
      const o = (typeof c === 'object' && c !== null ? c : {}) as Record<string, unknown>;
      const command = typeof o.command === 'string' ? o.command.replace(/^\//, '') : '';
      const description = typeof o.description === 'string' ? o.description : '';
      if (!/^[a-z0-9_]{1,32}$/.test(command)) throw badRequest('BOT_COMMAND_INVALID');
      if (description.trim() === '' || description.length > 256) throw badRequest('BOT_COMMAND_DESCRIPTION_INVALID');
      return { command, description };
    });
    const key = FakeTelegram.commandKey(this.scopeOf(p), p.str('language_code') ?? '');
    if (list.length === 0) this.commandSets.delete(key);
    else this.commandSets.set(key, list);
    this.changed();
    return true;
  }

  // ---- helpers for methods ---------------------------------------------------------------

  private ensureChat(chatId: number): ChatState {
    if (!Number.isSafeInteger(chatId)) throw new Error(`chat id must be an integer, got ${chatId}`);
    let chat = this.chats.get(chatId);
    if (!chat) {
      chat = {
        id: chatId,
        first_name: `User ${chatId}`,
        blocked: false,
        nextMessageId: 1,
        bucket: { tokens: this.chatLimit ? this.chatLimit.burst : 0, at: this.clock() },
        log: [],
      };
      this.chats.set(chatId, chat);
    }
    return chat;
  }

  private resolveChat(p: Params): ChatState {
    const raw = p.raw('chat_id');
    if (raw === undefined || raw === null || raw === '') throw badRequest('chat_id is empty');
    let id: number | undefined;
    if (typeof raw === 'number' && Number.isSafeInteger(raw)) id = raw;
    else if (typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw)) id = Number(raw.trim());
    const chat = id === undefined ? undefined : this.chats.get(id);
    if (!chat) throw withChat(badRequest('chat not found'), id);
    return chat;
  }

  private editTarget(p: Params): { chat: ChatState; messageId: number } {
    if (p.has('inline_message_id') && !p.has('chat_id')) throw badRequest('message to edit not found');
    const chat = this.resolveChat(p);
    const messageId = p.int('message_id');
    if (messageId === undefined) throw withChat(badRequest('message identifier is not specified'), chat.id);
    return { chat, messageId };
  }

  private editableMessage(chat: ChatState, messageId: number): SentMessage {
    const msg = this.findSent(chat.id, messageId);
    if (msg && !msg.deleted) return msg;
    if (chat.log.some((e) => e.from === 'user' && e.message_id === messageId)) {
      throw withChat(badRequest("message can't be edited"), chat.id);
    }
    throw withChat(badRequest('message to edit not found'), chat.id);
  }

  private applyEdit(method: string, chat: ChatState, msg: SentMessage, next: MessageVersion, p: Params): Record<string, unknown> {
    const current: MessageVersion = { text: msg.text, caption: msg.caption, entities: msg.entities, reply_markup: msg.reply_markup };
    const inline = (m?: ReplyMarkup): unknown => (m?.inline_keyboard ? m : undefined);
    if (
      current.text === next.text &&
      current.caption === next.caption &&
      sameJson(current.entities, next.entities) &&
      sameJson(inline(current.reply_markup), inline(next.reply_markup))
    ) {
      throw withChat(badRequest(NOT_MODIFIED), chat.id);
    }
    this.checkCanSend(chat);
    const now = this.clock();
    msg.edits.push({ method, at: now, previous: current });
    msg.text = next.text;
    msg.caption = next.caption;
    msg.entities = next.entities;
    msg.reply_markup = next.reply_markup;
    if (method !== 'editMessageReplyMarkup' && p.has('parse_mode')) msg.parse_mode = p.str('parse_mode');
    if (method === 'editMessageText') msg.link_preview_options = this.linkPreviewOptions(p);
    msg.edit_date = Math.floor(now / 1000);
    this.changed();
    return this.messageJson(msg);
  }

  private parseText(raw: string, parseMode: string | undefined, p: Params, entitiesField: string): FormattedText {
    if (parseMode !== undefined && parseMode !== '' && parseMode.toLowerCase() !== 'none') {
      try {
        return parseMarkup(raw, parseMode);
      } catch (e) {
        if (e instanceof MarkupError) throw badRequest(`can't parse entities: ${e.message}`);
        throw badRequest('unsupported parse_mode');
      }
    }
    const given = p.json(entitiesField, `can't parse ${entitiesField} JSON object`);
    if (given === undefined) return { text: raw, entities: [] };
    if (!Array.isArray(given)) throw badRequest(`can't parse ${entitiesField} JSON object`);
    const entities = given.map((e: unknown): FakeEntity => {
      const o = (typeof e === 'object' && e !== null ? e : {}) as Record<string, unknown>;
      if (typeof o.type !== 'string' || !Number.isInteger(o.offset) || !Number.isInteger(o.length)) {
        throw badRequest(`can't parse ${entitiesField} JSON object`);
      }
      const entity: FakeEntity = { type: o.type, offset: o.offset as number, length: o.length as number };
      if (typeof o.url === 'string') entity.url = o.url;
      if (typeof o.language === 'string') entity.language = o.language;
      if (typeof o.custom_emoji_id === 'string') entity.custom_emoji_id = o.custom_emoji_id;
      if (entity.type === 'text_link') {
        const url = checkedLink(entity.url ?? '');
        if (url === '') throw badRequest(`can't parse entities: Wrong HTTP URL`);
        entity.url = url;
      }
      return entity;
    });
    return { text: raw, entities: sortEntities(entities) };
  }

  /** Telegram's server-side clean-up; an all-blank text is refused, an all-blank caption is dropped. */
  private finishText(parsed: FormattedText, allowEmpty: boolean): FormattedText {
    const fixed = fixFormattedText(parsed);
    if (!fixed) {
      if (allowEmpty) return { text: '', entities: [] };
      throw badRequest('message text is empty');
    }
    return this.detectEntities ? addDetectedEntities(fixed) : fixed;
  }

  private parseReplyMarkup(p: Params): ReplyMarkup | undefined {
    const error = "can't parse reply keyboard markup JSON object";
    const markup = p.json('reply_markup', error);
    if (markup === undefined) return undefined;
    if (typeof markup !== 'object' || markup === null || Array.isArray(markup)) throw badRequest(error);
    const m = markup as ReplyMarkup;
    if ('inline_keyboard' in m) {
      const rows = m.inline_keyboard as unknown;
      if (!Array.isArray(rows) || rows.some((r) => !Array.isArray(r))) {
        throw badRequest('field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays');
      }
      for (const button of (rows as unknown[][]).flat()) checkInlineButton(button);
    }
    return m;
  }

  private linkPreviewOptions(p: Params): Record<string, unknown> | undefined {
    const options = p.json('link_preview_options', "can't parse link preview options JSON object");
    if (typeof options === 'object' && options !== null && !Array.isArray(options)) return options as Record<string, unknown>;
    if (p.bool('disable_web_page_preview')) return { is_disabled: true };
    return undefined;
  }

  private photoParam(p: Params): UploadedFile | StoredFile {
    const value = p.raw('photo');
    if (isUploadedFile(value)) return value;
    if (typeof value !== 'string' || value === '') throw badRequest('there is no photo in the request');
    const attach = /^attach:\/\/(.+)$/.exec(value);
    if (attach) {
      const part = p.raw(attach[1] ?? '');
      if (!isUploadedFile(part)) throw badRequest('there is no photo in the request');
      return part;
    }
    const stored = this.files.get(value);
    if (stored) return stored;
    throw badRequest('wrong file identifier/HTTP URL specified');
  }

  private storePhoto(upload: UploadedFile, info: ImageInfo): StoredFile {
    const n = this.files.size + 1;
    const file: StoredFile = {
      file_id: `AgACAgIAAxkDAAI${randomBytes(24).toString('base64url')}`,
      file_unique_id: `AQAD${randomBytes(9).toString('base64url')}`,
      data: Buffer.from(upload.data),
      width: info.width,
      height: info.height,
      format: info.format,
      file_path: `photos/file_${n}.${info.format === 'png' ? 'png' : 'jpg'}`,
    };
    this.files.set(file.file_id, file);
    return file;
  }

  /** Blocked chats and flood limits, checked last, as Telegram's servers do at send time. */
  private checkRefusals(method: 'sendMessage' | 'sendPhoto', chat: ChatState, text: string): void {
    const rule = this.refusals.find((r) => (r.methods ?? ['sendMessage', 'sendPhoto']).includes(method) && text.includes(r.textIncludes));
    if (rule) throw withChat(new ApiError(rule.error_code, rule.description), chat.id);
  }

  private checkCanSend(chat: ChatState): void {
    if (chat.migratedTo !== undefined) {
      throw withChat(new ApiError(400, 'Bad Request: group chat was upgraded to a supergroup chat', { migrate_to_chat_id: chat.migratedTo }), chat.id);
    }
    if (chat.blocked) throw withChat(new ApiError(403, 'Forbidden: bot was blocked by the user'), chat.id);
    if (chat.group?.botRemoved) throw withChat(new ApiError(403, 'Forbidden: bot was kicked from the group chat'), chat.id);
    const now = this.clock();
    if (this.botLimit) {
      const { perWindow, windowMs } = this.botLimit;
      if (this.botRefusedUntil > now) {
        throw withChat(tooManyRequests(Math.max(1, Math.ceil((this.botRefusedUntil - now) / 1000))), chat.id);
      }
      this.botSends = this.botSends.filter((t) => t > now - windowMs);
      const oldest = this.botSends[0];
      if (this.botSends.length >= perWindow && oldest !== undefined) {
        const retryAfter = Math.max(1, Math.ceil((oldest + windowMs - now) / 1000));
        this.botRefusedUntil = now + retryAfter * 1000;
        throw withChat(tooManyRequests(retryAfter), chat.id);
      }
    }
    if (this.chatLimit) {
      const { burst, perSecond } = this.chatLimit;
      const bucket = chat.bucket;
      bucket.tokens = Math.min(burst, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * perSecond);
      bucket.at = now;
      if (bucket.tokens < 1) {
        throw withChat(tooManyRequests(Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond))), chat.id);
      }
      bucket.tokens -= 1;
    }
    if (chat.group && this.groupLimit) {
      const { perWindow, windowMs } = this.groupLimit;
      const g = chat.group;
      g.sends = g.sends.filter((t) => t > now - windowMs);
      const oldest = g.sends[0];
      if (g.sends.length >= perWindow && oldest !== undefined) {
        throw withChat(tooManyRequests(Math.max(1, Math.ceil((oldest + windowMs - now) / 1000))), chat.id);
      }
      g.sends.push(now);
    }
    if (this.botLimit) this.botSends.push(now);
  }

  private record(chat: ChatState, msg: SentMessage): Record<string, unknown> {
    this.sent.push(msg);
    chat.log.push({ seq: ++this.seq, from: 'bot', chat_id: chat.id, message_id: msg.message_id, message: this.messageJson(msg), sent: msg });
    this.changed();
    return this.messageJson(msg);
  }

  /**
   * The message `reply_parameters` (or the older `reply_to_message_id`) points at. Like
   * Telegram: a missing one is a 400 unless `allow_sending_without_reply` is set.
   */
  private replyTarget(p: Params, chatId: number): number | undefined {
    const params = p.json('reply_parameters', "can't parse reply parameters JSON object") as { message_id?: unknown; allow_sending_without_reply?: unknown } | undefined;
    const legacy = p.raw('reply_to_message_id');
    const id = Number(params?.message_id ?? legacy ?? NaN);
    if (!Number.isSafeInteger(id)) return undefined;
    const target = this.findSent(chatId, id);
    if (target && !target.deleted) return id;
    if (params?.allow_sending_without_reply === true || p.bool('allow_sending_without_reply')) return undefined;
    throw badRequest('message to be replied not found');
  }

  private findSent(chatId: number, messageId: number): SentMessage | undefined {
    return this.sent.find((m) => m.chat_id === chatId && m.message_id === messageId);
  }

  private scopeOf(p: Params): Record<string, unknown> {
    const scope = p.json('scope', "can't parse BotCommandScope JSON object");
    return typeof scope === 'object' && scope !== null ? (scope as Record<string, unknown>) : { type: 'default' };
  }

  private static commandKey(scope: Record<string, unknown>, languageCode: string): string {
    const sorted = Object.fromEntries(Object.entries(scope).sort(([a], [b]) => a.localeCompare(b)));
    return `${JSON.stringify(sorted)}|${languageCode}`;
  }

  private changed(): void {
    this.version++;
    for (const w of [...this.waiters]) w();
  }

  // ---- Telegram objects ------------------------------------------------------------------

  private userJson(chat: ChatState): Record<string, unknown> {
    const user: Record<string, unknown> = { id: chat.id, is_bot: false, first_name: chat.first_name };
    if (chat.last_name !== undefined) user.last_name = chat.last_name;
    if (chat.username !== undefined) user.username = chat.username;
    user.language_code = 'en';
    return user;
  }

  private chatJson(chat: ChatState): Record<string, unknown> {
    if (chat.group) return { id: chat.id, title: chat.group.title, type: chat.group.channel ? 'channel' : 'group' };
    const out: Record<string, unknown> = { id: chat.id, first_name: chat.first_name };
    if (chat.last_name !== undefined) out.last_name = chat.last_name;
    if (chat.username !== undefined) out.username = chat.username;
    out.type = 'private';
    return out;
  }

  /** A stored message as Telegram's Message object. */
  messageJson(msg: SentMessage): Record<string, unknown> {
    const chat = this.chats.get(msg.chat_id);
    const out: Record<string, unknown> = {
      message_id: msg.message_id,
      from: { id: this.botInfo.id, is_bot: true, first_name: this.botInfo.first_name, username: this.botInfo.username },
      chat: chat ? this.chatJson(chat) : { id: msg.chat_id, type: 'private' },
      date: msg.date,
    };
    if (msg.edit_date !== undefined) out.edit_date = msg.edit_date;
    if (msg.kind === 'text') {
      out.text = msg.text;
      if (msg.entities.length > 0) out.entities = msg.entities;
      if (msg.link_preview_options) out.link_preview_options = msg.link_preview_options;
    } else {
      const file = msg.photo_file_id !== undefined ? this.files.get(msg.photo_file_id) : undefined;
      if (file) {
        out.photo = [{ file_id: file.file_id, file_unique_id: file.file_unique_id, file_size: file.data.length, width: file.width, height: file.height }];
      }
      if (msg.caption) out.caption = msg.caption;
      if (msg.entities.length > 0) out.caption_entities = msg.entities;
    }
    if (msg.reply_markup?.inline_keyboard) out.reply_markup = { inline_keyboard: msg.reply_markup.inline_keyboard };
    if (msg.reply_to_message_id !== undefined) {
      const target = this.findSent(msg.chat_id, msg.reply_to_message_id);
      if (target) out.reply_to_message = { message_id: target.message_id, chat: out.chat, date: target.date };
    }
    return out;
  }

  // ---- HTTP control API ------------------------------------------------------------------
  //
  //   GET  /__control/state                         token, apiRoot, bot, chats, pending updates
  //   POST /__control/chats/:id                     {username?, first_name?, last_name?}: register
  //   POST /__control/chats/:id/block | /unblock
  //   POST /__control/chats/:id/messages            {text}: the user writes; -> the update
  //   POST /__control/chats/:id/press               {message_id, data}: -> {callback_query_id}
  //   GET  /__control/chats/:id/messages            messages the bot sent to the chat
  //   GET  /__control/chats/:id/transcript?since=V&wait=SECONDS   both sides; waits until the fake's
  //                                                 change version passes V (long poll for a chat page)
  //   GET  /__control/messages                      every message the bot sent
  //   GET  /__control/files/:file_id                a photo's bytes
  //   PUT  /__control/fault                         a Fault as JSON, or null
  //   GET  /__control/stats | /callback-answers | /commands | /errors

  private async handleControl(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname.slice('/__control'.length);
    const method = req.method ?? 'GET';
    const fail = (status: number, error: string): void => this.writeJson(res, status, { error });
    let body: Record<string, unknown> = {};
    let rawBody: unknown = undefined;
    if (method !== 'GET' && method !== 'HEAD') {
      const buf = await readBody(req).catch(() => Buffer.alloc(0));
      if (buf.length > 0) {
        try {
          rawBody = JSON.parse(buf.toString('utf8')) as unknown;
        } catch {
          fail(400, 'The body must be JSON.');
          return;
        }
        if (typeof rawBody === 'object' && rawBody !== null && !Array.isArray(rawBody)) body = rawBody as Record<string, unknown>;
      }
    }
    try {
      const chatMatch = /^\/chats\/(-?\d+)(?:\/([a-z-]+))?$/.exec(path);
      if (chatMatch) {
        const chatId = Number(chatMatch[1]);
        const action = chatMatch[2] ?? '';
        if (method === 'POST' && action === '') {
          this.registerChat(chatId, {
            username: typeof body.username === 'string' ? body.username : undefined,
            first_name: typeof body.first_name === 'string' ? body.first_name : undefined,
            last_name: typeof body.last_name === 'string' ? body.last_name : undefined,
          });
          this.writeJson(res, 200, { ok: true });
          return;
        }
        if (method === 'POST' && (action === 'block' || action === 'unblock')) {
          if (action === 'block') this.blockChat(chatId);
          else this.unblockChat(chatId);
          this.writeJson(res, 200, { ok: true });
          return;
        }
        if (method === 'POST' && action === 'messages') {
          if (typeof body.text !== 'string' || body.text === '') return fail(400, 'Send {"text": "..."}.');
          this.writeJson(res, 200, { ok: true, update: this.sendUserMessage(chatId, body.text) });
          return;
        }
        if (method === 'POST' && action === 'press') {
          if (typeof body.message_id !== 'number' || typeof body.data !== 'string') {
            return fail(400, 'Send {"message_id": <number>, "data": "..."}.');
          }
          this.writeJson(res, 200, { ok: true, callback_query_id: this.pressButton(chatId, body.message_id, body.data) });
          return;
        }
        if (method === 'GET' && action === 'messages') {
          this.writeJson(res, 200, { messages: this.sentMessages(chatId).map((m) => this.sentJson(m)) });
          return;
        }
        if (method === 'GET' && action === 'transcript') {
          const since = Number(url.searchParams.get('since') ?? '0');
          const wait = Math.min(60, Number(url.searchParams.get('wait') ?? '0'));
          if (this.version <= since && wait > 0) {
            await this.waitFor(() => (this.version > since ? true : undefined), wait * 1000).catch(() => undefined);
          }
          const entries = this.transcript(chatId).map((e) => ({
            seq: e.seq,
            from: e.from,
            message_id: e.message_id,
            message: e.sent ? this.sentJson(e.sent) : e.message,
          }));
          this.writeJson(res, 200, { version: this.version, entries });
          return;
        }
        return fail(404, 'No such control endpoint.');
      }
      if (method === 'GET' && path === '/state') {
        this.writeJson(res, 200, {
          token: this.token,
          apiRoot: this.apiRoot,
          bot: this.botInfo,
          chats: [...this.chats.values()].map((c) => ({ ...this.chatJson(c), blocked: c.blocked })),
          pending_updates: this.updates.length,
          fault: this.currentFault,
        });
        return;
      }
      if (method === 'GET' && path === '/messages') {
        this.writeJson(res, 200, { messages: this.sent.map((m) => this.sentJson(m)) });
        return;
      }
      const fileMatch = /^\/files\/([^/]+)$/.exec(path);
      if (method === 'GET' && fileMatch) {
        const file = this.files.get(decodeURIComponent(fileMatch[1] ?? ''));
        if (!file) return fail(404, 'No such file.');
        res.writeHead(200, { 'content-type': file.format === 'png' ? 'image/png' : 'image/jpeg', 'content-length': file.data.length });
        res.end(file.data);
        return;
      }
      if ((method === 'PUT' || method === 'POST') && path === '/fault') {
        this.setFault(rawBody === undefined ? null : (rawBody as Fault | null));
        this.writeJson(res, 200, { ok: true, fault: this.currentFault });
        return;
      }
      if (method === 'GET' && path === '/stats') return this.writeJson(res, 200, this.stats);
      if (method === 'GET' && path === '/callback-answers') return this.writeJson(res, 200, { answers: this.callbackAnswers });
      if (method === 'GET' && path === '/commands') return this.writeJson(res, 200, { commands: this.commands });
      if (method === 'GET' && path === '/errors') return this.writeJson(res, 200, { errors: this.errors });
      return fail(404, 'No such control endpoint.');
    } catch (e) {
      fail(400, e instanceof Error ? e.message : String(e));
    }
  }

  /** A SentMessage as JSON for the control API: photo bytes become a URL. */
  private sentJson(m: SentMessage): Record<string, unknown> {
    const { photo, ...rest } = m;
    return photo ? { ...rest, photo: { file_id: m.photo_file_id, size: photo.length, url: `/__control/files/${encodeURIComponent(m.photo_file_id ?? '')}` } } : rest;
  }
}

/** Telegram's checks on an uploaded photo: a real PNG or JPEG of sane dimensions. */
function checkImage(upload: UploadedFile): ImageInfo {
  if (upload.data.length === 0) throw badRequest('file must be non-empty');
  const info = sniffImage(upload.data);
  if (!info) throw badRequest('IMAGE_PROCESS_FAILED');
  const { width, height } = info;
  if (width === 0 || height === 0 || width + height > 10000 || Math.max(width / height, height / width) > 20) {
    throw badRequest('PHOTO_INVALID_DIMENSIONS');
  }
  return info;
}

function withChat(e: ApiError, chatId: number | undefined): ApiError {
  if (chatId !== undefined) (e as ApiError & { chatId?: number }).chatId = chatId;
  return e;
}

function chatIdOf(e: ApiError): number | undefined {
  return (e as ApiError & { chatId?: number }).chatId;
}

const BUTTON_ACTIONS = [
  'callback_data', 'url', 'web_app', 'login_url', 'switch_inline_query', 'switch_inline_query_current_chat',
  'switch_inline_query_chosen_chat', 'copy_text', 'callback_game', 'pay',
];

function checkInlineButton(button: unknown): void {
  if (typeof button !== 'object' || button === null || Array.isArray(button)) {
    throw badRequest("can't parse inline keyboard button: InlineKeyboardButton must be an Object");
  }
  const b = button as Record<string, unknown>;
  if (typeof b.text !== 'string') throw badRequest(`can't parse inline keyboard button: Field "text" must be of type String`);
  if (!BUTTON_ACTIONS.some((k) => b[k] !== undefined)) {
    throw badRequest("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard");
  }
  if (b.callback_data !== undefined) {
    const size = typeof b.callback_data === 'string' ? Buffer.byteLength(b.callback_data) : 0;
    if (size < 1 || size > 64) throw badRequest('BUTTON_DATA_INVALID');
  }
  if (b.url !== undefined) {
    const url = typeof b.url === 'string' ? b.url : '';
    if (checkedLink(url) === '') throw badRequest(`inline keyboard button URL '${url}' is invalid: Wrong HTTP URL`);
  }
}

/** Starts a fake Telegram Bot API server on a free local port. */
export function startFakeTelegram(opts?: FakeTelegramOptions): Promise<FakeTelegram> {
  return FakeTelegram.start(opts);
}
