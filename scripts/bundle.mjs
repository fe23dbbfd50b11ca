#!/usr/bin/env node
// Last step of `npm run build`: the two commands started thousands of times a day
// (notify-runner from every analyst's crontab, notify-scripts on every Run button and
// dashboard refresh) as one minified file each, with what only some commands need in
// chunks loaded on demand. Loading one file costs Node far less than resolving and
// compiling the hundreds of modules behind it (zod alone is about a hundred), so their
// start-up stays close to bare `node`. Bundled from the compiled output, so the bundle
// runs exactly the code the tests run; the launchers in bin/ load it.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const outdir = `${root}dist/src/bundle`;

rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { 'notify-runner': 'dist/src/runner/main.js', 'notify-scripts': 'dist/src/scripts/main.js', 'notify-bot': 'dist/src/bot/main.js' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  // Error names and messages stay those of the sources.
  keepNames: true,
  sourcemap: true,
  // A native module: loaded from node_modules as it is.
  external: ['koffi', '@resvg/resvg-js'],
  // The CommonJS packages inside (Fastify, grammY, pino) require Node's own modules.
  banner: { js: "import { createRequire as __notifyCreateRequire } from 'node:module'; const require = __notifyCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
