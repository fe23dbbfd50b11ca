/**
 * The deliverer on a shared store (a fleet's database), with a store whose answers this test
 * orders: what a rescan takes while the first take is still being loaded goes after it, so
 * a chat's later notification never overtakes an earlier one at a change of lease holder.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Deliverer } from '../src/bot/delivery/deliverer.js';
import { newOutboxId, type DeliveryOutcome, type OutboxRecord, type OutboxStore } from '../src/bot/delivery/outbox.js';
import { Pacer } from '../src/bot/telegram/pacer.js';
import { systemClock } from '../src/shared/clock.js';
import { silentLogger } from '../src/shared/logger.js';
import type { Part } from '../src/bot/format/render.js';

function record(text: string, chat: number): OutboxRecord {
  const { id, seq } = newOutboxId(Date.now());
  return { id, seq, user: 'alice', chat_id: chat, accepted_at: Date.now(), parts: [{ kind: 'text', text }], sent_parts: 0, attempts: 0 };
}

/** A shared store in memory: the first take returns `first`, the next `later`; the first outcome look-up waits for `gate`. */
class OrderedStore {
  taken = 0;
  lookups = 0;
  constructor(
    private readonly first: OutboxRecord[],
    private readonly later: OutboxRecord[],
    private readonly gate: Promise<void>,
  ) {}
  open(): Promise<OutboxRecord[]> {
    return Promise.resolve(this.first);
  }
  takeRequeued(): Promise<OutboxRecord[]> {
    this.taken += 1;
    return Promise.resolve(this.taken === 1 ? this.later : []);
  }
  async outcomesOf(): Promise<Map<string, DeliveryOutcome>> {
    this.lookups += 1;
    if (this.lookups === 1) await this.gate;
    return new Map();
  }
  add(): Promise<void> {
    return Promise.resolve();
  }
  claim(): Promise<number> {
    return Promise.resolve(Date.now() + 60_000);
  }
  watch(): void {}
  update(): Promise<void> {
    return Promise.resolve();
  }
  remove(): Promise<void> {
    return Promise.resolve();
  }
  recordOutcomes(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

void describe('deliverer on a shared store', () => {
  void it('a rescan during the first take waits for it: a chat keeps its order', async () => {
    const chat = 4242;
    const earlier = record('first', chat);
    const later = record('second', chat);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const store = new OrderedStore([earlier], [later], gate);
    const sent: string[] = [];
    let firstSend!: () => void;
    const sending = new Promise<void>((r) => (firstSend = r));
    const transport = {
      send: (_chat: number, part: Part): Promise<number> => {
        sent.push(part.text ?? '');
        firstSend();
        return Promise.resolve(sent.length);
      },
    };
    const pacer = new Pacer({ botPerWindow: 30, windowMs: 1000, chatBurst: 3, chatIntervalMs: 1000 }, systemClock);
    const d = new Deliverer(
      store as unknown as OutboxStore,
      transport,
      pacer,
      { maxAgeMs: 60_000, retryBaseMs: 100, retryMaxMs: 1000, concurrency: 4, queueMax: 100, rescanMs: 60_000 },
      systemClock,
      silentLogger(),
    );
    const starting = d.start();
    // A notification accepted here while the first take is loaded asks for a rescan.
    await d.accept(record('accepted meanwhile', 1));
    // Without the ordering the rescan's record goes first; with it nothing can go until the
    // first take is loaded, and the gate opens after a pause instead.
    await Promise.race([sending, sleep(1000)]);
    release();
    await starting;
    const deadline = Date.now() + 60_000;
    while (sent.length < 2 && Date.now() < deadline) await sleep(20);
    await d.stop();
    assert.deepEqual(sent, ['first', 'second']);
  });
});
