/**
 * The OpenID Connect relying party: authorization code flow with PKCE, state and nonce,
 * through openid-client. Discovery happens on first use (and again after a failure), so
 * the dashboard starts even while the issuer is unreachable.
 */
import * as client from 'openid-client';

/** What must survive between the redirect to the issuer and the callback. */
export interface PendingSignIn {
  state: string;
  nonce: string;
  verifier: string;
}

/** The identity claims the dashboard uses. */
export interface SignInClaims {
  sub: string;
  email?: unknown;
  email_verified?: unknown;
}

/** The issuer could not be reached or answered nonsense while discovering it. */
export class IssuerUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`The sign-in provider could not be reached: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'IssuerUnavailableError';
  }
}

/** Options of the relying party. */
export interface OidcOptions {
  issuer: string;
  clientId: string;
  clientSecret: string | undefined;
  redirectUri: string;
  allowInsecureRequests: boolean;
}

/** One configured OpenID Connect client. */
export class OidcClient {
  private configuration: Promise<client.Configuration> | null = null;

  constructor(private readonly opts: OidcOptions) {}

  private async config(): Promise<client.Configuration> {
    this.configuration ??= client
      .discovery(
        new URL(this.opts.issuer),
        this.opts.clientId,
        this.opts.clientSecret,
        this.opts.clientSecret === undefined ? client.None() : undefined,
        { execute: this.opts.allowInsecureRequests ? [client.allowInsecureRequests] : [], timeout: 15 },
      )
      .catch((err: unknown) => {
        this.configuration = null;
        throw new IssuerUnavailableError(err);
      });
    return this.configuration;
  }

  /** The issuer's authorization URL for a new sign-in, and what to remember until the callback. */
  async begin(extra: { prompt?: string } = {}): Promise<{ url: URL; pending: PendingSignIn }> {
    const config = await this.config();
    const pending: PendingSignIn = {
      state: client.randomState(),
      nonce: client.randomNonce(),
      verifier: client.randomPKCECodeVerifier(),
    };
    const params: Record<string, string> = {
      redirect_uri: this.opts.redirectUri,
      scope: 'openid email',
      response_type: 'code',
      code_challenge: await client.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    };
    if (extra.prompt !== undefined) params.prompt = extra.prompt;
    return { url: client.buildAuthorizationUrl(config, params), pending };
  }

  /**
   * Completes a sign-in from the callback's query string: checks state, exchanges the code
   * with the PKCE verifier, validates the ID token and its nonce, and returns its claims
   * (completed from the UserInfo endpoint when the ID token carries no e-mail).
   */
  async complete(search: string, pending: PendingSignIn): Promise<SignInClaims> {
    const config = await this.config();
    const currentUrl = new URL(`${this.opts.redirectUri}${search}`);
    const tokens = await client.authorizationCodeGrant(config, currentUrl, {
      pkceCodeVerifier: pending.verifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    const idClaims = tokens.claims();
    if (!idClaims) throw new Error('the provider returned no ID token');
    const claims: SignInClaims = { ...idClaims, sub: idClaims.sub };
    if (claims.email === undefined && tokens.access_token) {
      const info = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub);
      claims.email = info.email;
      claims.email_verified = info.email_verified;
    }
    return claims;
  }
}
