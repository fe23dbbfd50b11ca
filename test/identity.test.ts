/**
 * Nobody can speak for somebody else: a Linux account created for the test (removed after,
 * even on failure) runs a client against the real bot's socket. The bot knows it from the
 * kernel (SO_PEERCRED), lets it send to itself only, refuses photo paths it does not own
 * (/etc/shadow, root's image, a symlink to root's image) and logs each refusal naming it.
 * A uid with no passwd entry is nobody. Needs root (useradd, runuser); skipped otherwise.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { userByName } from '../src/shared/posix.js';
import { BotHarness, pngBytes, textOf } from './support/botHarness.js';

const isRoot = process.getuid?.() === 0;
const hasTools = spawnSync('sh', ['-c', 'command -v useradd && command -v userdel && command -v runuser && command -v setpriv'], { encoding: 'utf8' }).status === 0;
const skip = !isRoot ? 'needs root to create a Linux account' : !hasTools ? 'needs useradd, userdel, runuser and setpriv' : false;

/** A client the test account runs: one request on the socket, the answer printed as JSON. */
const CLIENT = `
import http from 'node:http';
const [socketPath, path, body] = process.argv.slice(2);
const req = http.request({ socketPath, method: 'POST', path, headers: { 'content-type': 'application/json', host: 'localhost', prefer: 'wait=5' } }, (res) => {
  let text = '';
  res.on('data', (c) => (text += c));
  res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body: JSON.parse(text) })));
});
req.on('error', (e) => { console.log(JSON.stringify({ status: 0, body: { error: String(e) } })); });
req.end(body);
`;

interface Answer {
  status: number;
  body: { error?: string; ok?: boolean; id?: string; telegram?: string };
}

void describe('identity from the kernel', { skip }, () => {
  const name = `notify-t-${randomBytes(3).toString('hex')}`;
  const work = mkdtempSync(join(tmpdir(), 'notify-id-'));
  let h: BotHarness;
  let uid = -1;
  let chatId = 0;

  /** Runs the client as `as` (a user name, or a bare uid through setpriv) and parses its answer. */
  function asUser(as: string | number, path: string, body: unknown): Promise<Answer> {
    const script = join(work, 'client.mjs');
    const args = [script, h.socketPath, path, JSON.stringify(body)];
    const [cmd, cmdArgs] =
      typeof as === 'number'
        ? ['setpriv', [`--reuid=${as}`, `--regid=${as}`, '--clear-groups', process.execPath, ...args]]
        : ['runuser', ['-u', as, '--', process.execPath, ...args]];
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'], cwd: work });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
      child.once('error', reject);
      child.once('close', (code) => {
        try {
          resolve(JSON.parse(out) as Answer);
        } catch {
          reject(new Error(`the client run as ${as} failed (exit ${code}): ${err || out}`));
        }
      });
    });
  }

  before(async () => {
    const add = spawnSync('useradd', ['--system', '-M', '-U', '-s', '/usr/sbin/nologin', name], { encoding: 'utf8' });
    assert.equal(add.status, 0, `useradd failed: ${add.stderr}`);
    uid = userByName(name)!.uid;
    chmodSync(work, 0o755);
    writeFileSync(join(work, 'client.mjs'), CLIENT, { mode: 0o644 });
    // The caller's own files, and root's.
    writeFileSync(join(work, 'mine.png'), pngBytes(4, 3));
    chownSync(join(work, 'mine.png'), uid, -1);
    writeFileSync(join(work, 'notes.txt'), 'not an image');
    chownSync(join(work, 'notes.txt'), uid, -1);
    writeFileSync(join(work, 'roots.png'), pngBytes(), { mode: 0o644 });
    symlinkSync(join(work, 'roots.png'), join(work, 'link-to-roots.png'));
    spawnSync('chown', ['-h', `${name}:`, join(work, 'link-to-roots.png')]);

    // The socket belongs to the account's group (mode 0660), as NOTIFY_SOCKET_GROUP says.
    h = await BotHarness.start({ users: ['someone'], env: { NOTIFY_SOCKET_GROUP: name }, prefix: 'notify-id-bot-' });
    chmodSync(h.dir, 0o711);
    chmodSync(join(h.dir, 'run'), 0o711);
    chatId = (await h.link(name, 424_242)).chatId;
  });

  after(async () => {
    await h?.cleanup();
    rmSync(work, { recursive: true, force: true });
    spawnSync('userdel', [name]);
    spawnSync('groupdel', [name]);
    assert.equal(userByName(name), null, `the test account ${name} was removed`);
  });

  void it('is refused (403, naming the caller) when it sends for someone else, and the bot logs it', async () => {
    const res = await asUser(name, '/send', { user: 'someone', message: 'spoofed' });
    assert.equal(res.status, 403, JSON.stringify(res.body));
    assert.match(res.body.error ?? '', new RegExp(`you are '${name}' and may send notifications only to yourself, not to 'someone'`));
    const line = await h.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('send refused') && l.caller === name, 60_000, 'the refusal in the log');
    assert.equal(line.requested, 'someone');
    assert.equal(h.fake.sentMessages(h.users[0]!.chatId).length, 0, 'nothing reached the other chat');
  });

  void it('is allowed to send to itself, with `user` omitted or naming itself', async () => {
    const omitted = await asUser(name, '/send', { message: 'from me, user omitted' });
    assert.ok(omitted.status === 200 || omitted.status === 202, JSON.stringify(omitted.body));
    const named = await asUser(name, '/send', { user: name, message: 'from me, user named' });
    assert.ok(named.status === 200 || named.status === 202, JSON.stringify(named.body));
    const msgs = await h.fake.waitForMessages(chatId, 2, 60_000);
    assert.deepEqual(msgs.map(textOf), ['from me, user omitted', 'from me, user named']);
  });

  void it('may send a photo_path it owns', async () => {
    const res = await asUser(name, '/send_photo', { photo_path: join(work, 'mine.png'), title: 'my chart', message: 'mine' });
    assert.ok(res.status === 200 || res.status === 202, JSON.stringify(res.body));
    const msgs = await h.fake.waitForMessages(chatId, 3, 60_000);
    assert.equal(msgs[2]!.kind, 'photo');
    assert.equal(msgs[2]!.caption, 'my chart\nmine');
  });

  void it('is refused (403) a photo_path of /etc/shadow, of root\'s image, or of a symlink to root\'s image; the bot logs who asked', async () => {
    for (const path of ['/etc/shadow', join(work, 'roots.png'), join(work, 'link-to-roots.png')]) {
      const res = await asUser(name, '/send_photo', { photo_path: path, message: 'steal' });
      assert.equal(res.status, 403, `${path}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error ?? '', /is not a regular file of yours/, path);
      const line = await h.waitForLog((l) => l.msg === `photo refused: ${res.body.error}` && l.caller === name, 60_000, `the refusal of ${path} in the log`);
      assert.equal(line.path, path);
    }
    const shadow = await asUser(name, '/send_photo', { user: 'someone', photo_path: '/etc/shadow', message: 'x' });
    assert.equal(shadow.status, 403, 'for someone else, too');
  });

  void it('gets 400 for a photo_path of theirs that is not an image, or relative; a missing one is refused like any file not theirs', async () => {
    const notImage = await asUser(name, '/send_photo', { photo_path: join(work, 'notes.txt'), message: 'x' });
    assert.equal(notImage.status, 400, JSON.stringify(notImage.body));
    assert.match(notImage.body.error ?? '', /not a PNG or JPEG/);
    const missing = await asUser(name, '/send_photo', { photo_path: join(work, 'nope.png'), message: 'x' });
    // The same answer as for a file of someone else's, so the bot's files cannot be probed.
    assert.equal(missing.status, 403);
    assert.match(missing.body.error ?? '', /is not a regular file of yours/);
    const relative = await asUser(name, '/send_photo', { photo_path: 'mine.png', message: 'x' });
    assert.equal(relative.status, 400);
    assert.match(relative.body.error ?? '', /absolute/);
  });

  void it('a uid with no passwd entry is nobody: 403', async () => {
    const nobodyUid = 61_234 + Math.floor(Math.random() * 1000);
    assert.equal(spawnSync('getent', ['passwd', String(nobodyUid)]).status !== 0, true, 'the uid is unused');
    chmodSync(h.socketPath, 0o666); // it is in no group; let it reach the socket to be refused by the bot
    try {
      const res = await asUser(nobodyUid, '/send', { message: 'who am I' });
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.match(res.body.error ?? '', new RegExp(`uid ${nobodyUid} has no account`));
    } finally {
      chmodSync(h.socketPath, 0o660);
    }
  });
});
