/**
 * The one rule for a server account name, wherever one arrives: the send API's `user`,
 * the gateway's dispatch, the script helper's `sudo -u`, the dashboard's team chat
 * members and groups, and the name the dashboard derives from an e-mail address. It is
 * what Debian's useradd and groupadd accept: a letter or `_` first, then letters, digits,
 * `_`, `.` and `-`, an optional trailing `$` (machine accounts), 32 characters at most.
 */
import { z } from 'zod';

/** Longest account name (useradd's limit). */
export const USER_NAME_MAX = 32;

/** The pattern of an account name (its length is checked apart, see USER_NAME_MAX). */
export const USER_NAME_RE = /^[a-z_][a-z0-9_.-]*\$?$/i;

/** Why `user` is not an account name, or null when it is one. */
export function userNameProblem(user: string): string | null {
  if (user === '') return 'the user name is empty';
  if (user.length > USER_NAME_MAX) return `'${user.slice(0, 40)}' is not a valid user name (${USER_NAME_MAX} characters at most)`;
  return USER_NAME_RE.test(user) ? null : `'${user.slice(0, 40)}' is not a valid user name`;
}

/** The rule as a schema, for request bodies (the send API's and the gateway's `user`). */
export const UserNameSchema = z
  .string({ error: 'must be a string' })
  .min(1, 'must not be empty')
  .max(USER_NAME_MAX, `is too long (${USER_NAME_MAX} characters at most)`)
  .regex(USER_NAME_RE, 'is not a valid user name');
