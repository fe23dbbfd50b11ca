/**
 * The desktop gateway seen from outside: desktops over WebSocket, the bot over the
 * dispatch socket. One gateway runs in-process per group, with test-speed timers.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  getHealth,
  notification,
  postDispatch,
  signToken,
  startTestGateway,
  tempDir,
  TestDesktop,
  unsignedToken,
  waitFor,
  type TestGateway,
} from './support/gatewayHarness.js';
import { unixRequest } from '../src/shared/sendClient.js';

void describe('desktop authentication', () => {
  const dir = tempDir();
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(dir.path);
  });
  after(async () => {
    await gw.stop();
    dir.remove();
  });

  void it('answers auth_ok with the username for a good token', async () => {
    const desktop = await TestDesktop.connect(gw.url);
    const answer = await desktop.auth(await signToken({ sub: 'alice' }));
    assert.deepEqual(answer, { type: 'auth_ok', username: 'alice' });
    desktop.close();
  });

  async function assertRefused(token: string, messagePart: RegExp): Promise<void> {
    const desktop = await TestDesktop.connect(gw.url);
    const answer = await desktop.auth(token);
    assert.equal(answer.type, 'auth_error', `expected auth_error, got ${JSON.stringify(answer)}`);
    assert.match(String(answer.message), messagePart);
    const { code } = await desktop.closedWithin(20_000);
    assert.equal(code, 4001);
  }

  void it('refuses a token that is not a JWT, and closes', async () => {
    await assertRefused('not-a-jwt', /not a valid JWT/);
  });

  void it('refuses an expired token', async () => {
    await assertRefused(await signToken({ sub: 'alice', exp: Math.floor(Date.now() / 1000) - 60 }), /expired/);
  });

  void it('refuses an unsigned (alg: none) token', async () => {
    const exp = Math.floor(Date.now() / 1000) + 3600;
    await assertRefused(unsignedToken({ sub: 'alice', exp }), /HS256/);
  });

  void it('refuses a token signed with another secret', async () => {
    await assertRefused(await signToken({ sub: 'alice' }, 'some-other-secret-that-is-long-enough'), /signature/);
  });

  void it('refuses a token without sub', async () => {
    await assertRefused(await signToken({}), /sub/);
  });

  void it('refuses a first message that is not auth', async () => {
    const desktop = await TestDesktop.connect(gw.url);
    desktop.send({ type: 'pong' });
    const answer = await desktop.nextOfType('auth_error');
    assert.match(String(answer.message), /first message must be/);
    assert.equal((await desktop.closedWithin(20_000)).code, 4001);
  });

  void it('refuses bad JSON before auth with auth_error, without crashing', async () => {
    const desktop = await TestDesktop.connect(gw.url);
    desktop.send('{this is not json');
    const answer = await desktop.nextOfType('auth_error');
    assert.match(String(answer.message), /not valid JSON/);
    await desktop.closedWithin(20_000);
    // Still serving.
    const next = await TestDesktop.authenticated(gw.url, await signToken({ sub: 'alice' }));
    next.close();
  });

  void it('closes a connection that sends a message larger than the cap', async () => {
    const desktop = await TestDesktop.connect(gw.url);
    desktop.send({ type: 'auth', token: 'x'.repeat(20_000) });
    const { code } = await desktop.closedWithin(20_000);
    assert.equal(code, 1009, 'expected 1009 (message too big)');
  });
});

// Its own gateway: a 300 ms auth timeout would also close the other tests' desktops when a
// loaded machine is slow to send their auth message.
void describe('the auth timeout', () => {
  const dir = tempDir();
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(dir.path, { authTimeoutMs: 300 });
  });
  after(async () => {
    await gw.stop();
    dir.remove();
  });

  void it('closes a connection that sends no auth message within the limit', async () => {
    // Taken before connecting: the gateway's clock starts when it accepts the connection.
    const started = Date.now();
    const desktop = await TestDesktop.connect(gw.url);
    const { code } = await desktop.closedWithin(20_000);
    assert.equal(code, 4002);
    assert.ok(Date.now() - started >= 250, 'closed before the auth timeout');
    const answer = desktop.ofType('auth_error')[0];
    assert.match(String(answer?.message), /no auth message within 300 ms/);
  });
});

void describe('messages after authentication', () => {
  const dir = tempDir();
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(dir.path);
  });
  after(async () => {
    await gw.stop();
    dir.remove();
  });

  void it('answers bad JSON and unknown types with an error and stays open', async () => {
    const desktop = await TestDesktop.authenticated(gw.url, await signToken({ sub: 'carol' }));
    desktop.send('not json at all');
    assert.match(String((await desktop.nextOfType('error')).message), /not valid JSON/);
    desktop.send({ type: 'subscribe' });
    assert.match(String((await desktop.nextOfType('error')).message), /unknown message type 'subscribe'/);
    desktop.send([1, 2]);
    assert.match(String((await desktop.nextOfType('error')).message), /JSON object/);
    desktop.send({ type: 'auth', token: 'again' });
    assert.match(String((await desktop.nextOfType('error')).message), /already authenticated/);
    desktop.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.match(String((await desktop.nextOfType('error')).message), /binary/);
    assert.equal(desktop.isClosed, false);
    const res = await postDispatch(gw.config.socketPath, { user: 'carol', notification: notification('n1') });
    assert.deepEqual(res.body, { sent: 1 });
    await desktop.nextOfType('notification');
    desktop.close();
  });
});

void describe('heartbeat', () => {
  const dir = tempDir();
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(dir.path, { pingIntervalMs: 150, maxMissedPings: 3 });
  });
  after(async () => {
    await gw.stop();
    dir.remove();
  });

  void it('closes a desktop that misses 3 pings, and keeps one that answers', async () => {
    const silent = await TestDesktop.authenticated(gw.url, await signToken({ sub: 'dave' }), { autoPong: false });
    const answering = await TestDesktop.authenticated(gw.url, await signToken({ sub: 'dave' }));
    const { code } = await silent.closedWithin(20_000);
    assert.equal(code, 4008);
    assert.equal(silent.ofType('ping').length, 3, 'expected exactly 3 pings before the close');
    for (const p of silent.ofType('ping')) assert.deepEqual(p, { type: 'ping' });
    // More pings than a silent desktop survives, answered: it stays.
    await waitFor('a 5th ping to the answering desktop', () => answering.ofType('ping').length >= 5 || answering.isClosed, 60_000);
    assert.equal(answering.isClosed, false, 'a desktop answering pongs was closed');
    const health = await getHealth(gw.config.socketPath);
    assert.deepEqual(health.body, { status: 'ok', connections: 1, users: { dave: 1 } });
    answering.close();
  });
});

void describe('connection limit per user', () => {
  const dir = tempDir();
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(dir.path);
  });
  after(async () => {
    await gw.stop();
    dir.remove();
  });

  void it('refuses the sixth connection of a user with a clear auth_error, and admits another user', async () => {
    const token = await signToken({ sub: 'erin' });
    const five = await Promise.all([1, 2, 3, 4, 5].map(() => TestDesktop.authenticated(gw.url, token)));
    const sixth = await TestDesktop.connect(gw.url);
    const answer = await sixth.auth(token);
    assert.equal(answer.type, 'auth_error');
    assert.match(String(answer.message), /too many connections for user erin \(at most 5\)/);
    assert.equal((await sixth.closedWithin(20_000)).code, 4029);
    const other = await TestDesktop.authenticated(gw.url, await signToken({ sub: 'frank' }));
    // A closed slot can be reused.
    five[0]!.close();
    await five[0]!.closed;
    await waitFor('the slot to be released', async () => {
      const h = (await getHealth(gw.config.socketPath)).body as { connections: number };
      return h.connections === 5;
    });
    const again = await TestDesktop.authenticated(gw.url, token);
    for (const d of [...five, other, again]) d.close();
  });
});

void describe('dispatch', () => {
  const dir = tempDir();
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(dir.path);
  });
  after(async () => {
    await gw.stop();
    dir.remove();
  });

  void it('reaches every connection of the user and no other user, and reports the count', async () => {
    const alice = await Promise.all([1, 2, 3].map(async () => TestDesktop.authenticated(gw.url, await signToken({ sub: 'alice' }))));
    const bob = await TestDesktop.authenticated(gw.url, await signToken({ sub: 'bob' }));

    const health = await getHealth(gw.config.socketPath);
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: 'ok', connections: 4, users: { alice: 3, bob: 1 } });

    const n = notification('n-42', { image_url: 'https://dash.example/img/42.png' });
    const res = await postDispatch(gw.config.socketPath, { user: 'alice', notification: n });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { sent: 3 });
    for (const d of alice) {
      assert.deepEqual(await d.nextOfType('notification'), { type: 'notification', ...n });
    }
    await sleep(100);
    assert.deepEqual(bob.ofType('notification'), [], 'bob received a notification meant for alice');

    const toNobody = await postDispatch(gw.config.socketPath, { user: 'nobody', notification: notification('n-43') });
    assert.deepEqual(toNobody.body, { sent: 0 });
    for (const d of [...alice, bob]) d.close();
    await waitFor('connections to be released', async () => {
      const h = (await getHealth(gw.config.socketPath)).body as { connections: number; users: Record<string, number> };
      return h.connections === 0 && Object.keys(h.users).length === 0;
    });
  });

  void it('passes the dashboard\'s image path through and gives desktops whole-second timestamps', async () => {
    const erin = await TestDesktop.authenticated(gw.url, await signToken({ sub: 'erin' }));
    const imageUrl = `/api/notifications/images/${'A'.repeat(16)}_-${'z'.repeat(14)}.png`;
    const res = await postDispatch(gw.config.socketPath, { user: 'erin', notification: notification('n-44', { image_url: imageUrl, timestamp: '2025-01-31T08:00:00.999Z' }) });
    assert.deepEqual(res.body, { sent: 1 });
    const got = await erin.nextOfType('notification');
    assert.equal(got.image_url, imageUrl);
    assert.equal(got.timestamp, '2025-01-31T08:00:00Z');
    erin.close();
  });

  const malformed: Array<[string, string | Record<string, unknown>, RegExp]> = [
    ['bad JSON', '{"user": "alice", ', /not valid JSON/],
    ['an empty body', '', /empty/],
    ['a missing user', { notification: notification('x') }, /user: is required/],
    ['a missing notification', { user: 'alice' }, /notification: is required/],
    ['a notification without id', { user: 'alice', notification: { ...notification('x'), id: undefined } }, /notification\.id/],
    ['a non-string message', { user: 'alice', notification: notification('x', { message: 5 }) }, /notification\.message/],
    ['a timestamp that is not ISO-8601 UTC', { user: 'alice', notification: notification('x', { timestamp: 'yesterday' }) }, /timestamp/],
    ['a timestamp with an offset', { user: 'alice', notification: notification('x', { timestamp: '2025-01-31T08:00:00+01:00' }) }, /timestamp/],
    ['an unknown field', { user: 'alice', notification: notification('x'), urgent: true }, /unknown field 'urgent'/],
    ['an invalid user name', { user: '../etc', notification: notification('x') }, /user/],
    ['an image_url that is not a URL', { user: 'alice', notification: notification('x', { image_url: '/tmp/a.png' }) }, /image_url/],
    ['an image path with a guessable name', { user: 'alice', notification: notification('x', { image_url: '/api/notifications/images/1.png' }) }, /image_url/],
  ];
  for (const [what, body, message] of malformed) {
    void it(`answers 400 {"error"} to ${what}`, async () => {
      const res = await postDispatch(gw.config.socketPath, body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      const b = res.body as { error?: unknown };
      assert.deepEqual(Object.keys(b), ['error']);
      assert.match(String(b.error), message);
    });
  }

  void it('answers 413 {"error"} to a body over the limit, 415 to a non-JSON content type, 404 to other paths', async () => {
    const big = await postDispatch(gw.config.socketPath, { user: 'alice', notification: notification('x', { message: 'y'.repeat(2_000_000) }) });
    assert.equal(big.status, 413);
    assert.match(String((big.body as { error: string }).error), /too large/);
    const text = await unixRequest(gw.config.socketPath, 'POST', '/dispatch', { headers: { 'content-type': 'text/plain' }, body: 'hi' });
    assert.equal(text.status, 415);
    assert.ok(typeof (text.body as { error?: unknown }).error === 'string');
    const missing = await unixRequest(gw.config.socketPath, 'GET', '/nope');
    assert.equal(missing.status, 404);
    assert.match(String((missing.body as { error: string }).error), /no such endpoint/);
  });

  void it('leaves the socket with mode 0660', async () => {
    const st = statSync(gw.config.socketPath);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(st.gid, gw.config.socketGid);
  });
});
