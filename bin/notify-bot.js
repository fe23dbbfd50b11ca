#!/usr/bin/env -S node --max-semi-space-size=1
// Thin launcher: the program lives in the compiled TypeScript (npm ci builds it).
// Semi-spaces of 1 MB (Node lets them grow to 16 MB each): the bot keeps about 15 MB
// less resident, idle and after a burst, for a little more scavenging under load.
import { launch } from '../dist/src/shared/launch.js';

await launch('notify-bot', () => import('../dist/src/bundle/notify-bot.js'));
