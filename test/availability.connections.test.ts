/**
 * Slow request bodies cannot take the send API down: a Linux account made for the test
 * opens many connections to the real bot's socket, sends headers and trickles the body.
 * It holds at most NOTIFY_MAX_CONNECTIONS_PER_UID of them (the rest are answered 503 at
 * once), those are closed with a 408 after NOTIFY_REQUEST_TIMEOUT, and meanwhile another
 * account sends as usual. Running out of file descriptors is a 503 "cannot tell who is
 * calling", never "uid has no account". Needs root (useradd, runuser); skipped otherwise.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { userByName } from '../src/shared/posix.js';
import { BotHarness, PROJECT_ROOT } from './support/botHarness.js';
import { runAs, SLOW_CLIENT } from './support/slowClients.js';

const isRoot = process.getuid?.() === 0;
const hasTools = spawnSync('sh', ['-c', 'command -v useradd && command -v userdel && command -v runuser && command -v prlimit'], { encoding: 'utf8' }).status === 0;
const skip = !isRoot ? 'needs root to create Linux accounts' : !hasTools ? 'needs useradd, userdel, runuser and prlimit' : false;

/** One ordinary send, printed as JSON. */
const SEND_CLIENT = `
import http from 'node:http';
const [socketPath, body] = process.argv.slice(2);
const req = http.request({ socketPath, method: 'POST', path: '/send', headers: { 'content-type': 'application/json', host: 'localhost', prefer: 'respond-async' } }, (res) => {
  let text = '';
  res.on('data', (c) => (text += c));
  res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body: JSON.parse(text) })));
});
req.on('error', (e) => console.log(JSON.stringify({ status: 0, body: { error: String(e) } })));
req.end(body);
`;

/** Fills its file descriptors, then looks up an existing and a missing uid; prints what each gave. */
const EMFILE_PROBE = `
import { openSync } from 'node:fs';
const { userByUid } = await import(process.argv[2]);
const [uidText] = process.argv.slice(3);
const held = [];
try { for (;;) held.push(openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; }
const out = {};
for (const [k, uid] of [['existing', Number(uidText)], ['missing', 61999]]) {
  try { const u = userByUid(uid); out[k] = u ? 'found ' + u.name : 'not found'; } catch (e) { out[k] = e.name + ': ' + e.message; }
}
console.log(JSON.stringify(out));
`;

void describe('slow request bodies', { skip }, () => {
  const tag = randomBytes(3).toString('hex');
  const group = `notify-c-${tag}`;
  const slow = `notify-s-${tag}`;
  const other = `notify-o-${tag}`;
  const work = mkdtempSync(join(tmpdir(), 'notify-conn-'));
  let h: BotHarness;

  before(async () => {
    assert.equal(spawnSync('groupadd', [group]).status, 0, 'groupadd');
    for (const u of [slow, other]) assert.equal(spawnSync('useradd', ['--system', '-M', '-s', '/usr/sbin/nologin', '-G', group, u]).status, 0, `useradd ${u}`);
    chmodSync(work, 0o755);
    writeFileSync(join(work, 'slow.mjs'), SLOW_CLIENT, { mode: 0o644 });
    writeFileSync(join(work, 'send.mjs'), SEND_CLIENT, { mode: 0o644 });
    writeFileSync(join(work, 'emfile.mjs'), EMFILE_PROBE, { mode: 0o644 });
    h = await BotHarness.start({ users: 0, env: { NOTIFY_SOCKET_GROUP: group, NOTIFY_REQUEST_TIMEOUT: '4s' }, prefix: 'notify-conn-bot-' });
    chmodSync(h.dir, 0o711);
    chmodSync(join(h.dir, 'run'), 0o711);
    await h.link(other, 525_252);
  });

  after(async () => {
    await h?.cleanup();
    rmSync(work, { recursive: true, force: true });
    for (const u of [slow, other]) spawnSync('userdel', [u]);
    spawnSync('groupdel', [group]);
    assert.equal(userByName(slow), null, 'the test accounts were removed');
  });

  void it('one uid holds at most NOTIFY_MAX_CONNECTIONS_PER_UID slow connections, they time out with 408, and others still send', async (t) => {
    const count = 60;
    const rssBefore = h.rssKb();
    const flood = runAs(slow, [join(work, 'slow.mjs'), h.socketPath, String(count)], work);
    const settled = await flood.waitFor('settled', 60_000);
    const health = (await h.health()).body as { connections: { largestCaller: number; refusedPerCaller: number } };
    const held = health.connections.largestCaller;
    const rssUnder = h.rssKb();
    assert.equal(held, 32, `the slow uid holds the default cap of 32 connections (health: ${JSON.stringify(health.connections)}, client: ${JSON.stringify(settled)})`);
    assert.equal((settled.answers as Record<string, number>)['503'], count - 32, `the connections over the cap are answered 503 at once: ${JSON.stringify(settled)}`);

    // Meanwhile another analyst sends as usual.
    const send = runAs(other, [join(work, 'send.mjs'), h.socketPath, JSON.stringify({ message: 'while someone trickles' })], work);
    const answer = await send.waitFor('status', 30_000);
    assert.equal(answer.status, 202, `another account's send is accepted: ${JSON.stringify(answer)}`);
    await h.fake.waitForMessages(525_252, 1, 60_000);

    const done = await flood.waitFor('done', 60_000);
    const answers = done.answers as Record<string, number>;
    assert.equal(answers['408'], 32, `every held connection is closed with 408 after the request timeout: ${JSON.stringify(done)}`);
    t.diagnostic(`slow connections one uid can hold open: ${held} (of ${count} tried; ${count - held} answered 503 at once); bot RSS ${rssBefore ?? '?'} kB before, ${rssUnder ?? '?'} kB under the flood`);
    // The bot counts a connection until its close event runs, which a loaded host may deliver
    // a moment after the client saw its 408.
    let last: unknown;
    await h.waitUntil(
      async () => {
        const c = ((await h.health()).body as { connections: { open: number } }).connections;
        last = c;
        return c.open <= 1;
      },
      30_000,
      () => `no connection of the flood is left open: ${JSON.stringify(last)}`,
    );
  });

  void it('out of file descriptors, a uid look-up is an error, never "no such account"', async () => {
    const uid = userByName(other)!.uid;
    const probe = spawnSync('prlimit', ['--nofile=64:64', '--', process.execPath, join(work, 'emfile.mjs'), join(PROJECT_ROOT, 'dist', 'src', 'shared', 'posix.js'), String(uid)], { encoding: 'utf8', cwd: work });
    assert.equal(probe.status, 0, probe.stderr);
    const out = JSON.parse(probe.stdout) as { existing: string; missing: string };
    assert.match(out.existing, /^UserDatabaseError/, `an existing account looked up without file descriptors: ${out.existing}`);
    assert.match(out.missing, /^UserDatabaseError/, `a missing account looked up without file descriptors: ${out.missing}`);
  });
});
