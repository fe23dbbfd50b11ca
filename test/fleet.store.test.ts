/**
 * The shared state on a real PostgreSQL, driven from outside: replicas migrating at once,
 * `notify-bot import-files` / `export-files`, a first replica refusing to start empty
 * beside unimported files, a bot process sending through links kept in the database, 503
 * with Retry-After while the database is down and service back by itself after, and the
 * URL's password in no output.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { migrate, openDatabase, parseDatabaseUrl, redactDatabaseUrl } from '../src/shared/db/database.js';
import { MIGRATIONS } from '../src/shared/db/migrations.js';
import { LinkStore } from '../src/shared/linking.js';
import { openSharedState, UnimportedFilesError, type SharedState } from '../src/shared/sharedState.js';
import { BotHarness } from './support/botHarness.js';
import { postgresUnavailable, TestPostgres } from './support/postgres.js';

const skip = postgresUnavailable();
let pg: TestPostgres;
const dirs: string[] = [];
function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'notify-fleet-store-'));
  dirs.push(d);
  return d;
}
/** The URL with a password in it (the test server trusts local connections and ignores it). */
function withPassword(url: string, password: string): string {
  return url.replace('postgres://postgres@', `postgres://postgres:${password}@`);
}

before(async () => {
  if (!skip) pg = await TestPostgres.start();
});
after(async () => {
  if (!skip) await pg.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

void describe('database URLs', () => {
  void it('reads the libpq forms, socket directories included, and hides the password', () => {
    assert.deepEqual(parseDatabaseUrl('postgres://notify@/notify?host=/run/postgresql'), { user: 'notify', password: undefined, host: '/run/postgresql', port: undefined, database: 'notify', params: {} });
    assert.deepEqual(parseDatabaseUrl('postgresql://a:p%40ss@db.example:6432/x?sslmode=require'), { user: 'a', password: 'p@ss', host: 'db.example', port: 6432, database: 'x', params: { sslmode: 'require' } });
    assert.equal(parseDatabaseUrl('postgres://u@%2Fvar%2Frun%2Fpg/db')?.host, '/var/run/pg');
    assert.equal(parseDatabaseUrl('mysql://u@h/db'), null);
    const shown = redactDatabaseUrl('postgres://notify:hunter2secret@db.example/notify');
    assert.doesNotMatch(shown, /hunter2secret/);
    assert.match(shown, /notify:\*\*\*@db\.example/);
  });
});

void describe('the shared state on PostgreSQL', { skip: skip ?? false }, () => {
  void it('three replicas starting at once on an empty database apply each migration once', async () => {
    const url = await pg.createDatabase();
    const dbs = await Promise.all([openDatabase(url), openDatabase(url), openDatabase(url)]);
    try {
      const rows = await dbs[0].sql<{ version: number }[]>`SELECT version FROM schema_migrations ORDER BY version`;
      assert.deepEqual(rows.map((r) => r.version), MIGRATIONS.map((m) => m.version));
      assert.deepEqual(await migrate(dbs[1].sql), [], 'a later start finds nothing to do');
    } finally {
      await Promise.all(dbs.map((d) => d.close()));
    }
  });

  void it('import-files copies the data files in, a second run changes nothing, export-files writes them back', async () => {
    const url = withPassword(await pg.createDatabase(), 'importsecret42');
    const h = await BotHarness.start({ users: ['alice', 'bob'], start: false, env: { NOTIFY_DATABASE_URL: url } });
    try {
      writeFileSync(join(h.dataDir, 'pending_codes.json'), JSON.stringify({ '123456': { chat_id: 5, created_at: 1_800_000_000 } }));
      const first = await h.cli(['import-files']);
      assert.equal(first.status, 0, first.stderr);
      assert.match(first.stdout, /imported +telegram_users\.json \(2 entries\)/);
      assert.match(first.stdout, /2 of 2 file\(s\) imported/);
      const rows = async (): Promise<string> => {
        const db = await openDatabase(url);
        try {
          return JSON.stringify(await db.sql`SELECT name, body, version, updated_at FROM documents ORDER BY name`);
        } finally {
          await db.close();
        }
      };
      const afterFirst = await rows();
      const second = await h.cli(['import-files']);
      assert.equal(second.status, 0, second.stderr);
      assert.match(second.stdout, /0 of 2 file\(s\) imported .*already held/);
      assert.equal(await rows(), afterFirst, 'the second run changed no row (not even its version or time)');
      for (const out of [first, second]) assert.doesNotMatch(out.stdout + out.stderr, /importsecret42/, 'the password is never printed');

      const replica = freshDir();
      const state = await openSharedState(replica, url);
      try {
        assert.equal((await new LinkStore(replica).linkOf('bob'))?.chat_id, 100_002);
      } finally {
        await state.close();
      }

      const out = freshDir();
      const exported = await h.cli(['export-files'], undefined, { NOTIFY_DATA_DIR: out });
      assert.equal(exported.status, 0, exported.stderr);
      assert.deepEqual(JSON.parse(readFileSync(join(out, 'telegram_users.json'), 'utf8')), JSON.parse(readFileSync(join(h.dataDir, 'telegram_users.json'), 'utf8')));
      assert.deepEqual(JSON.parse(readFileSync(join(out, 'pending_codes.json'), 'utf8')), { '123456': { chat_id: 5, created_at: 1_800_000_000 } });
    } finally {
      await h.cleanup();
    }
  });

  void it('a corrupt data file is refused by import-files and nothing is imported', async () => {
    const url = await pg.createDatabase();
    const h = await BotHarness.start({ users: ['alice'], start: false, env: { NOTIFY_DATABASE_URL: url } });
    try {
      writeFileSync(join(h.dataDir, 'pending_codes.json'), '{"12345');
      const res = await h.cli(['import-files']);
      assert.equal(res.status, 1);
      assert.match(res.stderr, /pending_codes\.json is unreadable/);
      const state = await openSharedState(freshDir(), url, { refuseUnimported: false });
      try {
        assert.equal(await state.documents!.rawBody('telegram_users.json'), null, 'not even the good file went in');
      } finally {
        await state.close();
      }
    } finally {
      await h.cleanup();
    }
  });

  void it('the first replica on an empty database beside data files says so and does not start', async () => {
    const url = await pg.createDatabase();
    const h = await BotHarness.start({ users: ['alice'], start: false, env: { NOTIFY_DATABASE_URL: url } });
    try {
      await assert.rejects(h.startBot(), /run `notify-bot import-files`/);
      await assert.rejects(openSharedState(h.dataDir, url), UnimportedFilesError);
      assert.equal((await h.cli(['import-files'])).status, 0);
      await h.startBot();
    } finally {
      await h.cleanup();
    }
  });

  void it('a bot on the database delivers through links kept there; while the database is down sends get 503 with Retry-After and nothing is queued; it recovers by itself', async () => {
    const url = withPassword(await pg.createDatabase(), 'botsecret9000');
    const h = await BotHarness.start({ users: [], start: false, env: { NOTIFY_DATABASE_URL: url, NOTIFY_INSTANCE: 'host-a' } });
    const state: SharedState = await openSharedState(h.dataDir, url);
    try {
      await new LinkStore(h.dataDir).linkChat('alice', 4242);
      h.fake.registerChat(4242, { first_name: 'alice' });
      assert.equal(existsSync(join(h.dataDir, 'telegram_users.json')), false, 'the link is in the database, not a file');
      await h.startBot();
      const health = await h.health();
      assert.deepEqual({ ...(health.body as Record<string, unknown>) }, { ...(health.body as Record<string, unknown>), status: 'ok', role: 'leader', instance: 'host-a', store: 'postgres' });

      const ok = await h.client.send({ user: 'alice', text: 'before the outage' }, { waitSeconds: 10 });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      await h.fake.waitForMessages(4242, 1, 60_000);

      await pg.stopServer();
      const down = await h.client.send({ user: 'alice', text: 'during the outage' }, 'respond-async');
      assert.equal(down.status, 503, JSON.stringify(down.body));
      assert.ok(Number(down.headers['retry-after']) >= 1, 'Retry-After is set');
      assert.match((down.body as { error: string }).error, /database is unreachable/);
      assert.deepEqual(h.queuedIds(), [], 'nothing half-stored');

      await pg.startServer();
      let back = down;
      for (let i = 0; i < 100 && back.status !== 202; i += 1) {
        back = await h.client.send({ user: 'alice', text: 'after the outage' }, 'respond-async');
        if (back.status !== 202) await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(back.status, 202, JSON.stringify(back.body));
      const msgs = await h.fake.waitForMessages(4242, 2, 60_000);
      assert.deepEqual(msgs.map((m) => m.text), ['before the outage', 'after the outage']);
      const everything = JSON.stringify(h.logs) + h.otherOutput.join('\n') + readFileSync(join(h.dataDir, 'bot.log'), 'utf8');
      assert.doesNotMatch(everything, /botsecret9000/, 'the password reached no log');
    } finally {
      await state.close();
      await h.cleanup();
    }
  });
});

