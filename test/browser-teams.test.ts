/**
 * The "Team chats" card in a real browser (Debian's chromium) against the whole stack:
 * local OpenID Connect provider, fake Telegram with a group, the real bot and the
 * dashboard. An analyst gets a code with /start in the group, links the group under a name
 * on the card, allows another account and a Linux group, sees the last delivery after a
 * script's alert reached the group, sees the link marked when the bot is removed from the
 * group, and unlinks it. Screenshots go to test-artifacts/.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LinkStore } from '../src/shared/linking.js';
import { SendClient } from '../src/shared/sendClient.js';
import { TeamChatStore } from '../src/shared/teamChats.js';
import { ARTIFACTS, type BrowserStack, CHROMIUM, signedInPage, startBrowserStack } from './support/browserStack.js';

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;
const GROUP = -100_900;
const JOHN_CHAT = 777_101;

/** Polls an async check until it holds (bounded), saying what was awaited on failure. */
async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

void describe('browser: Team chats', { skip }, () => {
  let stack: BrowserStack;

  before(async () => {
    stack = await startBrowserStack();
  });
  after(async () => {
    await stack?.close();
  });

  void it('links a group with its code, sets who may send, shows the last delivery and a removed bot, and unlinks', async () => {
    stack.telegram.registerChat(JOHN_CHAT, { first_name: 'John' });
    await new LinkStore(stack.dataDir).linkChat('john.doe', JOHN_CHAT);
    stack.telegram.createGroup(GROUP, 'Finance alerts', [JOHN_CHAT]);
    stack.telegram.sendGroupMessage(GROUP, JOHN_CHAT, '/start');
    const [reply] = await stack.telegram.waitForMessages(GROUP, 1, 60_000);
    const code = /\b(\d{6})\b/.exec(reply?.text ?? '')?.[1];
    assert.ok(code, `the bot posted a code in the group: ${reply?.text ?? ''}\n${stack.botOutput().slice(-2000)}`);

    const { context, page, consoleErrors } = await signedInPage(stack, 'john.doe@example.com');
    try {
      const card = page.locator('#teams-card');
      await card.getByRole('heading', { name: 'Team chats' }).waitFor();
      await card.locator('#tm-empty').waitFor({ state: 'visible' });

      // A wrong code is refused in words, nothing is linked.
      await card.getByLabel('Code from the group').fill('000000');
      await card.getByLabel('Team chat name').fill('finance-alerts');
      await card.getByRole('button', { name: 'Link group' }).click();
      await card.locator('#tm-link-error', { hasText: 'This code is not valid' }).waitFor();

      // The group's code links it.
      await card.getByLabel('Code from the group').fill(code);
      await card.getByRole('button', { name: 'Link group' }).click();
      const item = card.locator('li[data-team="finance-alerts"]');
      await item.waitFor();
      assert.match((await item.locator('.team-title').textContent()) ?? '', /Finance alerts/);
      assert.match((await item.locator('.team-role').textContent()) ?? '', /Owner/);
      assert.match((await item.locator('.team-last').textContent()) ?? '', /nothing delivered yet/);
      assert.match((await card.locator('#tm-live').textContent()) ?? '', /linked as finance-alerts/);
      const stored = await new TeamChatStore(stack.dataDir).get('finance-alerts');
      assert.equal(stored?.owner, 'john.doe');
      assert.equal(stored?.chat_id, GROUP);

      // Who else may send: an account that does not exist is refused; real ones are saved.
      await item.getByLabel('Analysts by name').fill('nobody, no.such.account');
      await item.getByRole('button', { name: 'Save who may send' }).click();
      await card.locator('#tm-live', { hasText: "no account named 'no.such.account'" }).waitFor();
      await item.getByLabel('Analysts by name').fill('nobody');
      await item.getByLabel('Linux group').fill('users');
      await item.getByRole('button', { name: 'Save who may send' }).click();
      await card.locator('#tm-live', { hasText: 'Saved: you and nobody and members of users may send to finance-alerts' }).waitFor();
      await card.locator('li[data-team="finance-alerts"] .team-senders', { hasText: 'every member of the Linux group users' }).waitFor();
      // Its members: the owner, the analyst named, and the accounts of the Linux group.
      const members = card.locator('li[data-team="finance-alerts"] .team-members li');
      await members.filter({ hasText: 'john.doe (owner)' }).waitFor();
      await members.filter({ hasText: /^nobody$/ }).waitFor();
      assert.deepEqual((await new TeamChatStore(stack.dataDir).get('finance-alerts'))?.members, ['nobody']);

      // A script's alert reaches the group; the card shows when.
      const send = new SendClient(stack.socketPath, 30_000);
      const res = await send.send({ user: 'john.doe', title: 'Month-end close', message: 'All 14 tables loaded.', script: 'close.py', to: ['finance-alerts'] }, 'respond-async');
      assert.equal(res.status, 202, JSON.stringify(res.body));
      await stack.telegram.waitForMessages(GROUP, 2, 30_000);
      await eventually(async () => (await new TeamChatStore(stack.dataDir).get('finance-alerts'))?.last_delivery_at, 60_000, 'the delivery to be recorded');
      await page.reload();
      const last = page.locator('li[data-team="finance-alerts"] .team-last time');
      await last.waitFor();
      assert.ok(await last.getAttribute('datetime'), 'the last delivery has a time');
      await page.locator('#teams-card').screenshot({ path: join(ARTIFACTS, 'dashboard-teams.png') });

      // The bot is removed from the group: the card says the chat takes no messages.
      stack.telegram.removeBotFromGroup(GROUP, { by: JOHN_CHAT });
      await eventually(async () => (await new TeamChatStore(stack.dataDir).get('finance-alerts'))?.delivery_refused, 60_000, 'the link to be marked');
      await page.reload();
      const notice = page.locator('li[data-team="finance-alerts"] .team-refused-notice');
      await notice.waitFor();
      assert.match((await notice.textContent()) ?? '', /Not taking messages[\s\S]*removed from the group by John/);
      await page.locator('#teams-card').screenshot({ path: join(ARTIFACTS, 'dashboard-teams-removed.png') });

      // Unlink behind the confirmation dialog.
      await page.getByRole('button', { name: 'Unlink finance-alerts' }).click();
      await page.getByRole('dialog', { name: 'Unlink finance-alerts?' }).waitFor();
      await page.locator('#tm-unlink-confirm').click();
      await page.locator('#tm-empty').waitFor({ state: 'visible' });
      assert.equal(await new TeamChatStore(stack.dataDir).get('finance-alerts'), null);
      assert.deepEqual(consoleErrors, [], 'no script errors on the page');
    } finally {
      await context.close();
    }
  });
});
