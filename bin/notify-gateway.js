#!/usr/bin/env node
// Thin launcher: the program lives in the compiled TypeScript (npm ci builds it).
import { launch } from '../dist/src/shared/launch.js';

await launch('notify-gateway', () => import('../dist/src/gateway/main.js'));
