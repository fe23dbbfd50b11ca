/**
 * The first run's local OpenID Connect provider (oidc-provider), started by `npm start` as
 * a child process. One confidential client (the dashboard) and one account: the e-mail in
 * FIRST_RUN_EMAIL. Its sign-in page is a one-click form with that address filled in; any
 * other address is refused. Consent is implied (a first-party client, as Google treats an
 * internal app). Listens on 127.0.0.1 only.
 *
 * Environment: FIRST_RUN_OIDC_PORT, FIRST_RUN_OIDC_CLIENT_ID, FIRST_RUN_OIDC_CLIENT_SECRET,
 * FIRST_RUN_REDIRECT_URI, FIRST_RUN_EMAIL.
 */
import http from 'node:http';
import { esc } from '../shared/html.js';
import { buildLocalProvider, interactionPath, readForm } from './oidcCore.js';

function need(name: string): string {
  const v = process.env[name];
  if (!v) {
    console.error(`localOidc: ${name} is not set (this program is started by npm start)`);
    process.exit(1);
  }
  return v;
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:flex;justify-content:center}
main{background:#fff;margin-top:10vh;padding:2rem 2.5rem;border-radius:10px;box-shadow:0 2px 12px #0002;max-width:26rem}
h1{font-size:1.3rem;margin-top:0} p{color:#444;line-height:1.4}
label{display:block;font-weight:600;margin:1rem 0 .3rem} input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
button{margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem;background:#1a73e8;color:#fff;border:0;border-radius:6px;cursor:pointer}
.err{color:#b00020}
</style></head><body><main>${body}</main></body></html>`;
}

function loginForm(uid: string, email: string, error = ''): string {
  return page(
    'Local sign-in',
    `<h1>Local sign-in</h1>
<p>This is the first run's stand-in for Google sign-in. It knows one account.</p>
${error ? `<p class="err" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
  <label for="email">E-mail address</label>
  <input id="email" name="email" type="email" value="${esc(email)}" autocomplete="email" required>
  <button type="submit">Sign in</button>
</form>`,
  );
}

async function main(): Promise<void> {
  const port = Number(need('FIRST_RUN_OIDC_PORT'));
  const clientId = need('FIRST_RUN_OIDC_CLIENT_ID');
  const clientSecret = need('FIRST_RUN_OIDC_CLIENT_SECRET');
  const redirectUri = need('FIRST_RUN_REDIRECT_URI');
  const email = need('FIRST_RUN_EMAIL').toLowerCase();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = await buildLocalProvider({
    issuer,
    clientId,
    clientSecret,
    redirectUris: [redirectUri],
    kid: 'first-run',
    claims: (id) => ({ email: id, email_verified: true }),
    onError: (message) => console.error(`server error: ${message}`),
  });

  const callback = provider.callback();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const m = interactionPath(url.pathname);
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page('Local sign-in', `<h1>Local sign-in</h1><p>Issuer of the first run. Open the dashboard to sign in as <b>${esc(email)}</b>.</p>`));
      return;
    }
    if (!m) {
      callback(req, res);
      return;
    }
    void (async () => {
      try {
        const details = await provider.interactionDetails(req, res);
        const html = { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' };
        if (req.method === 'GET') {
          res.writeHead(200, html).end(loginForm(details.uid, email));
          return;
        }
        if (req.method === 'POST' && m.login) {
          const given = ((await readForm(req)).get('email') ?? '').trim().toLowerCase();
          if (given !== email) {
            console.log(`refused a sign-in as '${given}' (only ${email} is known)`);
            res.writeHead(403, html).end(loginForm(details.uid, email, `Only ${email} can sign in here.`));
            return;
          }
          console.log(`signed in ${email}`);
          await provider.interactionFinished(req, res, { login: { accountId: email } }, { mergeWithLastSubmission: false });
          return;
        }
        res.writeHead(405).end();
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        console.error(`interaction failed: ${msg}`);
        if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' });
        res.end(page('Sign-in failed', `<h1>Sign-in failed</h1><p>${esc(msg)}</p><p>Start again from the dashboard.</p>`));
      }
    })();
  });
  server.on('error', (err) => {
    console.error(`cannot listen on 127.0.0.1:${port}: ${err.message}`);
    process.exit(1);
  });
  server.listen(port, '127.0.0.1', () => console.log(`local OpenID Connect provider at ${issuer} (account ${email})`));
  const stop = (): void => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

await main();
