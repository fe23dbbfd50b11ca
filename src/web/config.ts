/**
 * The dashboard's configuration, read from the environment (settings declared in
 * shared/settings.ts), and its `--help` text.
 */
import { splitCommand } from '../scripts/client.js';
import { ConfigError, EnvReader, readCommonConfig } from '../shared/config.js';
import type { LogLevel } from '../shared/settings.js';
import { type MetricsAddress, readMetricsAddress } from '../shared/metrics.js';
import { settingsHelp } from '../shared/settingsDocs.js';

/** Everything notify-web needs to know from its environment. */
export interface WebConfig {
  dataDir: string;
  socketPath: string;
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
  /** PostgreSQL for the shared state of a fleet; unset = the data files. */
  databaseUrl: string | undefined;
  /** This replica's name. */
  instance: string;
  /** Where to serve Prometheus metrics; undefined = nowhere. */
  metricsAddr?: MetricsAddress | undefined;
  /** How to run notify-scripts as an analyst. */
  scripts: { command: string; timeoutMs: number };
  logLevel: LogLevel;
  /** Values that must never be logged. */
  secrets: string[];
}

/** The `--help` text. */
export function helpText(): string {
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
    settingsHelp('web'),
    '',
  ].join('\n');
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname === '::1' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/** NOTIFY_DESKTOP_URL_SCHEME: a URL scheme (RFC 3986), and not one a browser handles itself. */
function urlScheme(r: EnvReader): string {
  const scheme = r.get('NOTIFY_DESKTOP_URL_SCHEME').toLowerCase();
  if (!/^[a-z][a-z0-9+.-]{0,31}$/.test(scheme) || ['http', 'https', 'javascript', 'data', 'file', 'blob'].includes(scheme)) {
    r.problem(`NOTIFY_DESKTOP_URL_SCHEME must be the desktop app's own URL scheme such as data-analyst (got '${scheme}')`);
  }
  return scheme;
}

/** Reads and checks the configuration; throws ConfigError listing every problem. */
export function readWebConfig(env: NodeJS.ProcessEnv = process.env): WebConfig {
  const r = new EnvReader('web', env);
  const common = readCommonConfig(r);
  const publicUrl = r.get('NOTIFY_PUBLIC_URL');
  const issuer = r.get('OIDC_ISSUER');
  const clientId = r.get('OIDC_CLIENT_ID') ?? '';
  const clientSecret = r.get('OIDC_CLIENT_SECRET');
  const sessionSecret = r.get('NOTIFY_SESSION_SECRET') ?? '';
  if (sessionSecret !== '' && sessionSecret.length < 32) {
    r.problem(`NOTIFY_SESSION_SECRET is too short (${sessionSecret.length} characters); use 32 or more, e.g. from \`openssl rand -hex 32\``);
  }
  const allowedDomains = r.get('NOTIFY_ALLOWED_DOMAINS').map((d) => d.toLowerCase().replace(/^@/, ''));
  const allowedEmails = r.get('NOTIFY_ALLOWED_EMAILS').map((e) => e.toLowerCase());
  if (allowedDomains.length === 0 && allowedEmails.length === 0) {
    r.problem('Neither NOTIFY_ALLOWED_DOMAINS nor NOTIFY_ALLOWED_EMAILS is set: nobody could sign in. Set NOTIFY_ALLOWED_DOMAINS to your e-mail domain (e.g. example.com) and/or NOTIFY_ALLOWED_EMAILS to single addresses.');
  }
  for (const e of allowedEmails) {
    if (!/^[^@\s]+@[^@\s]+$/.test(e)) r.problem(`NOTIFY_ALLOWED_EMAILS holds '${e}', which is not an e-mail address`);
  }
  for (const d of allowedDomains) {
    if (!/^[a-z0-9.-]+\.[a-z0-9-]+$/.test(d)) r.problem(`NOTIFY_ALLOWED_DOMAINS holds '${d}', which is not a domain name`);
  }

  let allowInsecureRequests = false;
  try {
    const u = new URL(issuer);
    if (u.protocol === 'http:') {
      if (isLoopbackHost(u.hostname)) allowInsecureRequests = true;
      else r.problem(`OIDC_ISSUER must use https (got '${issuer}'); plain http is accepted only for an issuer on this machine`);
    }
  } catch {
    // the reader already reported it.
  }
  const botUsername = r.get('TELEGRAM_BOT_USERNAME')?.replace(/^@/, '');
  if (botUsername !== undefined && !/^[A-Za-z0-9_]{3,64}$/.test(botUsername)) {
    r.problem(`TELEGRAM_BOT_USERNAME must be the bot's user name such as my_alerts_bot (got '${botUsername}')`);
  }
  const scriptsCommand = r.get('NOTIFY_SCRIPTS_COMMAND');
  try {
    splitCommand(scriptsCommand);
  } catch (err) {
    r.problem(`NOTIFY_SCRIPTS_COMMAND: ${(err as Error).message}`);
  }
  const desktopSecret = r.get('DESKTOP_JWT_SECRET');
  const config: WebConfig = {
    dataDir: common.dataDir,
    socketPath: common.socketPath,
    databaseUrl: common.databaseUrl,
    instance: common.instance,
    metricsAddr: readMetricsAddress(r),
    host: r.get('NOTIFY_WEB_HOST'),
    port: r.get('NOTIFY_WEB_PORT'),
    publicUrl,
    redirectUri: `${publicUrl}/auth/callback`,
    secureCookies: publicUrl.startsWith('https:'),
    oidc: { issuer, clientId, clientSecret, allowInsecureRequests },
    allowedDomains,
    allowedEmails,
    sessionSecret,
    sessionTtlMs: r.get('NOTIFY_SESSION_TTL'),
    botUsername,
    analystGroup: r.get('NOTIFY_ANALYST_GROUP'),
    signInExceptions: r.get('NOTIFY_SIGN_IN_EXCEPTIONS'),
    verify: {
      perUser: r.get('NOTIFY_VERIFY_USER_LIMIT'),
      overall: r.get('NOTIFY_VERIFY_GLOBAL_LIMIT'),
      windowMs: r.get('NOTIFY_VERIFY_WINDOW'),
    },
    trustProxy: r.get('NOTIFY_WEB_TRUST_PROXY'),
    connections: {
      requestTimeoutMs: r.get('NOTIFY_WEB_REQUEST_TIMEOUT'),
      perAddress: r.get('NOTIFY_WEB_MAX_CONNECTIONS_PER_ADDRESS'),
      total: r.get('NOTIFY_WEB_MAX_CONNECTIONS'),
    },
    desktopSecret,
    desktopUrlScheme: urlScheme(r),
    scripts: { command: scriptsCommand, timeoutMs: r.get('NOTIFY_SCRIPTS_HELPER_TIMEOUT') },
    logLevel: r.get('NOTIFY_LOG_LEVEL'),
    secrets: r.secrets(),
  };
  r.done();
  return config;
}

export { ConfigError };
