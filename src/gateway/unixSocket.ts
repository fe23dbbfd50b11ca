/**
 * Claiming a unix socket path for a server: a socket file left by a crashed run is removed,
 * but a live server answering on it is never displaced; the new socket gets its group and
 * mode 0660 before anyone outside that group can connect.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';

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
 * moment where it is open to others, then sets its group and exact mode.
 */
export async function listenSecurely(socketPath: string, gid: number, listen: () => Promise<unknown>): Promise<void> {
  const previous = process.umask(0o117);
  try {
    await listen();
  } finally {
    process.umask(previous);
  }
  try {
    await fsp.chown(socketPath, process.getuid?.() ?? 0, gid);
  } catch (err) {
    throw new Error(
      `cannot give ${socketPath} to group ${gid}: ${(err as Error).message} (the gateway's account must belong to NOTIFY_GATEWAY_SOCKET_GROUP)`,
      { cause: err },
    );
  }
  await fsp.chmod(socketPath, 0o660);
}
