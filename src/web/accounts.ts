/**
 * Who may sign in, and which server account a verified e-mail address stands for
 * (the contract's rule, after the way the server's accounts are named).
 */

/** The outcome of checking a signed-in identity. */
export type AccountDecision =
  | { ok: true; username: string; email: string }
  | { ok: false; reason: 'unverified' | 'not_allowed' | 'no_account_name'; email: string | undefined };

/** A name the system can hold as a login (what the send API accepts as `user`). */
const LOGIN_RE = /^[a-z_][a-z0-9_.-]*$/;

/**
 * The server username for an allowed address: the local part for the first allowed
 * domain (`John.Doe@example.com` -> `john.doe`), else the whole address with `@` and `.`
 * as `_` (`petr@simecek.org` -> `petr_simecek_org`). Null when the address is not allowed.
 */
export function usernameFor(email: string, allowedDomains: readonly string[], allowedEmails: readonly string[]): string | null {
  const address = email.trim().toLowerCase();
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return null;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  const domainAllowed = allowedDomains.includes(domain);
  if (!domainAllowed && !allowedEmails.includes(address)) return null;
  if (domain === allowedDomains[0]) return local;
  return address.replace(/[@.]/g, '_');
}

/** Decides whether the ID token's claims let someone in, and as whom. */
export function decideAccount(
  claims: { email?: unknown; email_verified?: unknown },
  allowedDomains: readonly string[],
  allowedEmails: readonly string[],
): AccountDecision {
  const email = typeof claims.email === 'string' && claims.email.trim() !== '' ? claims.email.trim() : undefined;
  if (email === undefined) return { ok: false, reason: 'not_allowed', email };
  // Some issuers have sent the flag as the string "true".
  const verified = claims.email_verified === true || claims.email_verified === 'true';
  if (!verified) return { ok: false, reason: 'unverified', email };
  const username = usernameFor(email, allowedDomains, allowedEmails);
  if (username === null) return { ok: false, reason: 'not_allowed', email };
  if (!LOGIN_RE.test(username) || username.length > 64) return { ok: false, reason: 'no_account_name', email };
  return { ok: true, username, email: email.toLowerCase() };
}
