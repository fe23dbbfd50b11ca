/**
 * The dashboard's desktop channel through app.inject(): desktop tokens (create, list,
 * revoke; session and anti-forgery token required), bearer tokens on the desktop REST and
 * image routes only (revoked refused at once, bad and expired refused), images served at
 * their unguessable name while kept, the original app's sign-in (link page, authorize,
 * refresh within the grace, unlink) and the desktop REST list/run through the real
 * `notify-scripts` helper and a send-API stub.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { DesktopImageStore, imageUrlPath } from '../src/shared/desktopImages.js';
import { DesktopTokenStore } from '../src/shared/desktopTokens.js';
import { ScriptsHelper } from '../src/scripts/client.js';
import { buildApp } from '../src/web/app.js';
import { readWebConfig } from '../src/web/config.js';
import { pngBytes } from './support/botHarness.js';
import { PROJECT_ROOT } from './support/gatewayHarness.js';
import { type SignedIn, signIn, webEnv } from './support/oidcFlow.js';
import { type TestOidcProvider, startOidcProvider } from './support/oidcProvider.js';
import { type SendApiStub, startSendApiStub } from './support/sendApiStub.js';

const SECRET = 'desktop-jwt-secret-for-tests-0123456789';

interface TokenBody {
  ok: boolean;
  token: string;
  jti: string;
  label: string;
  expires_at: string;
}

void describe('dashboard desktop channel', () => {
  let provider: TestOidcProvider;
  let dir: string;
  let dataDir: string;
  let home: string;
  let stub: SendApiStub;
  let app: FastifyInstance;
  let john: SignedIn;
  let petr: SignedIn;
  const png = pngBytes(3, 2);

  before(async () => {
    provider = await startOidcProvider({ redirectUris: ['http://dashboard.test/auth/callback'] });
    dir = mkdtempSync(join(tmpdir(), 'web-desktop-'));
    dataDir = join(dir, 'data');
    home = join(dir, 'home');
    mkdirSync(dataDir, { recursive: true });
    mkdirSync(join(home, 'user', 'notifications'), { recursive: true });
    const chart = join(home, 'chart.png');
    writeFileSync(
      join(home, 'user', 'notifications', 'chart.py'),
      `import base64, json\nopen(${JSON.stringify(chart)}, "wb").write(base64.b64decode(${JSON.stringify(png.toString('base64'))}))\nprint(json.dumps({"notify": True, "title": "Chart", "message": "See it", "image_path": ${JSON.stringify(chart)}}))\n`,
    );
    writeFileSync(join(home, 'user', 'notifications', 'quiet.py'), 'import json\nprint(json.dumps({"notify": False}))\n');
    stub = await startSendApiStub(dir);
    const config = readWebConfig(webEnv(provider, dataDir, { NOTIFY_SOCKET: stub.socketPath, DESKTOP_JWT_SECRET: SECRET }));
    const scriptsHelper = new ScriptsHelper({ command: `env HOME=${home} ${process.execPath} ${join(PROJECT_ROOT, 'bin', 'notify-scripts.js')}`, timeoutMs: 60_000 });
    app = await buildApp({ config, scriptsHelper });
    john = await signIn(app, 'john.doe@example.com');
    petr = await signIn(app, 'petr@simecek.org');
  });

  after(async () => {
    await app.close();
    await stub.close();
    await provider.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function post(s: SignedIn | null, url: string, body: unknown, opts: { csrf?: string | null; bearer?: string } = {}) {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (s) headers.cookie = s.jar.header();
    const csrf = opts.csrf === undefined ? s?.csrf : opts.csrf;
    if (csrf) headers['x-csrf-token'] = csrf;
    if (opts.bearer !== undefined) headers.authorization = `Bearer ${opts.bearer}`;
    return app.inject({ method: 'POST', url, headers, payload: JSON.stringify(body) });
  }

  function get(s: SignedIn | null, url: string, bearer?: string) {
    const headers: Record<string, string> = {};
    if (s) headers.cookie = s.jar.header();
    if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
    return app.inject({ method: 'GET', url, headers });
  }

  async function createToken(s: SignedIn, label: string, days = 30): Promise<TokenBody> {
    const res = await post(s, '/api/desktop/tokens', { label, days });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<TokenBody>();
  }


  void it('the dashboard shows the desktop card and serves its script', async () => {
    assert.match(john.page, /id="desktop-card"/);
    const m = /<script src="(\/static\/desktop\.js\?v=[0-9a-f]+)" defer><\/script>/.exec(john.page);
    assert.ok(m, 'the card loads its script');
    const js = await app.inject({ method: 'GET', url: m[1]! });
    assert.equal(js.statusCode, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
  });

  void it('token routes need a session and the anti-forgery token; a bearer token cannot manage tokens', async () => {
    assert.equal((await get(null, '/api/desktop/tokens')).statusCode, 401);
    assert.equal((await post(null, '/api/desktop/tokens', { label: 'x', days: 30 })).statusCode, 401);
    assert.equal((await post(john, '/api/desktop/tokens', { label: 'x', days: 30 }, { csrf: null })).statusCode, 403);
    assert.equal((await post(john, '/api/desktop/tokens', { label: 'x', days: 30 }, { csrf: 'wrong-token-wrong-token' })).statusCode, 403);
    const t = await createToken(john, 'bearer-probe');
    const viaBearer = await post(null, '/api/desktop/tokens', { label: 'y', days: 30 }, { bearer: t.token });
    assert.equal(viaBearer.statusCode, 401);
    assert.equal((await get(null, '/api/desktop/tokens', t.token)).statusCode, 401);
    assert.equal((await post(null, '/api/desktop/tokens/revoke', { jti: t.jti }, { bearer: t.token })).statusCode, 401);
    assert.equal((await post(john, '/api/desktop/tokens', { label: 'x', days: 0 })).statusCode, 400);
    assert.equal((await post(john, '/api/desktop/tokens', { label: 'x'.repeat(65), days: 30 })).statusCode, 400);
    assert.equal((await post(john, '/api/desktop/tokens', { label: 5, days: 30 })).statusCode, 400);
  });

  void it('creates a token (shown once), lists it without the token, revokes it; other users see nothing', async () => {
    const before = Date.now();
    const t = await createToken(john, 'Work laptop', 90);
    assert.equal(t.ok, true);
    assert.match(t.token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const exp = Date.parse(t.expires_at);
    assert.ok(Math.abs(exp - (before + 90 * 86_400_000)) < 60_000);
    const list = await get(john, '/api/desktop/tokens');
    assert.equal(list.statusCode, 200);
    assert.equal(list.headers['cache-control'], 'no-store');
    assert.ok(!list.body.includes(t.token), 'the list never shows a token');
    const mine = list.json<{ tokens: Array<Record<string, unknown>> }>().tokens.find((x) => x.jti === t.jti);
    assert.deepEqual({ label: mine?.label, revoked: mine?.revoked, expires_at: mine?.expires_at }, { label: 'Work laptop', revoked: false, expires_at: t.expires_at });
    assert.equal(typeof mine?.created_at, 'string');
    const page = await get(john, '/');
    assert.match(page.body, /Work laptop/);
    assert.ok(!page.body.includes(t.token));

    const others = (await get(petr, '/api/desktop/tokens')).json<{ tokens: unknown[] }>();
    assert.equal(others.tokens.length, 0);
    assert.equal((await post(petr, '/api/desktop/tokens/revoke', { jti: t.jti })).statusCode, 404);

    // Works on the REST until revoked, refused at once after.
    assert.equal((await get(null, '/api/desktop/scripts', t.token)).statusCode, 200);
    const revoked = await post(john, '/api/desktop/tokens/revoke', { jti: t.jti });
    assert.equal(revoked.statusCode, 200, revoked.body);
    const refused = await get(null, '/api/desktop/scripts', t.token);
    assert.equal(refused.statusCode, 401);
    assert.match(refused.json<{ error: string }>().error, /revoked/);
    assert.equal((await post(null, '/api/desktop/scripts/run', { name: 'quiet.py' }, { bearer: t.token })).statusCode, 401);
    const after = (await get(john, '/api/desktop/tokens')).json<{ tokens: Array<Record<string, unknown>> }>().tokens.find((x) => x.jti === t.jti);
    assert.equal(after?.revoked, true);
    assert.equal((await post(john, '/api/desktop/tokens/revoke', { jti: t.jti })).statusCode, 200);
    assert.equal((await post(john, '/api/desktop/tokens/revoke', {})).statusCode, 400);
  });

  void it('refuses bad, wrongly signed, unsigned and expired bearer tokens with 401 {error}', async () => {
    const key = new TextEncoder().encode(SECRET);
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('john.doe').setIssuedAt(now - 100).setExpirationTime(now - 10).sign(key);
    const wrongKey = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('john.doe').setExpirationTime(now + 600).sign(new TextEncoder().encode('another-secret-another-secret-1234'));
    const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'john.doe', exp: now + 600 })}.`;
    for (const token of ['garbage', '', expired, wrongKey, unsigned]) {
      for (const res of [await get(null, '/api/desktop/scripts', token), await get(null, `/api/notifications/images/${'A'.repeat(32)}.png`, token), await post(null, '/api/desktop/scripts/run', { name: 'quiet.py' }, { bearer: token })]) {
        assert.equal(res.statusCode, 401, `${token.slice(0, 20)}: ${res.body}`);
        assert.equal(typeof res.json<{ error: unknown }>().error, 'string');
      }
    }
    // A token the store never recorded (no jti) but properly signed is accepted (contract: sub + exp).
    const bare = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('john.doe').setExpirationTime(now + 600).sign(key);
    assert.equal((await get(null, '/api/desktop/scripts', bare)).statusCode, 200);
  });

  void it('serves an image at its unguessable name with no header (a token or session may come too), only while it is kept', async () => {
    const images = new DesktopImageStore(dataDir);
    const name = await images.put('john.doe', png, 'image/png', Date.now(), 3_600_000);
    const path = imageUrlPath(name);
    assert.match(path, /^\/api\/notifications\/images\/[A-Za-z0-9_-]{32}\.png$/);
    const t = await createToken(john, 'images');

    const anonymous = await get(null, path);
    assert.equal(anonymous.statusCode, 200, anonymous.body);
    assert.deepEqual(anonymous.rawPayload, png);
    assert.equal(anonymous.headers['content-type'], 'image/png');
    assert.equal(anonymous.headers['x-content-type-options'], 'nosniff');
    assert.match(String(anonymous.headers['cache-control']), /^private/);
    assert.deepEqual((await get(null, path, t.token)).rawPayload, png);
    assert.deepEqual((await get(john, path)).rawPayload, png);
    // A bad token is refused even where none is needed: the caller meant to use it.
    assert.equal((await get(null, path, 'garbage')).statusCode, 401);

    // A wrong or malformed name, and an expired image, are one same 404.
    const missing = await get(null, imageUrlPath('A'.repeat(32)));
    assert.equal(missing.statusCode, 404);
    for (const bad of [`${name}.json`, `${name}.img`, name, '..%2F..%2Fetc%2Fpasswd.png', '%2e%2e.png', `${name.slice(1)}.png`]) {
      const res = await get(null, `/api/notifications/images/${bad}`);
      assert.equal(res.statusCode, 404, `${bad}: ${res.statusCode}`);
      assert.deepEqual(res.json(), missing.json());
    }
    const old = await images.put('john.doe', png, 'image/png', Date.now() - 7_200_000, 3_600_000);
    assert.equal((await get(null, imageUrlPath(old))).statusCode, 404, 'an image past its retention is not served');
    // Only reading: the path takes no other method without a session.
    assert.equal((await post(null, path, {}, { csrf: null })).statusCode, 401);
  });

  async function waitForSends(count: number): Promise<void> {
    const until = Date.now() + 60_000;
    while (stub.sends().length < count) {
      if (Date.now() > until) assert.fail(`expected ${count} sends, got ${stub.sends().length}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  void it('desktop REST: lists the scripts as a bare array and starts a run as the token\'s user, which the send API gets', async () => {
    const t = await createToken(john, 'rest');
    const list = await get(null, '/api/desktop/scripts', t.token);
    assert.equal(list.statusCode, 200, list.body);
    const names = list.json<Array<{ name: string; stem: string }>>().map((s) => `${s.name}/${s.stem}`).sort();
    assert.deepEqual(names, ['chart.py/chart', 'quiet.py/quiet']);

    const sendsBefore = stub.sends().length;
    const run = await post(null, '/api/desktop/scripts/run', { name: 'chart.py' }, { bearer: t.token });
    assert.equal(run.statusCode, 200, run.body);
    assert.deepEqual(run.json(), { ok: true });
    await waitForSends(sendsBefore + 1);
    const sent = stub.sends().at(-1);
    assert.ok(sent);
    assert.equal(sent.path, '/send_photo');
    assert.equal(sent.headers.prefer, 'respond-async');
    assert.deepEqual({ user: sent.fields?.user, title: sent.fields?.title, message: sent.fields?.message, script: sent.fields?.script }, { user: 'john.doe', title: 'Chart', message: 'See it', script: 'chart.py' });
    assert.deepEqual(sent.files?.[0]?.bytes, png);

    // The run history joins the run to the delivery id (recorded right after the send).
    const helper = new ScriptsHelper({ command: `env HOME=${home} ${process.execPath} ${join(PROJECT_ROOT, 'bin', 'notify-scripts.js')}`, timeoutMs: 90_000 });
    const id = `n${stub.requests.indexOf(sent) + 1}`;
    const until = Date.now() + 30_000;
    let rec: Record<string, unknown> | undefined;
    while (!rec && Date.now() < until) {
      rec = (await helper.history('john.doe', { script: 'chart.py' })).find((r) => (r as Record<string, unknown>).id === id);
      if (!rec) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(rec, 'the run history never named the delivery');
    assert.equal(rec.trigger, 'on_demand');

    // Errors: the original app's 400 without a name; unknown script 404; bad name 400; the session works too.
    const missing = await post(null, '/api/desktop/scripts/run', {}, { bearer: t.token });
    assert.equal(missing.statusCode, 400);
    assert.deepEqual(missing.json(), { error: "Missing 'name' field" });
    assert.equal((await post(null, '/api/desktop/scripts/run', { name: 'nope.py' }, { bearer: t.token })).statusCode, 404);
    assert.equal((await post(null, '/api/desktop/scripts/run', { name: '../x.py' }, { bearer: t.token })).statusCode, 400);
    assert.equal((await get(john, '/api/desktop/scripts')).statusCode, 200);
    assert.equal((await post(john, '/api/desktop/scripts/run', { name: 'quiet.py' }, { csrf: null })).statusCode, 403, 'a session still needs its anti-forgery token');
  });

  void it('the link page needs sign-in and returns to it; authorize gives the app\'s URL with a 30-day token and marks the app linked', async () => {
    const anonymous = await get(null, '/desktop/link');
    assert.equal(anonymous.statusCode, 302);
    assert.equal(anonymous.headers.location, '/login?next=%2Fdesktop%2Flink');
    const page = await get(petr, '/desktop/link');
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /Authorize Desktop App/);
    assert.match(page.body, /<meta name="csrf-token"/);

    assert.equal((await post(petr, '/api/desktop/authorize', {}, { csrf: null })).statusCode, 403);
    const before = Math.floor(Date.now() / 1000);
    const res = await post(petr, '/api/desktop/authorize', {});
    assert.equal(res.statusCode, 200, res.body);
    const url = res.json<{ url: string }>().url;
    const m = /^data-analyst:\/\/auth\?token=([A-Za-z0-9_.-]+)$/.exec(url);
    assert.ok(m, url);
    const token = m[1]!;
    assert.deepEqual(decodeProtectedHeader(token).alg, 'HS256');
    const claims = decodeJwt(token);
    assert.equal(claims.sub, 'petr_simecek_org');
    assert.equal(claims.iss, 'http://dashboard.test');
    assert.equal(typeof claims.jti, 'string');
    assert.ok(typeof claims.iat === 'number' && claims.iat >= before - 1);
    assert.equal(claims.exp! - claims.iat, 30 * 86_400);
    const links = JSON.parse(readFileSync(join(dataDir, 'desktop_users.json'), 'utf8')) as Record<string, { linked_at: string }>;
    assert.match(links.petr_simecek_org?.linked_at ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/);
    assert.equal((await get(null, '/api/desktop/scripts', token)).statusCode !== 401, true, 'the app\'s token is a desktop token');
    // A token cannot authorize or unlink (those need the browser session).
    assert.equal((await post(null, '/api/desktop/authorize', {}, { bearer: token })).statusCode, 401);
    assert.equal((await post(null, '/api/desktop/unlink', {}, { bearer: token })).statusCode, 401);
    // The card shows the link.
    const dashboard = await get(petr, '/');
    assert.match(dashboard.body, /id="dt-link-badge" class="badge badge-on">Linked</);
  });

  void it('refresh renews a valid token or one expired less than 7 days ago, and nothing else', async () => {
    const day = 86_400_000;
    let now = Date.now() - 33 * day;
    const past = new DesktopTokenStore(dataDir, { now: () => now });
    const threeDays = await past.issue(SECRET, 'john.doe', 30 * 86_400, { kind: 'app' });
    now = Date.now() - 38 * day;
    const eightDays = await past.issue(SECRET, 'john.doe', 30 * 86_400, { kind: 'app' });
    now = Date.now() - 33 * day;
    const revoked = await past.issue(SECRET, 'john.doe', 30 * 86_400, { kind: 'app' });
    await new DesktopTokenStore(dataDir).revoke('john.doe', revoked.jti);

    // Expired: refused everywhere but refresh.
    assert.equal((await get(null, '/api/desktop/scripts', threeDays.token)).statusCode, 401);
    const renewed = await post(null, '/api/desktop/refresh', {}, { bearer: threeDays.token });
    assert.equal(renewed.statusCode, 200, renewed.body);
    const fresh = renewed.json<{ token: string }>().token;
    assert.deepEqual(Object.keys(renewed.json()), ['token']);
    assert.equal(decodeJwt(fresh).sub, 'john.doe');
    assert.ok(decodeJwt(fresh).exp! * 1000 > Date.now() + 29 * day);
    assert.equal((await get(null, '/api/desktop/scripts', fresh)).statusCode, 200);
    assert.equal((await post(null, '/api/desktop/refresh', {}, { bearer: fresh })).statusCode, 200, 'a valid token renews too');

    for (const [what, token] of [['expired 8 days ago', eightDays.token], ['revoked', revoked.token], ['garbage', 'garbage']] as const) {
      const res = await post(null, '/api/desktop/refresh', {}, { bearer: token });
      assert.equal(res.statusCode, 401, `${what}: ${res.body}`);
      assert.equal(typeof res.json<{ error: unknown }>().error, 'string');
    }
    // A token the store never recorded cannot be revoked, so it is not renewed.
    const key = new TextEncoder().encode(SECRET);
    const bare = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('john.doe').setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(key);
    assert.equal((await post(null, '/api/desktop/refresh', {}, { bearer: bare })).statusCode, 401);
    assert.equal((await post(null, '/api/desktop/refresh', {})).statusCode, 401);
  });

  void it('unlink revokes every desktop token of the user and forgets the link; a second unlink is 400', async () => {
    const authorized = await post(john, '/api/desktop/authorize', {});
    const appToken = /token=(.*)$/.exec(authorized.json<{ url: string }>().url)![1]!;
    const cardToken = (await createToken(john, 'unlink')).token;
    const petrToken = /token=(.*)$/.exec((await post(petr, '/api/desktop/authorize', {})).json<{ url: string }>().url)![1]!;
    for (const t of [appToken, cardToken]) assert.equal((await get(null, '/api/desktop/scripts', t)).statusCode, 200);

    assert.equal((await post(john, '/api/desktop/unlink', {}, { csrf: null })).statusCode, 403);
    const res = await post(john, '/api/desktop/unlink', {});
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json<{ ok: boolean; message: string }>();
    assert.equal(body.ok, true);
    assert.equal(typeof body.message, 'string');
    for (const t of [appToken, cardToken]) {
      assert.equal((await get(null, '/api/desktop/scripts', t)).statusCode, 401);
      assert.equal((await post(null, '/api/desktop/refresh', {}, { bearer: t })).statusCode, 401);
    }
    const links = JSON.parse(readFileSync(join(dataDir, 'desktop_users.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(links['john.doe'], undefined);
    assert.ok(links.petr_simecek_org, 'another user\'s link is untouched');
    assert.equal((await get(null, '/api/desktop/scripts', petrToken)).statusCode, 200, 'another user\'s token still works');
    const again = await post(john, '/api/desktop/unlink', {});
    assert.equal(again.statusCode, 400);
    assert.deepEqual(again.json(), { error: 'Desktop app is not linked.' });
    assert.match((await get(john, '/')).body, /id="dt-link-badge" class="badge badge-off">Not linked</);
  });

  void it('an authenticated call of the app marks it linked', async () => {
    const store = new DesktopTokenStore(dataDir);
    const t = await store.issue(SECRET, 'carla', 600, { kind: 'app' });
    assert.equal((await get(null, '/api/desktop/scripts', t.token)).statusCode !== 401, true);
    const links = JSON.parse(readFileSync(join(dataDir, 'desktop_users.json'), 'utf8')) as Record<string, unknown>;
    assert.ok(links.carla);
  });

  void it('the store is shared with the gateway: a token issued by the store directly works', async () => {
    const store = new DesktopTokenStore(dataDir);
    const t = await store.issue(SECRET, 'john.doe', 600, { label: 'cli' });
    assert.equal((await get(null, '/api/desktop/scripts', t.token)).statusCode, 200);
    await store.revoke('john.doe', t.jti);
    assert.equal((await get(null, '/api/desktop/scripts', t.token)).statusCode, 401);
  });
});
