/**
 * Serving HTTP on a unix socket: a stale socket file left by a crashed run is replaced, a
 * live one is left alone (another instance is serving), and the socket gets mode 0660 and
 * the configured group so file permissions are the first gate.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { groupIdByName } from './posix.js';

/** Another live process answers on the socket path. */
export class SocketInUseError extends Error {
  constructor(readonly path: string) {
    super(`Another process is already serving on ${path}; stop it first (or choose another socket path)`);
    this.name = 'SocketInUseError';
  }
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Removes a stale socket file; throws SocketInUseError if it is live. */
export async function clearStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  if (await answers(path)) throw new SocketInUseError(path);
  await fsp.rm(path, { force: true });
}

/** Listens on a unix socket path with mode 0660 and, if given, the named group. */
export async function listenOnUnixSocket(app: FastifyInstance, path: string, group?: string): Promise<void> {
  let gid: number | null = null;
  if (group) {
    gid = groupIdByName(group);
    if (gid === null) throw new Error(`the socket group '${group}' does not exist`);
  }
  await fsp.mkdir(dirname(path), { recursive: true });
  await clearStaleSocket(path);
  await app.listen({ path });
  await fsp.chmod(path, 0o660);
  if (gid !== null) await fsp.chown(path, -1, gid);
}
