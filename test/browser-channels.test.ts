/**
 * Delivery status and the test button on the dashboard, in Debian's chromium against the
 * real bot, the real gateway and the fake Telegram: the desktop card says an app is
 * connected; "Send test notification" reaches the Telegram chat and the desktop app and
 * says so; when Telegram refuses the chat (the user blocked the bot) the report and the
 * card say why; while the bot cannot poll Telegram the card says so. Screenshots go to
 * test-artifacts/.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DesktopTokenStore } from '../src/shared/desktopTokens.js';
import { LinkStore } from '../src/shared/linking.js';
import { ARTIFACTS, type BrowserStack, CHROMIUM, signInAs, startBrowserStack, startStackGateway } from './support/browserStack.js';
import { TestDesktop } from './support/gatewayHarness.js';

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;

void describe('browser: delivery status and the test notification', { skip }, () => {
  let stack: BrowserStack;
  const stops: Array<() => Promise<void> | void> = [];
  let gatewayPort = 0;

  before(async () => {
    stack = await startBrowserStack();
    stops.push(() => stack.close());
    const gateway = await startStackGateway(stack);
    stops.push(gateway.stop);
    gatewayPort = gateway.port;
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  void it('shows the desktop connected, sends a test to both channels, and says why Telegram refuses', async () => {
    const chat = 778001;
    stack.telegram.registerChat(chat, { first_name: 'John' });
    await new LinkStore(stack.dataDir).linkChat('john.doe', chat);
    const { token } = await new DesktopTokenStore(stack.dataDir).issue(stack.desktopSecret, 'john.doe', 86_400, { label: 'Work laptop' });
    const desktop = await TestDesktop.authenticated(`ws://127.0.0.1:${gatewayPort}`, token);
    stops.push(() => desktop.close());

    const context = await stack.browser.newContext({ viewport: { width: 1100, height: 1000 } });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    try {
      await signInAs(page, stack, 'john.doe@example.com');
      const connected = page.locator('#dt-connected');
      await connected.filter({ hasText: /^Yes \(1 app\)$/ }).waitFor({ timeout: 30_000 });
      assert.equal(await connected.textContent(), 'Yes (1 app)');
      assert.match((await page.locator('#tg-delivery').textContent()) ?? '', /Last delivery:\s*none yet/);

      // The test reaches Telegram and the desktop app, and the report says so.
      const report = page.locator('#ch-test-report');
      await page.getByRole('button', { name: 'Send test notification' }).click();
      await report.locator('li').first().waitFor({ timeout: 30_000 });
      const lines = await report.locator('li').allTextContents();
      assert.equal(lines[0], 'Telegram: delivered to your chat.', lines.join('\n'));
      assert.match(lines[1] ?? '', /^Desktop: (shown on 1 connected app|handed to the gateway; 1 app connected)\.$/, lines.join('\n'));
      const inChat = stack.telegram.sentMessages(chat);
      assert.equal(inChat.length, 1);
      assert.match(JSON.stringify(inChat[0]), /Test notification/);
      const onDesktop = await desktop.nextOfType('notification', 30_000);
      assert.equal(onDesktop.title, 'Test notification');
      await page.locator('#tg-delivery .badge').filter({ hasText: 'Delivered' }).waitFor({ timeout: 30_000 });
      await page.locator('#telegram-card').screenshot({ path: join(ARTIFACTS, 'dashboard-test-delivered.png') });

      // The analyst blocked the bot: the report and the card say why.
      stack.telegram.blockChat(chat);
      await page.getByRole('button', { name: 'Send test notification' }).click();
      await report.locator('li').filter({ hasText: /^Telegram: refused/ }).waitFor({ timeout: 30_000 });
      const refused = await report.locator('li').allTextContents();
      assert.match(refused[0] ?? '', /^Telegram: refused \(.*blocked by the user\)/, refused.join('\n'));
      const delivery = (await page.locator('#tg-delivery').textContent()) ?? '';
      assert.match(delivery, /Refused by Telegram.*blocked by the user/, delivery);
      await page.locator('#telegram-card').screenshot({ path: join(ARTIFACTS, 'dashboard-test-refused.png') });
      assert.deepEqual(pageErrors, []);
    } finally {
      await context.close();
    }
  });

  void it('says so while the bot cannot poll Telegram', async () => {
    const context = await stack.browser.newContext();
    const page = await context.newPage();
    try {
      await signInAs(page, stack, 'jane.roe@example.com');
      await page.locator('#ch-test-button').waitFor();
      assert.equal(await page.locator('#tg-polling').isHidden(), true);
      stack.telegram.setFault({ kind: 'outage', methods: ['getUpdates'] });
      // The card looks again when the page comes back into view; reload until the bot has noticed.
      const until = Date.now() + 60_000;
      while (!(await page.locator('#tg-polling').isVisible())) {
        assert.ok(Date.now() < until, 'the card did not say that polling fails within 60 s');
        await page.waitForTimeout(500);
        await page.reload();
        await page.locator('#ch-test-button').waitFor();
        await page.waitForTimeout(300);
      }
      assert.match((await page.locator('#tg-polling').textContent()) ?? '', /The bot cannot reach Telegram just now/);
      stack.telegram.setFault(null);
    } finally {
      stack.telegram.setFault(null);
      await context.close();
    }
  });
});
