/**
 * The dashboard and a second process (standing in for the bot) write the shared files at
 * the same time: the child issues codes and links and unlinks its own users in a loop,
 * while the dashboard verifies the child's codes and unlinks through HTTP. No update may
 * be lost on either side.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/web/app.js';
import { readWebConfig } from '../src/web/config.js';
import { type SignedIn, signIn, webEnv } from './support/oidcFlow.js';
import { type TestOidcProvider, startOidcProvider } from './support/oidcProvider.js';

const WEB_USERS = 12;
const ROUNDS = 2;
const BOT_USERS = 60;

/** The second process: issues codes (printing them) and links/unlinks its own users. */
const CHILD = `
const { LinkStore } = await import(process.env.LINKING_MODULE);
const store = new LinkStore(process.env.DATA_DIR);
const codes = Number(process.env.CODES);
const botUsers = Number(process.env.BOT_USERS);
for (let i = 0; i < Math.max(codes, botUsers); i++) {
  if (i < codes) {
    const chat = 900000 + i;
    const code = await store.issueCode(chat);
    process.stdout.write(JSON.stringify({ i, code, chat }) + '\\n');
  }
  if (i < botUsers) {
    await store.linkChat('bot_user_' + i, 500000 + i);
    if (i % 5 === 0) await store.unlink('bot_user_' + i);
    await store.issueCode(700000 + i);
  }
}
process.stdout.write('done\\n');
`;

void describe('web and a second process writing the shared files at once', () => {
  let provider: TestOidcProvider;
  let dataDir: string;
  let app: FastifyInstance;

  before(async () => {
    provider = await startOidcProvider({ redirectUris: ['http://dashboard.test/auth/callback'] });
    dataDir = mkdtempSync(join(tmpdir(), 'web-concurrency-'));
    app = await buildApp({ config: readWebConfig(webEnv(provider, dataDir, { NOTIFY_VERIFY_USER_LIMIT: '1000', NOTIFY_VERIFY_GLOBAL_LIMIT: '100000' })) });
  });
  after(async () => {
    await app.close();
    await provider.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  void it('loses no update', async () => {
    const sessions: SignedIn[] = [];
    for (let k = 0; k < WEB_USERS; k++) sessions.push(await signIn(app, `web${k}@example.com`));
    const codes = WEB_USERS * ROUNDS;
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
      env: {
        ...process.env,
        LINKING_MODULE: fileURLToPath(new URL('../src/shared/linking.js', import.meta.url)),
        DATA_DIR: dataDir,
        CODES: String(codes),
        BOT_USERS: String(BOT_USERS),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

    const work: Promise<void>[] = [];
    const expected = new Map<string, number>();
    const failures: string[] = [];
    for await (const line of createInterface({ input: child.stdout })) {
      if (line === 'done') break;
      const { i, code, chat } = JSON.parse(line) as { i: number; code: string; chat: number };
      const k = i % WEB_USERS;
      const s = sessions[k]!;
      const headers = { cookie: s.jar.header(), 'x-csrf-token': s.csrf, 'content-type': 'application/json' };
      if (i >= WEB_USERS) expected.set(`web${k}`, chat);
      // While the child goes on writing: verify this code, and after a first round unlink again.
      work.push(
        (async () => {
          if (i >= WEB_USERS) await work[i - WEB_USERS];
          const res = await app.inject({ method: 'POST', url: '/api/telegram/verify', headers, payload: JSON.stringify({ code }) });
          if (res.statusCode !== 200) failures.push(`verify ${code} as web${k}: ${res.statusCode} ${res.body}`);
          if (i < WEB_USERS) {
            const un = await app.inject({ method: 'POST', url: '/api/telegram/unlink', headers, payload: '{}' });
            if (un.statusCode !== 200) failures.push(`unlink web${k}: ${un.statusCode} ${un.body}`);
          }
        })(),
      );
    }
    await Promise.all(work);
    assert.equal(await exited, 0, `the child failed: ${stderr}`);
    assert.deepEqual(failures, []);

    const users = JSON.parse(readFileSync(join(dataDir, 'telegram_users.json'), 'utf8')) as Record<string, { chat_id: number }>;
    for (let k = 0; k < WEB_USERS; k++) {
      assert.equal(users[`web${k}`]?.chat_id, expected.get(`web${k}`), `web${k} is linked to the chat of its last code`);
    }
    for (let i = 0; i < BOT_USERS; i++) {
      if (i % 5 === 0) assert.equal(users[`bot_user_${i}`], undefined, `bot_user_${i} was unlinked by the child`);
      else assert.equal(users[`bot_user_${i}`]?.chat_id, 500000 + i, `bot_user_${i} linked by the child`);
    }
    assert.equal(Object.keys(users).length, WEB_USERS + BOT_USERS - BOT_USERS / 5, 'nothing else in the file');

    const pending = JSON.parse(readFileSync(join(dataDir, 'pending_codes.json'), 'utf8')) as Record<string, { chat_id: number }>;
    const pendingChats = new Set(Object.values(pending).map((p) => p.chat_id));
    for (let i = 0; i < BOT_USERS; i++) assert.ok(pendingChats.has(700000 + i), `the child's code for chat ${700000 + i} is still pending`);
    for (let i = 0; i < codes; i++) assert.ok(!pendingChats.has(900000 + i), `the verified code of chat ${900000 + i} is consumed`);
  });
});
