/**
 * Sign-in to the dashboard against a real OpenID Connect provider started locally:
 * who gets in, under which server username, who is refused, and that logging out ends
 * the session for good.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/web/app.js';
import { ConfigError, readWebConfig } from '../src/web/config.js';
import { usernameFor } from '../src/web/accounts.js';
import { CookieJar, authorize, callback, csrfOf, signIn, webEnv } from './support/oidcFlow.js';
import { type TestOidcProvider, startOidcProvider } from './support/oidcProvider.js';

const PUBLIC_URL = 'http://dashboard.test';
const HTTPS_URL = 'https://dashboard.example';

void describe('web sign-in through a real OpenID Connect provider', () => {
  let provider: TestOidcProvider;
  let dataDir: string;
  let app: FastifyInstance;

  before(async () => {
    provider = await startOidcProvider({ redirectUris: [`${PUBLIC_URL}/auth/callback`, `${HTTPS_URL}/auth/callback`] });
    dataDir = mkdtempSync(join(tmpdir(), 'web-auth-'));
    app = await buildApp({ config: readWebConfig(webEnv(provider, dataDir)) });
  });

  after(async () => {
    await app.close();
    await provider.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  void it('lets an address of the first allowed domain in, as its lower-cased local part', async () => {
    provider.setAccount('John.Doe@example.com', { emailVerified: true });
    const session = await signIn(app, 'John.Doe@example.com');
    assert.match(session.page, /<strong>john\.doe<\/strong>/, 'the page shows the server username john.doe');
    assert.match(session.page, /Telegram Notifications/);
    const status = await app.inject({ method: 'GET', url: '/api/telegram/status', headers: { cookie: session.jar.header() } });
    assert.equal(status.statusCode, 200);
    assert.deepEqual(status.json(), { linked: false });
    assert.deepEqual(provider.errors, []);
  });

  void it('lets a single allowed address in, named after the whole address', async () => {
    provider.setAccount('Petr@Simecek.org', { emailVerified: true });
    const session = await signIn(app, 'Petr@Simecek.org');
    assert.match(session.page, /<strong>petr_simecek_org<\/strong>/);
  });

  void it('sets the session cookie HttpOnly and SameSite=Lax, with an expiry', async () => {
    const jar = new CookieJar();
    const res = await callback(app, await authorize(app, 'ann@example.com', jar), jar);
    assert.equal(res.statusCode, 303);
    const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith('notify_session='));
    assert.ok(cookie, 'a session cookie is set');
    assert.match(cookie, /HttpOnly/i);
    assert.match(cookie, /SameSite=Lax/i);
    assert.match(cookie, /Max-Age=43200/i, 'the default session lasts 12 hours');
    assert.doesNotMatch(cookie, /Secure/i, 'not Secure on a plain-http public URL');
  });

  void it('refuses an address of another domain with a page saying so, and no session', async () => {
    const jar = new CookieJar();
    const res = await callback(app, await authorize(app, 'mallory@evil.test', jar), jar);
    assert.equal(res.statusCode, 403);
    assert.match(res.body, /mallory@evil\.test<\/strong> is not allowed to sign in/);
    assert.match(res.body, /@example\.com/, 'the page says which accounts may sign in');
    assert.equal(jar.values.has('notify_session'), false, 'no session cookie');
    const page = await app.inject({ method: 'GET', url: '/', headers: { cookie: jar.header() } });
    assert.equal(page.statusCode, 302);
    assert.equal(page.headers.location, '/login');
  });

  void it('refuses an unverified e-mail address', async () => {
    provider.setAccount('unverified@example.com', { emailVerified: false });
    const jar = new CookieJar();
    const res = await callback(app, await authorize(app, 'unverified@example.com', jar), jar);
    assert.equal(res.statusCode, 403);
    assert.match(res.body, /not verified/);
    assert.equal(jar.values.has('notify_session'), false);
  });

  void it('refuses a callback whose state was tampered with', async () => {
    const jar = new CookieJar();
    const url = new URL(await authorize(app, 'eve@example.com', jar), PUBLIC_URL);
    url.searchParams.set('state', `${url.searchParams.get('state') ?? ''}x`);
    const res = await callback(app, `${url.pathname}${url.search}`, jar);
    assert.equal(res.statusCode, 400);
    assert.match(res.body, /could not be completed/);
    assert.equal(jar.values.has('notify_session'), false);
  });

  void it('refuses a callback without the sign-in cookie (started in another browser)', async () => {
    const jar = new CookieJar();
    const url = await authorize(app, 'eve@example.com', jar);
    const res = await callback(app, url, new CookieJar());
    assert.equal(res.statusCode, 400);
    assert.match(res.body, /Sign-in expired/);
    assert.equal(jar.values.has('notify_session'), false);
  });

  void it('refuses a forged session cookie', async () => {
    const forged = Buffer.from(JSON.stringify({ v: 1, sid: 'x'.repeat(24), u: 'root', e: 'root@example.com', csrf: 'y'.repeat(32), iat: 0, exp: 9e9 })).toString('base64url');
    const res = await app.inject({ method: 'GET', url: '/api/telegram/status', headers: { cookie: `notify_session=${forged}.AAAA` } });
    assert.equal(res.statusCode, 401);
  });

  void it('ends the session on logout: the old cookie no longer works', async () => {
    const session = await signIn(app, 'leaver@example.com');
    const oldCookie = session.jar.header();
    const refused = await app.inject({ method: 'POST', url: '/logout', headers: { cookie: oldCookie } });
    assert.equal(refused.statusCode, 403, 'logout without the anti-forgery token is refused');
    const out = await app.inject({ method: 'POST', url: '/logout', headers: { cookie: oldCookie, 'x-csrf-token': session.csrf } });
    assert.equal(out.statusCode, 303);
    assert.equal(out.headers.location, '/signed-out');
    const again = await app.inject({ method: 'GET', url: '/api/telegram/status', headers: { cookie: oldCookie } });
    assert.equal(again.statusCode, 401, 'the old session cookie is refused after logout');
    const page = await app.inject({ method: 'GET', url: '/', headers: { cookie: oldCookie } });
    assert.equal(page.statusCode, 302);
  });

  void it('accepts the sign-out form (the token as a form field)', async () => {
    const session = await signIn(app, 'former@example.com');
    const out = await app.inject({
      method: 'POST',
      url: '/logout',
      headers: { cookie: session.jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ _csrf: session.csrf }).toString(),
    });
    assert.equal(out.statusCode, 303);
    const again = await app.inject({ method: 'GET', url: '/api/telegram/status', headers: { cookie: session.jar.header() } });
    assert.equal(again.statusCode, 401);
  });

  void it('keeps a logged-out session dead after a restart', async () => {
    const session = await signIn(app, 'restart@example.com');
    await app.inject({ method: 'POST', url: '/logout', headers: { cookie: session.jar.header(), 'x-csrf-token': session.csrf } });
    const second = await buildApp({ config: readWebConfig(webEnv(provider, dataDir)) });
    try {
      const res = await second.inject({ method: 'GET', url: '/api/telegram/status', headers: { cookie: session.jar.header() } });
      assert.equal(res.statusCode, 401);
    } finally {
      await second.close();
    }
  });

  void it('redirects the page to /login without a session, and /login to the provider', async () => {
    const page = await app.inject({ method: 'GET', url: '/' });
    assert.equal(page.statusCode, 302);
    assert.equal(page.headers.location, '/login');
    const login = await app.inject({ method: 'GET', url: '/login' });
    assert.equal(login.statusCode, 302);
    const to = new URL(String(login.headers.location));
    assert.equal(to.origin, provider.issuer);
    assert.equal(to.searchParams.get('redirect_uri'), `${PUBLIC_URL}/auth/callback`);
    assert.equal(to.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(to.searchParams.get('state'));
    assert.ok(to.searchParams.get('nonce'));
  });

  void it('marks cookies Secure (and __Host-) behind an https public URL', async () => {
    const secure = await buildApp({ config: readWebConfig(webEnv(provider, dataDir, { NOTIFY_PUBLIC_URL: HTTPS_URL })) });
    try {
      const jar = new CookieJar();
      const res = await callback(secure, await authorize(secure, 'tls@example.com', jar, HTTPS_URL), jar);
      assert.equal(res.statusCode, 303);
      const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-notify_session='));
      assert.ok(cookie, 'a __Host- session cookie is set');
      assert.match(cookie, /; Secure/);
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /Path=\//);
      const page = await secure.inject({ method: 'GET', url: '/', headers: { cookie: jar.header() } });
      assert.ok(csrfOf(page.body));
      assert.match(String(page.headers['strict-transport-security']), /max-age=/);
    } finally {
      await secure.close();
    }
  });
});

void describe('web sign-in configuration', () => {
  void it('refuses to start when neither NOTIFY_ALLOWED_DOMAINS nor NOTIFY_ALLOWED_EMAILS is set', () => {
    assert.throws(
      () =>
        readWebConfig({
          OIDC_CLIENT_ID: 'x',
          NOTIFY_SESSION_SECRET: 's'.repeat(40),
        }),
      (err: unknown) => err instanceof ConfigError && /Neither NOTIFY_ALLOWED_DOMAINS nor NOTIFY_ALLOWED_EMAILS/.test(err.message),
    );
  });

  void it('refuses a short session secret and a plain-http remote issuer', () => {
    assert.throws(
      () => readWebConfig({ OIDC_CLIENT_ID: 'x', NOTIFY_SESSION_SECRET: 'short', NOTIFY_ALLOWED_DOMAINS: 'example.com', OIDC_ISSUER: 'http://idp.example.com' }),
      (err: unknown) => err instanceof ConfigError && /too short/.test(err.message) && /must use https/.test(err.message),
    );
  });

  void it('derives usernames by the README\'s rule', () => {
    assert.equal(usernameFor('John.Doe@example.com', ['example.com', 'other.org'], []), 'john.doe');
    assert.equal(usernameFor('jane@other.org', ['example.com', 'other.org'], []), 'jane_other_org');
    assert.equal(usernameFor('petr@simecek.org', ['example.com'], ['petr@simecek.org']), 'petr_simecek_org');
    assert.equal(usernameFor('x@sub.example.com', ['example.com'], []), null, 'a subdomain is another domain');
    assert.equal(usernameFor('x@evil.test', ['example.com'], ['petr@simecek.org']), null);
  });
});
