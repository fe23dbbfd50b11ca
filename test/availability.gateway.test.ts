/**
 * An unauthenticated flood cannot keep desktops out: the real notify-gateway process, one
 * client address opening far more WebSockets than the gateway's total cap without ever
 * authenticating, and others from a second address. The address holds at most NOTIFY_GATEWAY_MAX_UNAUTHENTICATED_PER_ADDRESS
 * sockets, all addresses at most NOTIFY_GATEWAY_MAX_UNAUTHENTICATED, a desktop with a token
 * still gets in, and everything of the flood is closed after the auth timeout.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { floodUnauthenticated, signToken, spawnGateway, tempDir, TestDesktop, TEST_SECRET } from './support/gatewayHarness.js';

/** Every socket the test opened (terminated after the test, whatever happened). */
const everySocket = new Set<WebSocket>();

/** Rejects after `ms` with `what`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

function rssKb(pid: number): number | null {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : null;
}

void describe('unauthenticated gateway flood', () => {
  const dir = tempDir('notify-gwflood-');
  after(() => dir.remove());

  void it('one address holds a bounded number of unauthenticated sockets, all of them a bounded total, and a desktop with a token still gets in', async (t) => {
    const gw = spawnGateway({
      DESKTOP_JWT_SECRET: TEST_SECRET,
      NOTIFY_GATEWAY_PORT: '0',
      NOTIFY_GATEWAY_SOCKET: join(dir.path, 'gw.sock'),
      NOTIFY_DATA_DIR: join(dir.path, 'data'),
      NOTIFY_GATEWAY_MAX_CONNECTIONS: '120',
      NOTIFY_GATEWAY_MAX_UNAUTHENTICATED: '80',
      // Longer than both floods and the desktop take to settle on a loaded machine: none of
      // the first flood's sockets may time out before the second address is counted.
      NOTIFY_GATEWAY_AUTH_TIMEOUT: '30s',
    });
    t.after(() => {
      for (const ws of everySocket) ws.terminate();
      gw.child.kill('SIGKILL');
    });
    const port = await gw.ready;
    const url = `ws://127.0.0.1:${port}/`;
    const rssBefore = rssKb(gw.child.pid!);

    // More than the gateway's total cap, from one address, none authenticating.
    const first = await within(floodUnauthenticated(url, 200, '127.0.0.1'), 60_000, 'the first flood settling');
    first.all.forEach((ws) => everySocket.add(ws));
    const perAddress = first.open.length;
    assert.equal(perAddress, 50, `one address keeps the default 50 unauthenticated sockets (refused: ${first.refused.length})`);
    assert.ok(first.refused.every((r) => r.code === 1013 && /waiting to authenticate/.test(r.reason)), `refusals are 1013 saying why: ${JSON.stringify(first.refused.slice(0, 2))}`);

    // A desktop with a token, from another address, gets in despite the flood.
    const desktop = await within(TestDesktop.connect(url, { localAddress: '127.0.0.4' }), 30_000, 'a desktop connecting during the flood');
    everySocket.add(desktop.ws);
    const answer = await desktop.auth(await signToken({ sub: 'mona' }));
    assert.equal(answer.type, 'auth_ok', `a desktop with a token is admitted: ${JSON.stringify(answer)}`);

    // A second address fills the total of unauthenticated sockets.
    const second = await within(floodUnauthenticated(url, 60, '127.0.0.2'), 60_000, 'the second flood settling');
    second.all.forEach((ws) => everySocket.add(ws));
    const secondHeld = second.open.length;
    assert.equal(secondHeld, 30, `all addresses together hold at most 80 unauthenticated sockets (second address kept ${secondHeld})`);

    const rssUnder = rssKb(gw.child.pid!);

    // The flood goes away by itself after the auth timeout.
    const closes = await within(Promise.all([...first.open.map(first.closeCode), ...second.open.map(second.closeCode)]), 120_000, 'the flood closing after the auth timeout');
    assert.ok(closes.every((c) => c === 4002), `unauthenticated sockets are closed with 4002 after the auth timeout: ${[...new Set(closes)].join(',')}`);
    assert.ok(!desktop.isClosed, 'the authenticated desktop stays connected');
    desktop.close();
    t.diagnostic(`unauthenticated sockets one address can hold: ${perAddress} (of 200 tried); all addresses: ${perAddress + secondHeld}; gateway RSS ${rssBefore ?? '?'} kB before, ${rssUnder ?? '?'} kB under the flood`);
  });
});
