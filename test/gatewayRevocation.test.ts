/**
 * Revoking desktop tokens through the shared file (as the dashboard does) reaches the
 * gateway: refused at authentication, open connections closed within the interval.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { JsonFile } from '../src/shared/jsonFile.js';
import { after, before, describe, it } from 'node:test';
import { DesktopTokenStore } from '../src/shared/desktopTokens.js';
import {
  signToken,
  startTestGateway,
  tempDir,
  TestDesktop,
  TEST_SECRET,
  waitFor,
  type TestGateway,
} from './support/gatewayHarness.js';

void describe('revoked desktop tokens', () => {
  const dir = tempDir();
  let gw: TestGateway;
  let store: DesktopTokenStore;
  before(async () => {
    mkdirSync(`${dir.path}/data`, { recursive: true });
    gw = await startTestGateway(dir.path, { revocationIntervalMs: 300 });
    store = new DesktopTokenStore(gw.config.dataDir);
  });
  after(async () => {
    await gw.stop();
    dir.remove();
  });

  void it('closes an open connection whose token is revoked within the interval, and refuses the token afterwards', async () => {
    const revoked = await store.issue(TEST_SECRET, 'gina', 3600, { label: 'laptop' });
    const kept = await store.issue(TEST_SECRET, 'gina', 3600, { label: 'desktop' });
    const victim = await TestDesktop.authenticated(gw.url, revoked.token);
    const survivor = await TestDesktop.authenticated(gw.url, kept.token);

    assert.equal(await store.revoke('gina', revoked.jti), 'revoked');
    // Closed by the periodic check (every 300 ms here): nothing else happens on the connection
    // (within 20 s: a loaded machine delays timers, but not to the next reconnect).
    const { code, reason } = await victim.closedWithin(20_000);
    assert.equal(code, 4003);
    assert.equal(reason, 'token revoked');

    const again = await TestDesktop.connect(gw.url);
    const answer = await again.auth(revoked.token);
    assert.equal(answer.type, 'auth_error');
    assert.match(String(answer.message), /revoked/);
    assert.equal(survivor.isClosed, false, 'another token of the same user was closed');
    survivor.close();
  });

  void it('refuses a token revoked a moment ago at authentication, without waiting for the interval', async () => {
    const t = await store.issue(TEST_SECRET, 'hank', 3600);
    await store.revoke('hank', t.jti);
    const desktop = await TestDesktop.connect(gw.url);
    const answer = await desktop.auth(t.token);
    assert.equal(answer.type, 'auth_error');
    assert.match(String(answer.message), /revoked/);
  });

  void it('accepts tokens without jti (the contract requires only sub and exp)', async () => {
    const desktop = await TestDesktop.authenticated(gw.url, await signToken({ sub: 'ivan' }));
    desktop.close();
  });

  void it('closes a connection when its token expires', async () => {
    // Long enough to authenticate first on a loaded machine.
    const exp = Math.floor(Date.now() / 1000) + 5;
    const desktop = await TestDesktop.authenticated(gw.url, await signToken({ sub: 'judy', exp }));
    const { code, reason } = await desktop.closedWithin(20_000);
    assert.equal(code, 4003);
    assert.equal(reason, 'token expired');
  });

  void it('keeps the last good list and logs loudly when the file becomes unreadable', async () => {
    const t = await store.issue(TEST_SECRET, 'kate', 3600);
    await store.revoke('kate', t.jti);
    const before = await TestDesktop.connect(gw.url);
    assert.equal((await before.auth(t.token)).type, 'auth_error');

    writeFileSync((store.file as JsonFile<unknown>).path, '{ this is not json');
    await waitFor('an error about the unreadable file', () =>
      gw.logLines.some((l) => l.level === 50 && String(l.msg).includes('CANNOT READ THE DESKTOP TOKEN FILE')),
    );
    const during = await TestDesktop.connect(gw.url);
    const answer = await during.auth(t.token);
    assert.equal(answer.type, 'auth_error', 'a revoked token was accepted while the file was unreadable');
    const fresh = await TestDesktop.authenticated(gw.url, await signToken({ sub: 'kate' }));
    fresh.close();

    writeFileSync((store.file as JsonFile<unknown>).path, '{}\n');
    await waitFor('the file to be read again', () => gw.logLines.some((l) => String(l.msg).includes('readable again')));
  });
});
