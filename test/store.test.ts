/**
 * The shared data files behind the link store: concurrent writers in separate processes
 * lose no update, an unreadable file is an error that leaves it untouched, and codes are
 * six digits, single use, replaced by a new /start and expired after 600 s.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CorruptFileError } from '../src/shared/jsonFile.js';
import { LinkStore, VerifyError } from '../src/shared/linking.js';

const dirs: string[] = [];
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'notify-store-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const linkingModule = pathToFileURL(new URL('../src/shared/linking.js', import.meta.url).pathname).href;

/** A child process that links prefix0..prefix(n-1), then unlinks the odd ones. */
function writer(dir: string, prefix: string, n: number, chatBase: number): Promise<number | null> {
  const code = `
    const { LinkStore } = await import(${JSON.stringify(linkingModule)});
    const s = new LinkStore(${JSON.stringify(dir)});
    for (let i = 0; i < ${n}; i++) {
      await s.linkChat('${prefix}' + i, ${chatBase} + i);
      if (i % 2 === 1) await s.unlink('${prefix}' + i);
    }`;
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('exit', resolve);
  });
}

void describe('the link store', () => {
  void it('two processes linking and unlinking 200 users each at once lose no update', async () => {
    const dir = dataDir();
    const codes = await Promise.all([writer(dir, 'alpha', 200, 1_000_000), writer(dir, 'beta', 200, 2_000_000)]);
    assert.deepEqual(codes, [0, 0]);
    const users = JSON.parse(readFileSync(join(dir, 'telegram_users.json'), 'utf8')) as Record<string, { chat_id: number; linked_at: string }>;
    const expected = ['alpha', 'beta'].flatMap((p) => Array.from({ length: 100 }, (_, k) => `${p}${k * 2}`)).sort();
    assert.deepEqual(Object.keys(users).sort(), expected, 'exactly the even users of both writers remain');
    assert.equal(users.alpha10?.chat_id, 1_000_010);
    assert.match(users.beta4?.linked_at ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(statSync(join(dir, 'telegram_users.json')).mode & 0o777, 0o660);
    assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'no temporary file left behind');
  });

  void it('reads what another process wrote, whether it replaced the file or edited it in place, and hands out copies', async () => {
    const dir = dataDir();
    const path = join(dir, 'telegram_users.json');
    const store = new LinkStore(dir);
    assert.equal(await store.linkOf('alice'), null, 'no file yet: nobody is linked');
    await store.linkChat('alice', 1);
    // Many lookups at once share their look at the file, and each gets its own copy.
    const links = await Promise.all(Array.from({ length: 50 }, () => store.linkOf('alice')));
    assert.ok(links.every((l) => l?.chat_id === 1));
    links[0]!.chat_id = 99;
    assert.equal((await store.linkOf('alice'))?.chat_id, 1, 'changing a copy changes nothing');

    // Another writer replaces the file (a new inode), as every writer here does.
    writeFileSync(`${path}.new`, JSON.stringify({ alice: { chat_id: 2, linked_at: '2026-01-01T00:00:00Z' } }));
    renameSync(`${path}.new`, path);
    assert.equal((await store.linkOf('alice'))?.chat_id, 2);
    // An operator edits it in place: same inode, same size, a new mtime.
    writeFileSync(path, JSON.stringify({ alice: { chat_id: 3, linked_at: '2026-01-01T00:00:00Z' } }));
    assert.equal((await store.linkOf('alice'))?.chat_id, 3);
    rmSync(path);
    assert.equal(await store.linkOf('alice'), null, 'a removed file is an empty one');
    // A write in this process is seen by the next read, even one that follows at once.
    await store.linkChat('bob', 4);
    assert.equal((await store.linkOf('bob'))?.chat_id, 4);
  });

  void it('leaves a corrupt telegram_users.json untouched and fails with a clear error', async () => {
    const dir = dataDir();
    const path = join(dir, 'telegram_users.json');
    const corrupt = '{"alice": {"chat_id": 1, "linked_at": "2026-01-01T00:00:00Z"},,,';
    writeFileSync(path, corrupt);
    const store = new LinkStore(dir);
    await assert.rejects(store.linkChat('bob', 2), (err: unknown) => err instanceof CorruptFileError && err.message.includes(path) && /not valid JSON/.test(err.message));
    await assert.rejects(store.unlink('alice'), CorruptFileError);
    await assert.rejects(store.linkOf('alice'), CorruptFileError);
    assert.equal(readFileSync(path, 'utf8'), corrupt, 'the file is exactly as it was');

    writeFileSync(path, '{"alice": {"chat_id": "not a number"}}');
    await assert.rejects(store.linkChat('bob', 2), (err: unknown) => err instanceof CorruptFileError && /alice\.chat_id/.test(err.message));
    assert.equal(readFileSync(path, 'utf8'), '{"alice": {"chat_id": "not a number"}}');
  });

  void it('leaves a corrupt pending_codes.json untouched: /start fails instead of wiping it', async () => {
    const dir = dataDir();
    const path = join(dir, 'pending_codes.json');
    writeFileSync(path, '[1, 2');
    await assert.rejects(new LinkStore(dir).issueCode(5), CorruptFileError);
    assert.equal(readFileSync(path, 'utf8'), '[1, 2');
  });

  void it('issues six-digit codes; a new one replaces the chat\'s earlier code; expired ones are pruned', async () => {
    const dir = dataDir();
    let now = Date.UTC(2026, 0, 1);
    const store = new LinkStore(dir, { now: () => now });
    const first = await store.issueCode(11);
    assert.match(first, /^\d{6}$/);
    const other = await store.issueCode(12);
    const second = await store.issueCode(11);
    let codes = JSON.parse(readFileSync(join(dir, 'pending_codes.json'), 'utf8')) as Record<string, { chat_id: number; created_at: number }>;
    assert.deepEqual(Object.keys(codes).sort(), [other, second].sort());
    assert.equal(codes[second]?.created_at, Math.floor(now / 1000));
    now += 601_000;
    await store.issueCode(13);
    codes = JSON.parse(readFileSync(join(dir, 'pending_codes.json'), 'utf8')) as Record<string, { chat_id: number; created_at: number }>;
    assert.deepEqual(Object.values(codes).map((c) => c.chat_id), [13], 'the expired codes were pruned');
  });

  void it('verifies a code once; refuses a used, expired, malformed or missing one', async () => {
    const dir = dataDir();
    let now = Date.UTC(2026, 0, 1);
    const store = new LinkStore(dir, { now: () => now });
    const code = await store.issueCode(21);
    const link = await store.verifyCode('carol', ` ${code} `);
    assert.equal(link.chat_id, 21);
    assert.equal((await store.linkOf('carol'))?.chat_id, 21);
    await assert.rejects(store.verifyCode('dave', code), (e: unknown) => e instanceof VerifyError && e.reason === 'invalid');

    const late = await store.issueCode(22);
    now += 600_000;
    await assert.rejects(store.verifyCode('erin', late), (e: unknown) => e instanceof VerifyError && e.reason === 'expired');
    await assert.rejects(store.verifyCode('erin', 'abc123'), (e: unknown) => e instanceof VerifyError && e.reason === 'invalid');
    await assert.rejects(store.verifyCode('erin', ''), (e: unknown) => e instanceof VerifyError && e.reason === 'missing');
    assert.equal(await store.linkOf('erin'), null);
  });
});
