/**
 * The desktop channel end to end: the real gateway and bot processes (fake Telegram), the
 * dashboard listening on a port, and the real runner. An analyst who never linked Telegram
 * (the runner runs as root here, so: root) signs in, creates a desktop token, connects a
 * real `ws` client with it, and receives the notification of the runner's script with the
 * contract's fields, then fetches its image through `image_url` (with the token, and with no
 * header: the unguessable name is the permission).
 *
 * And the Telegram path never waits on the gateway: with the gateway stopped, and with a
 * gateway that accepts connections but never answers, a linked user's /send answers quickly
 * (far below NOTIFY_GATEWAY_TIMEOUT) and the message reaches Telegram.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/web/app.js';
import { readWebConfig } from '../src/web/config.js';
import { BotHarness, pngBytes } from './support/botHarness.js';
import { PROJECT_ROOT, spawnGateway, TestDesktop, type GatewayProcess } from './support/gatewayHarness.js';
import { signIn, webEnv } from './support/oidcFlow.js';
import { type TestOidcProvider, startOidcProvider } from './support/oidcProvider.js';

const SECRET = 'desktop-e2e-jwt-secret-0123456789abcdef';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function runRunner(home: string, socketPath: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'notify-runner.js')], {
      env: { PATH: process.env.PATH, HOME: home, NOTIFY_SOCKET: socketPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    p.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    p.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    p.on('exit', (code) => resolve({ code, output }));
  });
}

async function stopGateway(g: Pick<GatewayProcess, 'child' | 'exited'>): Promise<void> {
  if (g.child.exitCode === null && g.child.signalCode === null) g.child.kill('SIGKILL');
  await g.exited;
}

void describe('desktop channel end to end', () => {
  let provider: TestOidcProvider;
  const cleanups: Array<() => Promise<void> | void> = [];

  before(async () => {
    provider = await startOidcProvider({ redirectUris: ['http://dashboard.test/auth/callback'] });
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await provider.close();
  });

  void it('an analyst without Telegram gets the runner\'s notification on a desktop and fetches its image', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'desktop-e2e-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const gatewaySocket = join(dir, 'ws.sock');
    const webPort = await freePort();
    const publicUrl = `http://127.0.0.1:${webPort}`;

    const bot = await BotHarness.start({
      users: ['alice'],
      start: false,
      env: { NOTIFY_GATEWAY_SOCKET: gatewaySocket, NOTIFY_PUBLIC_URL: publicUrl, NOTIFY_GATEWAY_TIMEOUT: '5s' },
    });
    cleanups.push(() => bot.cleanup());
    const gateway = spawnGateway({
      DESKTOP_JWT_SECRET: SECRET,
      NOTIFY_GATEWAY_HOST: '127.0.0.1',
      NOTIFY_GATEWAY_PORT: '0',
      NOTIFY_GATEWAY_SOCKET: gatewaySocket,
      NOTIFY_DATA_DIR: bot.dataDir,
    });
    cleanups.push(() => stopGateway(gateway));
    const wsPort = await gateway.ready;

    const config = readWebConfig(webEnv(provider, bot.dataDir, { NOTIFY_SOCKET: bot.socketPath, DESKTOP_JWT_SECRET: SECRET }));
    // The runner below runs as this test's own account (root): here that account is the analyst.
    const app: FastifyInstance = await buildApp({ config, whyNotAnalyst: () => null });
    cleanups.push(() => app.close());
    await app.listen({ host: '127.0.0.1', port: webPort });
    await bot.startBot();

    // root signs in to the dashboard (never linked Telegram) and creates a desktop token.
    assert.equal(await bot.links.linkOf('root'), null);
    const root = await signIn(app, 'root@example.com');
    const created = await app.inject({
      method: 'POST',
      url: '/api/desktop/tokens',
      headers: { cookie: root.jar.header(), 'x-csrf-token': root.csrf, 'content-type': 'application/json' },
      payload: JSON.stringify({ label: 'e2e laptop', days: 30 }),
    });
    assert.equal(created.statusCode, 200, created.body);
    const token = created.json<{ token: string }>().token;

    const desktop = await TestDesktop.authenticated(`ws://127.0.0.1:${wsPort}`, token);
    cleanups.push(() => desktop.close());

    // The analyst's script, run by the real runner.
    const home = join(dir, 'home');
    mkdirSync(join(home, 'user', 'notifications'), { recursive: true });
    const png = pngBytes(4, 3);
    const imagePath = join(home, 'chart.png');
    writeFileSync(
      join(home, 'user', 'notifications', 'daily_chart.py'),
      `import base64, json\nopen(${JSON.stringify(imagePath)}, "wb").write(base64.b64decode(${JSON.stringify(png.toString('base64'))}))\nprint(json.dumps({"notify": True, "title": "Daily chart", "message": "Revenue is up", "image_path": ${JSON.stringify(imagePath)}}))\n`,
    );
    const run = await runRunner(home, bot.socketPath);
    assert.equal(run.code, 0, run.output);

    const n = await desktop.nextOfType('notification', 60_000);
    assert.equal(n.type, 'notification');
    assert.equal(typeof n.id, 'string');
    assert.notEqual(n.id, '');
    assert.equal(n.title, 'Daily chart');
    assert.equal(n.message, 'Revenue is up');
    assert.equal(n.script, 'daily_chart.py');
    assert.equal(typeof n.timestamp, 'string');
    assert.match(n.timestamp as string, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    assert.ok(Math.abs(Date.parse(n.timestamp as string) - Date.now()) < 60_000);
    assert.equal(typeof n.image_url, 'string');
    const imagePathOnDashboard = n.image_url as string;
    assert.match(imagePathOnDashboard, /^\/api\/notifications\/images\/[A-Za-z0-9_-]{32}\.png$/);

    // The image, from the dashboard's origin, with the desktop token and with no header at all.
    const image = await fetch(`${publicUrl}${imagePathOnDashboard}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(image.status, 200);
    assert.equal(image.headers.get('content-type'), 'image/png');
    assert.deepEqual(Buffer.from(await image.arrayBuffer()), png);
    const bare = await fetch(`${publicUrl}${imagePathOnDashboard}`);
    assert.equal(bare.status, 200);
    assert.deepEqual(Buffer.from(await bare.arrayBuffer()), png);

    // root has no chat: nothing went to Telegram; the runner's log shows it was handled.
    assert.equal(bot.fake.sentMessages().length, 0);
  });

  /** A linked user's /send with a gateway that is not answering: quick, and Telegram gets it. */
  async function telegramUnaffected(gatewaySocket: string, setup: () => Promise<() => Promise<void> | void>): Promise<void> {
    const teardown = await setup();
    cleanups.push(teardown);
    // A gateway timeout far above what the answer may take: waiting on the gateway would show.
    const bot = await BotHarness.start({ users: ['alice'], env: { NOTIFY_GATEWAY_SOCKET: gatewaySocket, NOTIFY_GATEWAY_TIMEOUT: '20s' } });
    cleanups.push(() => bot.cleanup());
    const alice = bot.users[0]!;
    for (const [i, prefer] of (['respond-async', undefined] as const).entries()) {
      const started = Date.now();
      const res = await bot.client.send({ user: alice.name, title: `Alert ${i}`, message: 'gateway down' }, prefer);
      const ms = Date.now() - started;
      assert.ok(res.status === 200 || res.status === 202, `${res.status} ${JSON.stringify(res.body)}`);
      // Far below the gateway timeout (20 s) a wait on the gateway would take; a loaded host adds seconds.
      assert.ok(ms < 15_000, `/send took ${ms} ms with the gateway not answering`);
      await bot.fake.waitForMessages(alice.chatId, i + 1, 60_000);
    }
  }

  void it('Telegram delivery succeeds while the gateway is stopped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'desktop-e2e-down-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socket = join(dir, 'ws.sock');
    await telegramUnaffected(socket, async () => {
      // A real gateway, killed: its socket file may stay behind (connection refused).
      const g = spawnGateway({ DESKTOP_JWT_SECRET: SECRET, NOTIFY_GATEWAY_PORT: '0', NOTIFY_GATEWAY_SOCKET: socket, NOTIFY_DATA_DIR: dir });
      await g.ready;
      await stopGateway(g);
      return () => undefined;
    });
  });

  void it('Telegram delivery succeeds while the gateway accepts connections but never answers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'desktop-e2e-hang-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socket = join(dir, 'ws.sock');
    const held: net.Socket[] = [];
    const server = net.createServer((s) => {
      held.push(s); // accept, read nothing back, answer nothing
      s.on('error', () => undefined);
    });
    await telegramUnaffected(socket, async () => {
      await new Promise<void>((resolve) => server.listen(socket, resolve));
      return async () => {
        for (const s of held) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      };
    });
    assert.ok(held.length > 0, 'the bot did try the silent gateway');
  });
});
