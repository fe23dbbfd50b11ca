/**
 * Test support for the bot service as a real process: `bin/notify-bot.js` started against a
 * fake Telegram in a fresh temporary directory, with users linked directly in
 * `telegram_users.json`, a SendClient on its socket, its log lines collected, and the
 * means to kill it (SIGKILL), restart it, run its operator commands and check what
 * Telegram received.
 *
 *   const h = await BotHarness.start({ users: 20 });
 *   try {
 *     await h.client.send({ user: h.users[0]!.name, message: 'hello' }, 'respond-async');
 *     await h.fake.waitForMessages(h.users[0]!.chatId, 1);
 *   } finally {
 *     await h.cleanup();
 *   }
 *
 * Defaults: Telegram's own limits in the fake (30 messages/s per bot, burst 3 then 1/s per
 * chat) and the bot's default pacing; fast timers (`FAST_ENV`: 100 ms first retry, 1 s
 * longest retry delay, 200 ms outbox rescan, 1 s long polling). Anything can be overridden
 * with `env` (`undefined` removes a variable) and `fake`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { deflateSync, crc32 } from 'node:zlib';
import { readJournal } from '../../src/bot/delivery/journal.js';
import { LinkStore } from '../../src/shared/linking.js';
import { SendClient, unixRequest, type UnixResponse } from '../../src/shared/sendClient.js';
import { startFakeTelegram, type FakeTelegram, type FakeTelegramOptions, type SentMessage } from '../../src/fake-telegram/fakeTelegram.js';

/** The project's root (where `bin/` is), whether run from dist/ or not. */
export const PROJECT_ROOT = process.env.NOTIFY_PROJECT_ROOT ?? new URL('../../../', import.meta.url).pathname;
/** The bot's launcher. */
export const BOT_BIN = join(PROJECT_ROOT, 'bin', 'notify-bot.js');

/**
 * Node flags the launcher asks for on its `#!/usr/bin/env -S node <flags>` line: the harness
 * starts `node <flags> bin/notify-bot.js`, so tests and benchmarks run the bot as
 * `npx notify-bot` and the service unit do.
 */
export function launcherNodeArgs(bin = BOT_BIN): string[] {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\S*env\s+(?:-S\s+)?node((?:\s+-\S+)*)\s*$/.exec(first);
  return m?.[1]?.trim().split(/\s+/).filter((a) => a !== '') ?? [];
}

/** Test-speed settings every harness starts with (overridable through `env`). */
export const FAST_ENV: Readonly<Record<string, string>> = {
  NOTIFY_POLL_TIMEOUT: '1',
  NOTIFY_RETRY_BASE: '100ms',
  NOTIFY_RETRY_MAX_DELAY: '1s',
  NOTIFY_OUTBOX_RESCAN: '200ms',
  NOTIFY_GATEWAY_TIMEOUT: '200ms',
  NOTIFY_TELEGRAM_TIMEOUT: '30',
};

/** A user linked to a Telegram chat. */
export interface LinkedUser {
  name: string;
  chatId: number;
}

/** One line the bot printed: its parsed JSON (pino), plus which run of the bot printed it. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number; run: number };

/** Options of BotHarness.start. */
export interface BotHarnessOptions {
  /** Options of the fake Telegram (default: Telegram's limits). */
  fake?: FakeTelegramOptions;
  /** Users to link: a count (names `u1`..`uN`, chat ids 100001..) or explicit names. Default 1. */
  users?: number | readonly string[];
  /** First chat id (default 100001). */
  firstChatId?: number;
  /** Environment of the bot on top of FAST_ENV; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** Start the bot process right away (default true). */
  start?: boolean;
  /** Prefix of the temporary directory. */
  prefix?: string;
  /** How long the bot may take to answer /health (default 60 s: a bound for a hang; a loaded machine took over 15 s). */
  startTimeoutMs?: number;
  /** Extra node flags for the bot process (e.g. `--cpu-prof`), after those of the launcher's `#!` line. */
  nodeArgs?: readonly string[];
}

/** What a finished command printed. */
export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The bot process, a fake Telegram and a temporary directory, torn down by cleanup(). */
export class BotHarness {
  /** The temporary directory holding everything below. */
  readonly dir: string;
  /** NOTIFY_DATA_DIR. */
  readonly dataDir: string;
  /** NOTIFY_SOCKET. */
  readonly socketPath: string;
  readonly queueDir: string;
  readonly deadDir: string;
  /** The linked users, in order. */
  readonly users: LinkedUser[] = [];
  /** Talks to the send API (as the test's own user, root: trusted). */
  readonly client: SendClient;
  readonly links: LinkStore;
  /** Every JSON line the bot printed on stdout, across restarts. */
  readonly logs: LogLine[] = [];
  /** Everything else the bot printed (stderr and non-JSON stdout). */
  readonly otherOutput: string[] = [];
  /** The running bot process (null when stopped). */
  proc: ChildProcess | null = null;
  /** How many times the bot was started. */
  runs = 0;
  private exited: Promise<number | null> = Promise.resolve(null);
  private readonly extraEnv: Record<string, string | undefined>;
  private readonly startTimeoutMs: number;
  private readonly nodeArgs: readonly string[];
  private logWaiters = new Set<() => void>();
  private cleaned = false;

  private constructor(
    readonly fake: FakeTelegram,
    dir: string,
    opts: BotHarnessOptions,
  ) {
    this.dir = dir;
    this.dataDir = join(dir, 'data');
    this.socketPath = join(dir, 'run', 'bot.sock');
    this.queueDir = join(this.dataDir, 'outbox', 'queue');
    this.deadDir = join(this.dataDir, 'outbox', 'dead');
    this.client = new SendClient(this.socketPath, 60_000);
    this.links = new LinkStore(this.dataDir);
    this.extraEnv = opts.env ?? {};
    this.startTimeoutMs = opts.startTimeoutMs ?? 60_000;
    this.nodeArgs = [...launcherNodeArgs(), ...(opts.nodeArgs ?? [])];
  }

  /** Starts a fake Telegram, links the users and (unless `start: false`) starts the bot. */
  static async start(opts: BotHarnessOptions = {}): Promise<BotHarness> {
    const dir = mkdtempSync(join(tmpdir(), opts.prefix ?? 'notify-bot-'));
    const fake = await startFakeTelegram(opts.fake);
    const h = new BotHarness(fake, dir, opts);
    try {
      mkdirSync(h.dataDir, { recursive: true, mode: 0o770 });
      const names = typeof opts.users === 'number' || opts.users === undefined ? Array.from({ length: opts.users ?? 1 }, (_, i) => `u${i + 1}`) : [...opts.users];
      const first = opts.firstChatId ?? 100_001;
      for (const [i, name] of names.entries()) await h.link(name, first + i);
      if (opts.start !== false) await h.startBot();
      return h;
    } catch (err) {
      await h.cleanup();
      throw err;
    }
  }

  /** Links `name` to `chatId` (in telegram_users.json and in the fake) and adds it to `users`. */
  async link(name: string, chatId: number): Promise<LinkedUser> {
    await this.links.linkChat(name, chatId);
    this.fake.registerChat(chatId, { first_name: name });
    const user = { name, chatId };
    this.users.push(user);
    return user;
  }

  /** The environment the bot runs with (also right for `notify-bot queue ...`). */
  env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    // Nothing of the caller's NOTIFY_* / TELEGRAM_* settings leaks into the bot.
    // (NOTIFY_LOG_LEVEL=debug does pass, for debugging a test.)
    for (const [k, v] of Object.entries(process.env)) if (!/^(NOTIFY_|TELEGRAM_)/.test(k) || k === 'NOTIFY_PROJECT_ROOT' || k === 'NOTIFY_LOG_LEVEL') env[k] = v;
    Object.assign(env, {
      TELEGRAM_BOT_TOKEN: this.fake.token,
      TELEGRAM_API_ROOT: this.fake.apiRoot,
      NOTIFY_DATA_DIR: this.dataDir,
      NOTIFY_SOCKET: this.socketPath,
      NOTIFY_GATEWAY_SOCKET: join(this.dir, 'run', 'no-gateway.sock'),
      ...FAST_ENV,
    });
    for (const [k, v] of Object.entries(this.extraEnv)) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    return env;
  }

  /** Starts the bot process and waits until its send API answers /health. */
  async startBot(): Promise<void> {
    if (this.proc) throw new Error('the bot is already running');
    this.runs += 1;
    const run = this.runs;
    const proc = spawn(process.execPath, [...this.nodeArgs, BOT_BIN], { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
    void this.exited.then(() => {
      if (this.proc === proc) this.proc = null;
      this.wakeLogWaiters();
    });
    createInterface({ input: proc.stdout }).on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        this.logs.push({ ...parsed, run });
      } catch {
        this.otherOutput.push(line);
      }
      this.wakeLogWaiters();
    });
    createInterface({ input: proc.stderr }).on('line', (line) => this.otherOutput.push(line));
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      if (this.proc !== proc) {
        throw new Error(`notify-bot exited while starting:\n${this.otherOutput.slice(-20).join('\n')}\n${this.logTail(10)}`);
      }
      try {
        const res = await unixRequest(this.socketPath, 'GET', '/health', { timeoutMs: 2000 });
        if (res.status === 200) return;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`notify-bot did not answer /health within ${this.startTimeoutMs} ms:\n${this.otherOutput.slice(-20).join('\n')}\n${this.logTail(10)}`);
      }
      await sleep(50);
    }
  }

  /** The bot's pid (throws when it is not running). */
  get pid(): number {
    const pid = this.proc?.pid;
    if (pid === undefined) throw new Error('the bot is not running');
    return pid;
  }

  /** Sends a signal (default SIGKILL) and waits for the process to exit; returns its exit code (-1 = signal). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const proc = this.proc;
    if (!proc) return null;
    proc.kill(signal);
    const code = await this.exited;
    this.proc = null;
    return code;
  }

  /** Stops the bot gracefully (SIGTERM), killing it if it takes longer than timeoutMs. */
  async stopBot(timeoutMs = 30_000): Promise<number | null> {
    const proc = this.proc;
    if (!proc) return null;
    proc.kill('SIGTERM');
    const code = await Promise.race([this.exited, sleep(timeoutMs).then(() => 'timeout' as const)]);
    if (code === 'timeout') return this.kill('SIGKILL');
    this.proc = null;
    return code;
  }

  /** Kills the bot with SIGKILL and starts it again. */
  async restart(): Promise<void> {
    await this.kill('SIGKILL');
    await this.startBot();
  }

  /** Runs `notify-bot <args>` (e.g. `queue list`) with the bot's environment (plus `env`). */
  cli(args: readonly string[], timeoutMs = 60_000, env: Record<string, string> = {}): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BOT_BIN, ...args], { env: { ...this.env(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`notify-bot ${args.join(' ')} did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      child.once('error', reject);
      child.once('close', (status) => {
        clearTimeout(timer);
        resolve({ status, stdout, stderr });
      });
    });
  }

  /** GET /health. */
  health(): Promise<UnixResponse> {
    return this.client.health();
  }

  /** An HTTP request on the send socket with a raw body (for malformed input). */
  raw(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<UnixResponse> {
    return unixRequest(this.socketPath, method, path, { body, headers, timeoutMs: 30_000 });
  }

  /** Ids of the notifications queued (in the outbox journal, or re-queued and not yet taken). */
  queuedIds(): string[] {
    return this.queuedRecords().map((r) => r.id);
  }

  /** Ids of the records in outbox/dead. */
  deadIds(): string[] {
    return listJson(this.deadDir);
  }

  /** The queued records as they are on disk, parsed (read the way `notify-bot queue pending` reads them). */
  queuedRecords(): Array<Record<string, unknown> & { id: string }> {
    type Rec = Record<string, unknown> & { id: string };
    const out = [...readJournal(join(this.dataDir, 'outbox', 'journal')).entries.values()].map((json) => JSON.parse(json) as Rec);
    const ids = new Set(out.map((r) => r.id));
    for (const id of listJson(this.queueDir)) {
      if (ids.has(id)) continue;
      try {
        out.push(JSON.parse(readFileSync(join(this.queueDir, `${id}.json`), 'utf8')) as Rec);
      } catch {
        // Taken into the journal meanwhile.
      }
    }
    return out;
  }

  /** The lines of deliveries.jsonl, parsed. */
  outcomes(): Array<{ id: string; user: string; status: string; at: string; detail?: string }> {
    const path = join(this.dataDir, 'deliveries.jsonl');
    if (!existsSync(path)) return [];
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as { id: string; user: string; status: string; at: string; detail?: string }];
        } catch {
          return [];
        }
      });
  }

  /** The bot's resident memory in kB (VmRSS), or null when it is not running. */
  rssKb(): number | null {
    const pid = this.proc?.pid;
    if (pid === undefined) return null;
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  }

  private wakeLogWaiters(): void {
    for (const w of [...this.logWaiters]) w();
  }

  /** Resolves with the first log line (from now on or already printed) matching `match`. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs = 60_000, what = 'a matching log line'): Promise<LogLine> {
    const found = this.logs.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = this.logs.find(match);
        if (hit) {
          finish();
          resolve(hit);
        }
      };
      const finish = (): void => {
        clearTimeout(timer);
        this.logWaiters.delete(check);
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`waited ${timeoutMs} ms for ${what}; last lines:\n${this.logTail(15)}`));
      }, timeoutMs);
      this.logWaiters.add(check);
    });
  }

  /** The last n log lines, for failure messages. */
  logTail(n = 20): string {
    return this.logs
      .slice(-n)
      .map((l) => `  [run ${l.run}] ${String(l.msg ?? '')} ${JSON.stringify(Object.fromEntries(Object.entries(l).filter(([k]) => !['msg', 'time', 'pid', 'hostname', 'name', 'run', 'level'].includes(k))))}`)
      .join('\n');
  }

  /** Polls `check` (every 25 ms) until it returns (or resolves to) something other than undefined/false. */
  async waitUntil<T>(check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, describe: () => string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await check();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`${describe()}\nBot log tail:\n${this.logTail(10)}`);
      await sleep(25);
    }
  }

  /** Waits until every chat in `expected` holds at least as many messages as expected texts. */
  async waitForDelivery(expected: ReadonlyMap<number, readonly string[]>, timeoutMs: number): Promise<void> {
    await this.waitUntil(
      () => [...expected].every(([chat, texts]) => this.fake.sentMessages(chat).length >= texts.length),
      timeoutMs,
      () => {
        const short = [...expected].filter(([chat, texts]) => this.fake.sentMessages(chat).length < texts.length);
        const total = [...expected].reduce((n, [, t]) => n + t.length, 0);
        const got = [...expected].reduce((n, [chat]) => n + this.fake.sentMessages(chat).length, 0);
        return `after ${timeoutMs} ms Telegram holds ${got} of ${total} expected messages; ${short.length} chat(s) short, e.g. chat ${short[0]?.[0]}: ${this.fake.sentMessages(short[0]?.[0] ?? 0).length}/${short[0]?.[1].length}; queue: ${this.queuedIds().length} file(s), dead: ${this.deadIds().length}`;
      },
    );
  }

  /** Stops the bot and the fake, removes the temporary directory. Safe to call twice. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    await this.kill('SIGKILL');
    await this.fake.close();
    if (process.env.NOTIFY_KEEP_TEST_DIRS) {
      // For a post-mortem: data/bot.log, data/outbox, data/deliveries.jsonl.
      process.stderr.write(`kept ${this.dir}\n`);
      return;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function listJson(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
      .map((n) => n.slice(0, -5));
  } catch {
    return [];
  }
}

/** The visible text of a message: its text, or a photo's caption. */
export function textOf(m: SentMessage): string {
  return (m.kind === 'text' ? m.text : m.caption) ?? '';
}

/** How what Telegram received compares with what was accepted, per chat. */
export interface DeliveryReport {
  expected: number;
  /** Accepted texts never received. */
  missing: string[];
  /** Extra copies received (a text received k times counts k-1). */
  duplicates: string[];
  /** Chats whose first copies are not in the accepted order. */
  outOfOrder: number[];
  /** Received texts nobody sent. */
  unexpected: string[];
}

/** Compares the messages of each chat with the texts accepted for it (in acceptance order). */
export function compareDelivery(fake: FakeTelegram, expected: ReadonlyMap<number, readonly string[]>): DeliveryReport {
  const report: DeliveryReport = { expected: 0, missing: [], duplicates: [], outOfOrder: [], unexpected: [] };
  for (const [chat, texts] of expected) {
    report.expected += texts.length;
    const wanted = new Set(texts);
    const seen = new Set<string>();
    const firsts: string[] = [];
    for (const m of fake.sentMessages(chat)) {
      const t = textOf(m);
      if (!wanted.has(t)) report.unexpected.push(`chat ${chat}: ${JSON.stringify(t.slice(0, 60))}`);
      else if (seen.has(t)) report.duplicates.push(t);
      else {
        seen.add(t);
        firsts.push(t);
      }
    }
    for (const t of texts) if (!seen.has(t)) report.missing.push(t);
    const order = texts.filter((t) => seen.has(t));
    if (order.some((t, i) => firsts[i] !== t)) report.outOfOrder.push(chat);
  }
  return report;
}

/** One line summing up a DeliveryReport, for assertion messages and diagnostics. */
export function describeReport(r: DeliveryReport): string {
  return `${r.expected - r.missing.length}/${r.expected} delivered, ${r.missing.length} missing${r.missing.length ? ` (e.g. ${r.missing.slice(0, 3).join(', ')})` : ''}, ${r.duplicates.length} duplicate(s)${r.duplicates.length ? ` (${r.duplicates.slice(0, 5).join(', ')})` : ''}, ${r.outOfOrder.length} chat(s) out of order${r.outOfOrder.length ? ` (${r.outOfOrder.slice(0, 5).join(', ')})` : ''}, ${r.unexpected.length} unexpected`;
}

/** Runs `task` over `items` with at most `concurrency` at once; results in input order. */
export async function runConcurrently<T, R>(items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      results[i] = await task(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return results;
}

/**
 * Sends a burst with at most `concurrency` requests in flight, keeping each user's messages
 * in order (a user's next message starts only after the previous one was answered), so the
 * order Telegram must show per chat is the order of `items`. `send` should not throw.
 */
export function sendInOrder<T extends { user: LinkedUser }, R>(items: readonly T[], concurrency: number, send: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  const pending = items.map((_, i) => i);
  const busy = new Set<string>();
  let running = 0;
  return new Promise((resolve, reject) => {
    const startMore = (): void => {
      if (pending.length === 0 && running === 0) {
        resolve(results);
        return;
      }
      for (let k = 0; k < pending.length && running < concurrency; ) {
        const i = pending[k]!;
        const item = items[i]!;
        if (busy.has(item.user.name)) {
          k++;
          continue;
        }
        pending.splice(k, 1);
        busy.add(item.user.name);
        running++;
        send(item, i)
          .then((r) => {
            results[i] = r;
          }, reject)
          .finally(() => {
            busy.delete(item.user.name);
            running--;
            startMore();
          });
      }
    };
    startMore();
  });
}

/** A message for each (user, k): `perUser` texts per user, interleaved across users as a burst would be. */
export function burst(users: readonly LinkedUser[], perUser: number, tag: string): Array<{ user: LinkedUser; text: string }> {
  const out: Array<{ user: LinkedUser; text: string }> = [];
  for (let k = 1; k <= perUser; k++) for (const user of users) out.push({ user, text: `${tag} ${user.name} #${k}` });
  return out;
}

/** Texts per chat, in the given order. */
export function expectedByChat(items: ReadonlyArray<{ user: LinkedUser; text: string }>): Map<number, string[]> {
  const m = new Map<number, string[]>();
  for (const { user, text } of items) {
    const list = m.get(user.chatId) ?? [];
    list.push(text);
    m.set(user.chatId, list);
  }
  return m;
}

/** A real PNG of width x height (RGB, one colour). */
export function pngBytes(width = 2, height = 1): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typed));
    return Buffer.concat([len, typed, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(width * 3, 0x80)]);
  const raw = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
