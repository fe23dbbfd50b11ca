/**
 * The gateway's pieces without sockets: the peer policy with fake accounts, the protocol
 * parser, the registry's cap, and the dispatch API through Fastify's inject().
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { buildDispatchApi } from '../src/gateway/dispatchApi.js';
import { PeerPolicy, type AccountLookup } from '../src/gateway/peerPolicy.js';
import { parseClientMessage } from '../src/gateway/protocol.js';
import { ConnectionRegistry } from '../src/gateway/registry.js';
import { notification } from './support/gatewayHarness.js';

const accounts: AccountLookup = {
  userByUid: (uid) =>
    ({ 1000: { name: 'analyst', uid: 1000, gid: 1000, home: '/home/analyst', shell: '/bin/bash' }, 998: { name: 'notify-bot', uid: 998, gid: 998, home: '/', shell: '/bin/false' } })[uid] ?? null,
  groupIdsOfUser: (u) => (u.name === 'notify-bot' ? [998, 500] : [u.gid]),
};

void describe('peer policy', () => {
  const policy = new PeerPolicy(999, 500, 'ws-dispatch', accounts);

  void it('allows root, the gateway itself, a caller running with the group, and a member of the group', () => {
    assert.equal(policy.decide({ uid: 0, gid: 0, pid: 1 }).allowed, true);
    assert.equal(policy.decide({ uid: 999, gid: 999, pid: 1 }).allowed, true);
    assert.equal(policy.decide({ uid: 1234, gid: 500, pid: 1 }).allowed, true);
    const bot = policy.decide({ uid: 998, gid: 998, pid: 7 });
    assert.deepEqual(bot, { allowed: true, uid: 998, pid: 7, name: 'notify-bot' });
  });

  void it('refuses anyone else, naming them', () => {
    const analyst = policy.decide({ uid: 1000, gid: 1000, pid: 42 });
    assert.equal(analyst.allowed, false);
    assert.equal(analyst.name, 'analyst');
    assert.match(analyst.reason ?? '', /analyst \(uid 1000\) is not root, not the gateway's account and not in group ws-dispatch/);
    const ghost = policy.decide({ uid: 4242, gid: 4242, pid: 1 });
    assert.equal(ghost.allowed, false);
    assert.equal(ghost.name, 'uid 4242');
  });

  void it('refuses when the user database fails', () => {
    const broken = new PeerPolicy(999, 500, 'g', {
      userByUid: () => {
        throw new Error('LDAP down');
      },
      groupIdsOfUser: () => [],
    });
    assert.equal(broken.decide({ uid: 1000, gid: 1000, pid: 1 }).allowed, false);
  });
});

void describe('protocol parser', () => {
  void it('accepts auth and pong, and explains everything else', () => {
    assert.deepEqual(parseClientMessage('{"type":"auth","token":"abc"}'), { message: { type: 'auth', token: 'abc' } });
    assert.deepEqual(parseClientMessage('{"type":"pong"}'), { message: { type: 'pong' } });
    assert.deepEqual(parseClientMessage('nope'), { error: 'message is not valid JSON' });
    assert.deepEqual(parseClientMessage('null'), { error: 'message must be a JSON object with a "type"' });
    assert.deepEqual(parseClientMessage('{"type":"auth"}'), { error: 'auth message must be {"type":"auth","token":"<JWT>"}' });
    assert.deepEqual(parseClientMessage('{"kind":"x"}'), { error: 'message must have a string "type"' });
    assert.match(JSON.stringify(parseClientMessage('{"type":"hello"}')), /unknown message type 'hello'/);
  });
});

void describe('connection registry', () => {
  void it('caps connections per user and counts users', () => {
    const reg = new ConnectionRegistry<{ username: string }>(2);
    const a1 = { username: 'a' };
    const a2 = { username: 'a' };
    assert.equal(reg.tryAdd(a1), true);
    assert.equal(reg.tryAdd(a2), true);
    assert.equal(reg.tryAdd({ username: 'a' }), false);
    assert.equal(reg.tryAdd({ username: 'b' }), true);
    assert.deepEqual([reg.connectionCount, reg.userCount], [3, 2]);
    assert.deepEqual(reg.perUser(), { a: 2, b: 1 });
    reg.remove(a1);
    reg.remove(a1);
    assert.deepEqual([reg.connectionCount, reg.userCount], [2, 2]);
    reg.remove(a2);
    assert.deepEqual([reg.connectionCount, reg.userCount], [1, 1]);
    assert.deepEqual(reg.perUser(), { b: 1 });
  });
});

void describe('dispatch API (inject)', () => {
  void it('hands a valid notification to deliver and answers the count', async () => {
    const calls: Array<[string, unknown]> = [];
    const app = buildDispatchApi({
      deliver: (user, n) => {
        calls.push([user, n]);
        return 2;
      },
      health: () => ({ status: 'ok', connections: 2, users: { alice: 2 } }),
      logger: pino({ level: 'silent' }),
      peerPolicy: 'unchecked',
    });
    const n = notification('i-1');
    const res = await app.inject({ method: 'POST', url: '/dispatch', payload: { user: 'alice', notification: n } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { sent: 2 });
    assert.deepEqual(calls, [['alice', n]]);
    const health = await app.inject({ method: 'GET', url: '/health' });
    assert.deepEqual(health.json(), { status: 'ok', connections: 2, users: { alice: 2 } });
    await app.close();
  });

  void it('refuses with 403 when the peer check is on and the caller cannot be identified', async () => {
    const app = buildDispatchApi({
      deliver: () => assert.fail('delivered for an unidentified caller'),
      health: () => ({ status: 'ok', connections: 0, users: {} }),
      logger: pino({ level: 'silent' }),
      peerPolicy: new PeerPolicy(999, 500, 'g', accounts),
    });
    const res = await app.inject({ method: 'POST', url: '/dispatch', payload: { user: 'alice', notification: notification('i-2') } });
    assert.equal(res.statusCode, 403);
    assert.ok(typeof res.json<{ error?: unknown }>().error === 'string');
    await app.close();
  });
});
