/**
 * A real OpenID Connect provider (oidc-provider) on 127.0.0.1 for the dashboard's tests:
 * one confidential test client, and accounts whose e-mail (and whether it is verified)
 * the test chooses. Its sign-in page is a small form that asks for an e-mail address, so a
 * browser can fill it in and an HTTP client can post it; consent is granted automatically
 * (a first-party client, as Google treats an internal app).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** The slice of oidc-provider's Provider these tests use (the package ships no types). */
interface InteractionDetails {
  uid: string;
  prompt: { name: string; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId?: string };
  grantId?: string;
}
interface GrantLike {
  addOIDCScope(scope: string): void;
  save(): Promise<string>;
}
interface ProviderLike {
  callback(): (req: http.IncomingMessage, res: http.ServerResponse) => void;
  interactionDetails(req: http.IncomingMessage, res: http.ServerResponse): Promise<InteractionDetails>;
  interactionFinished(req: http.IncomingMessage, res: http.ServerResponse, result: Record<string, unknown>, opts?: { mergeWithLastSubmission?: boolean }): Promise<void>;
  Grant: {
    new (init: { accountId: string; clientId: string }): GrantLike;
    find(id: string): Promise<GrantLike | undefined>;
  };
  on(event: string, fn: (...args: unknown[]) => void): void;
}
type ProviderCtor = new (issuer: string, configuration: Record<string, unknown>) => ProviderLike;

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

function escHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginForm(uid: string, clientId: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test identity provider: sign in</title></head>
<body>
<h1>Sign in</h1>
<p>Test provider; client <code>${escHtml(clientId)}</code>.</p>
<form method="post" action="/interaction/${escHtml(uid)}/login">
  <label for="email">E-mail address</label>
  <input id="email" name="email" type="email" autocomplete="email" required>
  <button type="submit">Continue</button>
</form>
</body></html>`;
}

async function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * Starts the provider. `redirectUris` are the test client's registered redirect URIs
 * (the dashboard's `<NOTIFY_PUBLIC_URL>/auth/callback`).
 */
export async function startOidcProvider(opts: { redirectUris: string[] }): Promise<TestOidcProvider> {
  const moduleName = 'oidc-provider';
  const { default: Provider } = (await import(moduleName)) as { default: ProviderCtor };
  const accounts = new Map<string, TestAccount>();
  const errors: string[] = [];
  const clientId = 'notify-web-test';
  const clientSecret = randomBytes(24).toString('base64url');

  let handler: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | null = null;
  const server = http.createServer((req, res) => {
    if (handler) handler(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'test-key' };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: opts.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    findAccount: async (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: async () => {
        const account = accounts.get(id.toLowerCase()) ?? { email: id, emailVerified: true };
        return { sub: id, email: account.email, email_verified: account.emailVerified };
      },
    }),
    // First-party client: consent is implied, so only the sign-in form is interactive.
    loadExistingGrant: async (ctx: {
      oidc: { client: { clientId: string }; session: { accountId: string; grantIdFor(id: string): string | undefined }; result?: { consent?: { grantId?: string } }; provider: ProviderLike };
    }) => {
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        const existing = await ctx.oidc.provider.Grant.find(grantId);
        if (existing) return existing;
      }
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid email');
      await grant.save();
      return grant;
    },
  });
  provider.on('server_error', (_ctx: unknown, err: unknown) => errors.push(err instanceof Error ? err.message : String(err)));

  const callback = provider.callback();
  handler = (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const m = /^\/interaction\/([^/]+)(\/login)?$/.exec(url.pathname);
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
        if (req.method === 'POST' && m[2] === '/login') {
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
