/** The bot service's configuration, from the environment (see the README's table). */
import { userByUid } from '../shared/posix.js';
import { EnvReader, readCommonConfig, type CommonConfig } from '../shared/config.js';
import { METRICS_ENV_HELP, type MetricsAddress, readMetricsAddress } from '../shared/metrics.js';

export interface BotConfig extends CommonConfig {
  token: string;
  apiRoot: string;
  trustedUsers: string[];
  socketGroup: string | undefined;
  analystGroup: string | undefined;
  /** Default wait for delivery before answering 202. */
  sendWaitMs: number;
  /** Upper bound of `Prefer: wait=`. */
  sendWaitMaxMs: number;
  /** How long to wait for the gateway when Telegram is not linked. */
  gatewayTimeoutMs: number;
  /** At most botPerWindow messages in any window of botWindowMs, for the whole bot. */
  botPerWindow: number;
  botWindowMs: number;
  chatBurst: number;
  chatIntervalMs: number;
  /** Group chats: at most groupPerWindow messages per groupWindowMs. */
  groupPerWindow: number;
  groupWindowMs: number;
  concurrency: number;
  queueMax: number;
  /** One analyst's share of the queue (notifications; bytes with photos). */
  userQueueMax: number;
  userQueueBytes: number;
  retryMaxAgeMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  rescanMs: number;
  /** The outbox starts a group commit at most this often. */
  outboxCommitMs: number;
  /** Outbox journal segment size that triggers a compaction. */
  outboxSegmentBytes: number;
  maxBodyBytes: number;
  maxPhotoBytes: number;
  /** A send API request must arrive whole within this long. */
  requestTimeoutMs: number;
  /** Connections one uid may hold open on the send socket at once. */
  maxConnectionsPerUid: number;
  /** New notifications are refused (507) while the data disk has less free space. */
  minFreeDiskBytes: number;
  pollTimeoutSeconds: number;
  /** Chats whose Telegram updates are handled at once. */
  updateConcurrency: number;
  /** Telegram updates waiting to be handled at which polling pauses. */
  updateBacklog: number;
  /** A message failing this long while others go through is dead-lettered (the chat goes on). */
  stuckMessageMs: number;
  requestTimeoutSeconds: number;
  scriptsCommand: string;
  scriptsHelperTimeoutMs: number;
  digestCheckMs: number;
  /** With a database: how long the Telegram lease lasts without renewal. */
  leaseTtlMs: number;
  publicUrl: string;
  botUsername: string | undefined;
  /** Where to serve Prometheus metrics; undefined = nowhere. */
  metricsAddr: MetricsAddress | undefined;
}

/** Every variable the bot reads, with its default, for --help and the README. */
export const BOT_ENV_HELP: Array<[string, string, string]> = [
  ['TELEGRAM_BOT_TOKEN', '(required)', 'bot token from @BotFather; never logged'],
  ['TELEGRAM_API_ROOT', 'https://api.telegram.org', 'Bot API root (tests point it at a local fake)'],
  ['NOTIFY_DATA_DIR', '/data/notifications', 'shared data directory'],
  ['NOTIFY_SOCKET', '/run/notify-bot/bot.sock', 'send API socket'],
  ['NOTIFY_SOCKET_GROUP', "the bot's group", 'group owning the send socket (mode 0660): the analysts\' group'],
  ['NOTIFY_GATEWAY_SOCKET', '/run/ws-gateway/ws.sock', 'desktop gateway dispatch socket'],
  ['NOTIFY_TRUSTED_USERS', '(empty)', 'comma list of accounts that may send for anyone (root and the bot itself always may)'],
  ['NOTIFY_ANALYST_GROUP', '(empty = no check)', 'only members of this group can be sent to'],
  ['NOTIFY_SEND_WAIT', '2s', 'how long /send waits for delivery before answering 202'],
  ['NOTIFY_SEND_WAIT_MAX', '30s', 'largest wait a request may ask for with Prefer: wait='],
  ['NOTIFY_GATEWAY_TIMEOUT', '1s', 'wait for the desktop gateway when Telegram is not linked'],
  ['NOTIFY_TELEGRAM_RATE', '30', 'messages the whole bot sends in any NOTIFY_TELEGRAM_WINDOW (Telegram allows about 30 per second)'],
  ['NOTIFY_TELEGRAM_WINDOW', '1100ms', 'the window of NOTIFY_TELEGRAM_RATE (a little over 1 s keeps a margin for network jitter)'],
  ['NOTIFY_CHAT_BURST', '3', 'messages a chat may get at once before pacing'],
  ['NOTIFY_CHAT_INTERVAL', '1050ms', 'then one message per chat per this interval'],
  ['NOTIFY_GROUP_RATE', '20', 'messages one group (team chat) gets in any NOTIFY_GROUP_WINDOW (Telegram allows about 20 a minute)'],
  ['NOTIFY_GROUP_WINDOW', '61s', 'the window of NOTIFY_GROUP_RATE (a little over a minute, for jitter)'],
  ['NOTIFY_TELEGRAM_CONCURRENCY', '100', 'requests to Telegram in flight at once'],
  ['NOTIFY_QUEUE_MAX', '20000', 'notifications queued at most; beyond, 503 with Retry-After'],
  ['NOTIFY_USER_QUEUE_MAX', '2000', 'notifications one analyst may have queued at once; beyond, that analyst gets 429 with Retry-After and the others go on'],
  ['NOTIFY_USER_QUEUE_BYTES', '100MiB', 'bytes (notifications and their photos) one analyst may have queued at once; beyond, 429 with Retry-After'],
  ['NOTIFY_RETRY_MAX_AGE', '24h', 'give up retrying (dead-letter) after this long'],
  ['NOTIFY_RETRY_BASE', '1s', 'first retry delay (doubles per attempt, with jitter)'],
  ['NOTIFY_RETRY_MAX_DELAY', '5m', 'longest delay between retries'],
  ['NOTIFY_OUTBOX_RESCAN', '5s', 'how often the bot looks for messages re-queued with `notify-bot queue requeue`'],
  ['NOTIFY_OUTBOX_COMMIT_INTERVAL', '4ms', 'the outbox writes and syncs accepted notifications together, at most once per this interval (0 = back to back)'],
  ['NOTIFY_OUTBOX_SEGMENT_SIZE', '4194304', 'outbox journal size (bytes) after which it is compacted in the background'],
  ['NOTIFY_MAX_BODY', '256KiB', 'largest JSON body of /send (bytes)'],
  ['NOTIFY_MAX_PHOTO', '10MiB', 'largest photo (bytes)'],
  ['NOTIFY_REQUEST_TIMEOUT', '30s', 'a send API request (headers and body) must arrive within this long, else 408 and the connection is closed'],
  ['NOTIFY_MAX_CONNECTIONS_PER_UID', '32', 'connections one uid (other than root and the bot itself) may hold open on the send socket at once; more are answered 503 and closed'],
  ['NOTIFY_MIN_FREE_DISK', '64MiB', 'new notifications are refused (507) while the data directory\'s file system has less free space (bytes); what is queued still has room'],
  ['NOTIFY_POLL_TIMEOUT', '30', 'long-polling timeout in seconds'],
  ['NOTIFY_UPDATE_CONCURRENCY', '16', 'chats whose commands and button presses are handled at once (each chat in order, the chats round robin)'],
  ['NOTIFY_UPDATE_BACKLOG', '5000', 'Telegram updates received and waiting to be handled at which the bot stops fetching more until fewer wait'],
  ['NOTIFY_STUCK_MESSAGE', '15m', 'a message Telegram keeps refusing this long while other messages go through is dead-lettered, the analyst told, and the chat\'s later messages go on'],
  ['NOTIFY_TELEGRAM_TIMEOUT', '30', 'timeout of one send request to Telegram, seconds'],
  ['NOTIFY_SCRIPTS_COMMAND', 'sudo -n -u {user} /usr/local/bin/notify-scripts', 'how services run an analyst\'s scripts'],
  ['NOTIFY_SCRIPTS_HELPER_TIMEOUT', '90s', 'longest a script-helper call may take (includes the script\'s own timeout)'],
  ['NOTIFY_DIGEST_CHECK', '30s', 'how often the bot looks for quiet hours that ended (to send their digest)'],
  ['NOTIFY_PUBLIC_URL', 'http://localhost:8080', "the dashboard's URL (links in messages, desktop image URLs)"],
  ['TELEGRAM_BOT_USERNAME', '(from getMe)', "the bot's @name, for messages"],
  METRICS_ENV_HELP,
  ['NOTIFY_DATABASE_URL', '(unset = the data files)', 'PostgreSQL URL for the shared state of a fleet (postgres://user@/db?host=/run/postgresql); its password is never logged'],
  ['NOTIFY_INSTANCE', 'the host name', "this replica's name in logs and /health"],
  ['NOTIFY_LEASE_TTL', '6s', 'with a database: how long the Telegram lease lasts unrenewed (a dead leader is replaced within about this plus a third of it)'],
];

/** Reads and validates the bot's configuration. */
export function readBotConfig(env: NodeJS.ProcessEnv = process.env): BotConfig {
  const r = new EnvReader(env);
  const common = readCommonConfig(r);
  const token = r.required('TELEGRAM_BOT_TOKEN', 'set it to the token @BotFather gave you (or use the local first-run mode, see the README)');
  if (token && !/^\d+:[A-Za-z0-9_-]{20,}$/.test(token)) r.problem('TELEGRAM_BOT_TOKEN does not look like a bot token (<digits>:<letters>)');
  const self = userByUid(process.getuid?.() ?? 0);
  const config: BotConfig = {
    ...common,
    token,
    apiRoot: r.url('TELEGRAM_API_ROOT', 'https://api.telegram.org'),
    trustedUsers: r.list('NOTIFY_TRUSTED_USERS'),
    socketGroup: r.optional('NOTIFY_SOCKET_GROUP'),
    analystGroup: r.optional('NOTIFY_ANALYST_GROUP'),
    sendWaitMs: r.durationMs('NOTIFY_SEND_WAIT', 2000),
    sendWaitMaxMs: r.durationMs('NOTIFY_SEND_WAIT_MAX', 30_000),
    gatewayTimeoutMs: r.durationMs('NOTIFY_GATEWAY_TIMEOUT', 1000),
    botPerWindow: r.int('NOTIFY_TELEGRAM_RATE', 30, 1, 100_000),
    botWindowMs: r.durationMs('NOTIFY_TELEGRAM_WINDOW', 1100),
    chatBurst: r.int('NOTIFY_CHAT_BURST', 3, 1, 1000),
    chatIntervalMs: r.durationMs('NOTIFY_CHAT_INTERVAL', 1050),
    groupPerWindow: r.int('NOTIFY_GROUP_RATE', 20, 1, 10_000),
    groupWindowMs: r.durationMs('NOTIFY_GROUP_WINDOW', 61_000),
    concurrency: r.int('NOTIFY_TELEGRAM_CONCURRENCY', 100, 1, 10_000),
    queueMax: r.int('NOTIFY_QUEUE_MAX', 20_000, 1, 10_000_000),
    userQueueMax: r.int('NOTIFY_USER_QUEUE_MAX', 2000, 1, 10_000_000),
    userQueueBytes: r.int('NOTIFY_USER_QUEUE_BYTES', 100 * 1024 * 1024, 1024, Number.MAX_SAFE_INTEGER),
    retryMaxAgeMs: r.durationMs('NOTIFY_RETRY_MAX_AGE', 24 * 3600_000),
    retryBaseMs: r.durationMs('NOTIFY_RETRY_BASE', 1000),
    retryMaxMs: r.durationMs('NOTIFY_RETRY_MAX_DELAY', 300_000),
    rescanMs: r.durationMs('NOTIFY_OUTBOX_RESCAN', 5000),
    outboxCommitMs: r.durationMs('NOTIFY_OUTBOX_COMMIT_INTERVAL', 4),
    outboxSegmentBytes: r.int('NOTIFY_OUTBOX_SEGMENT_SIZE', 4 * 1024 * 1024, 4096, 1024 * 1024 * 1024),
    maxBodyBytes: r.int('NOTIFY_MAX_BODY', 256 * 1024, 1024, 64 * 1024 * 1024),
    maxPhotoBytes: r.int('NOTIFY_MAX_PHOTO', 10 * 1024 * 1024, 1024, 50 * 1024 * 1024),
    requestTimeoutMs: r.durationMs('NOTIFY_REQUEST_TIMEOUT', 30_000),
    maxConnectionsPerUid: r.int('NOTIFY_MAX_CONNECTIONS_PER_UID', 32, 1, 100_000),
    minFreeDiskBytes: r.int('NOTIFY_MIN_FREE_DISK', 64 * 1024 * 1024, 0, Number.MAX_SAFE_INTEGER),
    pollTimeoutSeconds: r.int('NOTIFY_POLL_TIMEOUT', 30, 0, 50),
    updateConcurrency: r.int('NOTIFY_UPDATE_CONCURRENCY', 16, 1, 10_000),
    updateBacklog: r.int('NOTIFY_UPDATE_BACKLOG', 5000, 1, 10_000_000),
    stuckMessageMs: r.durationMs('NOTIFY_STUCK_MESSAGE', 15 * 60_000),
    requestTimeoutSeconds: r.int('NOTIFY_TELEGRAM_TIMEOUT', 30, 1, 600),
    scriptsCommand: r.string('NOTIFY_SCRIPTS_COMMAND', 'sudo -n -u {user} /usr/local/bin/notify-scripts'),
    scriptsHelperTimeoutMs: r.durationMs('NOTIFY_SCRIPTS_HELPER_TIMEOUT', 90_000),
    digestCheckMs: r.durationMs('NOTIFY_DIGEST_CHECK', 30_000),
    leaseTtlMs: r.durationMs('NOTIFY_LEASE_TTL', 6000),
    publicUrl: r.url('NOTIFY_PUBLIC_URL', 'http://localhost:8080'),
    botUsername: r.optional('TELEGRAM_BOT_USERNAME')?.replace(/^@/, ''),
    metricsAddr: readMetricsAddress(r),
  };
  if (self === null) r.problem('the bot runs under a uid with no passwd entry');
  r.done();
  return config;
}
