/**
 * Which server accounts may act as an analyst (sign in to the dashboard, link Telegram, hold
 * a desktop token): people's login accounts, never the system's accounts (root included) or
 * the services' own. An account that signs in stands for every notification sent to that
 * name, so `root@<allowed domain>` must not become `root`.
 */
import { readFileSync, statSync } from 'node:fs';
import { userByName, type PasswdEntry } from './posix.js';

/** The uids of people's login accounts (login.defs' UID_MIN..UID_MAX). */
export interface LoginUidRange {
  min: number;
  max: number;
}

/** shadow-utils' defaults when /etc/login.defs does not say. */
const DEFAULT_RANGE: LoginUidRange = { min: 1000, max: 60000 };

/** UID_MIN and UID_MAX as `login.defs` text sets them (the defaults where it does not). */
export function parseLoginDefs(text: string): LoginUidRange {
  const value = (key: string): number | undefined => {
    const m = new RegExp(`^\\s*${key}\\s+(\\d+)\\s*(?:#.*)?$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  return { min: value('UID_MIN') ?? DEFAULT_RANGE.min, max: value('UID_MAX') ?? DEFAULT_RANGE.max };
}

/** The system's login uid range, from /etc/login.defs (shadow-utils' defaults without it). */
export function loginUidRange(path = '/etc/login.defs'): LoginUidRange {
  try {
    return parseLoginDefs(readFileSync(path, 'utf8'));
  } catch {
    return DEFAULT_RANGE;
  }
}

/** Shells that mean "this account does not log in". */
const NO_LOGIN_SHELL = /(?:^|\/)(?:nologin|false)$/;

/** What decides who is an analyst. */
export interface AnalystPolicy {
  range: LoginUidRange;
  /** The services' own accounts, by uid (this process, the bot that owns the send socket). */
  serviceUids: ReadonlySet<number>;
  /** Looks an account up (the system's user database by default). */
  lookUp?: (name: string) => PasswdEntry | null;
}

/**
 * The services' own uids a process can know: its own and the owners of the given sockets
 * (the bot creates the send socket under its account). Missing sockets are skipped.
 */
export function serviceUids(socketPaths: readonly string[]): Set<number> {
  const uids = new Set<number>();
  const own = process.getuid?.();
  if (own !== undefined) uids.add(own);
  for (const path of socketPaths) {
    try {
      uids.add(statSync(path).uid);
    } catch {
      // Not there (yet): the uid range and the shell still keep system accounts out.
    }
  }
  return uids;
}

/**
 * Why the account `name` cannot act as an analyst, in words for the person refused; null
 * when it can. A name with no account on this server is not refused here (nothing is sent
 * to it but what trusted services address to it).
 */
export function whyNotAnalyst(name: string, policy: AnalystPolicy): string | null {
  const entry = (policy.lookUp ?? userByName)(name);
  if (entry === null) return null;
  if (entry.uid === 0) return `'${name}' is the system administrator's account`;
  if (policy.serviceUids.has(entry.uid)) return `'${name}' is the account of one of the notification services`;
  if (entry.uid < policy.range.min || entry.uid > policy.range.max) {
    return `'${name}' is a system account (uid ${entry.uid}, outside the login range ${policy.range.min}-${policy.range.max})`;
  }
  if (NO_LOGIN_SHELL.test(entry.shell)) return `'${name}' is a service account (its shell is ${entry.shell})`;
  return null;
}
