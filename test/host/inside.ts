/**
 * The host test's hands inside the booted Debian host (scripts/host-test.sh runs it there
 * with the host's own Node.js): the fake Telegram and the sign-in provider the installed
 * services are pointed at, and the actions of an analyst in a browser and in Telegram,
 * done over real HTTP against the installed dashboard and the fake's control API.
 *
 *   inside.js fakes                      run the fake Telegram and the provider (a unit)
 *   inside.js link USER CHAT             sign in as USER@example.com, link Telegram chat CHAT
 *   inside.js wait-message CHAT TEXT [S] wait up to S seconds for a message containing TEXT
 *   inside.js press CHAT TEXT BUTTON     press BUTTON under the message containing TEXT,
 *                                        print the bot's next message
 *   inside.js fault JSON|off             make the fake Telegram fail (or stop failing)
 *
 * Each command prints what it saw and exits 0, or prints why it failed and exits 1.
 */
import { startFakeTelegram, type SentMessage } from '../../src/fake-telegram/fakeTelegram.js';
import { CookieJar, csrfOf } from '../support/oidcFlow.js';
import { startOidcProvider } from '../support/oidcProvider.js';

/** What the services' environment file is filled with (scripts/host-test.sh writes it). */
export const HOST = {
  dashboard: 'http://127.0.0.1:8080',
  telegramPort: 8081,
  oidcPort: 8082,
  token: '123456789:host-test-token-aaaaaaaaaaaaaaaaaaaaaaaa',
  botUsername: 'notify_host_bot',
  clientSecret: 'host-test-client-secret-0123456789',
};
const TELEGRAM = `http://127.0.0.1:${HOST.telegramPort}`;

class Failure extends Error {}

async function control(path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${TELEGRAM}/__control${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Failure(`the fake Telegram's ${path} answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

async function messages(chat: number): Promise<SentMessage[]> {
  return (await control(`/chats/${chat}/messages`)).messages as SentMessage[];
}

const textOf = (m: SentMessage): string => m.text ?? m.caption ?? '';

/** Waits for a message from the bot in `chat`, after the first `skip`, that `match` accepts. */
async function waitFor(chat: number, match: (m: SentMessage) => boolean, seconds: number, what: string, skip = 0): Promise<SentMessage> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const all = await messages(chat);
    const found = all.slice(skip).find(match);
    if (found) return found;
    if (Date.now() > deadline) {
      const seen = all.map((m) => `  #${m.message_id}: ${textOf(m).slice(0, 120).replace(/\n/g, ' / ')}`).join('\n');
      throw new Failure(`no ${what} in Telegram chat ${chat} within ${seconds} s; the bot sent there:\n${seen || '  (nothing)'}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Signs in at the installed dashboard through the provider, as a browser would. */
async function signIn(email: string): Promise<{ jar: CookieJar; csrf: string }> {
  const jars = new Map<string, CookieJar>();
  const jarFor = (url: string): CookieJar => {
    const origin = new URL(url).origin;
    if (!jars.has(origin)) jars.set(origin, new CookieJar());
    return jars.get(origin)!;
  };
  let url = `${HOST.dashboard}/login`;
  let init: RequestInit = {};
  for (let hop = 0; hop < 25; hop++) {
    const jar = jarFor(url);
    const res = await fetch(url, { redirect: 'manual', ...init, headers: { ...(init.headers as Record<string, string>), cookie: jar.header() } });
    jar.take(res.headers.getSetCookie());
    init = {};
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location') ?? '', url).href;
      if (next === `${HOST.dashboard}/`) {
        const page = await fetch(next, { headers: { cookie: jarFor(next).header() } });
        const html = await page.text();
        if (page.status !== 200) throw new Failure(`the dashboard page answered ${page.status} after the sign-in: ${html.slice(0, 300)}`);
        return { jar: jarFor(next), csrf: csrfOf(html) };
      }
      url = next;
      continue;
    }
    const html = await res.text();
    const form = /<form method="post" action="([^"]+)"/.exec(html);
    if (res.status !== 200 || !form) throw new Failure(`signing in as ${email}: ${url} answered ${res.status}: ${html.slice(0, 300)}`);
    url = new URL(form[1]!, url).href;
    init = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ email }).toString() };
  }
  throw new Failure(`signing in as ${email}: too many redirects`);
}

async function link(user: string, chat: number): Promise<void> {
  const { jar, csrf } = await signIn(`${user}@example.com`);
  console.log(`signed in at the dashboard as ${user}@example.com`);
  await control(`/chats/${chat}`, { username: user, first_name: user });
  const before = (await messages(chat)).length;
  await control(`/chats/${chat}/messages`, { text: '/start' });
  const reply = await waitFor(chat, (m) => /\b\d{6}\b/.test(textOf(m)), 60, 'verification code after /start', before);
  const code = /\b(\d{6})\b/.exec(textOf(reply))![1]!;
  const headers = { cookie: jar.header(), 'x-csrf-token': csrf, 'content-type': 'application/json' };
  const verify = await fetch(`${HOST.dashboard}/api/telegram/verify`, { method: 'POST', headers, body: JSON.stringify({ code }) });
  if (verify.status !== 200) throw new Failure(`the dashboard refused ${user}'s code: ${verify.status} ${await verify.text()}`);
  const status = await fetch(`${HOST.dashboard}/api/telegram/status`, { headers: { cookie: jar.header() } });
  const body = await status.text();
  if (!/"linked":\s*true/.test(body)) throw new Failure(`after the code, the dashboard's status for ${user} is ${body}`);
  console.log(`${user} linked to Telegram chat ${chat}: ${body}`);
}

async function press(chat: number, text: string, button: string): Promise<void> {
  const message = await waitFor(chat, (m) => textOf(m).includes(text), 5, `message containing "${text}"`);
  const buttons = message.reply_markup?.inline_keyboard?.flat() ?? [];
  const target = buttons.find((b) => b.text === button);
  if (!target?.callback_data) throw new Failure(`the message "${text}" has no "${button}" button; its buttons: ${buttons.map((b) => b.text).join(', ') || 'none'}`);
  const count = (await messages(chat)).length;
  await control(`/chats/${chat}/press`, { message_id: message.message_id, data: target.callback_data });
  const next = await waitFor(chat, () => true, 120, `answer to the "${button}" button`, count);
  console.log(`after "${button}", the bot sent: ${textOf(next)}`);
}

async function fakes(): Promise<void> {
  const telegram = await startFakeTelegram({ host: '127.0.0.1', port: HOST.telegramPort, token: HOST.token, bot: { username: HOST.botUsername } });
  const provider = await startOidcProvider({ redirectUris: [`${HOST.dashboard}/auth/callback`], port: HOST.oidcPort, clientSecret: HOST.clientSecret });
  console.log(`fake Telegram on ${TELEGRAM}, sign-in provider ${provider.issuer} (client ${provider.clientId})`);
  const stop = (): void => {
    void Promise.all([telegram.close(), provider.close()]).then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  switch (command) {
    case 'fakes':
      return fakes();
    case 'link':
      return link(args[0]!, Number(args[1]));
    case 'wait-message': {
      const m = await waitFor(Number(args[0]), (msg) => textOf(msg).includes(args[1]!), Number(args[2] ?? 60), `message containing "${args[1]}"`);
      console.log(`#${m.message_id}: ${textOf(m)}`);
      return;
    }
    case 'press':
      return press(Number(args[0]), args[1]!, args[2]!);
    case 'fault':
      await control('/fault', args[0] === 'off' ? null : (JSON.parse(args[0]!) as unknown));
      return;
    default:
      throw new Failure(`unknown command ${command ?? '(none)'}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Failure ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
