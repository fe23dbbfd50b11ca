/**
 * The gateway's settings, read from the environment; every variable with its default is
 * listed once, in GATEWAY_VARIABLES, which `--help` prints.
 */
import { EnvReader, readCommonConfig } from '../shared/config.js';
import { METRICS_ENV_HELP, type MetricsAddress, readMetricsAddress } from '../shared/metrics.js';
import { groupIdByName } from '../shared/posix.js';

/** Everything the gateway needs to run. */
export interface GatewayConfig {
  host: string;
  port: number;
  /** HS256 secret of desktop tokens. */
  jwtSecret: string;
  /** Where `desktop_tokens.json` (revocations) lives. */
  dataDir: string;
  /** The dispatch API's unix socket. */
  socketPath: string;
  /** Group owning the dispatch socket. */
  socketGid: number;
  /** Its name, for messages (a number when given as a gid or when the group has no name). */
  socketGroupName: string;
  authTimeoutMs: number;
  pingIntervalMs: number;
  maxMissedPings: number;
  maxConnectionsPerUser: number;
  maxConnections: number;
  maxMessageBytes: number;
  revocationIntervalMs: number;
  /** Where to serve Prometheus metrics; undefined = nowhere. */
  metricsAddr?: MetricsAddress | undefined;
  /** Connections not yet authenticated, from one client address / from all, at once. */
  maxUnauthenticatedPerAddress: number;
  maxUnauthenticated: number;
  /** Take the client's address from X-Forwarded-For when the peer is the local proxy. */
  trustProxy: boolean;
  /** A fleet's database (shared tokens, and notifications reaching every replica); unset = the data files. */
  databaseUrl?: string | undefined;
  /** This replica's name (the host name when not given). */
  instance?: string | undefined;
}

/** One documented variable: name, default as shown to people, meaning. */
export interface VariableDoc {
  name: string;
  fallback: string;
  meaning: string;
}

/** Every variable the gateway reads. */
export const GATEWAY_VARIABLES: readonly VariableDoc[] = [
  { name: 'DESKTOP_JWT_SECRET', fallback: '(required)', meaning: 'HS256 secret of desktop tokens (shared with notify-web)' },
  { name: 'NOTIFY_GATEWAY_HOST', fallback: '127.0.0.1', meaning: 'WebSocket listen address' },
  { name: 'NOTIFY_GATEWAY_PORT', fallback: '8765', meaning: 'WebSocket listen port (0 = any free port)' },
  { name: 'NOTIFY_GATEWAY_SOCKET', fallback: '/run/ws-gateway/ws.sock', meaning: 'dispatch API unix socket' },
  {
    name: 'NOTIFY_GATEWAY_SOCKET_GROUP',
    fallback: "(the gateway's group)",
    meaning: "group owning the dispatch socket (mode 0660): the bot's account and no analyst",
  },
  { name: 'NOTIFY_DATA_DIR', fallback: '/data/notifications', meaning: 'data directory holding desktop_tokens.json (revocations)' },
  { name: 'NOTIFY_DATABASE_URL', fallback: '(unset: the data files)', meaning: 'a fleet\'s PostgreSQL: desktop tokens are read there, and a notification dispatched to any gateway replica reaches the desktops of all' },
  { name: 'NOTIFY_INSTANCE', fallback: '(the host name)', meaning: 'this replica\'s name in logs' },
  { name: 'NOTIFY_GATEWAY_AUTH_TIMEOUT', fallback: '10s', meaning: 'time a new connection has to send its auth message' },
  { name: 'NOTIFY_GATEWAY_PING_INTERVAL', fallback: '30s', meaning: 'time between two pings to a desktop' },
  { name: 'NOTIFY_GATEWAY_MAX_MISSED_PINGS', fallback: '3', meaning: 'unanswered pings after which a connection is closed' },
  { name: 'NOTIFY_GATEWAY_MAX_CONNECTIONS_PER_USER', fallback: '5', meaning: 'authenticated connections one user may hold' },
  { name: 'NOTIFY_GATEWAY_MAX_CONNECTIONS', fallback: '10000', meaning: 'connections (authenticated or not) the gateway holds at once' },
  {
    name: 'NOTIFY_GATEWAY_MAX_UNAUTHENTICATED_PER_ADDRESS',
    fallback: '50',
    meaning: 'connections one client address may hold before they authenticate; more are closed with 1013',
  },
  {
    name: 'NOTIFY_GATEWAY_MAX_UNAUTHENTICATED',
    fallback: '1000',
    meaning: 'connections of all addresses not yet authenticated; keeps room under NOTIFY_GATEWAY_MAX_CONNECTIONS for desktops that authenticate',
  },
  {
    name: 'NOTIFY_GATEWAY_TRUST_PROXY',
    fallback: 'false',
    meaning: "behind the reverse proxy on this host: a connection from a loopback address is counted under X-Forwarded-For's last address",
  },
  { name: 'NOTIFY_GATEWAY_MAX_MESSAGE_BYTES', fallback: '16384', meaning: 'largest message a desktop may send' },
  {
    name: 'NOTIFY_GATEWAY_REVOCATION_INTERVAL',
    fallback: '30s',
    meaning: 'how often desktop_tokens.json is re-read; revoked or expired tokens lose their connections',
  },
  { name: 'NOTIFY_LOG_LEVEL', fallback: 'info', meaning: 'log level (trace, debug, info, warn, error)' },
  { name: METRICS_ENV_HELP[0], fallback: METRICS_ENV_HELP[1], meaning: METRICS_ENV_HELP[2] },
];

/** Usage text for `notify-gateway --help`. */
export function helpText(): string {
  const width = Math.max(...GATEWAY_VARIABLES.map((v) => v.name.length));
  const lines = GATEWAY_VARIABLES.map((v) => `  ${v.name.padEnd(width)}  [${v.fallback}]\n  ${' '.repeat(width)}  ${v.meaning}`);
  return [
    'Usage: notify-gateway [--help]',
    '',
    'WebSocket gateway for the desktop app: desktops authenticate with a token from the',
    "dashboard and receive their user's notifications; the bot dispatches them through a",
    'unix socket (POST /dispatch, GET /health).',
    '',
    'Durations accept 500ms, 30s, 5m, 1h, 1d (a bare number is seconds).',
    '',
    'Environment variables [default]:',
    ...lines,
    '',
  ].join('\n');
}

/** Reads the gateway's settings; throws ConfigError naming every bad variable. */
export function readGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const r = new EnvReader(env);
  const common = readCommonConfig(r);
  const jwtSecret = r.required('DESKTOP_JWT_SECRET', 'set it to the same random secret as notify-web (e.g. `openssl rand -hex 32`)');
  const groupSetting = r.optional('NOTIFY_GATEWAY_SOCKET_GROUP');
  let socketGid = process.getgid?.() ?? 0;
  let socketGroupName = String(socketGid);
  if (groupSetting !== undefined) {
    const gid = /^\d+$/.test(groupSetting) ? Number(groupSetting) : groupIdByName(groupSetting);
    if (gid === null) r.problem(`NOTIFY_GATEWAY_SOCKET_GROUP names no group on this system (got '${groupSetting}')`);
    else socketGid = gid;
    socketGroupName = groupSetting;
  }
  const config: GatewayConfig = {
    host: r.string('NOTIFY_GATEWAY_HOST', '127.0.0.1'),
    port: r.port('NOTIFY_GATEWAY_PORT', 8765),
    jwtSecret,
    dataDir: common.dataDir,
    socketPath: common.gatewaySocketPath,
    socketGid,
    socketGroupName,
    authTimeoutMs: positiveDuration(r, 'NOTIFY_GATEWAY_AUTH_TIMEOUT', 10_000),
    pingIntervalMs: positiveDuration(r, 'NOTIFY_GATEWAY_PING_INTERVAL', 30_000),
    maxMissedPings: r.int('NOTIFY_GATEWAY_MAX_MISSED_PINGS', 3, 1, 1000),
    maxConnectionsPerUser: r.int('NOTIFY_GATEWAY_MAX_CONNECTIONS_PER_USER', 5, 1, 10_000),
    maxConnections: r.int('NOTIFY_GATEWAY_MAX_CONNECTIONS', 10_000, 1, 10_000_000),
    maxMessageBytes: r.int('NOTIFY_GATEWAY_MAX_MESSAGE_BYTES', 16_384, 1024, 16 * 1024 * 1024),
    revocationIntervalMs: positiveDuration(r, 'NOTIFY_GATEWAY_REVOCATION_INTERVAL', 30_000),
    metricsAddr: readMetricsAddress(r),
    maxUnauthenticatedPerAddress: r.int('NOTIFY_GATEWAY_MAX_UNAUTHENTICATED_PER_ADDRESS', 50, 1, 10_000_000),
    maxUnauthenticated: r.int('NOTIFY_GATEWAY_MAX_UNAUTHENTICATED', 1000, 1, 10_000_000),
    trustProxy: r.bool('NOTIFY_GATEWAY_TRUST_PROXY', false),
    databaseUrl: common.databaseUrl,
    instance: common.instance,
  };
  r.done();
  return config;
}

/** Timers of 0 ms (or over what setTimeout can hold) would spin or misfire. */
function positiveDuration(r: EnvReader, name: string, fallbackMs: number): number {
  const ms = r.durationMs(name, fallbackMs);
  if (ms < 1 || ms > 2 ** 31 - 1) {
    r.problem(`${name} must be a duration from 1ms to 24d`);
    return fallbackMs;
  }
  return ms;
}
