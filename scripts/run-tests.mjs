#!/usr/bin/env node
// Runs the compiled test files with Node's test runner.
// Usage: node scripts/run-tests.mjs [substring ...]  (only files whose path contains one of them)
import { readdirSync, statSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const testDir = join(root, 'dist', 'test');

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = find(testDir)
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('No test files found under dist/test (did the build run?)');
  process.exit(1);
}
mkdirSync(join(root, 'test-artifacts'), { recursive: true });
const concurrency = process.env.NOTIFY_TEST_CONCURRENCY ?? '2';
// Under CI every test must run: a test skipped for a missing tool is a missing install step.
const strict = process.env.CI === 'true' || process.env.CI === '1';
// The timeout bounds a hang, not a speed: a test file (deploy's runs install.sh many times)
// took 255 s on a 2-core host loaded to 16, so a file gets ten minutes.
const child = spawn(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-reporter=tap', `--test-concurrency=${concurrency}`, '--test-timeout=600000', ...files],
  { stdio: ['ignore', 'pipe', 'inherit'], cwd: root, env: { ...process.env, NOTIFY_PROJECT_ROOT: root } },
);
let tail = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString('utf8')).slice(-4000);
});
child.on('close', (code) => {
  const skipped = Number(/^# skipped (\d+)$/m.exec(tail)?.[1] ?? '0');
  if (code === 0 && strict && skipped > 0) {
    console.error(`\n${skipped} test(s) were skipped; under CI every test must run (see the "# SKIP" lines above for what is missing).`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});
