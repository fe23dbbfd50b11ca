/** The gateway's settings, read from the environment (declared in shared/settings.ts), and its `--help`. */
import { EnvReader, readFleetConfig } from '../shared/config.js';
import type { LogLevel } from '../shared/settings.js';
import { type MetricsAddress, readMetricsAddress } from '../shared/metrics.js';
import { settingsHelp } from '../shared/settingsDocs.js';
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
  logLevel: LogLevel;
  /** Values that must never be logged. */
  secrets: string[];
}

/** Usage text for `notify-gateway --help`. */
export function helpText(): string {
  return [
    'Usage: notify-gateway [--help]',
    '',
    'WebSocket gateway for the desktop app: desktops authenticate with a token from the',
    "dashboard and receive their user's notifications; the bot dispatches them through a",
    'unix socket (POST /dispatch, GET /health).',
    '',
    settingsHelp('gateway'),
    '',
  ].join('\n');
}

/** Reads the gateway's settings; throws ConfigError naming every bad variable. */
export function readGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const r = new EnvReader('gateway', env);
  const jwtSecret = r.get('DESKTOP_JWT_SECRET') ?? '';
  const groupSetting = r.get('NOTIFY_GATEWAY_SOCKET_GROUP');
  let socketGid = process.getgid?.() ?? 0;
  let socketGroupName = String(socketGid);
  if (groupSetting !== undefined) {
    const gid = /^\d+$/.test(groupSetting) ? Number(groupSetting) : groupIdByName(groupSetting);
    if (gid === null) r.problem(`NOTIFY_GATEWAY_SOCKET_GROUP names no group on this system (got '${groupSetting}')`);
    else socketGid = gid;
    socketGroupName = groupSetting;
  }
  const config: GatewayConfig = {
    host: r.get('NOTIFY_GATEWAY_HOST'),
    port: r.get('NOTIFY_GATEWAY_PORT'),
    jwtSecret,
    dataDir: r.get('NOTIFY_DATA_DIR'),
    socketPath: r.get('NOTIFY_GATEWAY_SOCKET'),
    socketGid,
    socketGroupName,
    authTimeoutMs: r.get('NOTIFY_GATEWAY_AUTH_TIMEOUT'),
    pingIntervalMs: r.get('NOTIFY_GATEWAY_PING_INTERVAL'),
    maxMissedPings: r.get('NOTIFY_GATEWAY_MAX_MISSED_PINGS'),
    maxConnectionsPerUser: r.get('NOTIFY_GATEWAY_MAX_CONNECTIONS_PER_USER'),
    maxConnections: r.get('NOTIFY_GATEWAY_MAX_CONNECTIONS'),
    maxMessageBytes: r.get('NOTIFY_GATEWAY_MAX_MESSAGE_BYTES'),
    revocationIntervalMs: r.get('NOTIFY_GATEWAY_REVOCATION_INTERVAL'),
    metricsAddr: readMetricsAddress(r),
    maxUnauthenticatedPerAddress: r.get('NOTIFY_GATEWAY_MAX_UNAUTHENTICATED_PER_ADDRESS'),
    maxUnauthenticated: r.get('NOTIFY_GATEWAY_MAX_UNAUTHENTICATED'),
    trustProxy: r.get('NOTIFY_GATEWAY_TRUST_PROXY'),
    ...readFleetConfig(r),
    logLevel: r.get('NOTIFY_LOG_LEVEL'),
    secrets: r.secrets(),
  };
  r.done();
  return config;
}
