#!/usr/bin/env node
// Thin launcher: the program lives in the compiled TypeScript (npm ci builds it).
import { main } from '../dist/src/notify/main.js';

await main(process.argv.slice(2));
