/**
 * Who may use the dispatch socket, decided from the kernel's peer credentials (never from
 * what the caller says): root, the gateway's own account, and members of the socket's
 * group. The socket's mode already keeps others out; this is the second lock on the door,
 * for a socket whose mode or group was loosened by mistake.
 */
import { groupIdsOfUser, userByUid, type PasswdEntry, type PeerCredentials } from '../shared/posix.js';

/** The verdict on one caller, with what the log needs to name them. */
export interface PeerDecision {
  allowed: boolean;
  uid: number;
  pid: number;
  /** The caller's account name, or `uid <n>` when it has none. */
  name: string;
  /** Why a refused caller was refused. */
  reason?: string;
}

/** User database look-ups, passed in so the policy can be tested without real accounts. */
export interface AccountLookup {
  userByUid(uid: number): PasswdEntry | null;
  groupIdsOfUser(user: PasswdEntry): number[];
}

const systemAccounts: AccountLookup = { userByUid, groupIdsOfUser };

/** How long a uid's group membership is trusted before it is looked up again. */
const MEMBERSHIP_CACHE_MS = 60_000;

/** Decides which peers may dispatch. */
export class PeerPolicy {
  private readonly cache = new Map<number, { at: number; member: boolean; name: string }>();

  constructor(
    private readonly ownUid: number,
    private readonly socketGid: number,
    private readonly socketGroupName: string,
    private readonly accounts: AccountLookup = systemAccounts,
  ) {}

  /** The verdict for a caller with these credentials. */
  decide(peer: PeerCredentials): PeerDecision {
    const { uid, pid } = peer;
    if (uid === 0 || uid === this.ownUid) {
      return { allowed: true, uid, pid, name: this.lookup(uid).name };
    }
    // Running with the group as effective gid (e.g. systemd Group=) is membership too.
    if (peer.gid === this.socketGid) return { allowed: true, uid, pid, name: this.lookup(uid).name };
    const { member, name } = this.lookup(uid);
    if (member) return { allowed: true, uid, pid, name };
    return {
      allowed: false,
      uid,
      pid,
      name,
      reason: `${name} (uid ${uid}) is not root, not the gateway's account and not in group ${this.socketGroupName}`,
    };
  }

  private lookup(uid: number): { member: boolean; name: string } {
    const now = Date.now();
    const hit = this.cache.get(uid);
    if (hit && now - hit.at < MEMBERSHIP_CACHE_MS) return hit;
    let entry: { at: number; member: boolean; name: string };
    try {
      const user = this.accounts.userByUid(uid);
      entry = user
        ? { at: now, member: this.accounts.groupIdsOfUser(user).includes(this.socketGid), name: user.name }
        : { at: now, member: false, name: `uid ${uid}` };
    } catch {
      // The user database failed: refuse, and do not remember the failure.
      return { member: false, name: `uid ${uid}` };
    }
    this.cache.set(uid, entry);
    return entry;
  }
}
