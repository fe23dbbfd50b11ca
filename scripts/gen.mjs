#!/usr/bin/env node
// Rewrites the text generated from the settings registry (src/shared/settings.ts): the
// README's configuration tables and the env template's tunables block. Run through
// `npm run gen`, which builds first; test/settings.test.ts fails while the files are stale.
import { readFileSync, writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const { generatedRegions, withRegion } = await import(new URL('dist/src/shared/settingsDocs.js', root).href);
for (const region of generatedRegions()) {
  const url = new URL(region.file, root);
  const before = readFileSync(url, 'utf8');
  const after = withRegion(before, region);
  if (after !== before) {
    writeFileSync(url, after);
    console.log(`updated ${region.file}`);
  } else console.log(`${region.file} is up to date`);
}
