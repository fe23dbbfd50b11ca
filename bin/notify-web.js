#!/usr/bin/env node
// Thin launcher: the program lives in the compiled TypeScript (npm ci builds it).
import { main } from '../dist/src/web/main.js';

await main(process.argv.slice(2));
