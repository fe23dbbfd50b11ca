/**
 * The dashboard's desktop channel through app.inject(): desktop tokens (create, list,
 * revoke; session and anti-forgery token required), bearer tokens on the desktop REST and
 * image routes only (revoked refused at once, bad and expired refused), images served to
 * their owner only, and the desktop REST list/run through the real `notify-scripts` helper
 * and a send-API stub.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
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

  function storeImage(id: string, user: string, bytes: Buffer): void {
    mkdirSync(join(dataDir, 'images'), { recursive: true });
    writeFileSync(join(dataDir, 'images', `${id}.img`), bytes);
    writeFileSync(join(dataDir, 'images', `${id}.json`), JSON.stringify({ user, content_type: 'image/png', created_at: new Date().toISOString() }));
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
      for (const res of [await get(null, '/api/desktop/scripts', token), await get(null, '/api/images/abc123-0a0b0c', token), await post(null, '/api/desktop/scripts/run', { name: 'quiet.py' }, { bearer: token })]) {
        assert.equal(res.statusCode, 401, `${token.slice(0, 20)}: ${res.body}`);
        assert.equal(typeof res.json<{ error: unknown }>().error, 'string');
      }
    }
    // A token the store never recorded (no jti) but properly signed is accepted (contract: sub + exp).
    const bare = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('john.doe').setExpirationTime(now + 600).sign(key);
    assert.equal((await get(null, '/api/desktop/scripts', bare)).statusCode, 200);
  });

  void it('serves an image to its owner only (session or bearer), with its type, private and nosniff', async () => {
    const id = 'lx2abc-1a2b3c';
    storeImage(id, 'john.doe', png);
    const t = await createToken(john, 'images');
    const petrToken = await createToken(petr, 'images');

    const bySession = await get(john, `/api/images/${id}`);
    assert.equal(bySession.statusCode, 200);
    assert.deepEqual(bySession.rawPayload, png);
    assert.equal(bySession.headers['content-type'], 'image/png');
    assert.equal(bySession.headers['cache-control'], 'private');
    assert.equal(bySession.headers['x-content-type-options'], 'nosniff');

    const byBearer = await get(null, `/api/images/${id}`, t.token);
    assert.equal(byBearer.statusCode, 200);
    assert.deepEqual(byBearer.rawPayload, png);

    // Another user: 404 (same as a missing id), by session and by token.
    const other = await get(petr, `/api/images/${id}`);
    assert.equal(other.statusCode, 404);
    assert.equal((await get(null, `/api/images/${id}`, petrToken.token)).statusCode, 404);
    assert.deepEqual(other.json(), (await get(petr, '/api/images/lx2abc-ffffff')).json());
    // Nobody: 401.
    assert.equal((await get(null, `/api/images/${id}`)).statusCode, 401);
    // Not an id: never touches the file system.
    for (const bad of ['..%2F..%2Fetc%2Fpasswd', 'LX2ABC-1A2B3C', 'lx2abc-1a2b3c.json', 'lx2abc_1a2b3c', '%2e%2e']) {
      const res = await get(john, `/api/images/${bad}`);
      assert.ok(res.statusCode === 400 || res.statusCode === 404, `${bad}: ${res.statusCode}`);
      assert.ok(!res.rawPayload.equals(png));
    }
    const dotted = await get(john, '/api/images/../images/lx2abc-1a2b3c.img');
    assert.ok(dotted.statusCode === 400 || dotted.statusCode === 404, String(dotted.statusCode));

    // Revoked: refused at once on images too.
    await post(john, '/api/desktop/tokens/revoke', { jti: t.jti });
    assert.equal((await get(null, `/api/images/${id}`, t.token)).statusCode, 401);
  });

  void it('desktop REST: lists the scripts and runs one as the token\'s user, delivering through the send API', async () => {
    const t = await createToken(john, 'rest');
    const list = await get(null, '/api/desktop/scripts', t.token);
    assert.equal(list.statusCode, 200, list.body);
    const names = list.json<{ scripts: Array<{ name: string }> }>().scripts.map((s) => s.name).sort();
    assert.deepEqual(names, ['chart.py', 'quiet.py']);

    const sendsBefore = stub.sends().length;
    const quiet = await post(null, '/api/desktop/scripts/run', { name: 'quiet.py' }, { bearer: t.token });
    assert.equal(quiet.statusCode, 200, quiet.body);
    assert.equal(quiet.json<{ notified: boolean }>().notified, false);
    assert.equal(stub.sends().length, sendsBefore);

    const run = await post(null, '/api/desktop/scripts/run', { name: 'chart.py' }, { bearer: t.token });
    assert.equal(run.statusCode, 200, run.body);
    const body = run.json<{ ok: boolean; notified: boolean; id: string; run_id: string }>();
    assert.equal(body.notified, true);
    const sent = stub.sends().at(-1);
    assert.ok(sent);
    assert.equal(sent.path, '/send_photo');
    assert.equal(sent.headers.prefer, 'respond-async');
    assert.deepEqual({ user: sent.fields?.user, title: sent.fields?.title, message: sent.fields?.message, script: sent.fields?.script }, { user: 'john.doe', title: 'Chart', message: 'See it', script: 'chart.py' });
    assert.deepEqual(sent.files?.[0]?.bytes, png);
    assert.equal(body.id, `n${stub.requests.indexOf(sent) + 1}`);

    // The run history joins the run to the delivery id.
    const history = await new ScriptsHelper({ command: `env HOME=${home} ${process.execPath} ${join(PROJECT_ROOT, 'bin', 'notify-scripts.js')}` }).history('john.doe', { script: 'chart.py' });
    const rec = history.find((r) => (r as Record<string, unknown>).run_id === body.run_id) as Record<string, unknown> | undefined;
    assert.ok(rec, JSON.stringify(history));
    assert.equal(rec.id, body.id);
    assert.equal(rec.trigger, 'on_demand');

    // Errors: unknown script 404, bad name 400, missing name 400; the session works too.
    assert.equal((await post(null, '/api/desktop/scripts/run', { name: 'nope.py' }, { bearer: t.token })).statusCode, 404);
    assert.equal((await post(null, '/api/desktop/scripts/run', { name: '../x.py' }, { bearer: t.token })).statusCode, 400);
    assert.equal((await post(null, '/api/desktop/scripts/run', {}, { bearer: t.token })).statusCode, 400);
    assert.equal((await get(john, '/api/desktop/scripts')).statusCode, 200);
    assert.equal((await post(john, '/api/desktop/scripts/run', { name: 'quiet.py' }, { csrf: null })).statusCode, 403, 'a session still needs its anti-forgery token');
  });

  void it('the store is shared with the gateway: a token issued by the store directly works', async () => {
    const store = new DesktopTokenStore(dataDir);
    const t = await store.issue(SECRET, 'john.doe', 600, 'cli');
    assert.equal((await get(null, '/api/desktop/scripts', t.token)).statusCode, 200);
    await store.revoke('john.doe', t.jti);
    assert.equal((await get(null, '/api/desktop/scripts', t.token)).statusCode, 401);
  });
});
