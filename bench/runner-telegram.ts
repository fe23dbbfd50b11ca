/**
 * The runner through the real bot to the fake Telegram with Telegram's default limits:
 * 8 instant scripts of one analyst, all to one chat. Prints the runner's wall time and how
 * long until all 8 arrived (the bot paces them under the per-chat limit instead of losing
 * them). Usage: node dist/bench/runner-telegram.js
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BotHarness, PROJECT_ROOT } from '../test/support/botHarness.js';

const CHAT = 9100;

async function main(): Promise<void> {
  const h = await BotHarness.start({ users: [] });
  const home = mkdtempSync(join(tmpdir(), 'notify-bench-home-'));
  try {
    await h.link('root', CHAT);
    mkdirSync(join(home, 'user', 'notifications'), { recursive: true });
    for (let i = 0; i < 8; i += 1) {
      writeFileSync(join(home, 'user', 'notifications', `instant_${i}.py`), `print('{"notify": true, "title": "Instant ${i}", "message": "bench"}')\n`);
    }
    const started = performance.now();
    const code = await new Promise<number | null>((resolve) => {
      const p = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'notify-runner.js')], { env: { PATH: process.env.PATH, HOME: home, NOTIFY_SOCKET: h.socketPath }, stdio: 'ignore' });
      p.on('exit', resolve);
    });
    const runnerMs = performance.now() - started;
    await h.fake.waitForMessages(CHAT, 8, 30_000);
    const allMs = performance.now() - started;
    const arrived = h.fake.sentMessages(CHAT).length;
    console.log('runner -> bot -> Telegram, 8 instant scripts to one chat');
    console.log(`  runner exit code        ${code}`);
    console.log(`  runner wall time        ${(runnerMs / 1000).toFixed(2)} s`);
    console.log(`  all delivered after     ${(allMs / 1000).toFixed(2)} s (per-chat limit: burst 3, then ~1/s)`);
    console.log(`  delivered               ${arrived} of 8`);
    console.log(`  429s from Telegram      ${h.fake.stats.tooManyRequests}`);
  } finally {
    await h.cleanup();
    rmSync(home, { recursive: true, force: true });
  }
}

await main();
