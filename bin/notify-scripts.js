#!/usr/bin/env node
// Thin launcher: the program lives in the compiled TypeScript, bundled (npm ci builds it;
// scripts/bundle.mjs says why).
import { launch } from '../dist/src/shared/launch.js';

await launch('notify-scripts', () => import('../dist/src/bundle/notify-scripts.js'), { compileCache: true });
