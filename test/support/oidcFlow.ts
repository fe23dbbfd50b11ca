/**
 * Drives the dashboard's sign-in over HTTP for tests: the dashboard through `app.inject()`,
 * the local OpenID Connect provider through real requests, cookies kept per side. No part
 * of the flow is stubbed: state, nonce, PKCE and the code exchange all happen for real.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { TestOidcProvider } from './oidcProvider.js';

/** A minimal cookie jar (name -> value), enough for one host. */
export class CookieJar {
  readonly values = new Map<string, string>();

  /** Takes the Set-Cookie headers of a response (removals included). */
  take(setCookie: string | string[] | undefined): void {
    const list = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie];
    for (const line of list) {
      const [pair, ...attrs] = line.split(';');
      const eq = (pair ?? '').indexOf('=');
      if (eq <= 0) continue;
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1] ?? '') <= Date.now()));
      if (value === '' || expired) this.values.delete(name);
      else this.values.set(name, value);
    }
  }

  /** The Cookie header value. */
  header(): string {
    return [...this.values].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/** The environment of a dashboard signed in through `provider`. */
export function webEnv(provider: TestOidcProvider, dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    NOTIFY_DATA_DIR: dataDir,
    NOTIFY_SOCKET: `${dataDir}/no-bot.sock`,
    NOTIFY_PUBLIC_URL: 'http://dashboard.test',
    OIDC_ISSUER: provider.issuer,
    OIDC_CLIENT_ID: provider.clientId,
    OIDC_CLIENT_SECRET: provider.clientSecret,
    NOTIFY_ALLOWED_DOMAINS: 'example.com',
    NOTIFY_ALLOWED_EMAILS: 'petr@simecek.org',
    NOTIFY_SESSION_SECRET: 'test-session-secret-0123456789abcdef0123456789',
    TELEGRAM_BOT_USERNAME: 'notify_test_bot',
    ...extra,
  };
}

function setCookies(res: Response): string[] {
  return res.headers.getSetCookie();
}

/**
 * Starts a sign-in at the dashboard and walks the provider's side as a browser would
 * (following redirects, filling in the e-mail form) until the provider redirects back to
 * the dashboard. Returns that callback URL (path and query) without calling it.
 */
export async function authorize(app: FastifyInstance, email: string, appJar: CookieJar, publicUrl = 'http://dashboard.test'): Promise<string> {
  const start = await app.inject({ method: 'GET', url: '/login', headers: { cookie: appJar.header() } });
  appJar.take(start.headers['set-cookie']);
  if (start.statusCode !== 302) throw new Error(`GET /login answered ${start.statusCode}: ${start.body.slice(0, 300)}`);
  let location = String(start.headers.location);
  const providerJar = new CookieJar();
  for (let hop = 0; hop < 20; hop++) {
    if (location.startsWith(`${publicUrl}/`)) return location.slice(publicUrl.length);
    const res = await fetch(location, { redirect: 'manual', headers: { cookie: providerJar.header() } });
    providerJar.take(setCookies(res));
    if (res.status >= 300 && res.status < 400) {
      location = new URL(res.headers.get('location') ?? '', location).href;
      continue;
    }
    const html = await res.text();
    const form = /<form method="post" action="([^"]+)"/.exec(html);
    if (res.status !== 200 || !form) throw new Error(`the provider answered ${res.status} at ${location}: ${html.slice(0, 300)}`);
    const post = await fetch(new URL(form[1]!, location), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: providerJar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ email }).toString(),
    });
    providerJar.take(setCookies(post));
    if (post.status < 300 || post.status >= 400) throw new Error(`posting the sign-in form answered ${post.status}: ${(await post.text()).slice(0, 300)}`);
    location = new URL(post.headers.get('location') ?? '', location).href;
  }
  throw new Error('too many redirects in the sign-in flow');
}

/** Calls the dashboard's callback with the jar's cookies and takes the cookies it sets. */
export async function callback(app: FastifyInstance, url: string, appJar: CookieJar): Promise<LightMyRequestResponse> {
  const res = await app.inject({ method: 'GET', url, headers: { cookie: appJar.header() } });
  appJar.take(res.headers['set-cookie']);
  return res;
}

/** A signed-in browser: its cookies and the page's anti-forgery token. */
export interface SignedIn {
  jar: CookieJar;
  csrf: string;
  /** The dashboard page's HTML. */
  page: string;
}

/** The anti-forgery token of a page. */
export function csrfOf(html: string): string {
  const m = /<meta name="csrf-token" content="([^"]+)">/.exec(html);
  if (!m) throw new Error('the page has no csrf-token meta tag');
  return m[1]!;
}

/** Signs in as `email` through the whole flow and loads the dashboard page. */
export async function signIn(app: FastifyInstance, email: string): Promise<SignedIn> {
  const jar = new CookieJar();
  const cb = await callback(app, await authorize(app, email, jar), jar);
  if (cb.statusCode !== 303 || cb.headers.location !== '/') throw new Error(`sign-in as ${email} failed: ${cb.statusCode} ${cb.body.slice(0, 400)}`);
  const page = await app.inject({ method: 'GET', url: '/', headers: { cookie: jar.header() } });
  if (page.statusCode !== 200) throw new Error(`GET / after sign-in answered ${page.statusCode}`);
  return { jar, csrf: csrfOf(page.body), page: page.body };
}
