/**
 * The analyst's whole linking experience in a real browser (Debian's chromium): sign in
 * through the local OpenID Connect provider, get a code from the real bot through the
 * fake Telegram, type it, see "Linked", get the welcome message, unlink, see "Not linked";
 * then link again in one tap with the deep link. Screenshots of the card go to
 * test-artifacts/.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { ARTIFACTS, type BrowserStack, CHROMIUM, openPage, signInAs, startBrowserStack } from './support/browserStack.js';

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;

function linkOf(stack: BrowserStack, user: string): { chat_id: number } | undefined {
  const file = join(stack.dataDir, 'telegram_users.json');
  if (!existsSync(file)) return undefined;
  return (JSON.parse(readFileSync(file, 'utf8')) as Record<string, { chat_id: number }>)[user];
}

/** Signs in and waits for the dashboard. */
async function signInToDashboard(page: Page, stack: BrowserStack, email: string): Promise<void> {
  await signInAs(page, stack, email);
  await page.getByRole('heading', { name: 'Telegram Notifications' }).waitFor();
}

/** The id of the focused element. */
async function activeId(page: Page): Promise<string> {
  return page.evaluate<string>('document.activeElement ? document.activeElement.id : ""');
}

async function badge(page: Page): Promise<string> {
  return (await page.locator('#tg-badge').textContent())?.trim() ?? '';
}

void describe('browser: linking Telegram from the dashboard', { skip }, () => {
  let stack: BrowserStack;

  before(async () => {
    stack = await startBrowserStack();
  });
  after(async () => {
    await stack?.close();
  });

  void it('links with the code the bot sent, welcomes, unlinks; then links in one tap', async () => {
    // Failed requests are expected here (the wrong code answers 400); anything else is not.
    const { context, page, consoleErrors } = await openPage(stack, { viewport: { width: 1100, height: 900 }, deviceScaleFactor: 1 });
    try {
      await signInToDashboard(page, stack, 'John.Doe@example.com');
      assert.equal(await badge(page), 'Not linked');
      await page.locator('.topbar').getByText('john.doe', { exact: true }).waitFor();
      await page.locator('#telegram-card').screenshot({ path: join(ARTIFACTS, 'dashboard-unlinked-initial.png') });

      // The analyst sends /start to the bot; the bot answers with a code.
      const chat = 424242;
      stack.telegram.sendUserMessage(chat, '/start');
      const [reply] = await stack.telegram.waitForMessages(chat, 1, 60_000);
      const code = /\b(\d{6})\b/.exec(reply?.text ?? '')?.[1];
      assert.ok(code, `the bot's answer holds a 6-digit code: ${reply?.text}\n${stack.botOutput()}`);

      // A wrong code first: the error shows in place, focus stays in the field.
      const wrong = code === '000000' ? '111111' : '000000';
      await page.getByLabel('Verification code').fill(wrong);
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.locator('#tg-code-error').filter({ hasText: 'not valid' }).waitFor();
      assert.equal(await page.locator('#tg-code').getAttribute('aria-invalid'), 'true');
      assert.equal(await activeId(page), 'tg-code');

      await page.getByLabel('Verification code').fill(code);
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.locator('#tg-badge', { hasText: /^Linked$/ }).waitFor();
      await page.getByRole('status').filter({ hasText: 'Telegram is linked' }).waitFor();
      assert.equal(await activeId(page), 'tg-linked-heading', 'focus moves to the new state');
      assert.match((await page.locator('#tg-linked-heading').textContent()) ?? '', /Linked since \S/);
      assert.equal(linkOf(stack, 'john.doe')?.chat_id, chat);
      await page.locator('#telegram-card').screenshot({ path: join(ARTIFACTS, 'dashboard-linked.png') });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-linked-page.png'), fullPage: true });

      // The welcome message arrives in the chat (sent by the dashboard through the send API).
      const messages = await stack.telegram.waitForMessages(chat, 2, 60_000);
      const welcome = messages.find((m) => (m.text ?? '').includes('~/user/notifications/'));
      assert.ok(welcome, `a welcome message arrives: ${JSON.stringify(messages.map((m) => m.text))}\n${stack.botOutput()}`);
      assert.match(welcome.text ?? '', /john\.doe/);
      assert.match(welcome.text ?? '', /arrive here/);
      const kinds = new Set(welcome.entities.map((e) => e.type));
      assert.ok(kinds.has('bold') && kinds.has('code') && kinds.has('pre'), `formatted as Markdown, not plain text: ${[...kinds].join(', ')}`);

      // Unlink behind the confirmation dialog.
      await page.getByRole('button', { name: 'Unlink Telegram' }).click();
      const dialog = page.getByRole('dialog', { name: 'Unlink Telegram?' });
      await dialog.waitFor();
      assert.equal(await activeId(page), 'tg-unlink-cancel', 'the safe choice has focus');
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-unlink-dialog.png') });
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'hidden' });
      assert.equal(await activeId(page), 'tg-unlink', 'focus returns to the Unlink button');
      assert.equal(await badge(page), 'Linked', 'Escape cancels');
      await page.getByRole('button', { name: 'Unlink Telegram' }).click();
      await dialog.getByRole('button', { name: 'Unlink', exact: true }).click();
      await page.locator('#tg-badge', { hasText: 'Not linked' }).waitFor();
      await page.getByRole('status').filter({ hasText: 'Telegram is unlinked' }).waitFor();
      assert.equal(linkOf(stack, 'john.doe'), undefined);
      await page.locator('#telegram-card').screenshot({ path: join(ARTIFACTS, 'dashboard-unlinked.png') });

      // One-tap: a deep link and its QR code; the bot links on /start <token>, the card flips.
      await page.getByRole('button', { name: 'Get a one-tap link' }).click();
      const open = page.getByRole('link', { name: 'Open in Telegram' });
      await open.waitFor();
      const href = (await open.getAttribute('href')) ?? '';
      const deepLink = new URL(href);
      assert.equal(`${deepLink.origin}${deepLink.pathname}`, `https://t.me/${stack.telegram.botInfo.username}`);
      const token = deepLink.searchParams.get('start') ?? '';
      assert.match(token, /^[A-Za-z0-9_-]{1,64}$/);
      await page.locator('#tg-qr svg').waitFor();
      await page.locator('#telegram-card').screenshot({ path: join(ARTIFACTS, 'dashboard-onetap.png') });

      const phone = 515151;
      stack.telegram.sendUserMessage(phone, `/start ${token}`);
      await page.locator('#tg-badge', { hasText: /^Linked$/ }).waitFor({ timeout: 60_000 });
      await page.getByRole('status').filter({ hasText: 'Telegram is linked' }).waitFor();
      assert.equal(linkOf(stack, 'john.doe')?.chat_id, phone, 'linked in one step to the chat that opened the link');
      const phoneMessages = await stack.telegram.waitForMessages(phone, 2, 60_000);
      assert.ok(phoneMessages.some((m) => (m.text ?? '').includes('~/user/notifications/')), 'the deep-linked chat gets the welcome message too');

      // The same card on a phone-sized screen.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-linked-mobile.png'), fullPage: true });

      assert.deepEqual(consoleErrors, [], 'no errors in the browser console (CSP violations included)');
    } finally {
      await context.close();
    }
  });

  void it('signs out with the button and cannot come back with the old session', async () => {
    const context = await stack.browser.newContext();
    const page = await context.newPage();
    try {
      await signInToDashboard(page, stack, 'ann@example.com');
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'You are signed out' }).waitFor();
      const res = await page.request.get(`${stack.webUrl}/api/telegram/status`);
      assert.equal(res.status(), 401);
      await page.screenshot({ path: join(ARTIFACTS, 'signed-out.png') });
    } finally {
      await context.close();
    }
  });

  void it('shows a clear refusal to an address that is not allowed', async () => {
    const context = await stack.browser.newContext({ viewport: { width: 900, height: 600 } });
    const page = await context.newPage();
    try {
      await signInAs(page, stack, 'mallory@evil.test');
      await page.getByRole('heading', { name: 'This account cannot sign in here' }).waitFor();
      await page.getByText('mallory@evil.test is not allowed to sign in').waitFor();
      assert.equal((await context.cookies()).filter((c) => c.name.includes('notify_session')).length, 0, 'no session cookie');
      await page.screenshot({ path: join(ARTIFACTS, 'signin-refused.png') });
    } finally {
      await context.close();
    }
  });
});
