/** The bot service's configuration, from the environment (settings declared in shared/settings.ts). */
import { userByUid } from '../shared/posix.js';
import { EnvReader, readCommonConfig, type CommonConfig } from '../shared/config.js';
import type { LogLevel } from '../shared/settings.js';
import { type MetricsAddress, readMetricsAddress } from '../shared/metrics.js';
import { splitCommand } from '../scripts/client.js';

export interface BotConfig extends CommonConfig {
  gatewaySocketPath: string;
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
  /** Bytes of images one analyst may keep for desktop apps. */
  userImageBytes: number;
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
  /** A send API request must arrive whole within this long. */
  requestTimeoutMs: number;
  /** Connections one uid may hold open on the send socket at once. */
  maxConnectionsPerUid: number;
  /** New notifications are refused (507) while the data disk has less free space. */
  minFreeDiskBytes: number;
  /** Where to serve Prometheus metrics; undefined = nowhere. */
  metricsAddr: MetricsAddress | undefined;
  logLevel: LogLevel;
  /** Values that must never be logged. */
  secrets: string[];
}

/** Reads and validates the bot's configuration (the settings are declared in shared/settings.ts). */
export function readBotConfig(env: NodeJS.ProcessEnv = process.env): BotConfig {
  const r = new EnvReader('bot', env);
  const common = readCommonConfig(r);
  const token = r.get('TELEGRAM_BOT_TOKEN') ?? '';
  if (token && !/^\d+:[A-Za-z0-9_-]{20,}$/.test(token)) r.problem('TELEGRAM_BOT_TOKEN does not look like a bot token (<digits>:<letters>)');
  const self = userByUid(process.getuid?.() ?? 0);
  const scriptsCommand = r.get('NOTIFY_SCRIPTS_COMMAND');
  try {
    splitCommand(scriptsCommand);
  } catch (err) {
    r.problem(`NOTIFY_SCRIPTS_COMMAND: ${(err as Error).message}`);
  }
  const config: BotConfig = {
    ...common,
    logLevel: r.get('NOTIFY_LOG_LEVEL'),
    gatewaySocketPath: r.get('NOTIFY_GATEWAY_SOCKET'),
    token,
    apiRoot: r.get('TELEGRAM_API_ROOT'),
    trustedUsers: r.get('NOTIFY_TRUSTED_USERS'),
    socketGroup: r.get('NOTIFY_SOCKET_GROUP'),
    analystGroup: r.get('NOTIFY_ANALYST_GROUP'),
    sendWaitMs: r.get('NOTIFY_SEND_WAIT'),
    sendWaitMaxMs: r.get('NOTIFY_SEND_WAIT_MAX'),
    gatewayTimeoutMs: r.get('NOTIFY_GATEWAY_TIMEOUT'),
    botPerWindow: r.get('NOTIFY_TELEGRAM_RATE'),
    botWindowMs: r.get('NOTIFY_TELEGRAM_WINDOW'),
    chatBurst: r.get('NOTIFY_CHAT_BURST'),
    chatIntervalMs: r.get('NOTIFY_CHAT_INTERVAL'),
    groupPerWindow: r.get('NOTIFY_GROUP_RATE'),
    groupWindowMs: r.get('NOTIFY_GROUP_WINDOW'),
    concurrency: r.get('NOTIFY_TELEGRAM_CONCURRENCY'),
    queueMax: r.get('NOTIFY_QUEUE_MAX'),
    userQueueMax: r.get('NOTIFY_USER_QUEUE_MAX'),
    userQueueBytes: r.get('NOTIFY_USER_QUEUE_BYTES'),
    userImageBytes: r.get('NOTIFY_USER_IMAGE_BYTES'),
    retryMaxAgeMs: r.get('NOTIFY_RETRY_MAX_AGE'),
    retryBaseMs: r.get('NOTIFY_RETRY_BASE'),
    retryMaxMs: r.get('NOTIFY_RETRY_MAX_DELAY'),
    rescanMs: r.get('NOTIFY_OUTBOX_RESCAN'),
    outboxCommitMs: r.get('NOTIFY_OUTBOX_COMMIT_INTERVAL'),
    outboxSegmentBytes: r.get('NOTIFY_OUTBOX_SEGMENT_SIZE'),
    maxBodyBytes: r.get('NOTIFY_MAX_BODY'),
    maxPhotoBytes: r.get('NOTIFY_MAX_PHOTO'),
    requestTimeoutMs: r.get('NOTIFY_REQUEST_TIMEOUT'),
    maxConnectionsPerUid: r.get('NOTIFY_MAX_CONNECTIONS_PER_UID'),
    minFreeDiskBytes: r.get('NOTIFY_MIN_FREE_DISK'),
    metricsAddr: readMetricsAddress(r),
    pollTimeoutSeconds: Math.floor(r.get('NOTIFY_POLL_TIMEOUT') / 1000),
    updateConcurrency: r.get('NOTIFY_UPDATE_CONCURRENCY'),
    updateBacklog: r.get('NOTIFY_UPDATE_BACKLOG'),
    stuckMessageMs: r.get('NOTIFY_STUCK_MESSAGE'),
    requestTimeoutSeconds: Math.ceil(r.get('NOTIFY_TELEGRAM_TIMEOUT') / 1000),
    scriptsCommand,
    scriptsHelperTimeoutMs: r.get('NOTIFY_SCRIPTS_HELPER_TIMEOUT'),
    digestCheckMs: r.get('NOTIFY_DIGEST_CHECK'),
    leaseTtlMs: r.get('NOTIFY_LEASE_TTL'),
    publicUrl: r.get('NOTIFY_PUBLIC_URL'),
    secrets: r.secrets(),
  };
  if (self === null) r.problem('the bot runs under a uid with no passwd entry');
  r.done();
  return config;
}
