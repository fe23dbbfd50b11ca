#!/usr/bin/env node
// Second half of `npm run build`: copies the files the programs read at run time (the
// dashboard's scripts, stylesheets and icon) next to the compiled code, so an installed
// package needs the build output only, never src/.
import { cpSync, rmSync } from 'node:fs';

const root = new URL('..', import.meta.url);

/** Source folder -> folder in the build output, both relative to the checkout. */
const ASSETS = [['src/web/static/', 'dist/src/web/static/']];

for (const [from, to] of ASSETS) {
  const dest = new URL(to, root);
  // Replaced as a whole: a file removed from the sources leaves the build output too.
  rmSync(dest, { recursive: true, force: true });
  cpSync(new URL(from, root), dest, { recursive: true });
}
