/**
 * Gateway replicas on one PostgreSQL, as real processes: a desktop connected to replica B
 * gets a notification the bot accepted on host A and handed to replica A; the send answer
 * counts B's desktop; desktop tokens revoked in the database are refused by every replica;
 * the image of an alert accepted on host A is served by the dashboard of host B (images are
 * kept in the database in a fleet).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DesktopTokenStore } from '../src/shared/desktopTokens.js';
import { openSharedState, type SharedState } from '../src/shared/sharedState.js';
import { buildApp } from '../src/web/app.js';
import { readWebConfig } from '../src/web/config.js';
import { BotHarness, pngBytes } from './support/botHarness.js';
import { webEnv } from './support/oidcFlow.js';
import { type TestOidcProvider, startOidcProvider } from './support/oidcProvider.js';
import { spawnGateway, TestDesktop, TEST_SECRET, waitFor } from './support/gatewayHarness.js';
import { postgresForFile } from './support/postgres.js';

const { skip, server } = postgresForFile();

void describe('gateway replicas on PostgreSQL', { skip: skip ?? false }, () => {
  void it('a desktop on replica B receives an alert accepted on host A, and the answer counts it', async () => {
    const url = await server().createDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'notify-fleet-gw-'));
    const gateways: Array<ReturnType<typeof spawnGateway>> = [];
    const desktops: TestDesktop[] = [];
    let bot: BotHarness | null = null;
    let state: SharedState | null = null;
    let provider: TestOidcProvider | null = null;
    try {
      const start = (name: string): ReturnType<typeof spawnGateway> => {
        mkdirSync(join(dir, name, 'data'), { recursive: true });
        const g = spawnGateway({
          DESKTOP_JWT_SECRET: TEST_SECRET,
          NOTIFY_GATEWAY_PORT: '0',
          NOTIFY_GATEWAY_SOCKET: join(dir, name, 'gw.sock'),
          NOTIFY_DATA_DIR: join(dir, name, 'data'),
          NOTIFY_DATABASE_URL: url,
          NOTIFY_INSTANCE: name,
        });
        gateways.push(g);
        return g;
      };
      const gwA = start('gw-a');
      const gwB = start('gw-b');
      const [, portB] = await Promise.all([gwA.ready, gwB.ready]);

      // Tokens are issued (by the dashboard) into the shared database.
      const scratch = join(dir, 'dashboard');
      mkdirSync(scratch);
      state = await openSharedState(scratch, url);
      const tokens = new DesktopTokenStore(scratch);
      const carol = await tokens.issue(TEST_SECRET, 'carol', 3600);
      const revoked = await tokens.issue(TEST_SECRET, 'carol', 3600);
      await tokens.revoke('carol', revoked.jti);

      const onB = await TestDesktop.authenticated(`ws://127.0.0.1:${portB}`, carol.token);
      desktops.push(onB);
      const refused = await TestDesktop.connect(`ws://127.0.0.1:${portB}`);
      desktops.push(refused);
      assert.equal((await refused.auth(revoked.token)).type, 'auth_error', 'a token revoked in the database is refused by replica B');

      // carol has no Telegram: the answer depends on the desktops the gateways report.
      bot = await BotHarness.start({ users: [], env: { NOTIFY_DATABASE_URL: url, NOTIFY_INSTANCE: 'host-a', NOTIFY_GATEWAY_TIMEOUT: '5s', NOTIFY_GATEWAY_SOCKET: join(dir, 'gw-a', 'gw.sock') } });
      // Replica B records its desktops in the database shortly after the connection.
      const sql = state.database!.sql;
      await waitFor('replica B to record its desktop', async () => (await sql`SELECT 1 FROM desktop_presence WHERE username = 'carol'`).length > 0, 60_000);
      const answer = await bot.client.send({ user: 'carol', title: 'Disk', message: 'accepted on host A' });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal((answer.body as { desktop: number }).desktop, 1, JSON.stringify(answer.body));
      const got = await onB.nextOfType('notification', 60_000);
      assert.equal(got.title, 'Disk');
      assert.equal(got.message, 'accepted on host A');
      assert.equal(onB.ofType('notification').length, 1, 'delivered once');

      // An alert with an image, accepted on host A: the desktop on B fetches the image from
      // the dashboard of host B (another data directory), which reads it from the database.
      const png = pngBytes(5, 4);
      const withImage = await bot.client.sendPhoto({ user: 'carol', title: 'Chart', message: 'with an image' }, { bytes: png, filename: 'chart.png', contentType: 'image/png' });
      assert.equal(withImage.status, 200, JSON.stringify(withImage.body));
      const pictured = await onB.nextOfType('notification', 60_000);
      assert.equal(pictured.title, 'Chart');
      assert.match(String(pictured.image_url), /^\/api\/notifications\/images\/[A-Za-z0-9_-]{32}\.png$/);
      assert.equal(readdirSync(join(bot.dataDir)).includes('images'), false, 'host A kept no image file');
      provider = await startOidcProvider({ redirectUris: ['http://dashboard.test/auth/callback'] });
      const dashboardB = join(dir, 'gw-b', 'data');
      const stateB = await openSharedState(dashboardB, url);
      try {
        const web = await buildApp({ config: readWebConfig(webEnv(provider, dashboardB, { NOTIFY_DATABASE_URL: url, DESKTOP_JWT_SECRET: TEST_SECRET })) });
        try {
          const image = await web.inject({ method: 'GET', url: String(pictured.image_url) });
          assert.equal(image.statusCode, 200, image.body);
          assert.equal(image.headers['content-type'], 'image/png');
          assert.deepEqual(image.rawPayload, png);
          const unknown = await web.inject({ method: 'GET', url: `/api/notifications/images/${'A'.repeat(32)}.png` });
          assert.equal(unknown.statusCode, 404);
        } finally {
          await web.close();
        }
      } finally {
        await stateB.close();
      }
    } finally {
      for (const d of desktops) d.close();
      await bot?.cleanup();
      for (const g of gateways) {
        g.child.kill('SIGTERM');
        await g.exited;
      }
      await state?.close();
      await provider?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
