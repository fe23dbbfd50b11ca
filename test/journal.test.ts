/**
 * Priorities in the journal: under systemd (JOURNAL_STREAM naming the stream) every log
 * line carries its level as a syslog prefix and every line on standard error is "err";
 * anywhere else the output is left exactly as it was. A program that cannot start says
 * why in one line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { prefixForLogLine, withPriority } from '../src/shared/journal.js';

const ROOT = process.env.NOTIFY_PROJECT_ROOT ?? fileURLToPath(new URL('../../', import.meta.url));
const SHARED = join(ROOT, 'dist', 'src', 'shared');

/**
 * Runs `body` (an ES module's text) in a child whose JOURNAL_STREAM names its own
 * standard output or error, as systemd sets it, or names nothing.
 */
function child(body: string, journal: 'stdout' | 'stderr' | 'none'): { status: number | null; stdout: string; stderr: string } {
  const setup =
    journal === 'none'
      ? 'process.env.JOURNAL_STREAM = "1:1";'
      : `import { fstatSync } from 'node:fs'; const st = fstatSync(${journal === 'stdout' ? 1 : 2}, { bigint: true }); process.env.JOURNAL_STREAM = st.dev + ':' + st.ino;`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `${setup}\n${body}`], { encoding: 'utf8', cwd: SHARED, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const LOG = `const { createLogger } = await import('${join(SHARED, 'logger.js')}');
const log = createLogger({ name: 'demo', level: 'debug' });
log.debug('detail'); log.info('hello'); log.warn('careful'); log.error('broken'); log.fatal('gone');
log.flush();`;

void test('log lines reach the journal at their level: debug 7, info 6, warn 4, error 3, fatal 2', () => {
  const r = child(LOG, 'stdout');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.deepEqual(
    lines.map((l) => l.slice(0, 3)),
    ['<7>', '<6>', '<4>', '<3>', '<2>'],
    r.stdout,
  );
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line.slice(3)), `not JSON after the prefix: ${line}`);
});

void test('outside the journal the log lines are plain JSON, without a prefix', () => {
  const r = child(LOG, 'none');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 5, r.stdout);
  for (const line of lines) assert.equal(line[0], '{', `prefixed outside the journal: ${line}`);
});

void test('a program that cannot load says why in one line, at priority err under systemd', () => {
  const body = `const { launch } = await import('${join(SHARED, 'launch.js')}');
await launch('notify-demo', async () => { throw new Error("Cannot find module '/opt/notify/dist/src/demo/main.js'\\nRequire stack: ..."); });`;
  const journal = child(body, 'stderr');
  assert.equal(journal.status, 1);
  assert.equal(
    journal.stderr,
    "<3>notify-demo: cannot start: Cannot find module '/opt/notify/dist/src/demo/main.js' (is the package complete? reinstall it with deploy/install.sh)\n",
  );
  const plain = child(body, 'none');
  assert.equal(plain.status, 1);
  assert.match(plain.stderr, /^notify-demo: cannot start: Cannot find module/);
});

void test('a program whose start fails says why first, then the trace, every line at priority err', () => {
  const body = `const { launch } = await import('${join(SHARED, 'launch.js')}');
await launch('notify-demo', async () => ({ main: async () => { throw new Error("ENOENT: no such file or directory, open '/opt/notify/x.js'"); } }));`;
  const r = child(body, 'stderr');
  assert.equal(r.status, 1);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines[0], "<3>notify-demo: cannot start: ENOENT: no such file or directory, open '/opt/notify/x.js'");
  assert.ok(lines.length > 2, `no trace after the reason:\n${r.stderr}`);
  for (const line of lines) assert.match(line, /^<3>/, `a line on standard error below priority err:\n${r.stderr}`);
});

void test('a crash after the start is one clear line before the trace, and the exit status is 1', () => {
  const body = `const { launch } = await import('${join(SHARED, 'launch.js')}');
await launch('notify-demo', async () => ({ main: async () => { setTimeout(() => { throw new TypeError('x is not a function'); }, 10); } }));`;
  const r = child(body, 'none');
  assert.equal(r.status, 1);
  assert.equal(r.stderr.split('\n')[0], 'notify-demo: stopped on an unexpected error: x is not a function');
});

void test('the prefix follows the level pino writes first, and every line of a text gets one', () => {
  assert.equal(prefixForLogLine('{"level":40,"msg":"x"}'), '<4>');
  assert.equal(prefixForLogLine('not json'), '<6>');
  assert.equal(withPriority('a\nb\n', 3), '<3>a\n<3>b\n');
});
