/**
 * Desktop tokens: HS256 JWTs (`sub` = username, `exp`, `iat`, `jti`) the dashboard issues for
 * the desktop app, and the shared record of them in `$NOTIFY_DATA_DIR/desktop_tokens.json`
 * (`{"<jti>": {"user", "created_at", "expires_at", "label"?, "revoked_at"?}}`) through which
 * the dashboard revokes them and the gateway learns of revocations. Verification lives here
 * too, so the gateway and the dashboard's REST endpoints accept exactly the same tokens.
 */
import { randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { type Clock, systemClock } from './clock.js';
import { type SharedDocument, sharedDocument } from './documents.js';

/** The file's name inside the data directory. */
export const DESKTOP_TOKENS_FILE = 'desktop_tokens.json';

const TokenRecordSchema = z.looseObject({
  user: z.string(),
  created_at: z.string(),
  expires_at: z.string(),
  label: z.string().optional(),
  /** `app`: issued to the desktop app by its sign-in link (or a refresh); absent: made on the card. */
  kind: z.literal('app').optional(),
  revoked_at: z.string().optional(),
});
const TokensSchema = z.record(z.string(), TokenRecordSchema);

/** One issued token as the file records it. */
export type DesktopTokenRecord = z.infer<typeof TokenRecordSchema>;
/** The whole file: jti -> record. */
export type DesktopTokens = z.infer<typeof TokensSchema>;
/** A recorded token with its id, as `list` returns it. */
export type DesktopTokenInfo = DesktopTokenRecord & { jti: string };

/** A freshly signed token; `token` is shown to the user once and stored nowhere. */
export interface IssuedToken {
  token: string;
  jti: string;
  /** ISO-8601 UTC. */
  expiresAt: string;
}

/** What `revoke` found. */
export type RevokeResult = 'revoked' | 'already_revoked' | 'not_found';

/** Anything that can say whether a token id was revoked (the store, or the gateway's cached copy). */
export interface RevocationCheck {
  isRevoked(jti: string): boolean | Promise<boolean>;
}

/**
 * How long after its expiry a token may still be exchanged for a new one
 * (`POST /api/desktop/refresh`, and nowhere else). Records are kept that long too, so a
 * revoked token stays revoked for as long as it could be refreshed.
 */
export const REFRESH_GRACE_SECONDS = 7 * 86_400;

/** Lifetime of the tokens the desktop app gets by signing in (30 days, as the original). */
export const APP_TOKEN_TTL_SECONDS = 30 * 86_400;

/** How `issue` marks a token. */
export interface IssueOptions {
  label?: string | undefined;
  kind?: 'app';
  /** The `iss` claim (the dashboard's public URL). */
  issuer?: string;
}

/** The longest lifetime `issue` accepts (a year). */
export const MAX_TOKEN_TTL_SECONDS = 366 * 86_400;

function secretKey(secret: string): Uint8Array {
  if (secret === '') throw new Error('DESKTOP_JWT_SECRET is empty');
  return new TextEncoder().encode(secret);
}

/** The shared record of desktop tokens in one data directory. */
export class DesktopTokenStore implements RevocationCheck {
  readonly file: SharedDocument<DesktopTokens>;

  constructor(
    dataDir: string,
    private readonly clock: Clock = systemClock,
  ) {
    this.file = sharedDocument(dataDir, DESKTOP_TOKENS_FILE, TokensSchema, () => ({}));
  }

  /**
   * Signs a token for `user` valid `ttlSeconds` and records it (the record is on disk
   * before the token is returned, so it can always be listed and revoked).
   */
  async issue(secret: string, user: string, ttlSeconds: number, opts: IssueOptions = {}): Promise<IssuedToken> {
    if (user === '') throw new Error('cannot issue a desktop token without a user');
    if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
      throw new Error(`token lifetime must be a whole number of seconds from 1 to ${MAX_TOKEN_TTL_SECONDS}`);
    }
    const nowMs = this.clock.now();
    const iat = Math.floor(nowMs / 1000);
    const exp = iat + ttlSeconds;
    const jti = randomUUID();
    const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(user).setIssuedAt(iat).setExpirationTime(exp).setJti(jti);
    if (opts.issuer !== undefined) jwt.setIssuer(opts.issuer);
    const token = await jwt.sign(secretKey(secret));
    const expiresAt = new Date(exp * 1000).toISOString();
    const record: DesktopTokenRecord = { user, created_at: new Date(nowMs).toISOString(), expires_at: expiresAt };
    if (opts.label !== undefined && opts.label !== '') record.label = opts.label;
    if (opts.kind !== undefined) record.kind = opts.kind;
    await this.file.update((tokens) => ({ next: { ...this.withoutExpired(tokens), [jti]: record }, result: undefined }));
    return { token, jti, expiresAt };
  }

  /** Revokes `user`'s token `jti`; another user's token is `not_found` to them. */
  async revoke(user: string, jti: string): Promise<RevokeResult> {
    return this.file.update((tokens) => {
      const record = tokens[jti];
      if (!record || record.user !== user) return { result: 'not_found' as const };
      if (record.revoked_at !== undefined) return { result: 'already_revoked' as const };
      const next = this.withoutExpired(tokens);
      next[jti] = { ...record, revoked_at: new Date(this.clock.now()).toISOString() };
      return { next, result: 'revoked' as const };
    });
  }

  /** Revokes every token of `user` not yet revoked; returns how many. */
  async revokeAll(user: string): Promise<number> {
    return this.file.update((tokens) => {
      const at = new Date(this.clock.now()).toISOString();
      const next = this.withoutExpired(tokens);
      let count = 0;
      for (const [jti, r] of Object.entries(next)) {
        if (r.user !== user || r.revoked_at !== undefined) continue;
        next[jti] = { ...r, revoked_at: at };
        count += 1;
      }
      return count > 0 ? { next, result: count } : { result: 0 };
    });
  }

  /** The record of token `jti`, or null. Throws CorruptFileError on an unreadable file. */
  async get(jti: string): Promise<DesktopTokenRecord | null> {
    return (await this.file.read())[jti] ?? null;
  }

  /** `user`'s tokens that have not expired (revoked ones included), oldest first. */
  async list(user: string): Promise<DesktopTokenInfo[]> {
    const now = this.clock.now();
    const tokens = await this.file.read();
    return Object.entries(tokens)
      .filter(([, r]) => r.user === user && !(Date.parse(r.expires_at) <= now))
      .map(([jti, r]) => ({ ...r, jti }))
      .sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  /** True when the token `jti` was revoked. Throws CorruptFileError on an unreadable file. */
  async isRevoked(jti: string): Promise<boolean> {
    const record = (await this.file.read())[jti];
    return record?.revoked_at !== undefined;
  }

  /** Every revoked token id. Throws CorruptFileError on an unreadable file. */
  async revokedIds(): Promise<Set<string>> {
    const tokens = await this.file.read();
    return new Set(Object.entries(tokens).filter(([, r]) => r.revoked_at !== undefined).map(([jti]) => jti));
  }

  /**
   * Records of tokens past their refresh grace are dropped on every write: `exp` already
   * refuses them everywhere.
   */
  private withoutExpired(tokens: DesktopTokens): DesktopTokens {
    const now = this.clock.now() - REFRESH_GRACE_SECONDS * 1000;
    const out: DesktopTokens = {};
    for (const [jti, r] of Object.entries(tokens)) {
      const exp = Date.parse(r.expires_at);
      if (Number.isNaN(exp) || exp > now) out[jti] = r;
    }
    return out;
  }
}

/** Why a token was refused. */
export type DesktopTokenFailure = 'malformed' | 'algorithm' | 'signature' | 'expired' | 'claims' | 'revoked';

/** A desktop token was refused; `message` is safe to show to the token's holder. */
export class DesktopTokenError extends Error {
  constructor(
    readonly reason: DesktopTokenFailure,
    message: string,
  ) {
    super(message);
    this.name = 'DesktopTokenError';
  }
}

/** Who a valid token speaks for. */
export interface VerifiedDesktopToken {
  username: string;
  jti?: string;
  /** When the token stops being valid, in milliseconds since the epoch. */
  expiresAtMs: number;
}

/**
 * Verifies a desktop token: HS256 only (so `alg: none` and every other algorithm is
 * refused), `sub` and `exp` required, and, when `revocations` is given and the token has a
 * `jti`, not revoked. Tokens without `jti` are accepted (the desktop protocol requires only `sub`
 * and `exp`). `graceSeconds` accepts a token expired that long ago (refresh only). Throws
 * DesktopTokenError; errors reading the revocation list propagate.
 */
export async function verifyDesktopToken(
  secret: string,
  token: string,
  revocations?: RevocationCheck,
  opts: { clock?: Clock; graceSeconds?: number } = {},
): Promise<VerifiedDesktopToken> {
  const clock = opts.clock ?? systemClock;
  let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
  try {
    ({ payload } = await jwtVerify(token, secretKey(secret), {
      algorithms: ['HS256'],
      requiredClaims: ['sub', 'exp'],
      currentDate: new Date(clock.now()),
      ...(opts.graceSeconds ? { clockTolerance: opts.graceSeconds } : {}),
    }));
  } catch (err) {
    throw describeJoseError(err);
  }
  const sub = payload.sub;
  if (typeof sub !== 'string' || sub.trim() === '' || sub.length > 256) {
    throw new DesktopTokenError('claims', 'token has no valid "sub" (username) claim');
  }
  const exp = payload.exp;
  if (typeof exp !== 'number') throw new DesktopTokenError('claims', 'token has no "exp" (expiry) claim');
  const jti = payload.jti;
  if (jti !== undefined && (typeof jti !== 'string' || jti === '')) {
    throw new DesktopTokenError('claims', 'token has an invalid "jti" claim');
  }
  if (jti !== undefined && revocations && (await revocations.isRevoked(jti))) {
    throw new DesktopTokenError('revoked', 'token has been revoked; sign in to the dashboard for a new one');
  }
  const verified: VerifiedDesktopToken = { username: sub, expiresAtMs: exp * 1000 };
  if (jti !== undefined) verified.jti = jti;
  return verified;
}

function describeJoseError(err: unknown): DesktopTokenError {
  if (err instanceof joseErrors.JWTExpired) {
    return new DesktopTokenError('expired', 'token has expired; sign in to the dashboard for a new one');
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) {
    return new DesktopTokenError('algorithm', 'token must be signed with HS256');
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new DesktopTokenError('signature', 'token signature is not valid');
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return new DesktopTokenError('claims', `token is not acceptable: ${err.message}`);
  }
  return new DesktopTokenError('malformed', 'token is not a valid JWT');
}
