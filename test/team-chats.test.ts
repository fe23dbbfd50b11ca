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
import { TeamChatStore, TeamError } from '../src/shared/teamChats.js';
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
  let lone = '';
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
    lone = accounts.user('lone');
    const socketGroup = accounts.group('tsock', [owner, member, outsider, lone]);
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
    // A member who does not administer the group gets no code.
    h.fake.sendGroupMessage(GROUP, chat[member]!, '/start');
    const [refusal] = await h.fake.waitForMessages(GROUP, 1, 60_000);
    assert.match(textOf(refusal!), /Only an administrator of this group can link it/);
    assert.doesNotMatch(textOf(refusal!), /\b\d{6}\b/);

    h.fake.sendGroupMessage(GROUP, chat[owner]!, '/start');
    const [, reply] = await h.fake.waitForMessages(GROUP, 2, 60_000);
    const code = /\b(\d{6})\b/.exec(textOf(reply!))?.[1];
    assert.ok(code, `the bot answered /start in the group with a code: ${textOf(reply!)}`);
    assert.match(textOf(reply!), /Link code for this group: \d{6}[\s\S]*"Team chats"[\s\S]*own the team chat/);
    // A group's code does not link a personal chat, and stays usable for the group.
    await assert.rejects(h.links.verifyCode(owner, code), /came from a group chat/);
    const teams = new TeamChatStore(h.dataDir);
    // The code is the administrator's who asked: a member who saw it cannot take the group.
    await assert.rejects(teams.linkWithCode(member, code, 'finance-alerts', h.links), (err: unknown) => err instanceof TeamError && err.status === 403);
    const linked = await teams.linkWithCode(owner, code, 'finance-alerts', h.links);
    assert.equal(linked.team.chat_id, GROUP);
    assert.equal(linked.team.owner, owner);
    assert.equal(linked.team.title, 'Finance alerts', 'the group title travels with the code');
    // Chatter in the group gets no answer; /start now says what the group is.
    h.fake.sendGroupMessage(GROUP, chat[member]!, 'morning all');
    h.fake.sendGroupMessage(GROUP, chat[member]!, '/start');
    const [, , again] = await h.fake.waitForMessages(GROUP, 3, 60_000);
    assert.match(textOf(again!), /This group is the team chat finance-alerts, linked by/);
    assert.equal(h.fake.sentMessages(GROUP).length, 3, 'only /start was answered');
    await assert.rejects(teams.setAccess(member, 'finance-alerts', [member], null), /Only the owner/);
    await teams.setAccess(owner, 'finance-alerts', [member, lone], null);
  });

  void it('an administrator writing as the group gets a code that only an administrator can use', async () => {
    const ops = GROUP - 1;
    h.fake.createGroup(ops, 'Ops', [chat[member]!, chat[outsider]!], { admins: [chat[owner]!] });
    h.fake.sendGroupMessage(ops, chat[owner]!, '/start', { anonymous: true });
    const [reply] = await h.fake.waitForMessages(ops, 1, 60_000);
    assert.match(textOf(reply!), /one of its administrators enters it/);
    const code = /\b(\d{6})\b/.exec(textOf(reply!))?.[1];
    assert.ok(code, textOf(reply!));
    const teams = new TeamChatStore(h.dataDir);
    await assert.rejects(teams.linkWithCode(outsider, code, 'ops-anon', h.links), (err: unknown) => err instanceof TeamError && err.status === 403, 'a plain member cannot use it');
    const linked = await teams.linkWithCode(member, code, 'ops-anon', h.links);
    assert.equal(linked.team.owner, member, 'the creator of the group, an administrator, linked it');
    await teams.unlink(member, 'ops-anon');
  });

  void it('a channel is linked by one of its administrators and sent to like a group', async () => {
    const channel = GROUP - 2;
    h.fake.createGroup(channel, 'Announcements', [chat[owner]!, chat[member]!], { channel: true });
    // A channel's post comes from the channel, not a person: any administrator may use its code.
    h.fake.sendChannelPost(channel, '/start');
    const [reply] = await h.fake.waitForMessages(channel, 1, 60_000);
    const code = /\b(\d{6})\b/.exec(textOf(reply!))?.[1];
    assert.ok(code, `the bot answered /start in the channel with a code: ${textOf(reply!)}`);
    const teams = new TeamChatStore(h.dataDir);
    await assert.rejects(teams.linkWithCode(member, code, 'announce', h.links), (err: unknown) => err instanceof TeamError && err.status === 403, 'a subscriber cannot use it');
    await teams.linkWithCode(owner, code, 'announce', h.links);
    const r = await notify(owner, ['--to', 'announce', 'Release 4.2 is out']);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    await h.waitUntil(() => h.fake.sentMessages(channel).some((m) => textOf(m) === 'Release 4.2 is out'), 60_000, () => 'the message did not reach the channel');
    await teams.unlink(owner, 'announce');
  });

  void it('the owner sends to it with notify --to', async () => {
    const r = await notify(owner, ['--to', 'finance-alerts', 'Month-end close is done']);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    await h.waitUntil(() => groupTexts().includes('Month-end close is done'), 60_000, () => `group holds ${JSON.stringify(groupTexts())}`);
  });

  void it('an allowed member sends to the group and their own chat at once', async () => {
    const r = await notify(member, ['--to', 'me,finance-alerts', 'Loads are late']);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    await h.waitUntil(() => groupTexts().includes('Loads are late'), 60_000, () => `group holds ${JSON.stringify(groupTexts())}`);
    const own = await h.fake.waitForMessages(chat[member]!, 1, 60_000);
    assert.deepEqual(own.map(textOf), ['Loads are late']);
  });

  void it('notify to several destinations says what each did; its exit status tells of the one not sent', async () => {
    // `lone` may send to the team chat but has linked no chat of their own.
    const r = await notify(lone, ['--to', 'me,finance-alerts', 'Half of it']);
    assert.equal(r.status, 1, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /^notify: me: not sent: [^;]*has not linked Telegram[^;]*; finance-alerts: (queued|delivered)/);
    await h.waitUntil(() => groupTexts().includes('Half of it'), 60_000, () => `group holds ${JSON.stringify(groupTexts())}`);
  });

  void it('an outsider is refused with 403 and nothing is sent to any destination', async () => {
    const r = await notify(outsider, ['--to', 'me,finance-alerts', 'Not mine to send']);
    assert.equal(r.status, 1, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /HTTP 403\): '[^']+' may not send to the team chat 'finance-alerts'/);
    // A later message from the owner arrives; the outsider's went nowhere before it.
    const after = await notify(owner, ['--to', 'finance-alerts', 'after the refusal']);
    assert.equal(after.status, 0);
    await h.waitUntil(() => groupTexts().includes('after the refusal'), 60_000, () => 'the later message did not arrive');
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

  void it('buttons under a group alert act only for its sender or the chat owner; others get a notice and nothing changes', async () => {
    const alertText = 'Load check failed';
    const sent = await h.client.send({ user: member, message: alertText, script: 'load_check.py', to: ['finance-alerts'] }, 'respond-async');
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const alert = await h.waitUntil(() => h.fake.sentMessages(GROUP).find((m) => textOf(m) === alertText), 30_000, () => `group holds ${JSON.stringify(groupTexts())}`);
    const buttons = (alert.reply_markup?.inline_keyboard ?? []).flat();
    const mute = buttons.find((b) => b.text === 'Mute here')?.callback_data;
    assert.ok(mute, `the alert has a Mute here button: ${JSON.stringify(buttons)}`);

    // An outsider (linked, but neither sender nor owner) is told so; the rule stays unset.
    const refused = await h.fake.waitForCallbackAnswer(h.fake.pressButton(GROUP, alert.message_id, mute, { from: chat[outsider]! }), 60_000);
    assert.equal(refused.show_alert, true);
    assert.match(refused.text ?? '', new RegExp(`Only ${member}, who sends load_check.py, or ${owner}, who owns finance-alerts, can silence it here\\. Nothing was changed\\.`));
    // A group member with no linked account is told the same, and why.
    h.fake.addGroupMember(GROUP, 700_099);
    const stranger = await h.fake.waitForCallbackAnswer(h.fake.pressButton(GROUP, alert.message_id, mute, { from: 700_099 }), 60_000);
    assert.match(stranger.text ?? '', /your Telegram is not linked to a server account/);
    const teams = new TeamChatStore(h.dataDir);
    assert.equal((await teams.get('finance-alerts'))?.silenced, undefined, 'refused presses changed nothing');

    // The owner mutes the script in this group: the next alert of it is not posted there.
    const ok = await h.fake.waitForCallbackAnswer(h.fake.pressButton(GROUP, alert.message_id, mute, { from: chat[owner]! }), 60_000);
    assert.match(ok.text ?? '', /load_check\.py muted here by/);
    await h.waitUntil(() => /muted here by/.test(textOf(h.fake.message(GROUP, alert.message_id)!)), 60_000, () => 'the alert did not show the mute');
    const muted = await h.client.send({ user: member, message: 'Load check failed again', script: 'load_check.py', to: ['finance-alerts'] });
    assert.equal((muted.body as { suppressed?: string }).suppressed, 'muted', JSON.stringify(muted.body));
    // The sender's own chat is not affected by the group's mute.
    const own = await h.client.send({ user: member, message: 'Own copy', script: 'load_check.py', to: ['me'] });
    assert.equal((own.body as { suppressed?: string }).suppressed, undefined, JSON.stringify(own.body));

    // The sender undoes it from the same message.
    const undo = (h.fake.message(GROUP, alert.message_id)?.reply_markup?.inline_keyboard ?? []).flat().find((b) => b.text === 'Unmute')?.callback_data;
    assert.ok(undo, 'the muted alert offers Unmute');
    await h.fake.waitForCallbackAnswer(h.fake.pressButton(GROUP, alert.message_id, undo, { from: chat[member]! }), 60_000);
    await h.waitUntil(async () => (await teams.get('finance-alerts'))?.silenced === undefined || undefined, 60_000, () => 'the mute was not cleared');
    const back = await h.client.send({ user: member, message: 'Load check failed, posted', script: 'load_check.py', to: ['finance-alerts'] }, 'respond-async');
    assert.equal(back.status, 202);
    await h.waitUntil(() => groupTexts().includes('Load check failed, posted'), 30_000, () => `group holds ${JSON.stringify(groupTexts())}`);
    assert.ok(!groupTexts().includes('Load check failed again'), 'the muted alert never reached the group');
  });

  void it('the bot removed from the group marks the link and tells its analysts; sends are refused until it is back', async () => {
    const ownerBefore = h.fake.sentMessages(chat[owner]).length;
    h.fake.removeBotFromGroup(GROUP, { by: chat[outsider]! });
    const teams = new TeamChatStore(h.dataDir);
    await h.waitUntil(async () => (await teams.get('finance-alerts'))?.delivery_refused, 60_000, () => `the link was not marked:\n${h.logTail(5)}`);
    const told = await h.waitUntil(() => h.fake.sentMessages(chat[owner]).slice(ownerBefore).find((m) => /removed from the Telegram group/.test(textOf(m))), 60_000, () => 'the owner was not told');
    assert.match(textOf(told), /team chat finance-alerts[\s\S]*sends to finance-alerts are refused until someone adds the bot/);
    await h.waitUntil(() => h.fake.sentMessages(chat[member]).some((m) => /removed from the Telegram group/.test(textOf(m))) || undefined, 60_000, () => 'the allowed member was not told');
    const r = await notify(owner, ['--to', 'finance-alerts', 'again']);
    assert.equal(r.status, 1, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /does not take messages/);

    h.fake.addBotToGroup(GROUP, { by: chat[owner]! });
    await h.waitUntil(async () => (await teams.get('finance-alerts'))?.delivery_refused === undefined || undefined, 60_000, () => 'the mark was not cleared');
    const r2 = await notify(owner, ['--to', 'finance-alerts', 'back in the group']);
    assert.equal(r2.status, 0, `${r2.stdout}${r2.stderr}`);
    await h.waitUntil(() => groupTexts().includes('back in the group'), 30_000, () => `group holds ${JSON.stringify(groupTexts())}`);
  });
});
