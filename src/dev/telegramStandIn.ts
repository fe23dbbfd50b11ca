/**
 * The first run's Telegram stand-in, started by `npm start` when TELEGRAM_BOT_TOKEN is not
 * set: the fake Telegram Bot API (the one the tests use, src/fake-telegram/) for
 * the real bot to talk to, and a chat page where a person plays the Telegram user of one
 * chat. Both listen on 127.0.0.1 only.
 *
 * Environment: FIRST_RUN_TELEGRAM_PORT (Bot API), FIRST_RUN_CHAT_PORT (chat page),
 * FIRST_RUN_TELEGRAM_TOKEN, FIRST_RUN_CHAT_ID, FIRST_RUN_USER.
 */
import http from 'node:http';
import { startFakeTelegram } from '../fake-telegram/fakeTelegram.js';
import { chatPageHtml } from './chatPage.js';

export const STAND_IN_BOT = 'notify_local_bot';

function need(name: string): string {
  const v = process.env[name];
  if (!v) {
    console.error(`telegramStandIn: ${name} is not set (this program is started by npm start)`);
    process.exit(1);
  }
  return v;
}

async function readBody(req: http.IncomingMessage, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<void> {
  const apiPort = Number(need('FIRST_RUN_TELEGRAM_PORT'));
  const chatPort = Number(need('FIRST_RUN_CHAT_PORT'));
  const chatId = Number(need('FIRST_RUN_CHAT_ID'));
  const user = need('FIRST_RUN_USER');

  const fake = await startFakeTelegram({
    port: apiPort,
    host: '127.0.0.1',
    token: need('FIRST_RUN_TELEGRAM_TOKEN'),
    bot: { username: STAND_IN_BOT, first_name: 'Notifications (local)' },
  }).catch((err: unknown) => {
    console.error(`cannot start the Bot API stand-in on 127.0.0.1:${apiPort}: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
  // The chat exists from the start, so a chat linked in an earlier run can receive again.
  fake.registerChat(chatId, { first_name: user, username: user });
  const control = `${fake.apiRoot}/__control`;

  const json = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
  };
  const forward = async (res: http.ServerResponse, url: string, init?: RequestInit): Promise<void> => {
    const upstream = await fetch(url, init);
    const type = upstream.headers.get('content-type') ?? 'application/octet-stream';
    res.writeHead(upstream.status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(Buffer.from(await upstream.arrayBuffer()));
  };

  const page = chatPageHtml(STAND_IN_BOT, user);
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://stand-in.invalid');
      const method = req.method ?? 'GET';
      try {
        if (method === 'GET' && url.pathname === '/') {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(page);
          return;
        }
        if (method === 'GET' && url.pathname === '/api/transcript') {
          const since = Number(url.searchParams.get('since') ?? '0') || 0;
          const wait = Math.min(30, Number(url.searchParams.get('wait') ?? '0') || 0);
          await forward(res, `${control}/chats/${chatId}/transcript?since=${since}&wait=${wait}`);
          return;
        }
        const file = /^\/files\/([^/]+)$/.exec(url.pathname);
        if (method === 'GET' && file) {
          await forward(res, `${control}/files/${encodeURIComponent(decodeURIComponent(file[1] ?? ''))}`);
          return;
        }
        if (method === 'POST' && (url.pathname === '/api/send' || url.pathname === '/api/press')) {
          // JSON only: a page from another site cannot post JSON here without a preflight.
          if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return json(res, 415, { error: 'Send JSON.' });
          const body = await readBody(req);
          const action = url.pathname === '/api/send' ? 'messages' : 'press';
          if (action === 'messages') console.log(`user: ${(JSON.parse(body) as { text?: unknown }).text as string}`);
          await forward(res, `${control}/chats/${chatId}/${action}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          return;
        }
        json(res, 404, { error: 'Not found.' });
      } catch (err) {
        if (!res.headersSent) json(res, 400, { error: err instanceof Error ? err.message : String(err) });
        else res.end();
      }
    })();
  });
  server.on('error', (err) => {
    console.error(`cannot serve the chat page on 127.0.0.1:${chatPort}: ${err.message}`);
    process.exit(1);
  });
  server.listen(chatPort, '127.0.0.1', () => {
    console.log(`Bot API stand-in at ${fake.apiRoot} (bot @${STAND_IN_BOT}); chat page at http://127.0.0.1:${chatPort}/`);
  });

  const stop = (): void => {
    server.closeAllConnections();
    server.close();
    void fake.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

await main();
