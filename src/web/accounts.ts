/**
 * Who may sign in, and which server account a verified e-mail address stands for
 * (the rule in README and docs/operations.md, after the way the server's accounts are named).
 */
import { userNameProblem } from '../shared/userName.js';

/** The outcome of checking a signed-in identity. */
export type AccountDecision =
  | { ok: true; username: string; email: string }
  | { ok: false; reason: 'unverified' | 'not_allowed' | 'no_account_name'; email: string | undefined }
  | { ok: false; reason: 'name_of_another'; email: string; username: string; owner: string | null }
  | { ok: false; reason: 'not_an_analyst'; email: string; username: string; why: string };

const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1);

/** The name usernameFor gives an allowed address. */
function contractName(address: string, firstDomain: string | undefined): string {
  const at = address.lastIndexOf('@');
  return address.slice(at + 1) === firstDomain ? address.slice(0, at) : address.replace(/[@.]/g, '_');
}

/**
 * The one allowed address that a server name stands for, or null when none or more than
 * one could claim it. This is what makes the name rule one-to-one: `alice_other_org` could
 * be `alice_other_org@example.com` (first domain), `alice@other.org` or `alice_other@org`...
 *
 * - A name ending in `_<domain with dots as _>` of an allowed domain other than the first
 *   belongs to that domain, never to the first domain's local part of the same spelling.
 * - Within such a domain, the address whose local part has `.` where the name has `_`
 *   (`john.doe@other.org` for `john_doe_other_org`) when it is allowed; otherwise the one
 *   allowed address of NOTIFY_ALLOWED_EMAILS with that name.
 * - A name two allowed domains could end (`x_a_b_org`: `x.a@b.org` or `x@a.b.org`) is no
 *   one's.
 * - Any other name is the first domain's local part.
 */
export function addressOfName(name: string, allowedDomains: readonly string[], allowedEmails: readonly string[]): string | null {
  const first = allowedDomains[0];
  const others = new Set([...allowedDomains.slice(1), ...allowedEmails.map(domainOf)].filter((d) => d !== first));
  const owners: string[] = [];
  let otherDomain = false;
  for (const domain of others) {
    const suffix = `_${domain.replace(/\./g, '_')}`;
    if (!name.endsWith(suffix) || name.length === suffix.length) continue;
    otherDomain = true;
    const preferred = `${name.slice(0, -suffix.length).replace(/_/g, '.')}@${domain}`;
    if (allowedDomains.includes(domain) || allowedEmails.includes(preferred)) owners.push(preferred);
    else owners.push(...allowedEmails.filter((e) => domainOf(e) === domain && contractName(e, first) === name));
  }
  if (otherDomain) return owners.length === 1 ? owners[0]! : null;
  return first === undefined ? null : `${name}@${first}`;
}

/**
 * The server username for an allowed address: the local part for the first allowed
 * domain (`John.Doe@example.com` -> `john.doe`), else the whole address with `@` and `.`
 * as `_` (`petr@simecek.org` -> `petr_simecek_org`). Null when the address is not allowed.
 * (Whether the name is this address's alone is addressOfName's question.)
 */
export function usernameFor(email: string, allowedDomains: readonly string[], allowedEmails: readonly string[]): string | null {
  const address = email.trim().toLowerCase();
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return null;
  const domain = address.slice(at + 1);
  if (!allowedDomains.includes(domain) && !allowedEmails.includes(address)) return null;
  return contractName(address, allowedDomains[0]);
}

/** Decides whether the ID token's claims let someone in, and as whom. */
export function decideAccount(
  claims: { email?: unknown; email_verified?: unknown },
  allowedDomains: readonly string[],
  allowedEmails: readonly string[],
  whyNotAnalyst: (username: string) => string | null = () => null,
): AccountDecision {
  const email = typeof claims.email === 'string' && claims.email.trim() !== '' ? claims.email.trim() : undefined;
  if (email === undefined) return { ok: false, reason: 'not_allowed', email };
  // Some issuers have sent the flag as the string "true".
  const verified = claims.email_verified === true || claims.email_verified === 'true';
  if (!verified) return { ok: false, reason: 'unverified', email };
  const username = usernameFor(email, allowedDomains, allowedEmails);
  if (username === null) return { ok: false, reason: 'not_allowed', email };
  if (userNameProblem(username) !== null) return { ok: false, reason: 'no_account_name', email };
  const address = email.toLowerCase();
  const owner = addressOfName(username, allowedDomains, allowedEmails);
  if (owner !== address) return { ok: false, reason: 'name_of_another', email: address, username, owner };
  const why = whyNotAnalyst(username);
  if (why !== null) return { ok: false, reason: 'not_an_analyst', email: address, username, why };
  return { ok: true, username, email: address };
}
