#!/usr/bin/env node
// Thin launcher: the program lives in the compiled TypeScript (npm ci builds it).
import { launch } from '../dist/src/shared/launch.js';

await launch('notify', () => import('../dist/src/notify/main.js'));
