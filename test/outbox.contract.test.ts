/**
 * The outbox contract, run against both stores: the files of one host (FileOutbox) and the
 * shared PostgreSQL (PgOutbox, on a real server). Then what only the shared store has:
 * another replica's records reach the holder (and wake it), and fencing: a holder whose
 * lease generation is gone can neither claim a message for sending nor mark one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileOutbox, newOutboxId, type OutboxRecord, type OutboxStore } from '../src/bot/delivery/outbox.js';
import { FencedError, type OutboxFence, PgOutbox } from '../src/bot/delivery/pgOutbox.js';
import { openDatabase, type Database } from '../src/shared/db/database.js';
import { postgresUnavailable, TestPostgres } from './support/postgres.js';

const skip = postgresUnavailable();
let pg: TestPostgres;
const dirs: string[] = [];
const dbs: Database[] = [];

before(async () => {
  if (!skip) pg = await TestPostgres.start();
});
after(async () => {
  for (const d of dbs) await d.close();
  if (!skip) await pg.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function record(user: string, text: string, chat = 77): OutboxRecord {
  const { id, seq } = newOutboxId(Date.now());
  return { id, seq, user, chat_id: chat, accepted_at: Date.now(), parts: [{ kind: 'text', text }], sent_parts: 0, attempts: 0 };
}

/** A lease row this test controls, and the fence a PgOutbox reads from it. */
class TestLease {
  generation: number | null = null;
  constructor(
    readonly db: Database,
    readonly holder: string,
  ) {}

  fence = (): OutboxFence => ({ name: 'telegram', holder: this.holder, generation: this.generation });

  /** Takes the lease (bumping the generation) for ttlMs. */
  async take(ttlMs = 60_000): Promise<number> {
    const rows = await this.db.sql<{ generation: string }[]>`
      INSERT INTO leases (name, holder, generation, expires_at) VALUES ('telegram', ${this.holder}, 1, now() + ${`${ttlMs} milliseconds`}::interval)
      ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, generation = leases.generation + 1, expires_at = EXCLUDED.expires_at
      RETURNING generation::text`;
    this.generation = Number(rows[0]!.generation);
    return this.generation;
  }
}

interface Fixture {
  /** The store the delivering process uses (open). */
  store: OutboxStore;
  /** A second view of the same outbox (an operator, or another replica). */
  other(): OutboxStore;
  /** Reopens as the delivering process would after a restart (or a new lease holder). */
  reopen(): Promise<OutboxStore>;
}

const fixtures: Array<[string, () => Promise<Fixture>, boolean]> = [
  [
    'files',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'notify-outbox-contract-'));
      dirs.push(dir);
      let store: OutboxStore = new FileOutbox(dir);
      return {
        store,
        other: () => new FileOutbox(dir),
        reopen: async () => {
          await store.close();
          store = new FileOutbox(dir);
          return store;
        },
      };
    },
    false,
  ],
  [
    'PostgreSQL',
    async () => {
      const db = await openDatabase(await pg.createDatabase());
      dbs.push(db);
      const lease = new TestLease(db, 'holder-a');
      await lease.take();
      let store: OutboxStore = new PgOutbox(db.sql, lease.fence);
      return {
        store,
        other: () => new PgOutbox(db.sql, () => ({ name: 'telegram', holder: 'operator', generation: null })),
        reopen: async () => {
          await store.close();
          await lease.take();
          store = new PgOutbox(db.sql, lease.fence);
          return store;
        },
      };
    },
    true,
  ],
];

for (const [name, make, needsPg] of fixtures) {
  void describe(`outbox contract: ${name}`, { skip: needsPg ? (skip ?? false) : false }, () => {
    void it('what was added survives a reopen, oldest first, with its progress; removed records and their photos are gone', async () => {
      const f = await make();
      assert.deepEqual(await f.store.open(), []);
      const a = record('alice', 'first');
      const b = record('bob', 'second');
      const c = record('alice', 'third');
      c.photo = await f.store.putPhoto(c.id, Buffer.from('png-bytes'));
      for (const r of [a, b, c]) await f.store.add(r);
      // A shared store hands added records to the delivering process through a take.
      await f.store.takeRequeued();
      assert.equal(f.store.usage('alice').count, 2);
      b.sent_parts = 1;
      b.parts.push({ kind: 'text', text: 'second, part 2' });
      await f.store.update(b);
      await f.store.remove(a);
      assert.equal(f.store.usage('alice').count, 1);
      assert.deepEqual((await f.other().pending()).map((r) => r.id), [b.id, c.id]);
      const again = await f.reopen();
      const loaded = await again.open();
      assert.deepEqual(loaded.map((r) => r.id), [b.id, c.id]);
      assert.equal(loaded[0]!.sent_parts, 1);
      assert.equal((await again.getPhoto(loaded[1]!.photo!)).toString(), 'png-bytes');
      await again.remove(loaded[1]!);
      await assert.rejects(again.getPhoto(c.photo), 'the photo left with its record');
      await again.close();
    });

    void it('a buried record is a dead letter; re-queued, it comes back once with a fresh retry budget; outcomes are kept by id', async () => {
      const f = await make();
      await f.store.open();
      const r = record('carol', 'will fail');
      await f.store.add(r);
      await f.store.takeRequeued();
      r.attempts = 7;
      await f.store.bury({ ...r, last_error: 'gave up' });
      assert.deepEqual(await f.store.pending(), []);
      const dead = await f.other().deadLetters();
      assert.equal(dead.length, 1);
      assert.equal(dead[0]!.last_error, 'gave up');
      await f.store.recordOutcomes([{ id: r.id, user: 'carol', status: 'given_up', at: new Date().toISOString(), detail: 'gave up' }]);
      assert.equal((await f.store.outcomesOf(new Set([r.id, 'nope']))).get(r.id)?.status, 'given_up');

      assert.equal(await f.other().requeue(r.id, Date.now()), true);
      assert.equal(await f.other().requeue('no-such-id', Date.now()), false);
      assert.deepEqual(await f.other().deadLetters(), []);
      const back = await f.store.takeRequeued();
      assert.deepEqual(back.map((x) => [x.id, x.attempts, x.last_error]), [[r.id, 0, undefined]]);
      assert.deepEqual(await f.store.takeRequeued(), [], 'taken once');
      await f.store.recordOutcomes([{ id: r.id, user: 'carol', status: 'delivered', at: new Date().toISOString() }]);
      assert.equal((await f.store.outcomesOf(new Set([r.id]))).get(r.id)?.status, 'delivered', 'the newest outcome wins');
      await f.store.close();
    });
  });
}

void describe('the shared outbox across replicas', { skip: skip ?? false }, () => {
  void it('a record added by a follower reaches the holder, which is woken for it', async () => {
    const db = await openDatabase(await pg.createDatabase());
    dbs.push(db);
    const lease = new TestLease(db, 'leader');
    await lease.take();
    const holder = new PgOutbox(db.sql, lease.fence);
    await holder.open();
    let woken = 0;
    let wake: () => void = () => undefined;
    const wokenOnce = new Promise<void>((resolve) => {
      wake = resolve;
    });
    holder.watch(() => {
      woken += 1;
      wake();
    });
    // Listening is set up asynchronously: wait until the database has run the LISTEN (a
    // notification sent before it would be missed, and the test would wait for ever).
    const deadline = Date.now() + 60_000;
    const listening = async (): Promise<boolean> =>
      Number((await db.sql<{ n: string }[]>`SELECT count(*)::text AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle' AND query ILIKE 'listen%notify_outbox%'`)[0]!.n) > 0;
    while (!(await listening())) {
      if (Date.now() > deadline) assert.fail('the holder did not listen for new outbox records within 60 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const follower = new PgOutbox(db.sql, () => ({ name: 'telegram', holder: 'follower', generation: null }));
    const r = record('dave', 'via the follower');
    await follower.add(r);
    await wokenOnce;
    assert.ok(woken >= 1);
    const taken = await holder.takeRequeued();
    assert.deepEqual(taken.map((x) => x.id), [r.id]);
    assert.ok((await holder.claim(taken[0]!)) !== null, 'the holder may send it');
    assert.equal(await follower.claim(taken[0]!), null, 'a follower may not');
    await assert.rejects(follower.remove(taken[0]!), FencedError);
    await holder.close();
  });

  void it('fencing: once another replica takes the lease, the old holder can neither claim, mark progress, finish nor record outcomes', async () => {
    const db = await openDatabase(await pg.createDatabase());
    dbs.push(db);
    const oldLease = new TestLease(db, 'old-leader');
    await oldLease.take();
    const old = new PgOutbox(db.sql, oldLease.fence);
    await old.open();
    const r = record('erin', 'in flight at the take-over');
    await old.add(r);
    await old.takeRequeued();
    assert.ok((await old.claim(r)) !== null);

    // The old holder still believes it holds generation 1 (paused, partitioned), while
    // another replica takes the lease.
    const newLease = new TestLease(db, 'new-leader');
    await db.sql`UPDATE leases SET expires_at = now() - interval '1 second'`;
    await newLease.take();
    const current = new PgOutbox(db.sql, newLease.fence);
    const loaded = await current.open();
    assert.deepEqual(loaded.map((x) => x.id), [r.id], 'the new holder takes the queue');

    assert.equal(await old.claim(r), null, 'the old holder cannot claim');
    await assert.rejects(old.update({ ...r, sent_parts: 1 }), FencedError);
    await assert.rejects(old.remove(r), FencedError);
    await assert.rejects(old.bury(r), FencedError);
    await assert.rejects(old.recordOutcomes([{ id: r.id, user: 'erin', status: 'delivered', at: new Date().toISOString() }]), FencedError);
    await assert.rejects(old.takeRequeued(), FencedError);
    const still = await current.pending();
    assert.deepEqual(still.map((x) => [x.id, x.sent_parts]), [[r.id, 0]], 'nothing the old holder did changed the record');
    assert.equal((await current.outcomesOf(new Set([r.id]))).size, 0);

    assert.ok((await current.claim(r)) !== null);
    await current.remove(r);
    assert.deepEqual(await current.pending(), []);
    await old.close();
    await current.close();
  });

  void it('a lease about to run out grants no claim (a holder must be able to send before anyone could take over)', async () => {
    const db = await openDatabase(await pg.createDatabase());
    dbs.push(db);
    const lease = new TestLease(db, 'leader');
    await lease.take();
    const holder = new PgOutbox(db.sql, lease.fence, { claimMarginMs: 2000 });
    await holder.open();
    const r = record('frank', 'late');
    await holder.add(r);
    await holder.takeRequeued();
    const until = await holder.claim(r);
    assert.ok(until !== null && until > Date.now() && until <= Date.now() + 2000);
    await db.sql`UPDATE leases SET expires_at = now() + interval '1 second'`;
    assert.equal(await holder.claim(r), 0, 'not now (still held: ask again after the renewal)');
    await db.sql`UPDATE leases SET expires_at = now() - interval '1 second'`;
    assert.equal(await holder.claim(r), null, 'run out: fenced');
    await holder.close();
  });
});
