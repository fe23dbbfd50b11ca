/**
 * The refusal mark against deliveries, one rule for a personal chat and a team chat: a
 * delivery Telegram answered before the chat refused (its note written after the mark, as
 * happens when the refusal arrives while the note waits for the lock) leaves the mark; one
 * answered after clears it. The mark written by another process (another replica, a
 * restart) is cleared the same way: nothing of it is kept in memory.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LinkStore } from '../src/shared/linking.js';
import { deliveryClears } from '../src/shared/refusalMark.js';
import { TeamChatStore } from '../src/shared/teamChats.js';

const CHAT = -100_321;
const PERSONAL = 700_321;

void describe('refusal mark and deliveries', () => {
  const dir = mkdtempSync(join(tmpdir(), 'notify-refusal-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let now = Date.parse('2026-12-03T10:00:00.250Z');
  const clock = { now: () => now };
  const teams = new TeamChatStore(dir, clock);
  const links = new LinkStore(dir, clock);
  writeFileSync(join(dir, 'team_chats.json'), JSON.stringify({ 'ops-alerts': { chat_id: CHAT, owner: 'ann', linked_at: '2026-12-01T00:00:00Z', members: [] } }));

  void it('the rule: a mark made before the answer is cleared, one made at or after it is kept', () => {
    const mark = { at: '2026-12-03T10:00:00.250Z', reason: 'blocked' };
    assert.equal(deliveryClears(mark, Date.parse(mark.at) + 1), true);
    assert.equal(deliveryClears(mark, Date.parse(mark.at)), false);
    assert.equal(deliveryClears(mark, Date.parse(mark.at) - 1), false);
    assert.equal(deliveryClears(undefined, now), false);
    assert.equal(deliveryClears({ at: 'yesterday', reason: 'x' }, now), true, 'an unreadable time does not keep a chat refused');
  });

  void it('a team chat keeps a mark set after the delivery was answered, and clears it for a later delivery', async () => {
    const answeredBefore = now - 100;
    await teams.markDeliveryRefused(CHAT, 'the bot was removed from the group by Ann');
    now += 50;
    await teams.noteDelivery(CHAT, answeredBefore);
    const kept = await teams.get('ops-alerts');
    assert.equal(kept?.delivery_refused?.reason, 'the bot was removed from the group by Ann');
    assert.ok(kept?.last_delivery_at, 'the delivery is still noted');

    now += 1_000;
    await teams.noteDelivery(CHAT, now);
    assert.equal((await teams.get('ops-alerts'))?.delivery_refused, undefined);
  });

  void it('a personal chat follows the same rule', async () => {
    await links.linkChat('ann', PERSONAL);
    const answeredBefore = now - 100;
    await links.markDeliveryRefused('ann', PERSONAL, 'Forbidden: bot was blocked by the user');
    now += 50;
    await links.noteDelivery('ann', PERSONAL, answeredBefore);
    assert.equal((await links.linkOf('ann'))?.delivery_refused?.reason, 'Forbidden: bot was blocked by the user', 'a late note of an earlier delivery keeps the mark');
    // Another chat's delivery (the analyst relinked elsewhere meanwhile) clears nothing.
    now += 1_000;
    await links.noteDelivery('ann', PERSONAL + 1, now);
    assert.ok((await links.linkOf('ann'))?.delivery_refused);
    await links.noteDelivery('ann', PERSONAL, now);
    assert.equal((await links.linkOf('ann'))?.delivery_refused, undefined);
  });

  void it('a mark another process wrote is cleared by the next delivery', async () => {
    const users = JSON.parse(JSON.stringify({ ann: { chat_id: PERSONAL, linked_at: '2026-12-01T00:00:00Z', delivery_refused: { at: new Date(now).toISOString(), reason: 'blocked' } } })) as unknown;
    writeFileSync(join(dir, 'telegram_users.json'), JSON.stringify(users));
    now += 10;
    await new LinkStore(dir, clock).noteDelivery('ann', PERSONAL, now);
    assert.equal((await links.linkOf('ann'))?.delivery_refused, undefined);
  });
});
