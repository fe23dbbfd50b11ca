/**
 * Who may use the dispatch socket, with real Linux accounts: a member of the socket's group
 * may; anyone else is kept out by the socket's mode (EACCES at connect), and, when the mode
 * is loosened by mistake, by the peer-credential check (403, logged with the caller's name).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { groupIdByName } from '../src/shared/posix.js';
import { notification, startTestGateway, tempDir, type TestGateway } from './support/gatewayHarness.js';

const suffix = randomBytes(4).toString('hex');
const group = `notify-tg-${suffix}`;
const outsider = `notify-t-${suffix}`;
const member = `notify-tm-${suffix}`;
const isRoot = process.getuid?.() === 0;

/** A tiny client run as another account: prints {status, body} or {error: <errno code>}. */
const CLIENT = `
const http = require('node:http');
const [socketPath, body] = process.argv.slice(1);
const req = http.request({ socketPath, method: 'POST', path: '/dispatch', headers: { 'content-type': 'application/json' } }, (res) => {
  let text = '';
  res.on('data', (c) => (text += c));
  res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body: JSON.parse(text) })));
});
req.on('error', (e) => console.log(JSON.stringify({ error: e.code })));
req.end(body);
`;

type ClientResult = { status: number; body: Record<string, unknown> } | { error: string };

/** Runs the client as `user` (asynchronously: the gateway answers from this very process). */
function dispatchAs(user: string, socketPath: string): Promise<ClientResult> {
  const body = JSON.stringify({ user: 'someone', notification: notification('peer-1') });
  return new Promise((resolve, reject) => {
    execFile('runuser', ['-u', user, '--', process.execPath, '-e', CLIENT, socketPath, body], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`client as ${user} failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as ClientResult);
    });
  });
}

function bestEffort(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    // Already gone, or never created.
  }
}

void describe('dispatch socket access', { skip: isRoot ? false : 'creates Linux accounts: run as root' }, () => {
  const dir = tempDir();
  let gw: TestGateway;

  before(async () => {
    execFileSync('groupadd', ['--system', group]);
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', outsider]);
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', '-G', group, member]);
    // Let the accounts reach the socket's directory; the socket's own mode does the gating.
    chmodSync(dir.path, 0o711);
    const gid = groupIdByName(group);
    assert.ok(gid !== null, `group ${group} was not created`);
    gw = await startTestGateway(dir.path, { socketGid: gid, socketGroupName: group });
    chmodSync(`${dir.path}/run`, 0o711);
  });

  after(async () => {
    try {
      await gw?.stop();
    } finally {
      bestEffort('userdel', [outsider]);
      bestEffort('userdel', [member]);
      bestEffort('groupdel', [group]);
      dir.remove();
    }
  });

  void it('lets a member of the socket group dispatch', async () => {
    const result = await dispatchAs(member, gw.config.socketPath);
    assert.deepEqual(result, { status: 200, body: { sent: 0 } });
  });

  void it('keeps a non-member out at connect: the socket mode 0660 answers EACCES', async () => {
    const result = await dispatchAs(outsider, gw.config.socketPath);
    assert.deepEqual(result, { error: 'EACCES' });
  });

  void it('answers 403 to a non-member when the socket is world-writable by mistake, and logs the caller', async () => {
    chmodSync(gw.config.socketPath, 0o666);
    try {
      const result = await dispatchAs(outsider, gw.config.socketPath);
      assert.ok('status' in result, `expected an HTTP answer, got ${JSON.stringify(result)}`);
      assert.equal(result.status, 403);
      assert.deepEqual(Object.keys(result.body), ['error']);
      assert.match(String(result.body.error), new RegExp(`${outsider} \\(uid \\d+\\) is not root, not the gateway's account and not in group ${group}`));
      const logged = gw.logLines.find((l) => String(l.msg).includes(`refused dispatch API call from ${outsider}`));
      assert.ok(logged, 'the refusal was not logged with the caller\'s name');
      assert.equal(logged.caller, outsider);
      assert.deepEqual(await dispatchAs(member, gw.config.socketPath), { status: 200, body: { sent: 0 } });
    } finally {
      chmodSync(gw.config.socketPath, 0o660);
    }
  });
});
