/**
 * The real bot service started in this process, against the fake Telegram, with a clock
 * the test can move forward (real time plus an offset, so pacing and timers still work)
 * and with analysts' scripts run from a temporary home through the real `notify-scripts`.
 */
import { helperCommand } from './helperCommand.js';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { readBotConfig } from '../../src/bot/config.js';
import { type RunningBot, startBotService } from '../../src/bot/service.js';
import { AlertRulesStore } from '../../src/shared/alertRules.js';
import { LinkStore } from '../../src/shared/linking.js';
import { SendClient } from '../../src/shared/sendClient.js';
import { type FakeTelegram, startFakeTelegram } from '../../src/fake-telegram/fakeTelegram.js';

/** The repository root (two levels above dist/test/support). */
export const repoRoot = join(new URL('.', import.meta.url).pathname, '..', '..', '..');

/** A clock at real time plus an offset the test moves. */
export interface OffsetClock {
  now(): number;
  advance(ms: number): void;
  /** Moves the clock so that now() is `ms`. */
  set(ms: number): void;
}

/** Real time plus an adjustable offset. */
export function offsetClock(): OffsetClock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance: (ms) => {
      offset += ms;
    },
    set: (ms) => {
      offset = ms - Date.now();
    },
  };
}

/** A running in-process bot and everything around it. */
export interface BotWorld {
  fake: FakeTelegram;
  bot: RunningBot;
  clock: OffsetClock;
  dir: string;
  dataDir: string;
  socketPath: string;
  /** The analyst's home (scripts go in home/user/notifications). */
  home: string;
  client: SendClient;
  links: LinkStore;
  rules: AlertRulesStore;
  logs: string[];
  /** Links `user` to `chatId` in the fake (registering the chat). */
  link(user: string, chatId: number): Promise<void>;
  /** Writes an analyst script into the home. */
  script(name: string, body: string): void;
  close(): Promise<void>;
}

/** Starts the world; `env` overrides bot settings; the scripts named in `hanging` (meant to hang) get a short timeout. */
export async function startBotWorld(env: Record<string, string> = {}, hanging: readonly string[] = []): Promise<BotWorld> {
  const fake = await startFakeTelegram();
  const dir = mkdtempSync(join(tmpdir(), 'notify-bot-'));
  const dataDir = join(dir, 'data');
  const home = join(dir, 'home');
  mkdirSync(join(home, 'user', 'notifications'), { recursive: true });
  const socketPath = join(dir, 'bot.sock');
  const clock = offsetClock();
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  const helperCmd = helperCommand(home, hanging);
  const cfg = readBotConfig({
    TELEGRAM_BOT_TOKEN: fake.token,
    TELEGRAM_API_ROOT: fake.apiRoot,
    NOTIFY_DATA_DIR: dataDir,
    NOTIFY_SOCKET: socketPath,
    NOTIFY_GATEWAY_SOCKET: join(dir, 'no-gateway.sock'),
    NOTIFY_POLL_TIMEOUT: '1',
    NOTIFY_DIGEST_CHECK: '100ms',
    NOTIFY_SCRIPTS_COMMAND: helperCmd,
    NOTIFY_SEND_WAIT: '3s',
    ...env,
  });
  const bot = await startBotService(cfg, log, clock);
  const links = new LinkStore(dataDir, clock);
  const world: BotWorld = {
    fake,
    bot,
    clock,
    dir,
    dataDir,
    socketPath,
    home,
    client: new SendClient(socketPath),
    links,
    rules: new AlertRulesStore(dataDir, clock),
    logs,
    async link(user, chatId) {
      fake.registerChat(chatId, { first_name: user });
      await links.linkChat(user, chatId);
    },
    script(name, body) {
      const p = join(home, 'user', 'notifications', name);
      writeFileSync(p, body);
      chmodSync(p, 0o755);
    },
    async close() {
      await bot.stop();
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return world;
}

/** A Python script printing one JSON object (after `extra` Python lines). */
export function pyScript(output: Record<string, unknown>, extra = ''): string {
  return `${extra}\nprint(${JSON.stringify(JSON.stringify(output))})\n`;
}
