/**
 * One contract for the shared state, run against both homes it can have: the data files
 * (the default) and a real PostgreSQL. The same stores (links, codes, rules) behave the
 * same on either; concurrent writers lose no update; an unreadable document is an error
 * that changes nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { AlertRulesStore } from '../src/shared/alertRules.js';
import { type SharedDocument, sharedDocument } from '../src/shared/documents.js';
import { CorruptFileError } from '../src/shared/jsonFile.js';
import { LinkStore, VerifyError } from '../src/shared/linking.js';
import { openSharedState, type SharedState } from '../src/shared/sharedState.js';
import { postgresUnavailable, TestPostgres } from './support/postgres.js';

const CounterSchema = z.record(z.string(), z.number());

/** A fresh place for shared state: a data directory, bound to a fresh database or not. */
interface Home {
  dataDir: string;
  state: SharedState;
  /** Makes the named document unreadable (bypassing the stores). */
  corrupt(name: string, text: string): Promise<void>;
  /** The document's raw text, to show it was left untouched. */
  raw(name: string): Promise<string | null>;
  /** Another data directory on the same shared state, through its own connections (a second replica). */
  twin(): Promise<string>;
}

const dirs: string[] = [];
const states: SharedState[] = [];
after(async () => {
  for (const s of states) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'notify-contract-'));
  dirs.push(d);
  return d;
}

let pg: TestPostgres | null = null;
const skip = postgresUnavailable();

const backends: Array<{ name: string; home: () => Promise<Home>; skip: string | false }> = [
  {
    name: 'the data files',
    skip: false,
    home: async () => {
      const { readFile, writeFile } = await import('node:fs/promises');
      const dataDir = freshDir();
      const state = await openSharedState(dataDir, undefined);
      return {
        dataDir,
        state,
        corrupt: (name, text) => writeFile(join(dataDir, name), text),
        raw: async (name) => readFile(join(dataDir, name), 'utf8').catch(() => null),
        twin: async () => Promise.resolve(dataDir),
      };
    },
  },
  {
    name: 'PostgreSQL',
    skip: skip ?? false,
    home: async () => {
      const dataDir = freshDir();
      const url = await pg!.createDatabase();
      const state = await openSharedState(dataDir, url);
      states.push(state);
      const sql = state.database!.sql;
      return {
        dataDir,
        state,
        corrupt: async (name, text) => {
          await sql`INSERT INTO documents (name, body) VALUES (${name}, ${text}) ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body`;
        },
        raw: (name) => state.documents!.rawBody(name),
        twin: async () => {
          const other = freshDir();
          states.push(await openSharedState(other, url));
          return other;
        },
      };
    },
  },
];

before(async () => {
  if (!skip) pg = await TestPostgres.start();
});
after(async () => {
  await pg?.cleanup();
});

for (const backend of backends) {
  void describe(`shared state on ${backend.name}`, { skip: backend.skip }, () => {
    void it('a document nobody wrote reads as empty, and an update that returns no value changes nothing', async () => {
      const h = await backend.home();
      const doc = sharedDocument(h.dataDir, 'counters.json', CounterSchema, () => ({}));
      assert.deepEqual(await doc.read(), {});
      assert.equal(await doc.update(() => ({ result: 'left alone' })), 'left alone');
      assert.equal(await h.raw('counters.json'), null, 'nothing was written');
      await doc.update((c) => ({ next: { ...c, a: 1 }, result: undefined }));
      assert.deepEqual(await doc.read(), { a: 1 });
    });

    void it('sixty concurrent increments from two replicas lose no update', async () => {
      const h = await backend.home();
      const docs: Array<SharedDocument<Record<string, number>>> = [
        sharedDocument(h.dataDir, 'counters.json', CounterSchema, () => ({})),
        sharedDocument(await h.twin(), 'counters.json', CounterSchema, () => ({})),
      ];
      await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          docs[i % 2]!.update((c) => ({ next: { ...c, n: (c.n ?? 0) + 1, [`w${i % 2}`]: (c[`w${i % 2}`] ?? 0) + 1 }, result: undefined })),
        ),
      );
      assert.deepEqual(await docs[0]!.read(), { n: 60, w0: 30, w1: 30 });
    });

    void it('an unreadable document is an error that leaves it untouched', async () => {
      const h = await backend.home();
      const bad = '{"alice": {"chat_id": 1,,,';
      await h.corrupt('telegram_users.json', bad);
      const links = new LinkStore(h.dataDir);
      await assert.rejects(links.linkChat('bob', 2), CorruptFileError);
      await assert.rejects(links.linkOf('alice'), (err: Error) => err instanceof CorruptFileError && /left untouched/.test(err.message));
      assert.equal(await h.raw('telegram_users.json'), bad);
    });

    void it('a code is single use, links its chat, and a relinked chat leaves its old account', async () => {
      const h = await backend.home();
      let now = 1_800_000_000_000;
      const links = new LinkStore(h.dataDir, { now: () => now });
      const code = await links.issueCode(77);
      assert.match(code, /^\d{6}$/);
      const link = await links.verifyCode('alice', code);
      assert.equal(link.chat_id, 77);
      assert.equal((await links.linkOf('alice'))?.chat_id, 77);
      await assert.rejects(links.verifyCode('mallory', code), (e: Error) => e instanceof VerifyError && e.reason === 'invalid');
      const again = await links.issueCode(77);
      await links.verifyCode('bob', again);
      assert.equal(await links.linkOf('alice'), null, 'the chat now speaks for bob alone');
      assert.equal(await links.userOfChat(77), 'bob');
      const late = await links.issueCode(88);
      now += 600_000;
      await assert.rejects(links.verifyCode('carol', late), (e: Error) => e instanceof VerifyError && e.reason === 'expired');
      assert.equal(await links.unlink('bob'), true);
      assert.equal(await links.unlink('bob'), false);
    });

    void it('twenty analysts verifying at once are all linked (nested updates take no extra connection)', async () => {
      const h = await backend.home();
      const links = new LinkStore(h.dataDir);
      const dashboard = new LinkStore(await h.twin());
      const codes = await Promise.all(Array.from({ length: 20 }, (_, i) => links.issueCode(1000 + i)));
      await Promise.all(codes.map((c, i) => dashboard.verifyCode(`user${i}`, c)));
      for (let i = 0; i < 20; i += 1) assert.equal((await links.linkOf(`user${i}`))?.chat_id, 1000 + i);
    });

    void it('alert rules (mutes) are kept per analyst', async () => {
      const h = await backend.home();
      const rules = new AlertRulesStore(h.dataDir, { now: () => 1_800_000_000_000 });
      await rules.change('alice', (r) => {
        r.muted_until = new Date(1_800_003_600_000).toISOString();
      });
      assert.equal((await rules.forUser('alice')).muted_until, new Date(1_800_003_600_000).toISOString());
      assert.equal((await rules.forUser('bob')).muted_until, undefined);
    });
  });
}
