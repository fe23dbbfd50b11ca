/**
 * The bot's client for the dispatch API: correct answers from a real gateway, and never
 * held beyond its timeout nor thrown at by a gateway that is down, silent or trickling.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GatewayClient, type DesktopNotification } from '../src/gateway/client.js';
import { signToken, startTestGateway, tempDir, TestDesktop, type TestGateway } from './support/gatewayHarness.js';

const note: DesktopNotification = {
  id: 'c-1',
  title: 'Disk',
  message: '*90%* full',
  script: 'disk.py',
  timestamp: '2025-01-31T08:00:00.123Z',
};

function listenUnix(path: string, onConnection: (s: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer((s) => {
    // The client hangs up on these servers by design; their writes may then fail.
    s.on('error', () => {});
    onConnection(s);
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

void describe('GatewayClient against unhelpful gateways', () => {
  const dir = tempDir();
  const sockets: net.Socket[] = [];
  const servers: net.Server[] = [];
  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    dir.remove();
  });

  void it('returns an error within the timeout from a gateway that accepts and never answers', async () => {
    const path = join(dir.path, 'silent.sock');
    servers.push(await listenUnix(path, (s) => sockets.push(s)));
    const client = new GatewayClient(path, 300);
    const started = Date.now();
    const result = await client.dispatch('alice', note);
    const took = Date.now() - started;
    assert.ok('error' in result, `expected an error, got ${JSON.stringify(result)}`);
    assert.match(result.error, /did not answer within 300 ms/);
    // At least the timeout; the upper bound only tells it from a hang (a loaded machine adds seconds).
    assert.ok(took >= 280 && took < 20_000, `took ${took} ms for a 300 ms timeout`);
    const health = await client.health();
    assert.ok('error' in health);
  });

  void it('is bounded by the timeout even when the gateway trickles its answer', async () => {
    const path = join(dir.path, 'trickle.sock');
    servers.push(
      await listenUnix(path, (s) => {
        sockets.push(s);
        s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n');
        const t = setInterval(() => (s.writable ? s.write(' ') : clearInterval(t)), 50);
        s.on('close', () => clearInterval(t));
      }),
    );
    const started = Date.now();
    const result = await new GatewayClient(path, 300).dispatch('alice', note);
    assert.ok('error' in result);
    // The trickle (a byte every 50 ms of 1000 announced) would last 50 s: a timeout on idleness
    // alone would wait for all of it.
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms for a 300 ms timeout`);
  });

  void it('says the gateway is not running when there is no socket', async () => {
    const result = await new GatewayClient(join(dir.path, 'absent.sock'), 300).dispatch('alice', note);
    assert.ok('error' in result);
    assert.match(result.error, /not running/);
  });

  void it('returns an error instead of throwing for a notification that cannot be encoded', async () => {
    const weird = { ...note, title: 1n } as unknown as DesktopNotification;
    const result = await new GatewayClient(join(dir.path, 'absent.sock'), 300).dispatch('alice', weird);
    assert.ok('error' in result);
  });
});

/** A stand-in dispatch API on a unix socket that counts the connections it accepted. */
async function countingGateway(path: string): Promise<{ connections: () => number; stop: () => Promise<void> }> {
  let connections = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"sent":1}'));
  });
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    connections: () => connections,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

void describe('GatewayClient connections', () => {
  const dir = tempDir();
  after(() => dir.remove());

  void it('keeps one connection for calls in a row', async () => {
    const path = join(dir.path, 'kept.sock');
    const gw = await countingGateway(path);
    const client = new GatewayClient(path, 2000);
    try {
      for (let i = 0; i < 5; i++) assert.deepEqual(await client.dispatch('alice', note), { sent: 1 });
      assert.equal(gw.connections(), 1);
    } finally {
      client.close();
      await gw.stop();
    }
  });

  void it('reaches a gateway restarted since the last call (its kept connection is gone)', async () => {
    const path = join(dir.path, 'restarted.sock');
    const first = await countingGateway(path);
    const client = new GatewayClient(path, 2000);
    try {
      assert.deepEqual(await client.dispatch('alice', note), { sent: 1 });
      await first.stop();
      const second = await countingGateway(path);
      try {
        assert.deepEqual(await client.dispatch('alice', note), { sent: 1 });
        assert.equal(second.connections(), 1);
      } finally {
        await second.stop();
      }
    } finally {
      client.close();
    }
  });

  void it('reaches a gateway that started after a call found it not running', async () => {
    const path = join(dir.path, 'late.sock');
    const client = new GatewayClient(path, 2000);
    try {
      for (let i = 0; i < 3; i++) {
        const down = await client.dispatch('alice', note);
        assert.ok('error' in down && /not running/.test(down.error), JSON.stringify(down));
      }
      const gw = await countingGateway(path);
      try {
        assert.deepEqual(await client.dispatch('alice', note), { sent: 1 });
      } finally {
        await gw.stop();
      }
      const gone = await client.dispatch('alice', note);
      assert.ok('error' in gone && /not running/.test(gone.error), JSON.stringify(gone));
    } finally {
      client.close();
    }
  });
});

void describe('GatewayClient against the gateway', () => {
  const dir = tempDir();
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(dir.path);
  });
  after(async () => {
    await gw.stop();
    dir.remove();
  });

  void it('dispatches, reports health, and turns a 400 into an error', async () => {
    const client = new GatewayClient(gw.config.socketPath, 1000);
    const desktop = await TestDesktop.authenticated(gw.url, await signToken({ sub: 'lena' }));
    assert.deepEqual(await client.health(), { status: 'ok', connections: 1, users: { lena: 1 } });
    assert.deepEqual(await client.dispatch('lena', note), { sent: 1 });
    // Desktops get whole seconds (the original app's date parser refuses fractions).
    assert.deepEqual(await desktop.nextOfType('notification'), { type: 'notification', ...note, timestamp: '2025-01-31T08:00:00Z' });
    const bad = await client.dispatch('lena', { ...note, timestamp: 'now' });
    assert.ok('error' in bad);
    assert.match(bad.error, /400.*timestamp/);
    desktop.close();
  });
});
