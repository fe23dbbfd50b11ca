/**
 * Serving on a unix socket: a socket file left by a crashed run is removed, but a live
 * server answering on it is never displaced; the new socket is created under a umask that
 * keeps it 0660 at most, then gets its group and mode 0660, so there is no moment where it
 * is open to others and file permissions are the first gate.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { groupIdByName } from './posix.js';

/** The path is held by a live server, or by something that is not a socket. */
export class SocketInUseError extends Error {
  constructor(
    readonly socketPath: string,
    detail: string,
  ) {
    super(`${socketPath}: ${detail}`);
    this.name = 'SocketInUseError';
  }
}

/** How long a probe waits for a connection to an existing socket. */
const PROBE_TIMEOUT_MS = 1000;

/** Resolves to 'live', 'stale' (refused), or throws on an answer that says neither. */
function probe(socketPath: string): Promise<'live' | 'stale'> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ path: socketPath });
    const timer = setTimeout(() => {
      // Connected but silent is impossible here (connect has no answer to wait for); a
      // connect that takes this long means a listener with a full backlog: live.
      sock.destroy();
      resolve('live');
    }, PROBE_TIMEOUT_MS);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve('live');
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') resolve('stale');
      else reject(new SocketInUseError(socketPath, `cannot tell whether another server uses it (${err.message})`));
    });
  });
}

/**
 * Makes `socketPath` free to listen on: creates its directory if needed, removes a stale
 * socket, and refuses (SocketInUseError) when a live server answers or the path is not a socket.
 */
export async function claimSocketPath(socketPath: string, serverName: string): Promise<void> {
  try {
    await fsp.mkdir(dirname(socketPath), { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new Error(
      `cannot create the socket's directory ${dirname(socketPath)}: ${(err as Error).message} (create it for this account, e.g. with systemd RuntimeDirectory=)`,
      { cause: err },
    );
  }
  let st;
  try {
    st = await fsp.lstat(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) throw new SocketInUseError(socketPath, 'exists and is not a socket; remove it or choose another path');
  if ((await probe(socketPath)) === 'live') {
    throw new SocketInUseError(socketPath, `another ${serverName} is already listening on it; stop it first`);
  }
  await fsp.rm(socketPath, { force: true });
}

/**
 * Runs `listen` with a umask that leaves the new socket file 0660 at most, so there is no
 * moment where it is open to others, then sets its group (when `gid` is not null) and exact
 * mode. `groupSetting` names the setting that chose the group, for the error message.
 */
export async function listenSecurely(
  socketPath: string,
  gid: number | null,
  listen: () => Promise<unknown>,
  groupSetting: string,
): Promise<void> {
  const previous = process.umask(0o117);
  try {
    await listen();
  } finally {
    process.umask(previous);
  }
  if (gid !== null) {
    try {
      await fsp.chown(socketPath, process.getuid?.() ?? 0, gid);
    } catch (err) {
      throw new Error(
        `cannot give ${socketPath} to group ${gid}: ${(err as Error).message} (this account must belong to ${groupSetting})`,
        { cause: err },
      );
    }
  }
  await fsp.chmod(socketPath, 0o660);
}

/**
 * Claims `path` and has `app` listen on it with mode 0660 and, if given, the named group
 * (`groupSetting` is the setting that named it).
 */
export async function listenOnUnixSocket(
  app: FastifyInstance,
  path: string,
  serverName: string,
  group: { name: string | undefined; setting: string },
): Promise<void> {
  let gid: number | null = null;
  if (group.name) {
    gid = groupIdByName(group.name);
    if (gid === null) throw new Error(`the socket group '${group.name}' does not exist`);
  }
  await claimSocketPath(path, serverName);
  await listenSecurely(path, gid, () => app.listen({ path }), group.setting);
}
