/**
 * A fleet of notify-bot processes for tests and benchmarks: n replicas (real processes, each
 * with its own data directory and send socket) on one PostgreSQL database, all talking to
 * the first replica's fake Telegram, with users linked in the database.
 *
 *   const fleet = await startFleet(pg, { replicas: 2, users: 100 });
 *   try {
 *     const leader = await waitForLeader(fleet.replicas, 20_000);
 *     ...
 *   } finally {
 *     await fleet.cleanup();
 *   }
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LinkStore } from '../../src/shared/linking.js';
import { openSharedState } from '../../src/shared/sharedState.js';
import { BotHarness, type LinkedUser } from './botHarness.js';
import type { TestPostgres } from './postgres.js';

/** Options of startFleet. */
export interface FleetOptions {
  /** How many notify-bot replicas (default 2). */
  replicas?: number;
  /** Users to link in the database: a count (names `<userPrefix>1`...) or names; chat ids from firstChatId. */
  users?: number | readonly string[];
  userPrefix?: string;
  firstChatId?: number;
  /** Environment of every replica (on top of the harness's fast settings and the database URL). */
  env?: Record<string, string | undefined>;
  /** Prefix of the replicas' temporary directories. */
  prefix?: string;
  /** Instance names are `<instancePrefix>1`... (default `host-`). */
  instancePrefix?: string;
  /** An existing database (default: a fresh one on pg). */
  url?: string;
}

/** Running replicas, their database and users. */
export interface Fleet {
  readonly replicas: BotHarness[];
  readonly users: LinkedUser[];
  readonly url: string;
  /** Kills every replica and removes their directories. */
  cleanup(): Promise<void>;
}

/** Links `users` in the database at `url` (through a scratch data directory) and in the fake. */
export async function linkInDatabase(url: string, users: readonly LinkedUser[], register: (u: LinkedUser) => void): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'notify-fleet-links-'));
  const state = await openSharedState(scratch, url);
  try {
    const links = new LinkStore(scratch);
    for (const u of users) {
      await links.linkChat(u.name, u.chatId);
      register(u);
    }
  } finally {
    await state.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Starts `replicas` notify-bot processes on one database, sharing the first one's fake Telegram. */
export async function startFleet(pg: TestPostgres, opts: FleetOptions = {}): Promise<Fleet> {
  const url = opts.url ?? (await pg.createDatabase());
  const replicas: BotHarness[] = [];
  const cleanup = async (): Promise<void> => {
    for (const r of replicas) await r.cleanup();
  };
  try {
    const env = { NOTIFY_MAX_CONNECTIONS_PER_UID: '256', ...opts.env, NOTIFY_DATABASE_URL: url };
    const prefix = opts.instancePrefix ?? 'host-';
    const base = { users: [] as string[], start: false, ...(opts.prefix ? { prefix: opts.prefix } : {}) };
    const first = await BotHarness.start({ ...base, env: { ...env, NOTIFY_INSTANCE: `${prefix}1` } });
    replicas.push(first);
    for (let i = 2; i <= (opts.replicas ?? 2); i++) {
      replicas.push(await BotHarness.start({ ...base, env: { ...env, NOTIFY_INSTANCE: `${prefix}${i}`, TELEGRAM_API_ROOT: first.fake.apiRoot, TELEGRAM_BOT_TOKEN: first.fake.token } }));
    }
    const names = typeof opts.users === 'object' ? opts.users : Array.from({ length: opts.users ?? 0 }, (_, i) => `${opts.userPrefix ?? 'f'}${i + 1}`);
    const users = names.map((name, i) => ({ name, chatId: (opts.firstChatId ?? 200_001) + i }));
    await linkInDatabase(url, users, (u) => first.fake.registerChat(u.chatId, { first_name: u.name }));
    await Promise.all(replicas.map((r) => r.startBot()));
    return { replicas, users, url, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The role a replica's /health reports, or null when it is not running or does not answer. */
export async function roleOf(h: BotHarness): Promise<string | null> {
  if (!h.proc) return null;
  try {
    return ((await h.health()).body as { role?: string }).role ?? null;
  } catch {
    return null;
  }
}

/** The first replica whose /health says leader, polling every 50 ms for up to timeoutMs. */
export async function waitForLeader(replicas: readonly BotHarness[], timeoutMs: number): Promise<BotHarness> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const r of replicas) if ((await roleOf(r)) === 'leader') return r;
    if (Date.now() > deadline) throw new Error(`no replica took the Telegram lease within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Log lines saying Telegram saw two pollers at once (409), over every replica. */
export function pollConflicts(replicas: readonly BotHarness[]): number {
  return replicas.reduce((n, h) => n + h.logs.filter((l) => /409|another process polling/.test(String(l.msg))).length, 0);
}
