/**
 * Delivery status on the dashboard: what the analyst's Telegram delivery did last (and why
 * it failed, or since when it is retrying), whether the bot can poll Telegram, how many of
 * their desktop apps are connected now; and "Send test notification", which sends through
 * the real path (send API, outbox, Telegram and the desktop gateway) and reports what each
 * channel did. The bot knows all of it; the dashboard asks it over the send socket as a
 * trusted service. The cards' script (channels.js) shows it in the Telegram and desktop
 * cards.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { type SendClient, SocketUnavailableError, errorText } from '../shared/sendClient.js';
import type { DashboardPanel } from './pages.js';
import { html } from '../shared/html.js';
import type { Assets } from './static.js';
import { ERROR_RESPONSES } from '../shared/httpErrors.js';

/** What the plugin needs. */
export interface ChannelsOptions {
  send: SendClient;
  assets: Assets;
  panels: DashboardPanel[];
  /** How long the test waits for Telegram's answer before reporting "queued" (seconds). */
  testWaitSeconds?: number;
}

/** The test notification's text. */
export const TEST_TITLE = 'Test notification';
const TEST_MESSAGE = 'Sent from the dashboard to check that alerts reach you. Nothing to do.';

const UNREACHABLE = 'The notification service (notify-bot) is not answering. Try again shortly; if it persists, tell an administrator.';

function botDown(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof SocketUnavailableError) return reply.code(503).send({ error: UNREACHABLE });
  throw err;
}

/** The delivery status routes and the cards' script, as a Fastify plugin. */
export async function channelsPlugin(app: FastifyInstance, opts: ChannelsOptions): Promise<void> {
  opts.assets.add('channels.js');
  // No card of its own: the script fills in the Telegram and desktop cards.
  opts.panels.push({ id: 'channels', order: 99, render: () => Promise.resolve(html`<script src="${opts.assets.url('channels.js')}" defer></script>`) });

  app.get('/api/channels', { schema: { response: ERROR_RESPONSES } }, async (request, reply) => {
    const { username } = request.caller;
    reply.header('cache-control', 'no-store');
    try {
      const res = await opts.send.channels(username);
      if (res.status !== 200) return reply.code(502).send({ error: `The notification service could not say: ${errorText(res)}` });
      return res.body;
    } catch (err) {
      return botDown(reply, err);
    }
  });

  app.post('/api/channels/test', { schema: { response: ERROR_RESPONSES } }, async (request, reply) => {
    const { username } = request.caller;
    reply.header('cache-control', 'no-store');
    try {
      // Urgent: a test during quiet hours should still show whether delivery works.
      const sent = await opts.send.send({ user: username, title: TEST_TITLE, message: TEST_MESSAGE, urgent: true }, { waitSeconds: opts.testWaitSeconds ?? 10 });
      const status = await opts.send.channels(username);
      const channels = status.status === 200 ? (status.body as { telegram?: Record<string, unknown>; desktop?: Record<string, unknown> }) : {};
      request.log.info({ user: username, status: sent.status }, 'test notification sent from the dashboard');
      if (sent.status === 404) {
        // Neither channel took it: Telegram not linked and no desktop app connected.
        return { ok: false, telegram: { status: 'not_linked' }, desktop: { status: 0 }, message: errorText(sent), channels };
      }
      if (sent.status !== 200 && sent.status !== 202) return reply.code(502).send({ error: `The test notification was refused: ${errorText(sent)}` });
      const body = sent.body as { id?: string; telegram?: string; desktop?: number | string };
      const tg = channels.telegram ?? {};
      const detail =
        body.telegram === 'refused' || body.telegram === 'failed'
          ? ((tg.refused as { reason?: string } | undefined)?.reason ?? (tg.last as { detail?: string } | undefined)?.detail)
          : body.telegram === 'queued'
            ? ((tg.retrying as { reason?: string } | undefined)?.reason ?? (tg.polling === false ? (tg.polling_error as string | undefined) : undefined))
            : undefined;
      return {
        ok: true,
        id: body.id,
        telegram: { status: body.telegram ?? 'unknown', ...(detail ? { detail } : {}) },
        desktop: { status: body.desktop ?? 'unknown' },
        channels,
      };
    } catch (err) {
      return botDown(reply, err);
    }
  });
}
