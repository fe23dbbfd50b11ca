/**
 * A local OpenID Connect provider (oidc-provider) for the first run and the tests: one
 * confidential client with PKCE, e-mail claims, and consent implied (a first-party client,
 * as Google treats an internal app), so only the sign-in form is interactive. Callers
 * serve that form themselves (`interactionPath`, `readForm`), under their own rules.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type http from 'node:http';

/** The slice of oidc-provider's Provider used here (the package ships no types). */
export interface InteractionDetails {
  uid: string;
}
interface GrantLike {
  addOIDCScope(scope: string): void;
  save(): Promise<string>;
}
/** A provider instance. */
export interface ProviderLike {
  callback(): (req: http.IncomingMessage, res: http.ServerResponse) => void;
  interactionDetails(req: http.IncomingMessage, res: http.ServerResponse): Promise<InteractionDetails>;
  interactionFinished(req: http.IncomingMessage, res: http.ServerResponse, result: Record<string, unknown>, opts?: { mergeWithLastSubmission?: boolean }): Promise<void>;
  Grant: {
    new (init: { accountId: string; clientId: string }): GrantLike;
    find(id: string): Promise<GrantLike | undefined>;
  };
  on(event: string, fn: (...args: unknown[]) => void): void;
}
type ProviderCtor = new (issuer: string, configuration: Record<string, unknown>) => ProviderLike;

/** What the provider needs to know. */
export interface LocalProviderOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  /** Key id of the generated signing key. */
  kid: string;
  /** The claims of the account signing in as `id` (the e-mail it typed, lower-cased). */
  claims(id: string): { email: string; email_verified: boolean };
  /** Server-side errors the provider reports. */
  onError(message: string): void;
}

/** Builds the provider (not yet serving: pass its `callback()` the non-interaction requests). */
export async function buildLocalProvider(opts: LocalProviderOptions): Promise<ProviderLike> {
  // A variable module name keeps this devDependency out of the type-checked import graph.
  const moduleName = 'oidc-provider';
  const { default: Provider } = (await import(moduleName)) as { default: ProviderCtor };
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: opts.kid };
  const provider = new Provider(opts.issuer, {
    clients: [
      {
        client_id: opts.clientId,
        client_secret: opts.clientSecret,
        redirect_uris: opts.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    findAccount: async (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: async () => ({ sub: id, ...opts.claims(id) }),
    }),
    loadExistingGrant: async (ctx: {
      oidc: { client: { clientId: string }; session: { accountId: string; grantIdFor(id: string): string | undefined }; result?: { consent?: { grantId?: string } }; provider: ProviderLike };
    }) => {
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        const existing = await ctx.oidc.provider.Grant.find(grantId);
        if (existing) return existing;
      }
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid email');
      await grant.save();
      return grant;
    },
  });
  provider.on('server_error', (_ctx: unknown, err: unknown) => opts.onError(err instanceof Error ? err.message : String(err)));
  return provider;
}

/** `/interaction/<uid>` (the form) or `/interaction/<uid>/login` (its post); null otherwise. */
export function interactionPath(pathname: string): { uid: string; login: boolean } | null {
  const m = /^\/interaction\/([^/]+)(\/login)?$/.exec(pathname);
  return m ? { uid: m[1]!, login: m[2] !== undefined } : null;
}

/** Reads an urlencoded form body. */
export async function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

