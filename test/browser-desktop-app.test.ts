/**
 * The original desktop app, played end to end against the real programs: Debian's chromium
 * signs in through the local OpenID Connect provider at /desktop/link and presses
 * "Authorize Desktop App"; the test takes the token from the `data-analyst://` navigation
 * (as macOS hands it to the app), connects to the real gateway through nginx running the
 * example's `/ws/notifications` block, receives a notification with an image from the real
 * bot, fetches the image with no header from `image_url` on the dashboard's origin, parses
 * `timestamp` as the app's date parser would, renews a token that expired 3 days ago, lists
 * and runs a script, unlinks on the dashboard, and is refused afterwards.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ScriptsHelper } from '../src/scripts/client.js';
import { DesktopTokenStore } from '../src/shared/desktopTokens.js';
import { SendClient } from '../src/shared/sendClient.js';
import { pngBytes } from './support/botHarness.js';
import { ARTIFACTS, type BrowserStack, CHROMIUM, PROJECT_ROOT, startBrowserStack, startStackGateway } from './support/browserStack.js';
import { TestDesktop } from './support/gatewayHarness.js';

const NGINX = '/usr/sbin/nginx';
const skip = !existsSync(CHROMIUM) ? `${CHROMIUM} is not installed (apt-get install chromium)` : !existsSync(NGINX) ? `${NGINX} is not installed (apt-get install nginx-light)` : false;

/** `YYYY-MM-DDTHH:MM:SSZ`, what Foundation's ISO8601DateFormatter accepts with its default options. */
const APP_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

/** The example's `location = /ws/notifications { ... }` block, verbatim but for the gateway's port. */
function exampleWsBlock(gatewayPort: number): string {
  const example = readFileSync(join(PROJECT_ROOT, 'deploy', 'nginx', 'notify.conf.example'), 'utf8');
  const m = /\n(\s*location = \/ws\/notifications \{[^}]*\})/.exec(example);
  assert.ok(m, 'the nginx example has a location block for /ws/notifications');
  return m[1]!.replace('http://127.0.0.1:8765', `http://127.0.0.1:${gatewayPort}`);
}

/** nginx in front of the dashboard and the gateway, as the example sets it up (without TLS). */
async function startNginx(dir: string, webPort: number, gatewayPort: number): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort();
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')} warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  map $http_upgrade $notify_connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://127.0.0.1:${webPort}; proxy_set_header Host $http_host; }
${exampleWsBlock(gatewayPort)}
  }
}
`,
  );
  const test = spawnSync(NGINX, ['-t', '-p', dir, '-c', conf], { encoding: 'utf8' });
  assert.equal(test.status, 0, test.stderr);
  const child: ChildProcess = spawn(NGINX, ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Ready when it accepts connections.
  const until = Date.now() + 20_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (child.exitCode !== null || Date.now() > until) assert.fail(`nginx did not start: ${readFileSync(join(dir, 'logs', 'error.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGQUIT');
      await exited;
    },
  };
}

void describe('browser: the original desktop app signs in, gets alerts and images, renews, runs scripts, is unlinked', { skip }, () => {
  let stack: BrowserStack;
  let dir: string;
  let home: string;
  const stops: Array<() => Promise<void> | void> = [];
  const png = pngBytes(5, 4);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'browser-desktop-'));
    home = join(dir, 'home');
    mkdirSync(join(home, 'user', 'notifications'), { recursive: true });
    const chart = join(home, 'chart.png');
    writeFileSync(
      join(home, 'user', 'notifications', 'chart.py'),
      `import base64, json\nopen(${JSON.stringify(chart)}, "wb").write(base64.b64decode(${JSON.stringify(png.toString('base64'))}))\nprint(json.dumps({"notify": True, "title": "Chart on demand", "message": "Run from the desktop", "image_path": ${JSON.stringify(chart)}}))\n`,
    );
    const scriptsHelper = new ScriptsHelper({ command: `env HOME=${home} ${process.execPath} ${join(PROJECT_ROOT, 'bin', 'notify-scripts.js')}`, timeoutMs: 60_000 });
    stack = await startBrowserStack({ scriptsHelper });
    stops.push(() => stack.close());
    const gateway = await startStackGateway(stack);
    stops.push(gateway.stop);
    const gatewayPort = gateway.port;
    const nginx = await startNginx(join(dir, 'nginx'), Number(new URL(stack.webUrl).port), gatewayPort);
    stops.push(nginx.stop);
    origin = nginx.url;
  });

  let origin = '';

  after(async () => {
    for (const stop of stops.reverse()) await stop();
    rmSync(dir, { recursive: true, force: true });
  });

  void it('plays the app end to end', async () => {
    const context = await stack.browser.newContext();
    const page = await context.newPage();
    const pageErrors: string[] = [];
    try {
      // 1. The app opens <dashboard>/desktop/link: sign-in first, then back to the link page.
      await page.goto(`${origin}/desktop/link`);
      await page.getByLabel('E-mail address').fill('ann@example.com');
      await page.getByRole('button', { name: 'Continue' }).click();
      const authorize = page.getByRole('button', { name: 'Authorize Desktop App' });
      await authorize.waitFor();
      assert.equal(new URL(page.url()).pathname, '/desktop/link');
      await page.screenshot({ path: join(ARTIFACTS, 'desktop-link.png') });

      // 2. The button hands data-analyst://auth?token=<JWT> to the operating system (the app).
      const handedOver = page.waitForRequest((r) => r.url().startsWith('data-analyst://'));
      await authorize.click();
      const appUrl = new URL((await handedOver).url());
      assert.equal(appUrl.protocol, 'data-analyst:');
      assert.equal(appUrl.host, 'auth');
      const token = appUrl.searchParams.get('token') ?? '';
      assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);

      // 3. The app connects to wss://<host>/ws/notifications (here through nginx, plain ws).
      const wsUrl = `${origin.replace('http:', 'ws:')}/ws/notifications`;
      const desktop = await TestDesktop.authenticated(wsUrl, token);
      stops.push(() => desktop.close());

      // 4. A notification with an image reaches it (sent as a script's result would be).
      const sent = await new SendClient(stack.socketPath, 30_000).sendPhoto(
        { user: 'ann', title: 'Daily chart', message: 'Revenue is up', script: 'daily_chart.py' },
        { bytes: png, filename: 'chart.png', contentType: 'image/png' },
      );
      assert.ok(sent.status === 200 || sent.status === 202, JSON.stringify(sent.body));
      const n = await desktop.nextOfType('notification', 30_000);
      assert.equal(n.title, 'Daily chart');
      assert.equal(n.script, 'daily_chart.py');
      const ts = APP_TIMESTAMP.exec(String(n.timestamp));
      assert.ok(ts, `timestamp ${String(n.timestamp)} is not YYYY-MM-DDTHH:MM:SSZ`);
      const when = Date.UTC(Number(ts[1]), Number(ts[2]) - 1, Number(ts[3]), Number(ts[4]), Number(ts[5]), Number(ts[6]));
      assert.ok(Math.abs(when - Date.now()) < 120_000, `timestamp ${String(n.timestamp)} is not now`);

      // 5. The image, from the dashboard's origin, with no header at all.
      const imagePath = String(n.image_url);
      assert.match(imagePath, /^\/api\/notifications\/images\/[A-Za-z0-9_-]{32}\.png$/);
      const image = await fetch(`${origin}${imagePath}`);
      assert.equal(image.status, 200);
      assert.equal(image.headers.get('content-type'), 'image/png');
      assert.deepEqual(Buffer.from(await image.arrayBuffer()), png);

      // 6. A token that expired 3 days ago is renewed (and only there).
      let clock = Date.now() - 33 * 86_400_000;
      const old = await new DesktopTokenStore(stack.dataDir, { now: () => clock }).issue(stack.desktopSecret, 'ann', 30 * 86_400, { kind: 'app' });
      clock = Date.now();
      assert.equal((await fetch(`${origin}/api/desktop/scripts`, { headers: { authorization: `Bearer ${old.token}` } })).status, 401);
      const refreshed = await fetch(`${origin}/api/desktop/refresh`, { method: 'POST', headers: { authorization: `Bearer ${old.token}` } });
      assert.equal(refreshed.status, 200);
      const renewed = ((await refreshed.json()) as { token: string }).token;
      const second = await TestDesktop.authenticated(wsUrl, renewed);
      stops.push(() => second.close());

      // 7. The scripts: a bare array; a run answers {"ok": true} and its result comes over the WebSocket.
      const listed = await fetch(`${origin}/api/desktop/scripts`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(listed.status, 200);
      const scripts = (await listed.json()) as Array<{ name: string; stem: string }>;
      assert.ok(Array.isArray(scripts));
      assert.deepEqual(scripts.map((s) => [s.name, s.stem]), [['chart.py', 'chart']]);
      const run = await fetch(`${origin}/api/desktop/scripts/run`, { method: 'POST', headers: { authorization: `Bearer ${renewed}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'chart.py' }) });
      assert.equal(run.status, 200);
      assert.deepEqual(await run.json(), { ok: true });
      const ran = await desktop.nextOfType('notification', 60_000);
      assert.equal(ran.title, 'Chart on demand');
      assert.equal(ran.script, 'chart.py');
      assert.match(String(ran.image_url), /^\/api\/notifications\/images\/[A-Za-z0-9_-]{32}\.png$/);
      const noName = await fetch(`${origin}/api/desktop/scripts/run`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(noName.status, 400);
      assert.deepEqual(await noName.json(), { error: "Missing 'name' field" });

      // 8. Unlink on the dashboard, in another tab of the same browser: the tab that handed
      // data-analyst:// to the operating system keeps Chromium's "open the external
      // application?" prompt pending (nobody answers it here), and Chromium gives that tab
      // no mouse or keyboard input until it is answered. The card says Linked; Unlink asks
      // first, then the card says Not linked, and afterwards every app token is refused.
      const dashboard = await context.newPage();
      dashboard.on('pageerror', (e) => pageErrors.push(e.message));
      await dashboard.goto(origin);
      assert.equal((await dashboard.locator('#dt-link-badge').textContent())?.trim(), 'Linked');
      await dashboard.getByRole('button', { name: 'Unlink desktop app' }).click();
      const unlinkDialog = dashboard.getByRole('dialog', { name: 'Unlink the desktop app?' });
      await unlinkDialog.waitFor();
      await unlinkDialog.getByRole('button', { name: 'Unlink' }).click();
      await unlinkDialog.waitFor({ state: 'hidden' });
      await dashboard.locator('#dt-live .notice-ok').waitFor();
      assert.equal((await dashboard.locator('#dt-link-badge').textContent())?.trim(), 'Not linked');
      assert.equal(await dashboard.locator('#dt-unlink').isHidden(), true);
      await dashboard.locator('#desktop-card').screenshot({ path: join(ARTIFACTS, 'desktop-unlinked.png') });
      await dashboard.reload();
      assert.equal((await dashboard.locator('#dt-link-badge').textContent())?.trim(), 'Not linked');
      assert.deepEqual(pageErrors, []);

      const closed = await desktop.closedWithin(90_000);
      assert.equal(closed.code, 4003, `the gateway closed the unlinked app with ${closed.code} ${closed.reason}`);
      for (const t of [token, renewed]) {
        assert.equal((await fetch(`${origin}/api/desktop/scripts`, { headers: { authorization: `Bearer ${t}` } })).status, 401);
        assert.equal((await fetch(`${origin}/api/desktop/refresh`, { method: 'POST', headers: { authorization: `Bearer ${t}` } })).status, 401);
        const again = await TestDesktop.connect(wsUrl);
        stops.push(() => again.close());
        assert.equal((await again.auth(t)).type, 'auth_error');
      }
    } finally {
      await context.close();
    }
  });
});
