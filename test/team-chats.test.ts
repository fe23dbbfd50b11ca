/**
 * Team chats through the real bot, the fake Telegram's groups and `notify` run as real
 * Linux accounts: a group linked with the code its /start gave, sent to by its owner and
 * by a member the owner allowed; an outsider refused with 403 and nothing sent anywhere;
 * a burst to the group kept within its per-window limit (shortened here; the default,
 * 20 a minute, is measured in bench/) with nothing lost and no 429.
 */
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TeamChatStore } from '../src/shared/teamChats.js';
import { BotHarness, PROJECT_ROOT, textOf } from './support/botHarness.js';
import { accountsUnavailable, LinuxAccounts, type RunResult } from './support/linuxAccounts.js';

const NOTIFY_BIN = join(PROJECT_ROOT, 'bin', 'notify.js');
const GROUP = -100_500;

void describe('team chats', { skip: accountsUnavailable() }, () => {
  const accounts = new LinuxAccounts();
  let h: BotHarness;
  let owner = '';
  let member = '';
  let outsider = '';
  const chat: Record<string, number> = {};

  function notify(user: string, args: readonly string[]): Promise<RunResult> {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', NOTIFY_SOCKET: h.socketPath, LANG: 'C.UTF-8' };
    return accounts.run(user, process.execPath, [NOTIFY_BIN, ...args], { env, cwd: '/' });
  }

  const groupTexts = (): string[] => h.fake.sentMessages(GROUP).map(textOf);

  before(async () => {
    owner = accounts.user('own');
    member = accounts.user('mem');
    outsider = accounts.user('out');
    const socketGroup = accounts.group('tsock', [owner, member, outsider]);
    h = await BotHarness.start({
      users: [],
      env: { NOTIFY_SOCKET_GROUP: socketGroup, NOTIFY_GROUP_RATE: '5', NOTIFY_GROUP_WINDOW: '3s' },
      fake: { groupRateLimit: { perWindow: 5, windowMs: 3000 } },
      prefix: 'notify-team-',
    });
    chmodSync(h.dir, 0o711);
    chmodSync(join(h.dir, 'run'), 0o711);
    chat[owner] = (await h.link(owner, 700_001)).chatId;
    chat[member] = (await h.link(member, 700_002)).chatId;
    chat[outsider] = (await h.link(outsider, 700_003)).chatId;
    h.fake.createGroup(GROUP, 'Finance alerts', [chat[owner]!, chat[member]!, chat[outsider]!]);
  });

  after(async () => {
    await h?.cleanup();
    accounts.cleanup();
  });

  void it('a group is linked under a name with the code its /start gave, owned by the one who linked it', async () => {
    h.fake.sendGroupMessage(GROUP, chat[owner]!, '/start');
    const [reply] = await h.fake.waitForMessages(GROUP, 1, 10_000);
    const code = /\b(\d{6})\b/.exec(textOf(reply!))?.[1];
    assert.ok(code, `the bot answered /start in the group with a code: ${textOf(reply!)}`);
    const teams = new TeamChatStore(h.dataDir);
    const linked = await teams.linkWithCode(owner, code, 'finance-alerts', h.links);
    assert.equal(linked.team.chat_id, GROUP);
    assert.equal(linked.team.owner, owner);
    await assert.rejects(teams.setAccess(member, 'finance-alerts', [member], null), /Only the owner/);
    await teams.setAccess(owner, 'finance-alerts', [member], null);
  });

  void it('the owner sends to it with notify --to', async () => {
    const r = await notify(owner, ['--to', 'finance-alerts', 'Month-end close is done']);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    await h.waitUntil(() => groupTexts().includes('Month-end close is done'), 10_000, () => `group holds ${JSON.stringify(groupTexts())}`);
  });

  void it('an allowed member sends to the group and their own chat at once', async () => {
    const r = await notify(member, ['--to', 'me,finance-alerts', 'Loads are late']);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    await h.waitUntil(() => groupTexts().includes('Loads are late'), 10_000, () => `group holds ${JSON.stringify(groupTexts())}`);
    const own = await h.fake.waitForMessages(chat[member]!, 1, 10_000);
    assert.deepEqual(own.map(textOf), ['Loads are late']);
  });

  void it('an outsider is refused with 403 and nothing is sent to any destination', async () => {
    const r = await notify(outsider, ['--to', 'me,finance-alerts', 'Not mine to send']);
    assert.equal(r.status, 1, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /HTTP 403\): '[^']+' may not send to the team chat 'finance-alerts'/);
    // A later message from the owner arrives; the outsider's went nowhere before it.
    const after = await notify(owner, ['--to', 'finance-alerts', 'after the refusal']);
    assert.equal(after.status, 0);
    await h.waitUntil(() => groupTexts().includes('after the refusal'), 10_000, () => 'the later message did not arrive');
    assert.ok(!groupTexts().includes('Not mine to send'), 'nothing reached the group');
    assert.equal(h.fake.sentMessages(chat[outsider]).length, 0, "nothing reached the outsider's own chat");
  });

  void it('a burst to the group keeps within its per-window limit: nothing lost, no 429', async () => {
    const tooManyBefore = h.fake.stats.tooManyRequests;
    const before = groupTexts().length;
    const texts = Array.from({ length: 15 }, (_, i) => `burst #${i + 1}`);
    const started = Date.now();
    for (const text of texts) {
      const res = await h.client.send({ user: owner, message: text, to: ['finance-alerts'] }, 'respond-async');
      assert.equal(res.status, 202, JSON.stringify(res.body));
    }
    await h.waitUntil(() => groupTexts().length >= before + texts.length, 60_000, () => `group got ${groupTexts().length - before} of ${texts.length}`);
    const elapsed = Date.now() - started;
    assert.deepEqual(groupTexts().slice(before), texts, 'every message, once, in order');
    assert.equal(h.fake.stats.tooManyRequests - tooManyBefore, 0, 'Telegram never had to refuse (429)');
    // 5 per 3 s window, and the window already held earlier messages: at least 2 full windows.
    assert.ok(elapsed >= 6000, `15 messages at 5 per 3 s took ${elapsed} ms`);
  });

  void it('the bot removed from the group marks the link, and later sends are refused clearly', async () => {
    h.fake.removeBotFromGroup(GROUP);
    await h.client.send({ user: owner, message: 'after removal', to: ['finance-alerts'] }, 'respond-async');
    const teams = new TeamChatStore(h.dataDir);
    const deadline = Date.now() + 10_000;
    while ((await teams.get('finance-alerts'))?.delivery_refused === undefined) {
      assert.ok(Date.now() < deadline, `the link was not marked:\n${h.logTail(5)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = await notify(owner, ['--to', 'finance-alerts', 'again']);
    assert.equal(r.status, 1, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /does not take messages/);
  });
});
