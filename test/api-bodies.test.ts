/**
 * The send API's and the dispatch API's JSON bodies are their routes' schemas, checked at
 * the edge as the dashboard's are (Fastify's validation, shared/httpBody.ts), with the
 * contract's codes and wording: who is calling is checked first (403), then the body (400,
 * `{"error"}` naming every problem), and a refused body never reaches the handler.
 * Driven with app.inject() (the transport is not the point here).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import pino from 'pino';
import { buildSendApi } from '../src/bot/intake/sendApi.js';
import type { Notifier } from '../src/bot/delivery/notifier.js';
import { buildDispatchApi } from '../src/gateway/dispatchApi.js';
import { DispatchRequestSchema } from '../src/gateway/client.js';
import { SendRequestSchema } from '../src/shared/contract.js';
import { notification } from './support/gatewayHarness.js';

/** Records the body schema of each route a request reaches (what Fastify validates with). */
function bodySchemas(app: FastifyInstance): Map<string, unknown> {
  const seen = new Map<string, unknown>();
  app.addHook('onRequest', async (req: FastifyRequest) => {
    seen.set(`${req.method} ${req.routeOptions.url ?? req.url}`, req.routeOptions.schema?.body);
  });
  return seen;
}

void describe('send API bodies', () => {
  const submitted: unknown[] = [];
  // Root is trusted: it may send for anyone; null is a caller with no credentials.
  let uid: number | null = 0;
  const notifier = {
    submit: async (sub: unknown) => {
      submitted.push(sub);
      return { status: 202, body: { ok: true, id: `n-${submitted.length}`, queued: true } };
    },
  } as unknown as Notifier;
  let app: FastifyInstance;
  let seen: Map<string, unknown>;
  after(() => app?.close());

  void it('/send validates its body with the contract\'s schema before the handler, naming every problem', async () => {
    app = await buildSendApi({
      notifier,
      log: pino({ level: 'silent' }),
      trustedUsers: [],
      sendWaitMs: 0,
      sendWaitMaxMs: 0,
      maxBodyBytes: 64 * 1024,
      maxPhotoBytes: 64 * 1024,
      requestTimeoutMs: 30_000,
      maxConnectionsPerUid: 8,
      health: async () => ({}),
      identify: () => uid,
    });
    seen = bodySchemas(app);
    const send = (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/send', payload });

    const ok = await send({ user: 'root', message: 'hello' });
    assert.equal(ok.statusCode, 202, ok.body);
    assert.equal(seen.get('POST /send'), SendRequestSchema, 'the route declares the contract\'s schema as its body');
    assert.equal(submitted.length, 1);

    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['an unknown field and a wrong type', { user: 'root', message: 42, colour: 'red' }, "message: Invalid input: expected string, received number; unknown field 'colour'"],
      ['nothing to send', { user: 'root' }, "nothing to send: give 'message' (and optionally 'title'), or 'text'"],
      ['text with message', { user: 'root', message: 'x', text: 'y' }, "send either 'title'/'message' or 'text', not both"],
      ['a bad parse_mode', { user: 'root', message: 'x', parse_mode: 'RTF' }, 'parse_mode: must be one of Markdown, MarkdownV2, HTML, plain'],
    ];
    for (const [what, body, error] of cases) {
      const res = await send(body);
      assert.equal(res.statusCode, 400, `${what}: ${res.body}`);
      assert.deepEqual(res.json(), { error }, what);
    }
    assert.equal(submitted.length, 1, 'no refused body reached the notifier');
  });

  void it('/send refuses a caller it cannot identify with 403 before looking at the body', async () => {
    uid = null;
    try {
      const res = await app.inject({ method: 'POST', url: '/send', payload: { colour: 'red' } });
      assert.equal(res.statusCode, 403, res.body);
      assert.match(res.json<{ error: string }>().error, /cannot tell who is calling/);
    } finally {
      uid = 0;
    }
    assert.equal(submitted.length, 1);
  });
});

void describe('dispatch API bodies', () => {
  void it('/dispatch validates its body with the protocol\'s schema before the handler, with the same wording as before', async () => {
    const delivered: unknown[] = [];
    const app = buildDispatchApi({
      deliver: (user, n) => {
        delivered.push([user, n]);
        return 1;
      },
      health: () => ({ status: 'ok', connections: 0, users: {} }),
      logger: pino({ level: 'silent' }),
      peerPolicy: 'unchecked',
    });
    try {
      const seen = bodySchemas(app);
      const ok = await app.inject({ method: 'POST', url: '/dispatch', payload: { user: 'alice', notification: notification('b-1') } });
      assert.deepEqual(ok.json(), { sent: 1 });
      assert.equal(seen.get('POST /dispatch'), DispatchRequestSchema, 'the route declares the protocol\'s schema as its body');

      const missing = await app.inject({ method: 'POST', url: '/dispatch', payload: { user: 'alice' } });
      assert.equal(missing.statusCode, 400);
      assert.deepEqual(missing.json(), { error: 'invalid dispatch request: notification: is required' });
      const extra = await app.inject({ method: 'POST', url: '/dispatch', payload: { user: 'alice', notification: notification('b-2'), urgent: true } });
      assert.equal(extra.statusCode, 400);
      assert.deepEqual(extra.json(), { error: "invalid dispatch request: unknown field 'urgent'" });
      assert.equal(delivered.length, 1, 'no refused body reached deliver');
    } finally {
      await app.close();
    }
  });
});
