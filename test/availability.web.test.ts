/**
 * Slow requests cannot hold the dashboard: the real app listening on a loopback port, one
 * address opening more connections than it may and sending only part of its headers.
 * The connections over NOTIFY_WEB_MAX_CONNECTIONS_PER_ADDRESS are answered 503 at once,
 * the others 408 after NOTIFY_WEB_REQUEST_TIMEOUT, and another address is served meanwhile.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/web/app.js';
import { readWebConfig } from '../src/web/config.js';
import { webEnv } from './support/oidcFlow.js';
import { type TestOidcProvider, startOidcProvider } from './support/oidcProvider.js';

/** Opens a connection from `localAddress`, sends half a request, resolves with the status line it got (or 'none') when closed. */
function stalled(port: number, localAddress: string): { answered: Promise<string> } {
  const s = net.connect({ port, host: '127.0.0.1', localAddress });
  let data = '';
  s.on('data', (d: Buffer) => (data += d.toString('utf8')));
  s.on('error', () => undefined);
  s.on('connect', () => s.write('GET /login HTTP/1.1\r\nHost: localhost\r\n'));
  return { answered: new Promise((resolve) => s.on('close', () => resolve(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1] ?? 'none'))) };
}

void describe('dashboard listener limits', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'notify-webslow-'));
  let provider: TestOidcProvider;
  let app: FastifyInstance;
  let port = 0;

  before(async () => {
    provider = await startOidcProvider({ redirectUris: ['http://dashboard.test/auth/callback'] });
    const config = readWebConfig(webEnv(provider, dataDir, { NOTIFY_WEB_REQUEST_TIMEOUT: '3s', NOTIFY_WEB_MAX_CONNECTIONS_PER_ADDRESS: '10' }));
    app = await buildApp({ config });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as net.AddressInfo).port;
  });

  after(async () => {
    await app?.close();
    await provider?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  void it('one address holds at most its share of stalled requests, they end in 408, and others are served', async () => {
    const conns = Array.from({ length: 25 }, () => stalled(port, '127.0.0.5'));
    const other = await new Promise<number>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/healthz', localAddress: '127.0.0.6' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
    });
    assert.equal(other, 200, 'another address is served during the flood');
    const answers = await Promise.all(conns.map((c) => c.answered));
    const count = (s: string): number => answers.filter((a) => a === s).length;
    assert.equal(count('503'), 15, `connections over the per-address cap get 503: ${answers.join(',')}`);
    assert.equal(count('408'), 10, `the stalled ones get 408 after the request timeout: ${answers.join(',')}`);
  });
});
