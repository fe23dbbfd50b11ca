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

/**
 * grammY talks HTTP through node-fetch 2, which requires whatwg-url (and with it tr46's
 * Unicode tables, about 2.5 MB of the bot's heap) only as a fallback for runtimes without
 * `URL` in `node:url`: on Node it always takes Node's own. The bundle gets that one export.
 */
const nodeUrl = {
  name: 'node-url-for-whatwg-url',
  setup(b) {
    b.onResolve({ filter: /^whatwg-url$/ }, () => ({ path: 'whatwg-url', namespace: 'node-url' }));
    b.onLoad({ filter: /.*/, namespace: 'node-url' }, () => ({ contents: "module.exports = { URL: require('node:url').URL };", loader: 'js' }));
  },
};

/**
 * zod's error messages in its forty-odd other languages: every program speaks English
 * (zod's default, which stays), none selects another, and they were more than half of the
 * zod the commands compile at every start (about 0.02 s of CPU of each start on Node 20).
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => ({
      contents: 'export { default as en } from "./en.js";',
      loader: 'js',
      resolveDir: args.path.replace(/[\\/]index\.js$/, ''),
    }));
  },
};

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
  // Native modules, and what Fastify requires only on demand and the bot never asks for
  // (ajv and fast-json-stringify: the servers' schemaController brings zod's compiler;
  // light-my-request: inject() is for tests): loaded from node_modules if ever required.
  external: ['koffi', '@resvg/resvg-js', '@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler', 'light-my-request'],
  // The CommonJS packages inside (Fastify, grammY, pino) require Node's own modules.
  banner: { js: "import { createRequire as __notifyCreateRequire } from 'node:module'; const require = __notifyCreateRequire(import.meta.url);" },
  plugins: [nodeUrl, zodEnglishOnly],
  logLevel: 'warning',
});
