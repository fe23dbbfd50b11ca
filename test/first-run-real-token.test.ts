/**
 * `npm start` with a real bot token (here one whose Telegram cannot be reached): the
 * console says so, with the reason, instead of leaving the newcomer waiting for /start
 * answers; and a link to the stand-in's chat from an earlier start with the stand-in is not
 * carried into real mode (its chat does not exist in the real Telegram).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LinkStore } from '../src/shared/linking.js';

const ROOT = process.env.NOTIFY_PROJECT_ROOT ?? fileURLToPath(new URL('../../', import.meta.url));
/** The stand-in's one chat (src/dev/firstRun.ts). */
const STAND_IN_CHAT = 5550001;

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

void test('npm start with a real token says it cannot reach Telegram, and drops the stand-in link', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'first-run-real-'));
  const state = join(dir, 'state');
  mkdirSync(join(state, 'data'), { recursive: true, mode: 0o770 });
  const me = userInfo().username;
  // An earlier start with the stand-in linked this user to the stand-in's chat.
  await new LinkStore(join(state, 'data')).linkChat(me, STAND_IN_CHAT);

  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(NOTIFY_|TELEGRAM_|OIDC_|FIRST_RUN_|DESKTOP_)/.test(k)) env[k] = v;
  Object.assign(env, {
    FIRST_RUN_DIR: state,
    TELEGRAM_BOT_TOKEN: '123456789:AAFakeTokenForTheFirstRunTest0123456789',
    TELEGRAM_API_ROOT: `http://127.0.0.1:${await freePort()}`,
    NOTIFY_WEB_PORT: String(await freePort()),
    NOTIFY_GATEWAY_PORT: String(await freePort()),
    FIRST_RUN_OIDC_PORT: String(await freePort()),
  });
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'first-run.mjs')], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const seen: Array<{ re: RegExp; resolve: () => void }> = [];
  const onData = (c: Buffer): void => {
    out += c.toString();
    for (const s of seen.splice(0)) {
      if (s.re.test(out)) s.resolve();
      else seen.push(s);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitOutput = (re: RegExp, timeoutMs: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (re.test(out)) return resolve();
      const timer = setTimeout(() => reject(new Error(`npm start did not print ${re} within ${timeoutMs} ms:\n${out}`)), timeoutMs);
      seen.push({ re, resolve: () => (clearTimeout(timer), resolve()) });
      void exited.then((code) => reject(new Error(`npm start exited (${code}) before printing ${re}:\n${out}`)));
    });
  try {
    await waitOutput(/The bot cannot reach Telegram:\n!!! +cannot reach Telegram \(ECONNREFUSED/, 120_000);
    assert.match(out, new RegExp(`'${me}' was linked to the Telegram stand-in's chat, which does not exist in the real Telegram: unlinked`));
    assert.equal(await new LinkStore(join(state, 'data')).linkOf(me), null, 'the stand-in link is gone');
    assert.doesNotMatch(out, /AAFakeTokenForTheFirstRunTest/, 'the token is never printed');
  } finally {
    if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGINT');
    const timer = setTimeout(() => child.pid && process.kill(-child.pid, 'SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  }
});
