/**
 * notify-runner and notify-scripts keep their compiled code in the user's own cache
 * directory where Node has a module compile cache (22.1 and later), never in a directory
 * others may write, and answer the same with the cache as without it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import nodeModule from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PROJECT_ROOT } from './support/botHarness.js';

const HAS_CACHE = typeof (nodeModule as { enableCompileCache?: unknown }).enableCompileCache === 'function';
const dir = mkdtempSync(join(tmpdir(), 'notify-compile-cache-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs bin/<program>.js with HOME (and more) set and no compile cache setting of the caller's. */
function run(program: string, args: string[], env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(NODE_COMPILE_CACHE|NODE_DISABLE_COMPILE_CACHE|XDG_CACHE_HOME|NOTIFY_)/.test(k)));
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', `${program}.js`), ...args], { encoding: 'utf8', env: { ...base, ...env }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Files under `d`, recursively (none when it does not exist). */
function filesUnder(d: string): string[] {
  if (!existsSync(d)) return [];
  return readdirSync(d, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

void test(`notify-scripts and notify-runner compile into ~/.cache/notify-engine (Node ${process.version}: ${HAS_CACHE ? 'has' : 'has no'} compile cache), and answer the same from it`, () => {
  const home = join(dir, 'home');
  mkdirSync(join(home, 'user', 'notifications'), { recursive: true, mode: 0o700 });
  const cache = join(home, '.cache', 'notify-engine');
  const first = { scripts: run('notify-scripts', ['--help'], { HOME: home }), runner: run('notify-runner', ['--help'], { HOME: home }) };
  const list = run('notify-scripts', ['list'], { HOME: home });
  assert.equal(list.status, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout), []);
  if (HAS_CACHE) {
    assert.ok(filesUnder(cache).length > 0, `compiled code kept in ${cache}`);
    assert.equal(statSync(cache).mode & 0o777, 0o700, 'the cache is the user\'s alone');
  } else {
    assert.equal(existsSync(join(home, '.cache')), false, 'nothing is made where Node has no compile cache');
  }
  // Started again, from the cache where there is one: the same answers.
  for (const [program, before] of Object.entries(first)) {
    const again = run(program === 'scripts' ? 'notify-scripts' : 'notify-runner', ['--help'], { HOME: home });
    assert.equal(before.status, 0, before.stderr);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout, before.stdout, `notify-${program} --help is the same from the cache`);
    assert.equal(again.stderr, '', `notify-${program} --help writes nothing on standard error`);
  }
});

void test('a cache directory that others may write is not used', () => {
  const home = join(dir, 'home2');
  mkdirSync(home, { mode: 0o700 });
  const shared = join(dir, 'shared-cache');
  mkdirSync(shared);
  chmodSync(shared, 0o777);
  const r = run('notify-scripts', ['list'], { HOME: home, XDG_CACHE_HOME: shared });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(filesUnder(shared), [], 'no compiled code in a directory others may write');
  assert.equal(existsSync(join(home, '.cache')), false, 'nor in the home instead');
});
