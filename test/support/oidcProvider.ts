/**
 * A real OpenID Connect provider (oidc-provider) on 127.0.0.1 for the dashboard's tests:
 * one confidential test client, and accounts whose e-mail (and whether it is verified)
 * the test chooses. Its sign-in page is a small form that asks for an e-mail address, so a
 * browser can fill it in and an HTTP client can post it; consent is granted automatically
 * (a first-party client, as Google treats an internal app).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildLocalProvider, interactionPath, readForm } from '../../src/dev/oidcCore.js';
import { esc } from '../../src/shared/html.js';

/** What an account's ID token and UserInfo say. */
export interface TestAccount {
  email: string;
  emailVerified: boolean;
}

/** A running provider. */
export interface TestOidcProvider {
  /** Issuer identifier (`http://127.0.0.1:<port>`). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Sets what the account signing in as `email` claims (unknown addresses are verified). */
  setAccount(email: string, opts: { emailVerified: boolean }): void;
  /** Server-side errors the provider reported (a test can assert there were none). */
  errors: string[];
  close(): Promise<void>;
}

function loginForm(uid: string, clientId: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test identity provider: sign in</title></head>
<body>
<h1>Sign in</h1>
<p>Test provider; client <code>${esc(clientId)}</code>.</p>
<form method="post" action="/interaction/${esc(uid)}/login">
  <label for="email">E-mail address</label>
  <input id="email" name="email" type="email" autocomplete="email" required>
  <button type="submit">Continue</button>
</form>
</body></html>`;
}

/**
 * Starts the provider. `redirectUris` are the test client's registered redirect URIs
 * (the dashboard's `<NOTIFY_PUBLIC_URL>/auth/callback`); `port` and `clientSecret` are
 * chosen when a separately started dashboard must be configured with them in advance.
 */
export async function startOidcProvider(opts: { redirectUris: string[]; port?: number; clientSecret?: string }): Promise<TestOidcProvider> {
  const accounts = new Map<string, TestAccount>();
  const errors: string[] = [];
  const clientId = 'notify-web-test';
  const clientSecret = opts.clientSecret ?? randomBytes(24).toString('base64url');

  let handler: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | null = null;
  const server = http.createServer((req, res) => {
    if (handler) handler(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const provider = await buildLocalProvider({
    issuer,
    clientId,
    clientSecret,
    redirectUris: opts.redirectUris,
    kid: 'test-key',
    claims: (id) => {
      const account = accounts.get(id.toLowerCase()) ?? { email: id, emailVerified: true };
      return { email: account.email, email_verified: account.emailVerified };
    },
    onError: (message) => errors.push(message),
  });

  const callback = provider.callback();
  handler = (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const m = interactionPath(url.pathname);
    if (!m) {
      callback(req, res);
      return;
    }
    void (async () => {
      try {
        const details = await provider.interactionDetails(req, res);
        if (req.method === 'GET') {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
          res.end(loginForm(details.uid, clientId));
          return;
        }
        if (req.method === 'POST' && m.login) {
          const form = await readForm(req);
          const email = (form.get('email') ?? '').trim();
          if (email === '') {
            res.writeHead(400, { 'content-type': 'text/plain' }).end('email is required');
            return;
          }
          await provider.interactionFinished(req, res, { login: { accountId: email.toLowerCase() } }, { mergeWithLastSubmission: false });
          return;
        }
        res.writeHead(405).end();
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
        if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`interaction failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    })();
  };

  return {
    issuer,
    clientId,
    clientSecret,
    errors,
    setAccount(email, o) {
      accounts.set(email.toLowerCase(), { email, emailVerified: o.emailVerified });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
