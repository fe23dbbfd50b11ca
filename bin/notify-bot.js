#!/usr/bin/env node
// Thin launcher: the program lives in the compiled TypeScript (npm ci builds it).
import { launch } from '../dist/src/shared/launch.js';

await launch('notify-bot', () => import('../dist/src/bot/main.js'));
