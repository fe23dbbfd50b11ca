/**
 * The few POSIX calls Node does not expose, through the koffi FFI (no native build step):
 * peer credentials of a unix socket connection, user and group look-ups that go through
 * NSS (so LDAP/SSSD accounts work like local ones), flock(2) for inter-process locks, and
 * malloc_trim(3) to give freed memory back.
 */
import { createRequire } from 'node:module';

type Koffi = typeof import('koffi');
type LibcFunction = ReturnType<ReturnType<Koffi['load']>['func']>;

/**
 * libc's functions, bound on first use: loading the FFI costs every program a few
 * hundredths of a second at start, and a program's --help (for one) makes none of
 * these calls.
 */
function bind(): {
  koffi: Koffi;
  libc: ReturnType<Koffi['load']>;
  getpwuid_r: LibcFunction;
  getpwnam_r: LibcFunction;
  getgrnam_r: LibcFunction;
  getgrouplist: LibcFunction;
  setpwent: LibcFunction;
  getpwent_r: LibcFunction;
  endpwent: LibcFunction;
  getsockopt: LibcFunction;
  flockFn: LibcFunction;
  errnoLocation: LibcFunction;
} {
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const libc = koffi.load('libc.so.6');
  koffi.struct('notify_passwd', {
    pw_name: 'char *',
    pw_passwd: 'char *',
    pw_uid: 'uint32',
    pw_gid: 'uint32',
    pw_gecos: 'char *',
    pw_dir: 'char *',
    pw_shell: 'char *',
  });
  koffi.struct('notify_group', {
    gr_name: 'char *',
    gr_passwd: 'char *',
    gr_gid: 'uint32',
    gr_mem: 'void *',
  });
  koffi.struct('notify_ucred', { pid: 'int32', uid: 'uint32', gid: 'uint32' });
  return {
    koffi,
    libc,
    getpwuid_r: libc.func('int getpwuid_r(uint32 uid, _Out_ notify_passwd *pwd, uint8_t *buf, size_t buflen, _Out_ void **result)'),
    getpwnam_r: libc.func('int getpwnam_r(const char *name, _Out_ notify_passwd *pwd, uint8_t *buf, size_t buflen, _Out_ void **result)'),
    getgrnam_r: libc.func('int getgrnam_r(const char *name, _Out_ notify_group *grp, uint8_t *buf, size_t buflen, _Out_ void **result)'),
    getgrouplist: libc.func('int getgrouplist(const char *user, uint32 group, _Out_ uint32 *groups, _Inout_ int *ngroups)'),
    setpwent: libc.func('void setpwent()'),
    getpwent_r: libc.func('int getpwent_r(_Out_ notify_passwd *pwd, uint8_t *buf, size_t buflen, _Out_ void **result)'),
    endpwent: libc.func('void endpwent()'),
    getsockopt: libc.func('int getsockopt(int fd, int level, int optname, _Out_ notify_ucred *optval, _Inout_ uint32 *optlen)'),
    flockFn: libc.func('int flock(int fd, int operation)'),
    errnoLocation: libc.func('int *__errno_location()'),
  };
}

let bound: ReturnType<typeof bind> | null = null;
function native(): ReturnType<typeof bind> {
  bound ??= bind();
  return bound;
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const ERANGE = 34;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
const EWOULDBLOCK = 11;

/** An account as the system's user database knows it. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

interface RawPasswd {
  pw_name: string;
  pw_uid: number;
  pw_gid: number;
  pw_dir: string;
  pw_shell: string;
}

function errno(): number {
  const { koffi, errnoLocation } = native();
  return koffi.decode(errnoLocation(), 'int') as number;
}

/**
 * The user database could not answer (out of file descriptors, an NSS service down): not
 * the same as "no such account", and never to be answered as one.
 */
export class UserDatabaseError extends Error {
  constructor(detail: string) {
    super(`the user database could not be read (${detail})`);
    this.name = 'UserDatabaseError';
  }
}

/**
 * libc's functions for a user-database call. They are bound on first use, so the first
 * look-up may be the one that finds no file descriptor left to load the FFI with: that too
 * is the database not answering.
 */
function userDatabase(): ReturnType<typeof bind> {
  try {
    return native();
  } catch (err) {
    throw new UserDatabaseError(`the system library could not be loaded: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** getpw*_r answers that mean "not found" (see getpwnam_r(3)). */
const NOT_FOUND = new Set([1 /* EPERM */, 2 /* ENOENT */, 3 /* ESRCH */, 9 /* EBADF */]);

function withGrowingBuffer<T>(call: (buf: Buffer) => { rc: number; value: T | null }): T | null {
  for (let size = 1024; size <= 1 << 20; size *= 4) {
    const { rc, value } = call(Buffer.alloc(size));
    if (rc === ERANGE) continue;
    if (rc !== 0 && !(NOT_FOUND.has(rc) && value === null)) throw new UserDatabaseError(`error ${rc}${rc === 24 ? ', EMFILE: too many open files' : rc === 23 ? ', ENFILE' : ''}`);
    return value;
  }
  throw new UserDatabaseError('entry too large');
}

function toEntry(p: RawPasswd): PasswdEntry {
  return { name: p.pw_name, uid: p.pw_uid, gid: p.pw_gid, home: p.pw_dir, shell: p.pw_shell };
}

function lookUpUid(uid: number): PasswdEntry | null {
  return withGrowingBuffer((buf) => {
    const pwd = {} as RawPasswd;
    const result: [unknown] = [null];
    const rc = userDatabase().getpwuid_r(uid, pwd, buf, buf.length, result) as number;
    return { rc, value: result[0] ? toEntry(pwd) : null };
  });
}

/**
 * The account with this uid, or null when the uid has no passwd entry. Some NSS services
 * answer "not found" when they could not look at all (e.g. out of file descriptors): a
 * "not found" counts only when root, which every system has, is found right after;
 * otherwise it is a UserDatabaseError.
 */
export function userByUid(uid: number): PasswdEntry | null {
  const entry = lookUpUid(uid);
  if (entry === null && uid !== 0 && lookUpUid(0) === null) throw new UserDatabaseError('not even root could be looked up');
  return entry;
}

/** The account with this name, or null when there is none. */
export function userByName(name: string): PasswdEntry | null {
  return withGrowingBuffer((buf) => {
    const pwd = {} as RawPasswd;
    const result: [unknown] = [null];
    const rc = userDatabase().getpwnam_r(name, pwd, buf, buf.length, result) as number;
    return { rc, value: result[0] ? toEntry(pwd) : null };
  });
}

/** The gid of a group, or null when there is no such group. */
export function groupIdByName(name: string): number | null {
  return withGrowingBuffer((buf) => {
    const grp = {} as { gr_gid: number };
    const result: [unknown] = [null];
    const rc = userDatabase().getgrnam_r(name, grp, buf, buf.length, result) as number;
    return { rc, value: result[0] ? grp.gr_gid : null };
  });
}

/** The most accounts groupMembers looks through for those whose primary group it is. */
const MAX_ACCOUNTS_SCANNED = 100_000;

/**
 * The accounts in a group, sorted: those it lists (supplementary members) and those whose
 * primary group it is, as far as the user database lists its accounts (a directory that
 * does not enumerate them shows only the listed members). Null when there is no such group.
 */
export function groupMembers(name: string): string[] | null {
  const group = withGrowingBuffer((buf) => {
    const grp = {} as { gr_gid: number; gr_mem: unknown };
    const result: [unknown] = [null];
    const rc = userDatabase().getgrnam_r(name, grp, buf, buf.length, result) as number;
    if (!result[0]) return { rc, value: null };
    // gr_mem points into buf: a NULL-terminated array of names, read while buf lives.
    const { koffi } = native();
    const listed: string[] = [];
    for (let i = 0; grp.gr_mem !== null; i++) {
      const member = koffi.decode(grp.gr_mem, i * koffi.sizeof('void *'), 'char *') as string | null;
      if (member === null) break;
      listed.push(member);
    }
    return { rc, value: { gid: grp.gr_gid, listed } };
  });
  if (group === null) return null;
  const members = new Set(group.listed);
  const db = userDatabase();
  db.setpwent();
  try {
    let buf = Buffer.alloc(16 * 1024);
    for (let n = 0; n < MAX_ACCOUNTS_SCANNED; n++) {
      const pwd = {} as RawPasswd;
      const result: [unknown] = [null];
      const rc = db.getpwent_r(pwd, buf, buf.length, result) as number;
      if (rc === ERANGE && buf.length < 1 << 20) {
        buf = Buffer.alloc(buf.length * 4);
        n--;
        continue;
      }
      if (rc !== 0 || !result[0]) break;
      if (pwd.pw_gid === group.gid) members.add(pwd.pw_name);
    }
  } finally {
    db.endpwent();
  }
  return [...members].sort();
}

/** Every gid the user belongs to (primary and supplementary). */
export function groupIdsOfUser(user: PasswdEntry): number[] {
  let n = 64;
  for (;;) {
    const groups = new Array<number>(n).fill(0);
    const count: [number] = [n];
    const rc = userDatabase().getgrouplist(user.name, user.gid, groups, count) as number;
    if (rc >= 0) return groups.slice(0, count[0]);
    if (count[0] <= n) n *= 2;
    else n = count[0];
  }
}

/** True when the named user is a member of the named group (primary or supplementary). */
export function isUserInGroup(userName: string, groupName: string): boolean {
  const user = userByName(userName);
  const gid = groupIdByName(groupName);
  if (!user || gid === null) return false;
  return groupIdsOfUser(user).includes(gid);
}

/** Kernel-reported credentials of the process at the other end of a unix socket. */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** SO_PEERCRED of a connected unix socket file descriptor. */
export function peerCredentials(fd: number): PeerCredentials {
  const cred = {} as PeerCredentials;
  const len: [number] = [12];
  const rc = native().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) as number;
  if (rc !== 0) throw new Error(`getsockopt(SO_PEERCRED) failed (errno ${errno()})`);
  return { pid: cred.pid, uid: cred.uid, gid: cred.gid };
}

/**
 * flock(2) without blocking the event loop: returns false when another holder has the
 * lock (LOCK_NB), true when taken; throws on other errors.
 */
export function tryFlock(fd: number, exclusive = true): boolean {
  const rc = native().flockFn(fd, (exclusive ? LOCK_EX : 1) | LOCK_NB) as number;
  if (rc === 0) return true;
  const e = errno();
  if (e === EWOULDBLOCK) return false;
  throw new Error(`flock failed (errno ${e})`);
}

/** Releases a flock taken with tryFlock. */
export function unflock(fd: number): void {
  native().flockFn(fd, LOCK_UN);
}

let trimFn: LibcFunction | null | undefined;

/**
 * Gives the system back the memory the C allocator holds freed (malloc_trim(3)): glibc keeps
 * what a program frees for reuse, so memory V8 and Node used once (parsing and compiling
 * the program at start, the buffers of a burst) stays resident in an idle service. Returns
 * false where the C library has no malloc_trim (not glibc): nothing to do there.
 */
export function releaseFreedMemory(): boolean {
  if (trimFn === undefined) {
    try {
      trimFn = native().libc.func('int malloc_trim(size_t pad)');
    } catch {
      trimFn = null;
    }
  }
  if (trimFn === null) return false;
  trimFn(0);
  return true;
}
