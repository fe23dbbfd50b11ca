/**
 * The dashboard's configuration, read from the environment, and the `--help` text that
 * lists every variable with its default.
 */
import { METRICS_ENV_HELP, type MetricsAddress, readMetricsAddress } from '../shared/metrics.js';
import { ConfigError, EnvReader, readCommonConfig } from '../shared/config.js';

/** Everything notify-web needs to know from its environment. */
export interface WebConfig {
  dataDir: string;
  socketPath: string;
  /** PostgreSQL for the shared state of a fleet; unset = the data files. */
  databaseUrl: string | undefined;
  /** This replica's name. */
  instance: string;
  host: string;
  port: number;
  /** External base URL without a trailing slash. */
  publicUrl: string;
  /** `${publicUrl}/auth/callback`. */
  redirectUri: string;
  /** Cookies get `Secure` (the public URL is https). */
  secureCookies: boolean;
  oidc: {
    issuer: string;
    clientId: string;
    clientSecret: string | undefined;
    /** Plain-http discovery and token calls: only for an issuer on this machine. */
    allowInsecureRequests: boolean;
  };
  /** Lower-cased; the first one gives short usernames. */
  allowedDomains: string[];
  /** Lower-cased single addresses. */
  allowedEmails: string[];
  sessionSecret: string;
  sessionTtlMs: number;
  /** Without the leading `@`; undefined when not configured. */
  botUsername: string | undefined;
  analystGroup: string | undefined;
  /** Accounts let in although they are system or service accounts (NOTIFY_SIGN_IN_EXCEPTIONS). */
  signInExceptions: string[];
  verify: {
    perUser: number;
    overall: number;
    windowMs: number;
  };
  trustProxy: boolean;
  /** Limits of the listener (see guardConnections). */
  connections: { requestTimeoutMs: number; perAddress: number; total: number };
  /** DESKTOP_JWT_SECRET: signs desktop tokens; undefined disables them. */
  desktopSecret: string | undefined;
  /** The desktop app's URL scheme: the sign-in link is `<scheme>://auth?token=...`. */
  desktopUrlScheme: string;
  /** Values that must never be logged. */
  secrets: string[];
  /** Where to serve Prometheus metrics; undefined = nowhere. */
  metricsAddr?: MetricsAddress | undefined;
}

/** One documented variable: what `--help` prints. */
interface VariableDoc {
  name: string;
  fallback: string;
  meaning: string;
}

/** Every variable notify-web reads, with its default, in the order `--help` lists them. */
export const WEB_VARIABLES: readonly VariableDoc[] = [
  { name: 'OIDC_ISSUER', fallback: 'https://accounts.google.com', meaning: 'OpenID Connect issuer (Google or any other)' },
  { name: 'OIDC_CLIENT_ID', fallback: '(required)', meaning: 'OIDC client id' },
  { name: 'OIDC_CLIENT_SECRET', fallback: '(none: public client with PKCE only)', meaning: 'OIDC client secret; never logged' },
  { name: 'NOTIFY_ALLOWED_DOMAINS', fallback: '(empty)', meaning: 'comma list of e-mail domains allowed to sign in; the first gives short usernames (john.doe@first.domain -> john.doe)' },
  { name: 'NOTIFY_ALLOWED_EMAILS', fallback: '(empty)', meaning: 'comma list of further single addresses allowed to sign in (petr@simecek.org -> petr_simecek_org); with neither list set notify-web refuses to start' },
  { name: 'NOTIFY_SESSION_SECRET', fallback: '(required, 32+ characters)', meaning: 'key that signs session cookies, e.g. `openssl rand -hex 32`; never logged' },
  { name: 'NOTIFY_SESSION_TTL', fallback: '12h', meaning: 'how long a sign-in lasts (30m, 12h, 1d ...)' },
  { name: 'NOTIFY_PUBLIC_URL', fallback: 'http://localhost:8080', meaning: 'external base URL; register <it>/auth/callback as the redirect URI; https makes cookies Secure' },
  { name: 'NOTIFY_WEB_HOST', fallback: '127.0.0.1', meaning: 'listen address' },
  { name: 'NOTIFY_WEB_PORT', fallback: '8080', meaning: 'listen port' },
  { name: 'NOTIFY_WEB_TRUST_PROXY', fallback: 'false', meaning: 'true behind a reverse proxy (client address from X-Forwarded-For in logs)' },
  { name: 'NOTIFY_WEB_REQUEST_TIMEOUT', fallback: '30s', meaning: 'a request (headers and body) must arrive within this long; else 408 and the connection is closed' },
  { name: 'NOTIFY_WEB_MAX_CONNECTIONS_PER_ADDRESS', fallback: '64', meaning: 'connections one client address may hold open (not applied behind a proxy, NOTIFY_WEB_TRUST_PROXY=true, whose address is every client\'s)' },
  { name: 'NOTIFY_WEB_MAX_CONNECTIONS', fallback: '2000', meaning: 'connections the dashboard holds open at once; more are answered 503' },
  { name: 'TELEGRAM_BOT_USERNAME', fallback: '(none: instructions say "the bot", no one-tap link)', meaning: 'the bot\'s @name, shown in the link instructions and used for t.me links' },
  { name: 'NOTIFY_DATA_DIR', fallback: '/data/notifications', meaning: 'shared data directory (telegram_users.json, pending_codes.json, link_tokens.json)' },
  { name: 'NOTIFY_SOCKET', fallback: '/run/notify-bot/bot.sock', meaning: 'the bot\'s send API socket (welcome messages; add this account to NOTIFY_TRUSTED_USERS)' },
  { name: 'NOTIFY_ANALYST_GROUP', fallback: '(empty = no check)', meaning: 'when set, only members of this group can link Telegram' },
  { name: 'NOTIFY_SIGN_IN_EXCEPTIONS', fallback: '(empty)', meaning: 'comma list of server accounts that may sign in although they are system or service accounts (root, uids outside login.defs\' UID_MIN..UID_MAX, no login shell, the dashboard\'s or the bot\'s own); the local first-run mode names the account it runs as' },
  { name: 'NOTIFY_VERIFY_USER_LIMIT', fallback: '10', meaning: 'wrong code guesses one user may make per window (then 429)' },
  { name: 'NOTIFY_VERIFY_GLOBAL_LIMIT', fallback: '100', meaning: 'wrong code guesses all users together may make per window (then 429)' },
  { name: 'NOTIFY_VERIFY_WINDOW', fallback: '15m', meaning: 'the window of those two limits' },
  { name: 'DESKTOP_JWT_SECRET', fallback: '(none)', meaning: 'HS256 secret for desktop tokens; never logged' },
  { name: 'NOTIFY_DESKTOP_URL_SCHEME', fallback: 'data-analyst', meaning: 'the desktop app\'s URL scheme: /desktop/link hands it <scheme>://auth?token=...' },
  { name: 'NOTIFY_LOG_LEVEL', fallback: 'info', meaning: 'log level (debug, info, warn, error)' },
  { name: METRICS_ENV_HELP[0], fallback: METRICS_ENV_HELP[1], meaning: METRICS_ENV_HELP[2] },
];

/** The `--help` text. */
export function helpText(): string {
  const width = Math.max(...WEB_VARIABLES.map((v) => v.name.length));
  const lines = WEB_VARIABLES.map((v) => `  ${v.name.padEnd(width)}  [${v.fallback}]\n  ${' '.repeat(width)}  ${v.meaning}`);
  return [
    'Usage: notify-web [--help]',
    '',
    'The notifications dashboard: Google (OpenID Connect) sign-in and the "Telegram',
    'Notifications" card where analysts link, check and unlink their Telegram chat.',
    '',
    'Routes: GET / (dashboard), GET /login, GET /auth/callback, POST /logout,',
    '        GET /api/telegram/status, POST /api/telegram/verify, POST /api/telegram/unlink,',
    '        POST /api/telegram/link-token, GET /healthz,',
    '        GET /api/teams, POST /api/teams/link, POST /api/teams/access, POST /api/teams/unlink (team chats),',
    '        GET|POST /api/desktop/tokens, POST /api/desktop/tokens/revoke,',
    '        GET /desktop/link, POST /api/desktop/authorize, POST /api/desktop/unlink,',
    '        GET /api/desktop/scripts, POST /api/desktop/scripts/run, POST /api/desktop/refresh (desktop bearer token),',
    '        GET /api/notifications/images/<name>.png (the unguessable name is the permission)',
    '',
    'Environment variables [default]:',
    ...lines,
    '',
  ].join('\n');
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname === '::1' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/** NOTIFY_DESKTOP_URL_SCHEME: a URL scheme (RFC 3986), and not one a browser handles itself. */
function urlScheme(r: EnvReader): string {
  const scheme = r.string('NOTIFY_DESKTOP_URL_SCHEME', 'data-analyst').toLowerCase();
  if (!/^[a-z][a-z0-9+.-]{0,31}$/.test(scheme) || ['http', 'https', 'javascript', 'data', 'file', 'blob'].includes(scheme)) {
    r.problem(`NOTIFY_DESKTOP_URL_SCHEME must be the desktop app's own URL scheme such as data-analyst (got '${scheme}')`);
  }
  return scheme;
}

/** Reads and checks the configuration; throws ConfigError listing every problem. */
export function readWebConfig(env: NodeJS.ProcessEnv = process.env): WebConfig {
  const r = new EnvReader(env);
  const common = readCommonConfig(r);
  const publicUrl = r.url('NOTIFY_PUBLIC_URL', 'http://localhost:8080');
  const issuer = r.url('OIDC_ISSUER', 'https://accounts.google.com');
  const clientId = r.required('OIDC_CLIENT_ID', 'the client id of the OAuth client registered with the OpenID Connect provider');
  const clientSecret = r.optional('OIDC_CLIENT_SECRET');
  const sessionSecret = r.required('NOTIFY_SESSION_SECRET', 'a random key of 32 or more characters, e.g. from `openssl rand -hex 32`');
  if (sessionSecret !== '' && sessionSecret.length < 32) {
    r.problem(`NOTIFY_SESSION_SECRET is too short (${sessionSecret.length} characters); use 32 or more, e.g. from \`openssl rand -hex 32\``);
  }
  const allowedDomains = r.list('NOTIFY_ALLOWED_DOMAINS').map((d) => d.toLowerCase().replace(/^@/, ''));
  const allowedEmails = r.list('NOTIFY_ALLOWED_EMAILS').map((e) => e.toLowerCase());
  if (allowedDomains.length === 0 && allowedEmails.length === 0) {
    r.problem('Neither NOTIFY_ALLOWED_DOMAINS nor NOTIFY_ALLOWED_EMAILS is set: nobody could sign in. Set NOTIFY_ALLOWED_DOMAINS to your e-mail domain (e.g. example.com) and/or NOTIFY_ALLOWED_EMAILS to single addresses.');
  }
  for (const e of allowedEmails) {
    if (!/^[^@\s]+@[^@\s]+$/.test(e)) r.problem(`NOTIFY_ALLOWED_EMAILS holds '${e}', which is not an e-mail address`);
  }
  for (const d of allowedDomains) {
    if (!/^[a-z0-9.-]+\.[a-z0-9-]+$/.test(d)) r.problem(`NOTIFY_ALLOWED_DOMAINS holds '${d}', which is not a domain name`);
  }
  const sessionTtlMs = r.durationMs('NOTIFY_SESSION_TTL', 12 * 3_600_000);
  if (sessionTtlMs < 60_000) r.problem('NOTIFY_SESSION_TTL must be at least 1m');

  let allowInsecureRequests = false;
  try {
    const u = new URL(issuer);
    if (u.protocol === 'http:') {
      if (isLoopbackHost(u.hostname)) allowInsecureRequests = true;
      else r.problem(`OIDC_ISSUER must use https (got '${issuer}'); plain http is accepted only for an issuer on this machine`);
    }
  } catch {
    // r.url already reported it.
  }
  const botUsername = r.optional('TELEGRAM_BOT_USERNAME')?.replace(/^@/, '');
  if (botUsername !== undefined && !/^[A-Za-z0-9_]{3,64}$/.test(botUsername)) {
    r.problem(`TELEGRAM_BOT_USERNAME must be the bot's user name such as my_alerts_bot (got '${botUsername}')`);
  }
  const config: WebConfig = {
    dataDir: common.dataDir,
    socketPath: common.socketPath,
    databaseUrl: common.databaseUrl,
    instance: common.instance,
    host: r.string('NOTIFY_WEB_HOST', '127.0.0.1'),
    port: r.port('NOTIFY_WEB_PORT', 8080),
    publicUrl,
    redirectUri: `${publicUrl}/auth/callback`,
    secureCookies: publicUrl.startsWith('https:'),
    oidc: { issuer, clientId, clientSecret, allowInsecureRequests },
    allowedDomains,
    allowedEmails,
    sessionSecret,
    sessionTtlMs,
    botUsername,
    analystGroup: r.optional('NOTIFY_ANALYST_GROUP'),
    signInExceptions: r.list('NOTIFY_SIGN_IN_EXCEPTIONS'),
    verify: {
      perUser: r.int('NOTIFY_VERIFY_USER_LIMIT', 10, 1, 1_000_000),
      overall: r.int('NOTIFY_VERIFY_GLOBAL_LIMIT', 100, 1, 1_000_000),
      windowMs: r.durationMs('NOTIFY_VERIFY_WINDOW', 15 * 60_000),
    },
    trustProxy: r.bool('NOTIFY_WEB_TRUST_PROXY', false),
    connections: {
      requestTimeoutMs: r.durationMs('NOTIFY_WEB_REQUEST_TIMEOUT', 30_000),
      perAddress: r.int('NOTIFY_WEB_MAX_CONNECTIONS_PER_ADDRESS', 64, 1, 10_000_000),
      total: r.int('NOTIFY_WEB_MAX_CONNECTIONS', 2000, 1, 10_000_000),
    },
    desktopSecret: r.optional('DESKTOP_JWT_SECRET'),
    desktopUrlScheme: urlScheme(r),
    secrets: [clientSecret, sessionSecret, r.optional('DESKTOP_JWT_SECRET')].filter((s): s is string => s !== undefined && s !== ''),
    metricsAddr: readMetricsAddress(r),
  };
  r.done();
  return config;
}

export { ConfigError };
