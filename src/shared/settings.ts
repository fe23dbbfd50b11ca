/**
 * Every setting of every program, declared once: its kind, default, bounds, which programs
 * read it, what it means and whether it is a secret. From this table come the typed
 * readers (EnvReader.get in config.ts), every program's `--help`, the README's
 * configuration tables and the tunables block of deploy/notify.env.example
 * (settingsDocs.ts; `npm run gen` rewrites the generated text, a test fails while it is
 * stale).
 *
 * Adding a setting is one entry here:
 *   NOTIFY_THING: { kind: 'duration', default: '30s', min: '1ms', programs: ['bot'], meaning: 'what it does' },
 * then read it where it is used with `reader.get('NOTIFY_THING')` (typed by its kind: a
 * duration is milliseconds, a size bytes) and run `npm run gen`. Defaults and bounds are
 * written as a person would write them in the environment, and parsed by the same
 * parser, so what `--help` shows is always a value the reader accepts.
 *
 * This module and config.ts import nothing (no zod, no pino): the runner and the script
 * helper start on every cron tick and every dashboard click.
 */

/** The programs that read settings. */
export type Program = 'bot' | 'web' | 'gateway' | 'runner' | 'scripts' | 'notify';

/** The programs, in the order the documentation lists them, with their command names. */
export const PROGRAMS: Readonly<Record<Program, string>> = {
  bot: 'notify-bot',
  web: 'notify-web',
  gateway: 'notify-gateway',
  runner: 'notify-runner',
  scripts: 'notify-scripts',
  notify: 'notify',
};

/** How a setting's text is read. */
export type Kind =
  /** Any text (paths, group names, commands). */
  | 'text'
  /** An http:// or https:// URL; a trailing slash is dropped. */
  | 'url'
  /** A comma-separated list. */
  | 'list'
  /** A whole number within [min, max]. */
  | 'int'
  /** A TCP port (0 to 65535). */
  | 'port'
  /** A duration (units.ts), in milliseconds, within [min, max]. */
  | 'duration'
  /** A size (units.ts), in bytes, within [min, max]. */
  | 'size'
  /** true/false (also 1/0, yes/no). */
  | 'bool'
  /** A log level. */
  | 'level';

/** The log levels NOTIFY_LOG_LEVEL accepts (pino's). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One setting's declaration. */
export interface SettingSpec {
  readonly kind: Kind;
  /** The default, written as in the environment; absent when unset means "none". */
  readonly default?: string;
  /** What being unset means, when there is no default (shown as the default). */
  readonly unset?: string;
  /** Lowest and highest accepted value, written as in the environment. */
  readonly min?: string;
  readonly max?: string;
  /** The programs that read it. */
  readonly programs: readonly Program[];
  /** The programs that refuse to start without it. */
  readonly required?: readonly Program[];
  /** How to get a value, in the "is not set" error. */
  readonly hint?: string;
  /** What it is for, one line. */
  readonly meaning: string;
  /** Never logged, never shown. */
  readonly secret?: boolean;
  /** Listed, commented out with its default, in the env template's tunables block. */
  readonly tunable?: boolean;
}

const ALL_SERVICES = ['bot', 'web', 'gateway'] as const;

/** The registry. The order is the order of `--help` and the README. */
export const SETTINGS = {
  // --- read by several programs -------------------------------------------------------
  NOTIFY_DATA_DIR: { kind: 'text', default: '/data/notifications', programs: ALL_SERVICES, meaning: "shared data directory (mode 0770, the services' group)" },
  NOTIFY_SOCKET: { kind: 'text', default: '/run/notify-bot/bot.sock', programs: ['bot', 'web', 'runner', 'scripts', 'notify'], meaning: 'the send API socket' },
  NOTIFY_GATEWAY_SOCKET: { kind: 'text', default: '/run/ws-gateway/ws.sock', programs: ['bot', 'gateway'], meaning: "the desktop gateway's dispatch socket" },
  NOTIFY_SCRIPTS_COMMAND: {
    kind: 'text',
    default: 'sudo -n -u {user} /usr/local/bin/notify-scripts',
    programs: ['bot', 'web'],
    meaning: "how services run an analyst's scripts; {user} is the analyst (split into words, no shell)",
  },
  NOTIFY_SCRIPTS_HELPER_TIMEOUT: {
    kind: 'duration',
    default: '90s',
    min: '1ms',
    max: '24d',
    programs: ['bot', 'web'],
    meaning: "longest a script-helper call may take (includes the script's own timeout)",
    tunable: true,
  },
  NOTIFY_ANALYST_GROUP: { kind: 'text', unset: 'no check', programs: ['bot', 'web'], meaning: 'only members of this group can link Telegram or be sent to' },
  NOTIFY_PUBLIC_URL: {
    kind: 'url',
    default: 'http://localhost:8080',
    programs: ['bot', 'web'],
    meaning: "the dashboard's external URL (OIDC redirect <it>/auth/callback, desktop image links); https makes cookies Secure",
  },
  DESKTOP_JWT_SECRET: {
    kind: 'text',
    unset: 'desktop tokens off',
    programs: ['web', 'gateway'],
    required: ['gateway'],
    hint: 'set it to the same random secret as notify-web (e.g. `openssl rand -hex 32`)',
    meaning: 'HS256 secret of desktop tokens: the dashboard signs them, the gateway checks them',
    secret: true,
  },
  NOTIFY_LOG_LEVEL: { kind: 'level', default: 'info', programs: ALL_SERVICES, meaning: `log level (${LOG_LEVELS.join(', ')})` },
  NOTIFY_METRICS_ADDR: { kind: 'text', unset: 'no metrics', programs: ALL_SERVICES, meaning: 'serve Prometheus metrics at GET /metrics on <host>:<port>, e.g. 127.0.0.1:9464', tunable: true },
  NOTIFY_DATABASE_URL: {
    kind: 'text',
    unset: 'the data files',
    programs: ALL_SERVICES,
    meaning: 'PostgreSQL URL for the shared state of a fleet (postgres://user@/db?host=/run/postgresql); its password is never logged',
    tunable: true,
  },
  NOTIFY_INSTANCE: { kind: 'text', unset: 'the host name', programs: ALL_SERVICES, meaning: "this replica's name in logs, /health and metrics", tunable: true },

  // --- notify-bot -----------------------------------------------------------------------
  TELEGRAM_BOT_TOKEN: {
    kind: 'text',
    programs: ['bot'],
    required: ['bot'],
    hint: 'set it to the token @BotFather gave you (or use the local first-run mode, see the README)',
    meaning: 'bot token from @BotFather',
    secret: true,
  },
  TELEGRAM_API_ROOT: { kind: 'url', default: 'https://api.telegram.org', programs: ['bot'], meaning: 'Bot API root (tests and the first run point it at a local fake)' },
  NOTIFY_SOCKET_GROUP: { kind: 'text', unset: "the bot's group", programs: ['bot'], meaning: "group owning the send socket (mode 0660): the analysts' group" },
  NOTIFY_TRUSTED_USERS: {
    kind: 'list',
    programs: ['bot'],
    meaning: "accounts that may send for anyone (root and the bot itself always may); the dashboard's account belongs here",
  },
  NOTIFY_SEND_WAIT: { kind: 'duration', default: '2s', max: '24d', programs: ['bot'], meaning: 'how long `/send` waits for delivery before answering 202', tunable: true },
  NOTIFY_SEND_WAIT_MAX: { kind: 'duration', default: '30s', max: '24d', programs: ['bot'], meaning: 'largest `Prefer: wait=` honoured', tunable: true },
  NOTIFY_GATEWAY_TIMEOUT: { kind: 'duration', default: '1s', min: '1ms', max: '24d', programs: ['bot'], meaning: 'wait for the gateway when the user has no linked Telegram', tunable: true },
  NOTIFY_TELEGRAM_RATE: { kind: 'int', default: '30', min: '1', max: '100000', programs: ['bot'], meaning: 'messages the whole bot sends in any `NOTIFY_TELEGRAM_WINDOW`', tunable: true },
  NOTIFY_TELEGRAM_WINDOW: { kind: 'duration', default: '1100ms', min: '1ms', max: '24d', programs: ['bot'], meaning: "that window (a little over Telegram's 1 s, for network jitter)", tunable: true },
  NOTIFY_CHAT_BURST: { kind: 'int', default: '3', min: '1', max: '1000', programs: ['bot'], meaning: 'messages a chat may get at once before pacing', tunable: true },
  NOTIFY_CHAT_INTERVAL: { kind: 'duration', default: '1050ms', max: '24d', programs: ['bot'], meaning: 'then one message per chat per this interval', tunable: true },
  NOTIFY_GROUP_RATE: { kind: 'int', default: '20', min: '1', max: '10000', programs: ['bot'], meaning: 'messages one group (team chat) gets in any `NOTIFY_GROUP_WINDOW` (Telegram allows about 20 a minute)', tunable: true },
  NOTIFY_GROUP_WINDOW: { kind: 'duration', default: '61s', min: '1ms', max: '24d', programs: ['bot'], meaning: 'that window (a little over a minute, for jitter)', tunable: true },
  NOTIFY_TELEGRAM_CONCURRENCY: { kind: 'int', default: '100', min: '1', max: '10000', programs: ['bot'], meaning: 'requests to Telegram in flight at once', tunable: true },
  NOTIFY_TELEGRAM_TIMEOUT: { kind: 'duration', default: '30s', min: '1s', max: '600s', programs: ['bot'], meaning: 'how long one send request to Telegram may take', tunable: true },
  NOTIFY_QUEUE_MAX: { kind: 'int', default: '20000', min: '1', max: '10000000', programs: ['bot'], meaning: 'notifications queued at most; beyond, 503 with `Retry-After`', tunable: true },
  NOTIFY_USER_QUEUE_MAX: { kind: 'int', default: '2000', min: '1', max: '10000000', programs: ['bot'], meaning: 'notifications one analyst may have queued at once; beyond, that analyst gets 429 with `Retry-After` and the others go on', tunable: true },
  NOTIFY_USER_QUEUE_BYTES: { kind: 'size', default: '100MiB', min: '1KiB', programs: ['bot'], meaning: 'bytes (notifications and their photos) one analyst may have queued at once; beyond, 429 with `Retry-After`', tunable: true },
  NOTIFY_USER_IMAGE_BYTES: {
    kind: 'size',
    default: '256MiB',
    min: '0',
    programs: ['bot'],
    meaning: 'bytes of images one analyst may keep for desktop apps (each image is kept 7 days, stored once with its queued copy); a photo beyond it gets 429 with `Retry-After` (when the oldest expires), texts and the other analysts go on',
    tunable: true,
  },
  NOTIFY_RETRY_MAX_AGE: { kind: 'duration', default: '24h', min: '1ms', programs: ['bot'], meaning: 'retry budget; then the message goes to the dead-letter queue', tunable: true },
  NOTIFY_RETRY_BASE: { kind: 'duration', default: '1s', min: '1ms', max: '24d', programs: ['bot'], meaning: 'first retry delay (doubles per attempt, with jitter)', tunable: true },
  NOTIFY_RETRY_MAX_DELAY: { kind: 'duration', default: '5m', min: '1ms', max: '24d', programs: ['bot'], meaning: 'longest delay between retries', tunable: true },
  NOTIFY_OUTBOX_RESCAN: { kind: 'duration', default: '5s', min: '1ms', max: '24d', programs: ['bot'], meaning: 'how often the queue directory is scanned for re-queued messages', tunable: true },
  NOTIFY_OUTBOX_COMMIT_INTERVAL: {
    kind: 'duration',
    default: '4ms',
    max: '10s',
    programs: ['bot'],
    meaning: 'the outbox writes and syncs accepted notifications together, at most once per this interval (0 = back to back)',
    tunable: true,
  },
  NOTIFY_OUTBOX_SEGMENT_SIZE: { kind: 'size', default: '4MiB', min: '4KiB', max: '1GiB', programs: ['bot'], meaning: 'outbox journal size after which it is compacted in the background', tunable: true },
  NOTIFY_MAX_BODY: { kind: 'size', default: '256KiB', min: '1KiB', max: '64MiB', programs: ['bot'], meaning: 'largest JSON body of `/send`', tunable: true },
  NOTIFY_MAX_PHOTO: { kind: 'size', default: '10MiB', min: '1KiB', max: '50MiB', programs: ['bot'], meaning: 'largest photo', tunable: true },
  NOTIFY_REQUEST_TIMEOUT: {
    kind: 'duration',
    default: '30s',
    min: '1ms',
    max: '24d',
    programs: ['bot'],
    meaning: 'a send API request (headers and body) must arrive within this long, else 408 and the connection is closed',
    tunable: true,
  },
  NOTIFY_MAX_CONNECTIONS_PER_UID: {
    kind: 'int',
    default: '32',
    min: '1',
    max: '100000',
    programs: ['bot'],
    meaning: 'connections one uid may hold open on the send socket at once; more are answered 503 and closed',
    tunable: true,
  },
  NOTIFY_MIN_FREE_DISK: {
    kind: 'size',
    default: '64MiB',
    min: '0',
    programs: ['bot'],
    meaning: "new notifications are refused (507) while the data directory's file system has less free space; what is queued still has room",
    tunable: true,
  },
  NOTIFY_POLL_TIMEOUT: { kind: 'duration', default: '30s', min: '0s', max: '50s', programs: ['bot'], meaning: 'long-polling timeout of getUpdates (whole seconds)', tunable: true },
  NOTIFY_UPDATE_CONCURRENCY: {
    kind: 'int',
    default: '16',
    min: '1',
    max: '10000',
    programs: ['bot'],
    meaning: 'chats whose commands and button presses are handled at once (each chat in order, the chats round robin)',
    tunable: true,
  },
  NOTIFY_UPDATE_BACKLOG: {
    kind: 'int',
    default: '5000',
    min: '1',
    max: '10000000',
    programs: ['bot'],
    meaning: 'Telegram updates received and waiting to be handled at which the bot stops fetching more until fewer wait',
    tunable: true,
  },
  NOTIFY_STUCK_MESSAGE: {
    kind: 'duration',
    default: '15m',
    min: '1ms',
    max: '24d',
    programs: ['bot'],
    meaning: "a message Telegram keeps refusing this long while other messages go through is dead-lettered, the analyst told, and the chat's later messages go on",
    tunable: true,
  },
  NOTIFY_DIGEST_CHECK: { kind: 'duration', default: '30s', min: '1ms', max: '24d', programs: ['bot'], meaning: 'how often ended quiet hours are looked for (to send their digest)', tunable: true },
  NOTIFY_LEASE_TTL: {
    kind: 'duration',
    default: '6s',
    min: '1ms',
    max: '24d',
    programs: ['bot'],
    meaning: 'with a database: how long the Telegram lease lasts unrenewed (a dead leader is replaced within about this plus a third of it)',
    tunable: true,
  },

  // --- notify-web -----------------------------------------------------------------------
  OIDC_ISSUER: { kind: 'url', default: 'https://accounts.google.com', programs: ['web'], meaning: 'OpenID Connect issuer (Google or any other); plain http only on this machine' },
  OIDC_CLIENT_ID: {
    kind: 'text',
    programs: ['web'],
    required: ['web'],
    hint: 'the client id of the OAuth client registered with the OpenID Connect provider',
    meaning: 'OIDC client id',
  },
  OIDC_CLIENT_SECRET: { kind: 'text', unset: 'public client, PKCE only', programs: ['web'], meaning: 'OIDC client secret', secret: true },
  NOTIFY_ALLOWED_DOMAINS: {
    kind: 'list',
    programs: ['web'],
    meaning: 'e-mail domains allowed to sign in; the first gives short usernames (john.doe@first.domain -> john.doe)',
  },
  NOTIFY_ALLOWED_EMAILS: {
    kind: 'list',
    programs: ['web'],
    meaning: 'further single addresses allowed to sign in (petr@simecek.org -> petr_simecek_org); with neither list set notify-web refuses to start',
  },
  NOTIFY_SESSION_SECRET: {
    kind: 'text',
    programs: ['web'],
    required: ['web'],
    hint: 'a random key of 32 or more characters, e.g. from `openssl rand -hex 32`',
    meaning: 'key that signs session cookies, 32 characters or more (`openssl rand -hex 32`)',
    secret: true,
  },
  NOTIFY_SESSION_TTL: { kind: 'duration', default: '12h', min: '1m', programs: ['web'], meaning: 'how long a sign-in lasts', tunable: true },
  NOTIFY_WEB_HOST: { kind: 'text', default: '127.0.0.1', programs: ['web'], meaning: 'listen address' },
  NOTIFY_WEB_PORT: { kind: 'port', default: '8080', programs: ['web'], meaning: 'listen port' },
  NOTIFY_WEB_TRUST_PROXY: { kind: 'bool', default: 'false', programs: ['web'], meaning: 'true behind a reverse proxy (client addresses from X-Forwarded-For)' },
  NOTIFY_WEB_REQUEST_TIMEOUT: {
    kind: 'duration',
    default: '30s',
    min: '1ms',
    max: '24d',
    programs: ['web'],
    meaning: 'a request (headers and body) must arrive within this long; else 408 and the connection is closed',
    tunable: true,
  },
  NOTIFY_WEB_MAX_CONNECTIONS_PER_ADDRESS: {
    kind: 'int',
    default: '64',
    min: '1',
    max: '10000000',
    programs: ['web'],
    meaning: "connections one client address may hold open (not applied behind a proxy, NOTIFY_WEB_TRUST_PROXY=true, whose address is every client's)",
    tunable: true,
  },
  NOTIFY_WEB_MAX_CONNECTIONS: { kind: 'int', default: '2000', min: '1', max: '10000000', programs: ['web'], meaning: 'connections the dashboard holds open at once; more are answered 503', tunable: true },
  TELEGRAM_BOT_USERNAME: {
    kind: 'text',
    unset: 'instructions say "the bot", no one-tap link',
    programs: ['web'],
    meaning: "the bot's @name, shown in the link instructions and used for t.me links",
  },
  NOTIFY_SIGN_IN_EXCEPTIONS: {
    kind: 'list',
    programs: ['web'],
    meaning: "server accounts that may sign in although they are system or service accounts (root, uids outside login.defs' UID_MIN..UID_MAX, no login shell, the dashboard's or the bot's own); the local first-run mode names the account it runs as",
    tunable: true,
  },
  NOTIFY_VERIFY_USER_LIMIT: { kind: 'int', default: '10', min: '1', max: '1000000', programs: ['web'], meaning: 'wrong code guesses one user may make per window (then 429)', tunable: true },
  NOTIFY_VERIFY_GLOBAL_LIMIT: { kind: 'int', default: '100', min: '1', max: '1000000', programs: ['web'], meaning: 'wrong code guesses all users together may make per window', tunable: true },
  NOTIFY_VERIFY_WINDOW: { kind: 'duration', default: '15m', min: '1ms', programs: ['web'], meaning: 'the window of those two limits', tunable: true },
  NOTIFY_DESKTOP_URL_SCHEME: {
    kind: 'text',
    default: 'data-analyst',
    programs: ['web'],
    meaning: "the desktop app's URL scheme: /desktop/link hands it <scheme>://auth?token=...",
    tunable: true,
  },

  // --- notify-gateway -------------------------------------------------------------------
  NOTIFY_GATEWAY_HOST: { kind: 'text', default: '127.0.0.1', programs: ['gateway'], meaning: 'WebSocket listen address' },
  NOTIFY_GATEWAY_PORT: { kind: 'port', default: '8765', programs: ['gateway'], meaning: 'WebSocket listen port (0 = any free port)' },
  NOTIFY_GATEWAY_SOCKET_GROUP: {
    kind: 'text',
    unset: "the gateway's group",
    programs: ['gateway'],
    meaning: "group owning the dispatch socket (mode 0660; a name or a gid): the bot's account and no analyst",
  },
  NOTIFY_GATEWAY_AUTH_TIMEOUT: { kind: 'duration', default: '10s', min: '1ms', max: '24d', programs: ['gateway'], meaning: 'time a new connection has to send its auth message', tunable: true },
  NOTIFY_GATEWAY_PING_INTERVAL: { kind: 'duration', default: '30s', min: '1ms', max: '24d', programs: ['gateway'], meaning: 'time between two pings to a desktop', tunable: true },
  NOTIFY_GATEWAY_MAX_MISSED_PINGS: { kind: 'int', default: '3', min: '1', max: '1000', programs: ['gateway'], meaning: 'unanswered pings after which a connection is closed', tunable: true },
  NOTIFY_GATEWAY_MAX_CONNECTIONS_PER_USER: { kind: 'int', default: '5', min: '1', max: '10000', programs: ['gateway'], meaning: 'authenticated connections one user may hold', tunable: true },
  NOTIFY_GATEWAY_MAX_CONNECTIONS: { kind: 'int', default: '10000', min: '1', max: '10000000', programs: ['gateway'], meaning: 'connections (authenticated or not) the gateway holds at once', tunable: true },
  NOTIFY_GATEWAY_MAX_UNAUTHENTICATED_PER_ADDRESS: {
    kind: 'int',
    default: '50',
    min: '1',
    max: '10000000',
    programs: ['gateway'],
    meaning: 'connections one client address may hold before they authenticate; more are closed with 1013',
    tunable: true,
  },
  NOTIFY_GATEWAY_MAX_UNAUTHENTICATED: {
    kind: 'int',
    default: '1000',
    min: '1',
    max: '10000000',
    programs: ['gateway'],
    meaning: 'connections of all addresses not yet authenticated; keeps room under NOTIFY_GATEWAY_MAX_CONNECTIONS for desktops that authenticate',
    tunable: true,
  },
  NOTIFY_GATEWAY_TRUST_PROXY: {
    kind: 'bool',
    default: 'false',
    programs: ['gateway'],
    meaning: "behind the reverse proxy on this host: a connection from a loopback address is counted under X-Forwarded-For's last address (the gateway's unit sets true)",
    tunable: true,
  },
  NOTIFY_GATEWAY_MAX_MESSAGE_BYTES: { kind: 'size', default: '16KiB', min: '1KiB', max: '16MiB', programs: ['gateway'], meaning: 'largest message a desktop may send', tunable: true },
  NOTIFY_GATEWAY_REVOCATION_INTERVAL: {
    kind: 'duration',
    default: '30s',
    min: '1ms',
    max: '24d',
    programs: ['gateway'],
    meaning: 'how often desktop_tokens.json is re-read; revoked or expired tokens lose their connections',
    tunable: true,
  },

  // --- notify-runner and notify-scripts (run as the analyst) ---------------------------
  NOTIFY_SCRIPT_TIMEOUT: { kind: 'duration', default: '60s', min: '1ms', max: '24d', programs: ['runner', 'scripts'], meaning: 'how long a script may run (its whole process group is then stopped)' },
  NOTIFY_SCRIPT_KILL_GRACE: { kind: 'duration', default: '2s', max: '24d', programs: ['runner', 'scripts'], meaning: "after the timeout, wait between SIGTERM and SIGKILL of the script's processes" },
  NOTIFY_SCRIPT_MAX_OUTPUT: { kind: 'size', default: '1MiB', min: '1', programs: ['runner', 'scripts'], meaning: 'most a script may print on stdout' },
  NOTIFY_RUNNER_CONCURRENCY: { kind: 'int', default: '4', min: '1', max: '64', programs: ['runner', 'scripts'], meaning: 'scripts run at once' },
  NOTIFY_SEND_TIMEOUT: { kind: 'duration', default: '30s', min: '1ms', max: '24d', programs: ['runner', 'scripts'], meaning: "how long to wait for the send API's answer" },
  NOTIFY_HISTORY_MAX_LINES: { kind: 'int', default: '2000', min: '10', max: '1000000', programs: ['runner', 'scripts'], meaning: 'runs kept in ~/.notifications/history.jsonl' },
  NOTIFY_HISTORY_MAX_BYTES: { kind: 'size', default: '1MiB', min: '1', programs: ['runner', 'scripts'], meaning: 'size bound of ~/.notifications/history.jsonl' },
  NOTIFY_HEALTH_FAILURES: { kind: 'int', default: '3', min: '0', max: '1000', programs: ['runner', 'scripts'], meaning: 'failed runs in a row after which you get one "script is failing" alert (0: never)' },
} as const satisfies Record<string, SettingSpec>;

/** A setting's name. */
export type SettingName = keyof typeof SETTINGS;

/** What each kind reads as. */
export interface KindValues {
  text: string;
  url: string;
  list: string[];
  int: number;
  port: number;
  duration: number;
  size: number;
  bool: boolean;
  level: LogLevel;
}

type Spec<N extends SettingName> = (typeof SETTINGS)[N];

/** The value a setting reads as: undefined only when it has no default and is unset. */
export type SettingValue<N extends SettingName> = Spec<N> extends { default: string }
  ? KindValues[Spec<N>['kind']]
  : Spec<N>['kind'] extends 'list'
    ? string[]
    : KindValues[Spec<N>['kind']] | undefined;

/** Every setting, in order, loosely typed. */
export function allSettings(): Array<[SettingName, SettingSpec]> {
  return Object.entries(SETTINGS) as Array<[SettingName, SettingSpec]>;
}

/** The settings a program reads, in order. */
export function settingsOf(program: Program): Array<[SettingName, SettingSpec]> {
  return allSettings().filter(([, s]) => s.programs.includes(program));
}
