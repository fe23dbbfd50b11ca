/**
 * Builds the dashboard's Fastify app from its configuration: security headers, cookies and
 * sessions, sign-in, the page, errors (one plugin), and one plugin per feature (Telegram,
 * My scripts with the alert settings, the desktop app), each adding its dashboard panel.
 * Tests drive it with `app.inject()`; main.ts makes it listen.
 */
import type { WebMetrics } from './metrics.js';
import { guardConnections } from '../shared/connectionGuard.js';
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { AlertRulesStore, formatLocalTime } from '../shared/alertRules.js';
import { type Clock, systemClock } from '../shared/clock.js';
import { DesktopLinkStore } from '../shared/desktopLinks.js';
import { DesktopTokenStore } from '../shared/desktopTokens.js';
import { IMAGE_URL_PREFIX } from '../shared/desktopImages.js';
import { LinkStore } from '../shared/linking.js';
import { LinkTokenStore } from '../shared/linkTokens.js';
import type { Logger } from '../shared/logger.js';
import { silentLogger } from '../shared/logger.js';
import { groupIdByName, groupMembers, isUserInGroup, userByName } from '../shared/posix.js';
import { TeamChatStore } from '../shared/teamChats.js';
import { ScriptsHelper } from '../scripts/client.js';
import { RunNow, throughSendApi } from '../scripts/runNow.js';
import { SendClient } from '../shared/sendClient.js';
import { loginUidRange, serviceUids, whyNotAnalyst } from '../shared/analystAccounts.js';
import { channelsPlugin } from './channels.js';
import { authPlugin } from './auth.js';
import type { WebConfig } from './config.js';
import { desktopBearer, desktopPlugin } from './desktop/index.js';
import { OidcClient } from './oidc.js';
import { type DashboardPanel, dashboardPage, messagePage } from './pages.js';
import { AttemptLimiter } from './rateLimit.js';
import { Sessions, installSessionGuard } from './session.js';
import { scriptsPlugin } from './scripts.js';
import { Assets } from './static.js';
import { sharedFileError, telegramPlugin, welcomeSender } from './telegram.js';
import { teamsPlugin } from './teams.js';
import { zodSchemaController, zodValidatorCompiler } from '../shared/httpBody.js';
import { errorPlugin } from '../shared/httpErrors.js';

/** What the app is built from; everything but the configuration has a real default. */
export interface WebDeps {
  config: WebConfig;
  logger?: Logger;
  clock?: Clock;
  /** Group membership (NOTIFY_ANALYST_GROUP); the system's user database by default. */
  isMember?: (username: string, group: string) => boolean;
  /** Runs `notify-scripts` as an analyst; by default one from `config.scripts`, made on first use. */
  scriptsHelper?: ScriptsHelper;
  /** Whether a server account / Linux group exists (team chat access); the system's by default. */
  accountExists?: (name: string) => boolean;
  groupExists?: (name: string) => boolean;
  /** The accounts of a Linux group (tests pass their own). */
  groupMembers?: (name: string) => string[] | null;
  /** Counts sign-ins and code verifications (when metrics are served). */
  metrics?: WebMetrics;
  /** Why a name cannot sign in as an analyst (a system or service account); the system's user database by default. */
  whyNotAnalyst?: (username: string) => string | null;
}

/** Limits on one-tap link requests (not guesses: each replaces the user's earlier link). */
const LINK_TOKEN_LIMITS = { perUser: 20, overall: 1000, windowMs: 10 * 60_000 };

function isApi(url: string): boolean {
  return url.toLowerCase().startsWith('/api/') || url.toLowerCase() === '/api';
}

/** Builds the app (not listening). */
export async function buildApp(deps: WebDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? silentLogger();
  // Typed as Fastify's base logger so the app keeps the plain default instance type.
  const baseLogger: FastifyBaseLogger = logger;
  const app = Fastify({
    loggerInstance: baseLogger,
    // Our own one-line request log (onResponse below) leaves out query strings: the sign-in
    // callback carries the authorization code there.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.trustProxy,
    bodyLimit: 16 * 1024,
    return503OnClosing: true,
    // Route bodies are zod schemas (schema: { body }), checked before the handler runs.
    schemaController: zodSchemaController(zodValidatorCompiler, { responses: true }),
  });
  const trustProxy = config.trustProxy;
  guardConnections(app.server, {
    requestTimeoutMs: config.connections.requestTimeoutMs,
    // Behind the proxy every connection comes from its address: only the total applies.
    perCallerMax: trustProxy ? 0 : config.connections.perAddress,
    totalMax: config.connections.total,
    callerOf: (socket) => (trustProxy ? null : (socket.remoteAddress ?? null)),
    describeCaller: (address) => `address ${address}`,
    settings: { requestTimeout: 'NOTIFY_WEB_REQUEST_TIMEOUT', perCaller: 'NOTIFY_WEB_MAX_CONNECTIONS_PER_ADDRESS', total: 'NOTIFY_WEB_MAX_CONNECTIONS' },
  });

  const assets = new Assets();
  const sessions = new Sessions({ dataDir: config.dataDir, ttlMs: config.sessionTtlMs, secure: config.secureCookies, clock });
  const oidc = new OidcClient({
    issuer: config.oidc.issuer,
    clientId: config.oidc.clientId,
    clientSecret: config.oidc.clientSecret,
    redirectUri: config.redirectUri,
    allowInsecureRequests: config.oidc.allowInsecureRequests,
  });
  const panels: DashboardPanel[] = [];
  const pending = new Set<Promise<void>>();

  await app.register(cookie, { secret: config.sessionSecret, hook: 'onRequest' });
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        ...(config.secureCookies ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    frameguard: { action: 'deny' },
    hsts: config.secureCookies ? { maxAge: 15_552_000, includeSubDomains: false } : false,
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginEmbedderPolicy: false,
  });

  // The sign-out form posts urlencoded fields (it works without the page's script too).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(typeof body === 'string' ? body : body.toString('utf8'))));
  });

  const desktopTokens = new DesktopTokenStore(config.dataDir, clock);
  installSessionGuard(app, sessions, desktopBearer(desktopTokens, config.desktopSecret, clock));

  app.addHook('onResponse', async (request, reply) => {
    const raw = request.url.split('?', 1)[0] ?? '/';
    // An image's name is its permission: it stays out of the log.
    const path = raw.startsWith(IMAGE_URL_PREFIX) ? `${IMAGE_URL_PREFIX}…` : raw;
    const fields = { method: request.method, path, status: reply.statusCode, ms: Math.round(reply.elapsedTime), user: request.identity?.username };
    if (path.startsWith('/static/') || path === '/healthz') request.log.debug(fields, 'request');
    else request.log.info(fields, 'request');
  });

  await app.register(errorPlugin, {
    limits: { bodyBytes: app.initialConfig.bodyLimit ?? 1024 * 1024 },
    serverError: 'Something went wrong on the server. Try again; if it keeps happening, tell an administrator.',
    notFound: (request) => (isApi(request.url) ? 'There is no such API endpoint.' : 'There is nothing at this address.'),
    known: (err, request) => {
      const shared = sharedFileError(err);
      if (shared) request.log.error({ err }, 'shared data file problem');
      return shared ? { status: shared.status, text: shared.error } : null;
    },
    // Pages get a page; the API gets {"error"}.
    render: (request, reply, status, text) => {
      reply.header('cache-control', 'no-store');
      if (isApi(request.url)) return undefined;
      const page =
        status === 404
          ? { title: 'Not found', heading: 'Page not found', paragraphs: [text], action: { href: '/', label: 'Go to the dashboard' } }
          : { title: 'Error', heading: 'Something went wrong', paragraphs: [text], action: { href: '/', label: 'Back to the dashboard' }, tone: 'error' as const };
      return reply.type('text/html; charset=utf-8').send(messagePage({ assets, ...page }));
    },
  });

  assets.register(app);

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/', async (request, reply) => {
    if (!request.identity) return reply.header('cache-control', 'no-store').redirect('/login', 302);
    const html = await dashboardPage(request.identity, panels, assets);
    return reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(html);
  });

  await app.register(authPlugin, {
    oidc,
    sessions,
    assets,
    allowedDomains: config.allowedDomains,
    allowedEmails: config.allowedEmails,
    secureCookies: config.secureCookies,
    metrics: deps.metrics,
    whyNotAnalyst:
      deps.whyNotAnalyst ??
      ((name) => (config.signInExceptions.includes(name) ? null : whyNotAnalyst(name, { range: loginUidRange(), serviceUids: serviceUids([config.socketPath]) }))),
  });

  const track = (p: Promise<void>): void => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };
  // One code space (personal chats and groups), so one bound on guesses.
  const verifyLimiter = new AttemptLimiter(config.verify, clock);
  const links = new LinkStore(config.dataDir, clock);
  await app.register(telegramPlugin, {
    links,
    linkTokens: new LinkTokenStore(config.dataDir, clock),
    botUsername: config.botUsername,
    analystGroup: config.analystGroup,
    isMember: deps.isMember ?? isUserInGroup,
    verifyLimiter,
    linkTokenLimiter: new AttemptLimiter(LINK_TOKEN_LIMITS, clock),
    sendWelcome: welcomeSender(new SendClient(config.socketPath, 10_000), app.log, track),
    clock,
    panels,
    metrics: deps.metrics,
  });

  await app.register(teamsPlugin, {
    teams: new TeamChatStore(config.dataDir, clock),
    links,
    verifyLimiter,
    analystGroup: config.analystGroup,
    isMember: deps.isMember ?? isUserInGroup,
    accountExists: deps.accountExists ?? ((name) => userByName(name) !== null),
    groupExists: deps.groupExists ?? ((name) => groupIdByName(name) !== null),
    groupMembers: deps.groupMembers ?? groupMembers,
    botUsername: config.botUsername,
    clock,
    assets,
    panels,
    metrics: deps.metrics,
  });

  let scriptsHelper = deps.scriptsHelper;
  const helper = (): ScriptsHelper => (scriptsHelper ??= new ScriptsHelper(config.scripts));
  const rulesStore = new AlertRulesStore(config.dataDir, clock);
  // One on-demand run service for Run now and the desktop app: one "already running" guard.
  const runNow = new RunNow(helper, throughSendApi(new SendClient(config.socketPath, 30_000)), app.log, async (user, iso) => {
    const tz = (await rulesStore.forUser(user).catch(() => null))?.quiet_hours?.tz ?? 'UTC';
    return formatLocalTime(Date.parse(iso), tz);
  });
  await app.register(desktopPlugin, {
    store: desktopTokens,
    links: new DesktopLinkStore(config.dataDir, clock),
    secret: config.desktopSecret,
    urlScheme: config.desktopUrlScheme,
    issuer: config.publicUrl,
    dataDir: config.dataDir,
    clock,
    helper,
    runNow,
    assets,
    panels,
  });

  await app.register(channelsPlugin, { send: new SendClient(config.socketPath, 30_000), assets, panels });

  await app.register(scriptsPlugin, {
    helper,
    runNow,
    rules: rulesStore,
    dataDir: config.dataDir,
    clock,
    panels,
  });

  // Let welcome messages on their way finish before the process goes.
  app.addHook('onClose', async () => {
    await Promise.allSettled([...pending]);
  });
  return app;
}
