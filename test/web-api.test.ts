/**
 * The dashboard API, route by route, with sessions made through the
 * real sign-in flow: who is refused (401, 403), what a code does (linked, invalid, expired,
 * used twice), the guess limits (429), unlinking, the welcome message through the send
 * API, the analyst group, the security headers, and that no secret reaches a page or a log.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildApp } from '../src/web/app.js';
import { readWebConfig } from '../src/web/config.js';
import { LinkStore } from '../src/shared/linking.js';
import { LINK_TOKEN_RE, LinkTokenStore } from '../src/shared/linkTokens.js';
import { welcomeMessage } from '../src/shared/welcome.js';
import { type SignedIn, signIn, webEnv } from './support/oidcFlow.js';
import { type TestOidcProvider, startOidcProvider } from './support/oidcProvider.js';
import { type SendApiStub, startSendApiStub } from './support/sendApiStub.js';
import { accountsUnavailable, LinuxAccounts } from './support/linuxAccounts.js';

const PUBLIC_URL = 'http://dashboard.test';
const SESSION_SECRET = 'test-session-secret-0123456789abcdef0123456789';
const DESKTOP_SECRET = 'desktop-jwt-secret-for-tests-0123456789';

/** Collects the app's log lines. */
function captureLog(): { lines: string[]; logger: pino.Logger } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { lines, logger: pino({ level: 'debug' }, stream) };
}

interface Harness {
  app: FastifyInstance;
  dataDir: string;
  links: LinkStore;
  log: string[];
  stub: SendApiStub;
}

async function harness(provider: TestOidcProvider, extra: Record<string, string> = {}, isMember?: (u: string, g: string) => boolean): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'web-api-'));
  const stub = await startSendApiStub(dataDir);
  const { lines, logger } = captureLog();
  const config = readWebConfig(webEnv(provider, dataDir, { NOTIFY_SOCKET: stub.socketPath, DESKTOP_JWT_SECRET: DESKTOP_SECRET, ...extra }));
  const app = await buildApp({ config, logger, ...(isMember ? { isMember } : {}) });
  return { app, dataDir, links: new LinkStore(dataDir), log: lines, stub };
}

async function closeHarness(h: Harness): Promise<void> {
  await h.app.close();
  await h.stub.close();
  rmSync(h.dataDir, { recursive: true, force: true });
}

function post(h: Harness, s: SignedIn | null, url: string, body?: unknown, csrf?: string | null) {
  const headers: Record<string, string> = {};
  if (s) headers.cookie = s.jar.header();
  const token = csrf === undefined ? s?.csrf : csrf;
  if (token) headers['x-csrf-token'] = token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return h.app.inject({ method: 'POST', url, headers, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
}

function get(h: Harness, s: SignedIn | null, url: string) {
  return h.app.inject({ method: 'GET', url, headers: s ? { cookie: s.jar.header() } : {} });
}

function writeCodes(h: Harness, codes: Record<string, { chat_id: number; created_at: number }>): void {
  writeFileSync(join(h.dataDir, 'pending_codes.json'), JSON.stringify(codes));
}

function pendingCodes(h: Harness): Record<string, { chat_id: number; created_at: number }> {
  return JSON.parse(readFileSync(join(h.dataDir, 'pending_codes.json'), 'utf8')) as Record<string, { chat_id: number; created_at: number }>;
}

function users(h: Harness): Record<string, { chat_id: number; linked_at: string }> {
  return JSON.parse(readFileSync(join(h.dataDir, 'telegram_users.json'), 'utf8')) as Record<string, { chat_id: number; linked_at: string }>;
}

async function waitFor<T>(what: string, probe: () => T | undefined, ms = 60_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

void describe('web API', () => {
  let provider: TestOidcProvider;

  before(async () => {
    provider = await startOidcProvider({ redirectUris: [`${PUBLIC_URL}/auth/callback`] });
  });
  after(async () => {
    await provider.close();
  });

  void describe('with the default limits', () => {
    let h: Harness;
    let john: SignedIn;

    beforeEach(async () => {
      h = await harness(provider);
      john = await signIn(h.app, 'john.doe@example.com');
    });
    afterEach(async () => closeHarness(h));

    void it('answers 401 on every /api/ route without a session, before any other check', async () => {
      const routes: Array<[string, string]> = [
        ['GET', '/api/telegram/status'],
        ['POST', '/api/telegram/verify'],
        ['POST', '/api/telegram/unlink'],
        ['POST', '/api/telegram/link-token'],
        ['GET', '/api/no-such-thing'],
        ['POST', '/api/no-such-thing'],
        // Percent-escapes the router decodes must not slip past the guard.
        ['POST', '/%61pi/telegram/verify'],
        ['GET', '/%61%70%69/telegram/status'],
        ['POST', '/api/telegram/%75nlink'],
      ];
      for (const [method, url] of routes) {
        // No cookie, no anti-forgery token, and a body that is not even JSON.
        const res = await h.app.inject({ method: method as 'GET' | 'POST', url, headers: { 'content-type': 'application/json' }, payload: method === 'POST' ? '{not json' : undefined });
        assert.equal(res.statusCode, 401, `${method} ${url} without a session`);
        assert.equal(typeof res.json<{ error: unknown }>().error, 'string');
      }
    });

    void it('refuses state-changing requests without or with a wrong X-CSRF-Token (403)', async () => {
      writeCodes(h, { '123456': { chat_id: 42, created_at: Math.floor(Date.now() / 1000) } });
      for (const url of ['/api/telegram/verify', '/api/telegram/unlink', '/api/telegram/link-token', '/%61pi/telegram/verify', '/api%2Ftelegram/verify']) {
        const none = await post(h, john, url, { code: '123456' }, null);
        assert.equal(none.statusCode, 403, `${url} without a token`);
        assert.match(none.json<{ error: string }>().error, /anti-forgery/);
        const wrong = await post(h, john, url, { code: '123456' }, 'x'.repeat(32));
        assert.equal(wrong.statusCode, 403, `${url} with a wrong token`);
      }
      const status = await get(h, john, '/api/telegram/status');
      assert.deepEqual(status.json(), { linked: false }, 'nothing was linked by the refused requests');
      assert.ok(pendingCodes(h)['123456'], 'the code was not consumed');
    });

    void it('does not accept one session\'s token for another session', async () => {
      const ann = await signIn(h.app, 'ann@example.com');
      const res = await post(h, john, '/api/telegram/unlink', undefined, ann.csrf);
      assert.equal(res.statusCode, 403);
    });

    void it('links with a valid code: telegram_users.json holds the chat, status says linked', async () => {
      const now = Math.floor(Date.now() / 1000);
      writeCodes(h, { '314159': { chat_id: 777001, created_at: now - 30 } });
      const res = await post(h, john, '/api/telegram/verify', { code: '314159' });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json<{ ok: boolean; message: string }>();
      assert.equal(body.ok, true);
      assert.match(body.message, /linked/i);
      const stored = users(h)['john.doe'];
      assert.equal(stored?.chat_id, 777001);
      assert.match(stored.linked_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const status = await get(h, john, '/api/telegram/status');
      assert.deepEqual(status.json(), { linked: true, linked_at: stored.linked_at });
      assert.equal(status.headers['cache-control'], 'no-store');
      assert.deepEqual(JSON.parse(readFileSync(join(h.dataDir, 'pending_codes.json'), 'utf8')), {}, 'the code is consumed');
    });

    void it('accepts a code typed with spaces', async () => {
      writeCodes(h, { '271828': { chat_id: 5, created_at: Math.floor(Date.now() / 1000) } });
      const res = await post(h, john, '/api/telegram/verify', { code: ' 271 828 ' });
      assert.equal(res.statusCode, 200, res.body);
    });

    void it('sends the welcome message through the send API after a link', async () => {
      writeCodes(h, { '161803': { chat_id: 99, created_at: Math.floor(Date.now() / 1000) } });
      const res = await post(h, john, '/api/telegram/verify', { code: '161803' });
      assert.equal(res.statusCode, 200);
      const sent = await waitFor('the welcome message', () => h.stub.sends()[0]);
      assert.equal(sent.path, '/send');
      assert.equal(sent.headers.prefer, 'respond-async');
      const expected = welcomeMessage('john.doe');
      assert.deepEqual(sent.json, { user: 'john.doe', title: expected.title, message: expected.message });
      assert.match(expected.message, /`john\.doe`/, 'names the server login');
      assert.match(expected.message, /~\/user\/notifications\//, 'says where scripts go');
      assert.match(expected.message, /"notify": True/, 'shows a tiny example');
      assert.match(expected.message, /AI assistant/);
      assert.match(expected.message, /arrive here/);
    });

    void it('refuses a missing or malformed code with 400', async () => {
      for (const body of [{}, { code: '' }, { code: null }, { code: '12345' }, { code: 'abcdef' }, { code: '1234567' }]) {
        const res = await post(h, john, '/api/telegram/verify', body);
        assert.equal(res.statusCode, 400, JSON.stringify(body));
        assert.equal(typeof res.json<{ error: unknown }>().error, 'string');
      }
      const notJson = await h.app.inject({ method: 'POST', url: '/api/telegram/verify', headers: { cookie: john.jar.header(), 'x-csrf-token': john.csrf, 'content-type': 'application/json' }, payload: '{"code":' });
      assert.equal(notJson.statusCode, 400);
      assert.deepEqual(notJson.json(), { error: 'The request body is not valid JSON.' });
    });

    void it('refuses an unknown code with 400 and logs the attempt without the code', async () => {
      writeCodes(h, { '111111': { chat_id: 1, created_at: Math.floor(Date.now() / 1000) } });
      const res = await post(h, john, '/api/telegram/verify', { code: '222222' });
      assert.equal(res.statusCode, 400);
      assert.match(res.json<{ error: string }>().error, /not valid/);
      const line = h.log.find((l) => l.includes('code attempt failed'));
      assert.ok(line, 'the failed attempt is logged');
      assert.match(line, /"user":"john\.doe"/);
      assert.match(line, /"reason":"invalid"/);
      assert.ok(!h.log.some((l) => l.includes('222222')), 'the guessed code is never logged');
    });

    void it('refuses an expired code (created 600 s ago) with 400', async () => {
      writeCodes(h, { '654321': { chat_id: 31337, created_at: Math.floor(Date.now() / 1000) - 600 } });
      const res = await post(h, john, '/api/telegram/verify', { code: '654321' });
      assert.equal(res.statusCode, 400);
      assert.match(res.json<{ error: string }>().error, /expired/);
      assert.deepEqual((await get(h, john, '/api/telegram/status')).json(), { linked: false });
    });

    void it('refuses a code used twice the second time', async () => {
      writeCodes(h, { '424242': { chat_id: 4242, created_at: Math.floor(Date.now() / 1000) } });
      assert.equal((await post(h, john, '/api/telegram/verify', { code: '424242' })).statusCode, 200);
      const ann = await signIn(h.app, 'ann@example.com');
      const second = await post(h, ann, '/api/telegram/verify', { code: '424242' });
      assert.equal(second.statusCode, 400);
      assert.equal(users(h)['ann'], undefined, 'the second user was not linked');
      assert.equal(users(h)['john.doe']?.chat_id, 4242);
    });

    void it('unlinks (200), then says "Telegram is not linked." (400)', async () => {
      await h.links.linkChat('john.doe', 808);
      const res = await post(h, john, '/api/telegram/unlink');
      assert.equal(res.statusCode, 200);
      assert.equal(res.json<{ ok: boolean }>().ok, true);
      assert.equal(users(h)['john.doe'], undefined);
      const again = await post(h, john, '/api/telegram/unlink');
      assert.equal(again.statusCode, 400);
      assert.deepEqual(again.json(), { error: 'Telegram is not linked.' });
    });

    void it('shows a refused delivery on the status and the card', async () => {
      await h.links.linkChat('john.doe', 909);
      await h.links.markDeliveryRefused('john.doe', 909, 'Forbidden: bot was blocked by the user');
      const status = (await get(h, john, '/api/telegram/status')).json<{ delivery_refused?: { reason: string } }>();
      assert.equal(status.delivery_refused?.reason, 'Forbidden: bot was blocked by the user');
      const page = (await get(h, john, '/')).body;
      assert.match(page, /Telegram is not delivering your notifications/);
      assert.match(page, /bot was blocked by the user/);
    });

    void it('issues a single-use one-tap link the bot can consume', async () => {
      const res = await post(h, john, '/api/telegram/link-token');
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json<{ url: string; expires_at: string; qr_svg: string }>();
      const url = new URL(body.url);
      assert.equal(url.origin + url.pathname, 'https://t.me/notify_test_bot');
      const token = url.searchParams.get('start') ?? '';
      assert.match(token, LINK_TOKEN_RE);
      assert.ok(token.length <= 64);
      assert.match(body.qr_svg, /^<svg[^>]*viewBox/);
      const minutes = (Date.parse(body.expires_at) - Date.now()) / 60_000;
      assert.ok(minutes > 9 && minutes <= 10, `valid for 10 minutes (${minutes})`);
      assert.ok(!h.log.some((l) => l.includes(token)), 'the token is never logged');
      const stored = readFileSync(join(h.dataDir, 'link_tokens.json'), 'utf8');
      assert.ok(!stored.includes(token), 'only a digest of the token is stored');
      const tokens = new LinkTokenStore(h.dataDir);
      assert.equal(await tokens.consume(token), 'john.doe');
      assert.equal(await tokens.consume(token), null, 'single use');
    });

    void it('refuses a one-tap link when already linked', async () => {
      await h.links.linkChat('john.doe', 1);
      const res = await post(h, john, '/api/telegram/link-token');
      assert.equal(res.statusCode, 400);
    });

    void it('renders the card with the steps, a labelled code field and the bot name', async () => {
      const page = john.page;
      assert.match(page, /<h2 id="tg-title">Telegram Notifications<\/h2>/);
      assert.match(page, />Not linked</);
      assert.match(page, /<kbd>\/start<\/kbd> to <a href="https:\/\/t\.me\/notify_test_bot"/);
      assert.match(page, /<label for="tg-code">Verification code<\/label>/);
      assert.match(page, /inputmode="numeric" autocomplete="one-time-code"/);
      assert.match(page, /role="status" aria-live="polite"/);
      assert.match(page, /<dialog class="dialog" id="tg-unlink-dialog"/);
    });

    void it('sends security headers on pages and API answers', async () => {
      for (const res of [await get(h, john, '/'), await get(h, john, '/api/telegram/status'), await get(h, null, '/api/telegram/status'), await get(h, null, '/signed-out')]) {
        const csp = String(res.headers['content-security-policy']);
        assert.match(csp, /frame-ancestors 'none'/);
        assert.match(csp, /script-src 'self'(;|$)/);
        assert.doesNotMatch(csp, /unsafe-inline/);
        assert.match(csp, /object-src 'none'/);
        assert.equal(res.headers['x-frame-options'], 'DENY');
        assert.equal(res.headers['x-content-type-options'], 'nosniff');
        assert.equal(res.headers['referrer-policy'], 'no-referrer');
      }
      const page = john.page;
      assert.doesNotMatch(page, /<script>|<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
      assert.doesNotMatch(page, /\sstyle=/, 'no inline style');
      assert.doesNotMatch(page, /\son[a-z]+=/i, 'no inline event handler');
      const js = await get(h, null, (/<script src="([^"]+)"/.exec(page) ?? [])[1] ?? '/none');
      assert.equal(js.statusCode, 200);
      assert.match(String(js.headers['content-type']), /javascript/);
    });

    void it('puts no secret in the page, the API answers or the log', async () => {
      writeCodes(h, { '999999': { chat_id: 3, created_at: Math.floor(Date.now() / 1000) } });
      await post(h, john, '/api/telegram/verify', { code: '999999' });
      const page = (await get(h, john, '/')).body;
      const sessionCookie = john.jar.values.get('notify_session') ?? '';
      assert.ok(sessionCookie.length > 20);
      for (const secret of [provider.clientSecret, SESSION_SECRET, DESKTOP_SECRET, sessionCookie]) {
        assert.ok(!page.includes(secret), 'a secret is in the page');
        assert.ok(!h.log.some((l) => l.includes(secret)), 'a secret is in the log');
      }
      assert.ok(!h.log.some((l) => /[?&]code=/.test(l)), 'no authorization code (callback query) in the log');
    });

    void it('reports an unreadable shared file instead of replacing it', async () => {
      writeFileSync(join(h.dataDir, 'telegram_users.json'), '{"john.doe": {"chat_id": ');
      writeCodes(h, { '135790': { chat_id: 13, created_at: Math.floor(Date.now() / 1000) } });
      const res = await post(h, john, '/api/telegram/verify', { code: '135790' });
      assert.equal(res.statusCode, 500);
      assert.match(res.json<{ error: string }>().error, /damaged, so nothing was changed/);
      assert.doesNotMatch(res.body, /telegram_users\.json|\/tmp\//, 'no server paths in the answer');
      assert.equal(readFileSync(join(h.dataDir, 'telegram_users.json'), 'utf8'), '{"john.doe": {"chat_id": ', 'the file is left as it was');
      assert.ok(h.log.some((l) => l.includes('shared data file problem') && l.includes('telegram_users.json')), 'the log says which file');
      const page = await get(h, john, '/');
      assert.equal(page.statusCode, 200);
      assert.match(page.body, /link status could not be read/);
    });

    void it('answers unknown pages with a 404 page and unknown API routes with JSON', async () => {
      const page = await get(h, john, '/nope');
      assert.equal(page.statusCode, 404);
      assert.match(page.body, /Page not found/);
      const api = await get(h, john, '/api/nope');
      assert.equal(api.statusCode, 404);
      assert.equal(typeof api.json<{ error: unknown }>().error, 'string');
    });
  });

  void describe('limits on code guesses', () => {
    let h: Harness;
    beforeEach(async () => {
      h = await harness(provider, { NOTIFY_VERIFY_USER_LIMIT: '3', NOTIFY_VERIFY_GLOBAL_LIMIT: '5', NOTIFY_VERIFY_WINDOW: '10m' });
    });
    afterEach(async () => closeHarness(h));

    void it('answers 429 with Retry-After after too many guesses by one user', async () => {
      const john = await signIn(h.app, 'john.doe@example.com');
      for (let i = 0; i < 3; i++) assert.equal((await post(h, john, '/api/telegram/verify', { code: `00000${i}` })).statusCode, 400);
      writeCodes(h, { '123123': { chat_id: 1, created_at: Math.floor(Date.now() / 1000) } });
      const limited = await post(h, john, '/api/telegram/verify', { code: '123123' });
      assert.equal(limited.statusCode, 429);
      assert.match(limited.json<{ error: string }>().error, /Too many code attempts/);
      const retry = Number(limited.headers['retry-after']);
      assert.ok(retry > 0 && retry <= 600, `Retry-After ${retry}`);
      assert.ok(pendingCodes(h)['123123'], 'a refused attempt does not consume the code');
      assert.ok(h.log.some((l) => l.includes('too many attempts') && l.includes('"limit":"user"')));
      // Another user is not held back by john's guesses.
      const ann = await signIn(h.app, 'ann@example.com');
      assert.equal((await post(h, ann, '/api/telegram/verify', { code: '123123' })).statusCode, 200);
    });

    void it('answers 429 after too many guesses by everybody together', async () => {
      const people = await Promise.all(['a1', 'a2', 'a3'].map((n) => signIn(h.app, `${n}@example.com`)));
      const [a1, a2, a3] = people as [SignedIn, SignedIn, SignedIn];
      for (const [who, n] of [[a1, 2], [a2, 2], [a3, 1]] as const) {
        for (let i = 0; i < n; i++) assert.equal((await post(h, who, '/api/telegram/verify', { code: '000000' })).statusCode, 400);
      }
      const limited = await post(h, a3, '/api/telegram/verify', { code: '000000' });
      assert.equal(limited.statusCode, 429);
      assert.match(limited.json<{ error: string }>().error, /on this server/);
      assert.ok(Number(limited.headers['retry-after']) > 0);
    });

    void it('does not count successful links or malformed input against the limit', async () => {
      const john = await signIn(h.app, 'john.doe@example.com');
      for (let i = 0; i < 5; i++) assert.equal((await post(h, john, '/api/telegram/verify', { code: 'abc' })).statusCode, 400);
      for (let i = 0; i < 4; i++) {
        const code = `55555${i}`;
        writeCodes(h, { [code]: { chat_id: 10 + i, created_at: Math.floor(Date.now() / 1000) } });
        assert.equal((await post(h, john, '/api/telegram/verify', { code })).statusCode, 200);
      }
    });
  });

  void describe('with NOTIFY_ANALYST_GROUP', { skip: accountsUnavailable() }, () => {
    let h: Harness;
    // The real user database: a person in a group of their own; john.doe is nobody here.
    const accounts = new LinuxAccounts();
    let member = '';
    let group = '';
    before(() => {
      member = accounts.person('member');
      group = accounts.group('analysts', [member]);
    });
    after(() => accounts.cleanup());
    beforeEach(async () => {
      h = await harness(provider, { NOTIFY_ANALYST_GROUP: group, NOTIFY_ALLOWED_DOMAINS: 'example.com' });
    });
    afterEach(async () => closeHarness(h));

    void it('refuses to link a user outside the group (403) and says so on the card', async () => {
      const john = await signIn(h.app, 'john.doe@example.com');
      writeCodes(h, { '777777': { chat_id: 7, created_at: Math.floor(Date.now() / 1000) } });
      const res = await post(h, john, '/api/telegram/verify', { code: '777777' });
      assert.equal(res.statusCode, 403);
      assert.match(res.json<{ error: string }>().error, new RegExp(`Only members of the group '${group}'`));
      assert.equal((await post(h, john, '/api/telegram/link-token')).statusCode, 403);
      assert.match(john.page, new RegExp(`open to members of the <strong>${group}</strong> group only`));
      assert.doesNotMatch(john.page, /id="tg-code"/, 'no code field for a non-member');
      assert.ok(pendingCodes(h)['777777'], 'the code is left alone');
    });

    void it('lets a member link', async () => {
      const analyst = await signIn(h.app, `${member}@example.com`);
      writeCodes(h, { '888888': { chat_id: 8, created_at: Math.floor(Date.now() / 1000) } });
      const res = await post(h, analyst, '/api/telegram/verify', { code: '888888' });
      assert.equal(res.statusCode, 200, res.body);
    });
  });

  void describe('when the bot is unreachable', () => {
    void it('still links, and logs that the welcome message could not be sent', async () => {
      const h = await harness(provider);
      await h.stub.close();
      try {
        const john = await signIn(h.app, 'john.doe@example.com');
        writeCodes(h, { '246810': { chat_id: 2468, created_at: Math.floor(Date.now() / 1000) } });
        const res = await post(h, john, '/api/telegram/verify', { code: '246810' });
        assert.equal(res.statusCode, 200);
        assert.equal(users(h)['john.doe']?.chat_id, 2468);
        await waitFor('the log line', () => h.log.find((l) => l.includes('could not reach the bot')));
      } finally {
        await h.app.close();
        rmSync(h.dataDir, { recursive: true, force: true });
      }
    });
  });
});

void describe('link tokens', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'web-tokens-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  void it('are url-safe, at most 64 characters, single use and valid 10 minutes', async () => {
    let now = 1_700_000_000_000;
    const store = new LinkTokenStore(dir, { now: () => now });
    const a = await store.issue('ann');
    assert.match(a.token, LINK_TOKEN_RE);
    assert.ok(a.token.length <= 64);
    assert.equal(a.expiresAt, new Date(now + 600_000).toISOString().replace('.000Z', 'Z'));
    const b = await store.issue('bob');
    now += 599_000;
    assert.equal(await store.consume(a.token), 'ann');
    assert.equal(await store.consume(a.token), null);
    now += 1_000;
    assert.equal(await store.consume(b.token), null, 'expired after 10 minutes');
    assert.equal(await store.consume('not a token!'), null);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'link_tokens.json'), 'utf8')), {}, 'used and expired tokens are gone');
  });

  void it('replace the same user\'s earlier token', async () => {
    const store = new LinkTokenStore(dir);
    const first = await store.issue('ann');
    const second = await store.issue('ann');
    assert.equal(await store.consume(first.token), null);
    assert.equal(await store.consume(second.token), 'ann');
  });
});
