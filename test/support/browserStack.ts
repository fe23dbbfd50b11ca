/**
 * The whole linking stack on this machine for browser tests: a local OpenID Connect
 * provider, the fake Telegram, the real bot (`node bin/notify-bot.js`) with its send API on
 * a unix socket, and the dashboard listening on 127.0.0.1; plus Debian's chromium through
 * playwright-core. Everything lives in one temporary directory and stops on `close()`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page } from 'playwright-core';
import type { ScriptsHelper } from '../../src/scripts/client.js';
import { SendClient } from '../../src/shared/sendClient.js';
import { buildApp } from '../../src/web/app.js';
import { readWebConfig } from '../../src/web/config.js';
import { type FakeTelegram, startFakeTelegram } from '../../src/fake-telegram/fakeTelegram.js';
import { spawnGateway } from './gatewayHarness.js';
import { type TestOidcProvider, startOidcProvider } from './oidcProvider.js';

/** Debian's chromium. */
export const CHROMIUM = '/usr/bin/chromium';

/** The project root (this file runs from dist/test/support/). */
export const PROJECT_ROOT = process.env.NOTIFY_PROJECT_ROOT ?? fileURLToPath(new URL('../../../', import.meta.url));

/** Where screenshots go. */
export const ARTIFACTS = join(PROJECT_ROOT, 'test-artifacts');

/** A running stack. */
export interface BrowserStack {
  webUrl: string;
  dataDir: string;
  /** The bot's send API socket. */
  socketPath: string;
  /** Where the bot dispatches to the desktop gateway (nothing listens unless a test starts one). */
  gatewaySocket: string;
  /** DESKTOP_JWT_SECRET of the dashboard. */
  desktopSecret: string;
  provider: TestOidcProvider;
  telegram: FakeTelegram;
  app: FastifyInstance;
  browser: Browser;
  /** The bot's output so far (for failure messages). */
  botOutput(): string;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForBot(socketPath: string, bot: ChildProcess, output: () => string, timeoutMs = 60_000): Promise<void> {
  const client = new SendClient(socketPath, 1000);
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (bot.exitCode !== null) throw new Error(`the bot exited with ${bot.exitCode}:\n${output()}`);
    if (existsSync(socketPath)) {
      try {
        if ((await client.health()).status === 200) return;
      } catch {
        // Not listening yet.
      }
    }
    if (Date.now() > until) throw new Error(`the bot's send API did not come up within ${timeoutMs} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts provider, fake Telegram, bot, dashboard and chromium. */
export async function startBrowserStack(opts: { scriptsHelper?: ScriptsHelper } = {}): Promise<BrowserStack> {
  const dir = mkdtempSync(join(tmpdir(), 'browser-stack-'));
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o770 });
  mkdirSync(ARTIFACTS, { recursive: true });
  const socketPath = join(dir, 'bot.sock');
  const gatewaySocket = join(dir, 'gateway.sock');
  const desktopSecret = 'browser-test-desktop-secret-0123456789abcdef';
  const port = await freePort();
  const webUrl = `http://127.0.0.1:${port}`;

  const stops: Array<() => Promise<void>> = [];
  const close = async (): Promise<void> => {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch {
        // Keep stopping the rest.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const provider = await startOidcProvider({ redirectUris: [`${webUrl}/auth/callback`] });
    stops.push(() => provider.close());
    const telegram = await startFakeTelegram();
    stops.push(() => telegram.close());

    let output = '';
    const bot = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'notify-bot.js')], {
      cwd: dir,
      env: {
        ...process.env,
        TELEGRAM_BOT_TOKEN: telegram.token,
        TELEGRAM_API_ROOT: telegram.apiRoot,
        TELEGRAM_BOT_USERNAME: telegram.botInfo.username,
        NOTIFY_DATA_DIR: dataDir,
        NOTIFY_SOCKET: socketPath,
        NOTIFY_GATEWAY_SOCKET: gatewaySocket,
        NOTIFY_PUBLIC_URL: webUrl,
        NOTIFY_POLL_TIMEOUT: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    bot.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    bot.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    stops.push(
      () =>
        new Promise<void>((resolve) => {
          if (bot.exitCode !== null) return resolve();
          const timer = setTimeout(() => bot.kill('SIGKILL'), 5000);
          bot.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          bot.kill('SIGTERM');
        }),
    );
    await waitForBot(socketPath, bot, () => output);

    const config = readWebConfig({
      NOTIFY_DATA_DIR: dataDir,
      NOTIFY_SOCKET: socketPath,
      NOTIFY_PUBLIC_URL: webUrl,
      NOTIFY_WEB_HOST: '127.0.0.1',
      NOTIFY_WEB_PORT: String(port),
      OIDC_ISSUER: provider.issuer,
      OIDC_CLIENT_ID: provider.clientId,
      OIDC_CLIENT_SECRET: provider.clientSecret,
      NOTIFY_ALLOWED_DOMAINS: 'example.com',
      NOTIFY_SESSION_SECRET: 'browser-test-session-secret-0123456789abcdef',
      DESKTOP_JWT_SECRET: desktopSecret,
      TELEGRAM_BOT_USERNAME: telegram.botInfo.username,
      // The dashboard runs scripts with the same helper command as the bot (this process's).
      ...(process.env.NOTIFY_SCRIPTS_COMMAND ? { NOTIFY_SCRIPTS_COMMAND: process.env.NOTIFY_SCRIPTS_COMMAND } : {}),
    });
    const app = await buildApp({ config, ...(opts.scriptsHelper ? { scriptsHelper: opts.scriptsHelper } : {}) });
    await app.listen({ host: config.host, port: config.port });
    stops.push(() => app.close());

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-gpu'],
    });
    stops.push(() => browser.close());

    return { webUrl, dataDir, socketPath, gatewaySocket, desktopSecret, provider, telegram, app, browser, botOutput: () => output, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** A page in a browser context of its own, and the script errors it has shown so far. */
export interface OpenPage {
  context: BrowserContext;
  page: Page;
  /** Console errors and uncaught exceptions (a failed request aside: an API's 4xx logs one). */
  consoleErrors: string[];
}

/** Opens a page in a new context that collects the page's script errors. */
export async function openPage(stack: BrowserStack, options: BrowserContextOptions = {}): Promise<OpenPage> {
  const context = await stack.browser.newContext(options);
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  return { context, page, consoleErrors };
}

/** Signs in on the provider's form as `email`, starting at `path` of the dashboard [/]. */
export async function signInAs(page: Page, stack: BrowserStack, email: string, path = '/'): Promise<void> {
  await page.goto(new URL(path, stack.webUrl).href);
  // The dashboard sends the browser to the provider's sign-in form.
  await page.getByLabel('E-mail address').fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
}

/** Opens a page at desktop size (in the given time zone) and signs in as `email`. */
export async function signedInPage(stack: BrowserStack, email: string, opts: { timezoneId?: string } = {}): Promise<OpenPage> {
  const opened = await openPage(stack, { viewport: { width: 1100, height: 900 }, deviceScaleFactor: 1, ...(opts.timezoneId ? { timezoneId: opts.timezoneId } : {}) });
  try {
    await signInAs(opened.page, stack, email);
  } catch (err) {
    await opened.context.close();
    throw err;
  }
  return opened;
}

/** The desktop gateway as a process, dispatched to by the stack's bot; its WebSocket port. */
export async function startStackGateway(stack: BrowserStack): Promise<{ port: number; stop: () => Promise<void> }> {
  const gateway = spawnGateway({
    DESKTOP_JWT_SECRET: stack.desktopSecret,
    NOTIFY_GATEWAY_HOST: '127.0.0.1',
    NOTIFY_GATEWAY_PORT: '0',
    NOTIFY_GATEWAY_SOCKET: stack.gatewaySocket,
    NOTIFY_DATA_DIR: stack.dataDir,
  });
  const stop = async (): Promise<void> => {
    if (gateway.child.exitCode === null) gateway.child.kill('SIGTERM');
    await gateway.exited;
  };
  try {
    return { port: await gateway.ready, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
