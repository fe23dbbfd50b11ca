/**
 * Who is calling the send API, from the kernel: the peer credentials of the unix socket
 * connection, mapped to an account. An analyst may send only to themselves; root, the bot's
 * own account and the configured trusted services may send for anyone.
 */
import type { Socket } from 'node:net';
import { peerCredentials, userByUid, isUserInGroup } from '../../shared/posix.js';

/** The process at the other end of a request. */
export interface Caller {
  uid: number;
  /** Account name; null when the uid has no passwd entry (nobody). */
  name: string | null;
  trusted: boolean;
}

const peerUids = new WeakMap<Socket, number>();

/** Reads and remembers the peer uid of a freshly accepted unix socket connection. */
export function notePeer(socket: Socket): void {
  const handle = (socket as unknown as { _handle?: { fd?: number } })._handle;
  if (handle?.fd === undefined || handle.fd < 0) return;
  try {
    peerUids.set(socket, peerCredentials(handle.fd).uid);
  } catch {
    // Not a unix socket (or already closed): no identity, requests will be refused.
  }
}

/** The peer uid noted for a connection, if any. */
export function peerUidOf(socket: Socket): number | null {
  return peerUids.get(socket) ?? null;
}

const callers = new WeakMap<Socket, Caller>();

/**
 * The caller at the other end of a connection, looked up in the user database once per
 * connection (a client that keeps its connection open sends many requests on it); null
 * when the connection has no peer credentials.
 */
export function callerOfConnection(socket: Socket, trustedUsers: readonly string[]): Caller | null {
  const known = callers.get(socket);
  if (known) return known;
  const uid = peerUidOf(socket);
  if (uid === null) return null;
  const caller = callerFromUid(uid, trustedUsers);
  callers.set(socket, caller);
  return caller;
}

/** Builds the caller for a uid under the trust rules. */
export function callerFromUid(uid: number, trustedUsers: readonly string[]): Caller {
  const entry = userByUid(uid);
  const name = entry?.name ?? null;
  const trusted = uid === 0 || uid === process.getuid?.() || (name !== null && trustedUsers.includes(name));
  return { uid, name, trusted };
}

/** The outcome of an authorization check. */
export type Authorization = { ok: true; user: string } | { ok: false; status: 400 | 403; error: string };

/** Decides whether caller may send for `requested` (omitted = the caller). */
export function authorize(caller: Caller, requested: string | undefined, analystGroup?: string): Authorization {
  if (caller.name === null) {
    return { ok: false, status: 403, error: `uid ${caller.uid} has no account on this server; it cannot send notifications` };
  }
  const user = requested ?? caller.name;
  if (user !== caller.name && !caller.trusted) {
    return { ok: false, status: 403, error: `you are '${caller.name}' and may send notifications only to yourself, not to '${user}'` };
  }
  if (analystGroup && !isUserInGroup(user, analystGroup) && !(caller.trusted && user === caller.name)) {
    return { ok: false, status: 403, error: `'${user}' is not a member of the analysts' group '${analystGroup}'` };
  }
  return { ok: true, user };
}
