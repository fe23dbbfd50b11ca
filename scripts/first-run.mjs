#!/usr/bin/env node
// `npm start`: the whole stack on this machine for a first try (see docs/first-run.md).
// `node scripts/first-run.mjs notify [notify-runner options]`: run the demo scripts.
// The logic is src/dev/firstRun.ts, compiled into dist/ by `npm ci` (or `npm run build`).
import { existsSync } from 'node:fs';

const main = new URL('../dist/src/dev/firstRun.js', import.meta.url);
if (!existsSync(main)) {
  console.error('first-run: dist/ is missing: run `npm ci` (or `npm run build`) first.');
  process.exit(1);
}
await import(main.href);
