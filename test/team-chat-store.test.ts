/**
 * The team chat store's refusal mark against deliveries: a delivery Telegram answered
 * before the bot was removed (its note written after the mark, as happens when the removal
 * arrives while the note waits for the lock) leaves the mark; one answered after clears it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TeamChatStore } from '../src/shared/teamChats.js';

const CHAT = -100_321;

void describe('team chat store: refusal mark and deliveries', () => {
  const dir = mkdtempSync(join(tmpdir(), 'notify-teamstore-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let now = Date.parse('2026-12-03T10:00:00.250Z');
  const store = new TeamChatStore(dir, { now: () => now });
  writeFileSync(join(dir, 'team_chats.json'), JSON.stringify({ 'ops-alerts': { chat_id: CHAT, owner: 'ann', linked_at: '2026-12-01T00:00:00Z', members: [] } }));

  void it('keeps a mark set after the delivery was answered, clears it for a later delivery', async () => {
    const answeredBefore = now - 100;
    await store.markDeliveryRefused(CHAT, 'the bot was removed from the group by Ann');
    now += 50;
    await store.noteDelivery(CHAT, answeredBefore);
    const kept = await store.get('ops-alerts');
    assert.equal(kept?.delivery_refused?.reason, 'the bot was removed from the group by Ann');
    assert.ok(kept?.last_delivery_at, 'the delivery is still noted');

    now += 1_000;
    await store.noteDelivery(CHAT, now);
    assert.equal((await store.get('ops-alerts'))?.delivery_refused, undefined);
  });
});
