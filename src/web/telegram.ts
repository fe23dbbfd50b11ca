/**
 * The "Telegram Notifications" feature: the card on the dashboard and its API
 * (`/api/telegram/status`, `verify`, `unlink`, and `link-token` for one-tap linking).
 * Verification goes through the shared LinkStore (the bot's files), guesses are bounded by
 * an AttemptLimiter, and a successful link triggers the welcome message through the send API.
 */
import type { WebMetrics } from './metrics.js';
import { html, raw, type SafeHtml } from '../shared/html.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import QRCode from 'qrcode';
import { z } from 'zod';
import type { Clock } from '../shared/clock.js';
import { withUsage } from '../shared/httpBody.js';
import { ERROR_RESPONSES } from '../shared/httpErrors.js';
import { CorruptFileError } from '../shared/jsonFile.js';
import { StoreUnavailableError } from '../shared/documents.js';
import { type Link, type LinkStore, VerifyError } from '../shared/linking.js';
import type { LinkTokenStore } from '../shared/linkTokens.js';
import { LockTimeoutError } from '../shared/lock.js';
import { SendClient, SocketUnavailableError, errorText } from '../shared/sendClient.js';
import { welcomeMessage } from '../shared/welcome.js';
import type { DashboardPanel } from './pages.js';
import { AttemptLimiter, isRefusal, type Refusal } from './rateLimit.js';
import type { Identity } from './session.js';

/** Sends the welcome message for a new link; resolves whatever happens (failures are logged). */
export type WelcomeSender = (username: string) => Promise<void>;

/** What the Telegram feature needs. */
export interface TelegramPluginOptions {
  links: LinkStore;
  linkTokens: LinkTokenStore;
  /** Bot @name without `@`; undefined hides the bot's name and one-tap linking. */
  botUsername: string | undefined;
  /** When set, only members may link. */
  analystGroup: string | undefined;
  isMember: (username: string, group: string) => boolean;
  verifyLimiter: AttemptLimiter;
  linkTokenLimiter: AttemptLimiter;
  sendWelcome: WelcomeSender;
  clock: Clock;
  /** The dashboard's panel list, to add the card to. */
  panels: DashboardPanel[];
  metrics?: WebMetrics | undefined;
}

const OkSchema = { type: 'object', properties: { ok: { type: 'boolean' }, message: { type: 'string' } }, required: ['ok', 'message'] } as const;
// Empty and malformed input is a typo, not a guess: refused without using up an attempt.
const VerifyBody = withUsage(z.object({ code: z.union([z.string(), z.number()]).optional() }), new VerifyError('missing').message);

const StatusSchema = {
  type: 'object',
  properties: {
    linked: { type: 'boolean' },
    linked_at: { type: 'string' },
    delivery_refused: { type: 'object', properties: { at: { type: 'string' }, reason: { type: 'string' } } },
  },
  required: ['linked'],
} as const;

const LinkTokenSchema = {
  type: 'object',
  properties: { ok: { type: 'boolean' }, url: { type: 'string' }, expires_at: { type: 'string' }, qr_svg: { type: 'string' } },
  required: ['ok', 'url', 'expires_at', 'qr_svg'],
} as const;

/** The send API client as the welcome sender; `track` lets the app wait for it on close. */
export function welcomeSender(client: SendClient, log: FastifyInstance['log'], track: (p: Promise<void>) => void): WelcomeSender {
  return (username) => {
    const job = (async () => {
      try {
        const res = await client.send({ user: username, ...welcomeMessage(username) }, 'respond-async');
        if (res.status >= 200 && res.status < 300) log.info({ user: username }, 'welcome message handed to the bot');
        else log.warn({ user: username, status: res.status, error: errorText(res) }, 'the bot refused the welcome message (the link stands)');
      } catch (err) {
        const reason = err instanceof SocketUnavailableError ? err.message : String(err);
        log.warn({ user: username, reason }, 'could not reach the bot for the welcome message (the link stands)');
      }
    })();
    track(job);
    return job;
  };
}

/** The status body of a link. */
function statusBody(link: Link | null): Record<string, unknown> {
  if (!link) return { linked: false };
  return link.delivery_refused ? { linked: true, linked_at: link.linked_at, delivery_refused: link.delivery_refused } : { linked: true, linked_at: link.linked_at };
}

function minutes(seconds: number): string {
  const m = Math.ceil(seconds / 60);
  return m <= 1 ? 'a minute' : `${m} minutes`;
}

function tooMany(reply: FastifyReply, refusal: Refusal, what: 'code' | 'link'): FastifyReply {
  reply.header('retry-after', String(refusal.retryAfterSeconds));
  const wait = minutes(refusal.retryAfterSeconds);
  const error =
    what === 'code'
      ? refusal.scope === 'user'
        ? `Too many code attempts. Wait ${wait}, then try again with a fresh code (send /start to the bot).`
        : `Too many code attempts on this server right now. Try again in ${wait}.`
      : `Too many link requests. Try again in ${wait}.`;
  return reply.code(429).send({ error });
}

/** A readable UTC fallback for a timestamp (the page's script shows it in local time). */
function utcText(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const TELEGRAM_ICON = raw(
  '<svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true" focusable="false"><path fill="currentColor" d="M21.4 4.3 18.3 19c-.2 1-.8 1.3-1.7.8l-4.6-3.4-2.2 2.1c-.2.2-.5.5-1 .5l.3-4.7 8.6-7.8c.4-.3-.1-.5-.6-.2L6.4 13 1.9 11.6c-1-.3-1-1 .2-1.5l17.7-6.8c.8-.3 1.6.2 1.3 1Z"/></svg>',
);

/** The card's HTML for one analyst (both states are rendered; the script switches them). */
export function renderTelegramCard(opts: {
  identity: Identity;
  link: Link | null;
  loadError: boolean;
  botUsername: string | undefined;
  mayLink: boolean;
  analystGroup: string | undefined;
}): SafeHtml {
  const { link, botUsername } = opts;
  const linked = link !== null;
  const botName = botUsername ? `@${botUsername}` : 'the notifications bot';
  const botLink = botUsername
    ? html`<a href="https://t.me/${botUsername}" target="_blank" rel="noopener noreferrer">${botName}<span class="visually-hidden"> (opens Telegram)</span></a>`
    : botName;
  const refused = link?.delivery_refused;
  const refusedNotice = html`<div class="notice notice-warn" id="tg-refused"${refused ? '' : ' hidden'}>
        <p><strong>Telegram is not delivering your notifications.</strong> Since <time id="tg-refused-at" datetime="${refused?.at ?? ''}">${refused ? utcText(refused.at) : ''}</time> Telegram refuses messages to your chat (<span id="tg-refused-reason">${refused?.reason ?? ''}</span>).</p>
        <p>If you blocked the bot, unblock it in Telegram; or unlink here and link again.</p>
      </div>`;
  const groupNotice = opts.analystGroup
    ? html`<div class="notice notice-warn"><p>Linking Telegram is open to members of the <strong>${opts.analystGroup}</strong> group only, and your account <strong>${opts.identity.username}</strong> is not in it. Ask an administrator to add you.</p></div>`
    : '';
  const linkForm = opts.mayLink
    ? html`<ol class="steps">
        <li><span class="step-num" aria-hidden="true">1</span><div>In Telegram, send <kbd>/start</kbd> to ${botLink}.</div></li>
        <li><span class="step-num" aria-hidden="true">2</span><div>Enter the 6-digit code the bot replies with. It works once, for 10 minutes.</div></li>
      </ol>
      <form id="tg-verify-form" class="code-form" novalidate>
        <label for="tg-code">Verification code</label>
        <div class="code-row">
          <input id="tg-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" maxlength="7" spellcheck="false" placeholder="123456" aria-describedby="tg-code-hint tg-code-error" required>
          <button type="submit" class="btn btn-primary" id="tg-verify">Verify</button>
        </div>
        <p id="tg-code-hint" class="hint">The 6 digits from the bot's reply.</p>
        <p id="tg-code-error" class="field-error" hidden></p>
      </form>
      ${
        botUsername
          ? html`<div class="divider" role="presentation"><span>or</span></div>
      <div class="onetap" id="tg-onetap">
        <div class="onetap-text">
          <h3>Link in one tap</h3>
          <p>Get a personal link, open it in Telegram and press <strong>Start</strong>. No code to type.</p>
          <button type="button" class="btn btn-secondary" id="tg-deeplink">Get a one-tap link</button>
        </div>
        <div class="onetap-panel" id="tg-deeplink-panel" hidden>
          <a class="btn btn-telegram" id="tg-open" href="#" target="_blank" rel="noopener noreferrer">${TELEGRAM_ICON}<span>Open in Telegram</span></a>
          <figure class="qr">
            <div class="qr-code" id="tg-qr" role="img" aria-label="QR code of your one-tap link"></div>
            <figcaption>On your phone? Scan this with the camera.</figcaption>
          </figure>
          <p class="hint" id="tg-deeplink-expiry"></p>
        </div>
      </div>`
          : ''
      }`
    : groupNotice;
  return html`<section class="card" id="telegram-card" aria-labelledby="tg-title" data-linked="${String(linked)}" data-bot="${botUsername ?? ''}">
  <div class="card-head">
    <div class="card-icon">${TELEGRAM_ICON}</div>
    <div class="card-titles">
      <h2 id="tg-title">Telegram Notifications</h2>
      <p class="card-sub">Alerts from your scripts, straight to your Telegram.</p>
    </div>
    <span class="badge ${linked ? 'badge-on' : 'badge-off'}" id="tg-badge">${linked ? 'Linked' : 'Not linked'}</span>
  </div>
  <div class="live" id="tg-live" role="status" aria-live="polite" aria-atomic="true"></div>
  ${opts.loadError ? html`<div class="notice notice-error"><p>The link status could not be read on the server. Try again later; if it persists, tell an administrator.</p></div>` : ''}
  <div class="card-body" id="tg-linked"${linked ? '' : ' hidden'}>
    <p class="state-line" id="tg-linked-heading" tabindex="-1"><span class="dot dot-on" aria-hidden="true"></span><span><strong>Linked</strong> since <time id="tg-linked-at" datetime="${link?.linked_at ?? ''}">${link ? utcText(link.linked_at) : ''}</time></span></p>
    ${refusedNotice}
    <p>Notifications from your scripts arrive in your chat with ${botLink}. There, <kbd>/status</kbd> shows your scripts and lets you run one.</p>
    <div class="actions">
      <button type="button" class="btn btn-danger-outline" id="tg-unlink" aria-haspopup="dialog">Unlink Telegram</button>
    </div>
  </div>
  <div class="card-body" id="tg-unlinked"${linked ? ' hidden' : ''}>
    <p class="state-line" id="tg-unlinked-heading" tabindex="-1"><span class="dot dot-off" aria-hidden="true"></span><span><strong>Not linked</strong>: link your Telegram account to get alerts there.</span></p>
    ${linkForm}
  </div>
</section>
<dialog class="dialog" id="tg-unlink-dialog" aria-labelledby="tg-unlink-title" aria-describedby="tg-unlink-desc">
  <h2 id="tg-unlink-title">Unlink Telegram?</h2>
  <p id="tg-unlink-desc">Notifications will stop arriving in Telegram. Your scripts keep running, and you can link again at any time.</p>
  <div class="dialog-actions">
    <button type="button" class="btn btn-secondary" id="tg-unlink-cancel">Cancel</button>
    <button type="button" class="btn btn-danger" id="tg-unlink-confirm">Unlink</button>
  </div>
</dialog>`;
}

/** The Telegram card and its API, as a Fastify plugin. */
export async function telegramPlugin(app: FastifyInstance, opts: TelegramPluginOptions): Promise<void> {
  const { links, linkTokens } = opts;

  function mayLink(username: string): boolean {
    return opts.analystGroup === undefined || opts.isMember(username, opts.analystGroup);
  }

  function notMember(reply: FastifyReply, identity: Identity): FastifyReply {
    return reply.code(403).send({
      error: `Only members of the group '${opts.analystGroup ?? ''}' can link Telegram, and ${identity.username} is not one. Ask an administrator to add you.`,
    });
  }


  opts.panels.push({
    id: 'telegram',
    order: 10,
    render: async (identity) => {
      let link: Link | null = null;
      let loadError = false;
      try {
        link = await links.linkOf(identity.username);
      } catch (err) {
        loadError = true;
        app.log.error({ err }, 'could not read telegram_users.json');
      }
      return renderTelegramCard({ identity, link, loadError, botUsername: opts.botUsername, mayLink: mayLink(identity.username), analystGroup: opts.analystGroup });
    },
  });

  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('cache-control', 'no-store');
    return payload;
  });

  app.get('/api/telegram/status', { schema: { response: { 200: StatusSchema, ...ERROR_RESPONSES } } }, async (request) => {
    return statusBody(await links.linkOf(request.caller.username));
  });

  // Who may link is asked before the body is checked: a refusal is the same whatever was sent.
  const mayLinkHook = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!mayLink(request.caller.username)) await notMember(reply, request.caller);
  };

  app.post<{ Body: z.infer<typeof VerifyBody> }>('/api/telegram/verify', { preValidation: mayLinkHook, schema: { body: VerifyBody, response: { 200: OkSchema, ...ERROR_RESPONSES } } }, async (request, reply) => {
    const identity = request.caller;
    const raw = request.body.code;
    const code = typeof raw === 'string' ? raw.replace(/\s+/g, '') : typeof raw === 'number' ? String(raw) : '';
    // Empty and malformed input is a typo, not a guess: refused without using up an attempt.
    if (code === '') return reply.code(400).send({ error: new VerifyError('missing').message });
    if (!/^\d{6}$/.test(code)) return reply.code(400).send({ error: 'A code is 6 digits. Check the bot\'s reply and try again.' });
    const attempt = opts.verifyLimiter.take(identity.username);
    if (isRefusal(attempt)) {
      request.log.warn({ user: identity.username, ip: request.ip, limit: attempt.scope }, 'code attempt refused: too many attempts');
      opts.metrics?.codeVerification('rate_limited');
      return tooMany(reply, attempt, 'code');
    }
    try {
      const link = await links.verifyCode(identity.username, code);
      attempt.refund();
      request.log.info({ user: identity.username, chat_id: link.chat_id }, 'telegram linked with a code');
      opts.metrics?.codeVerification('ok');
    } catch (err) {
      if (err instanceof VerifyError) {
        request.log.warn({ user: identity.username, ip: request.ip, reason: err.reason }, 'code attempt failed');
        opts.metrics?.codeVerification('invalid');
        return reply.code(400).send({ error: err.message });
      }
      attempt.refund();
      throw err;
    }
    void opts.sendWelcome(identity.username);
    return { ok: true, message: 'Telegram is linked. A welcome message is on its way to your chat.' };
  });

  app.post('/api/telegram/unlink', { schema: { response: { 200: OkSchema, ...ERROR_RESPONSES } } }, async (request, reply) => {
    const identity = request.caller;
    const removed = await links.unlink(identity.username);
    if (!removed) return reply.code(400).send({ error: 'Telegram is not linked.' });
    request.log.info({ user: identity.username }, 'telegram unlinked from the dashboard');
    return { ok: true, message: 'Telegram is unlinked. Notifications will no longer arrive there.' };
  });

  app.post('/api/telegram/link-token', { schema: { response: { 200: LinkTokenSchema, ...ERROR_RESPONSES } } }, async (request, reply) => {
    const identity = request.caller;
    if (!mayLink(identity.username)) return notMember(reply, identity);
    if (!opts.botUsername) {
      return reply.code(503).send({ error: 'One-tap linking is not set up on this server. Use the code instead.' });
    }
    if (await links.linkOf(identity.username)) {
      return reply.code(400).send({ error: 'Telegram is already linked. Unlink it first to link another chat.' });
    }
    const attempt = opts.linkTokenLimiter.take(identity.username);
    if (isRefusal(attempt)) return tooMany(reply, attempt, 'link');
    const issued = await linkTokens.issue(identity.username);
    const url = `https://t.me/${opts.botUsername}?start=${issued.token}`;
    const svg = await QRCode.toString(url, { type: 'svg', margin: 1, errorCorrectionLevel: 'M', color: { dark: '#111827', light: '#ffffff' } });
    request.log.info({ user: identity.username }, 'one-tap link issued');
    return { ok: true, url, expires_at: issued.expiresAt, qr_svg: svg };
  });
}

/** Maps the shared layer's failures to answers a person can act on. */
export function sharedFileError(err: unknown): { status: number; error: string } | null {
  if (err instanceof CorruptFileError) {
    return { status: 500, error: 'The link data on the server is damaged, so nothing was changed. An administrator needs to repair it (see the dashboard log).' };
  }
  if (err instanceof StoreUnavailableError) {
    return { status: 503, error: 'The server cannot reach its database just now, so nothing was changed. Try again in a moment.' };
  }
  if (err instanceof LockTimeoutError) {
    return { status: 503, error: 'The server is busy. Try again in a moment.' };
  }
  return null;
}
