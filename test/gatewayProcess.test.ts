/**
 * The real `notify-gateway` program: --help, configuration errors, a stale socket from a
 * crashed run, a second gateway on a live socket, and a graceful stop on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { settingsOf } from '../src/shared/settings.js';
import { shownDefault } from '../src/shared/settingsDocs.js';
import {
  notification,
  postDispatch,
  PROJECT_ROOT,
  signToken,
  spawnGateway,
  tempDir,
  TestDesktop,
  TEST_SECRET,
} from './support/gatewayHarness.js';

const bin = join(PROJECT_ROOT, 'bin', 'notify-gateway.js');

void describe('notify-gateway program', () => {
  const dir = tempDir();
  after(() => dir.remove());

  void it('--help lists every variable with its default', () => {
    const res = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    assert.equal(res.status, 0);
    for (const [name, spec] of settingsOf('gateway')) {
      assert.ok(res.stdout.includes(name), `--help does not mention ${name}`);
      assert.ok(res.stdout.includes(`[${shownDefault(spec, 'gateway')}]`), `--help does not give the default of ${name}`);
    }
  });

  void it('exits 1 with a clear message when DESKTOP_JWT_SECRET is missing', () => {
    const env = { ...process.env };
    delete env.DESKTOP_JWT_SECRET;
    const res = spawnSync(process.execPath, [bin], { encoding: 'utf8', env, timeout: 60_000 });
    assert.equal(res.status, 1);
    assert.match(res.stderr, /DESKTOP_JWT_SECRET is not set/);
  });

  void it('exits 1 naming an unknown socket group', () => {
    const res = spawnSync(process.execPath, [bin], {
      encoding: 'utf8',
      env: { ...process.env, DESKTOP_JWT_SECRET: TEST_SECRET, NOTIFY_GATEWAY_SOCKET_GROUP: 'no-such-group-xyz' },
      timeout: 60_000,
    });
    assert.equal(res.status, 1);
    assert.match(res.stderr, /NOTIFY_GATEWAY_SOCKET_GROUP names no group on this system \(got 'no-such-group-xyz'\)/);
  });

  void it('replaces a stale socket, refuses to displace a live gateway, and stops gracefully on SIGTERM', async () => {
    const socketPath = join(dir.path, 'run', 'gw.sock');
    mkdirSync(join(dir.path, 'run'));
    // A crashed run: a socket file nobody listens on.
    const crash = spawnSync(
      process.execPath,
      ['-e', `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`],
      { timeout: 60_000 },
    );
    assert.equal(crash.signal, 'SIGKILL');
    assert.ok(statSync(socketPath).isSocket(), 'the crashed run left no socket');

    const env = {
      DESKTOP_JWT_SECRET: TEST_SECRET,
      NOTIFY_GATEWAY_PORT: '0',
      NOTIFY_GATEWAY_SOCKET: socketPath,
      NOTIFY_DATA_DIR: join(dir.path, 'data'),
    };
    const first = spawnGateway(env);
    try {
      const port = await first.ready;
      assert.equal(statSync(socketPath).mode & 0o777, 0o660);

      const desktop = await TestDesktop.authenticated(`ws://127.0.0.1:${port}/`, await signToken({ sub: 'mona' }));
      const res = await postDispatch(socketPath, { user: 'mona', notification: notification('p-1') });
      assert.deepEqual(res.body, { sent: 1 });
      await desktop.nextOfType('notification');

      const second = spawnGateway(env);
      const { code } = await second.exited;
      assert.equal(code, 1, second.output());
      assert.match(second.output(), /another notify-gateway is already listening on it/);
      assert.ok(existsSync(socketPath), 'the second gateway removed the live socket');
      assert.deepEqual((await postDispatch(socketPath, { user: 'mona', notification: notification('p-2') })).body, { sent: 1 });

      first.child.kill('SIGTERM');
      const closed = await desktop.closedWithin(20_000);
      assert.equal(closed.code, 1001);
      const exit = await first.exited;
      assert.equal(exit.code, 0, first.output());
      assert.equal(existsSync(socketPath), false, 'the socket was left behind after a graceful stop');
      assert.doesNotMatch(first.output(), new RegExp(TEST_SECRET), 'the secret reached the log');
    } finally {
      first.child.kill('SIGKILL');
    }
  });
});
