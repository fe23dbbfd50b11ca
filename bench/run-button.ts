/**
 * The Run button through the real bot: the analyst presses "Run trivial" under /status in
 * the fake Telegram -> the bot takes the callback -> `notify-scripts run` (the real
 * bin/notify-scripts.js as the bot starts it, without the sudo hop) -> a script that prints
 * one notification -> the bot's outbox -> Telegram accepts the message. The latency is
 * from the press to the message's arrival in the fake; presses are spaced beyond the
 * per-chat limit (1 message a second), so pacing is not measured. Beside it: the helper
 * alone (the same command line, started by this process), the part of the latency that is
 * Node starting and loading the helper.
 *
 *   npx tsc -p . && node dist/bench/run-button.js      (BENCH_RUN_PRESSES=<n>, default 20)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { commandFor } from '../src/scripts/client.js';
import { BotHarness } from '../test/support/botHarness.js';
import { helperCommand } from '../test/support/helperCommand.js';
import { cpuSecondsOf } from './cpu.js';
import { machine, median, percentile, Report } from './report.js';

const PRESSES = Number(process.env.BENCH_RUN_PRESSES ?? 20);
const WARM_UP = 2;
const TARGET_P50_MS = 150;
const CHAT = 7001;
const USER = 'analyst';
const SCRIPT = 'trivial.py';
/** System Python first: a pyenv shim on PATH costs more than the rest of the chain. */
const PATH = `/usr/local/bin:/usr/bin:/bin:${process.env.PATH ?? ''}`;

async function main(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'notify-bench-run-home-'));
  mkdirSync(join(home, 'user', 'notifications'), { recursive: true });
  writeFileSync(join(home, 'user', 'notifications', SCRIPT), `print('{"notify": true, "title": "Trivial", "message": "ran on demand"}')\n`);
  const command = helperCommand(home);
  const h = await BotHarness.start({ users: [], prefix: 'notify-bench-run-', start: false, env: { PATH, NOTIFY_SCRIPTS_COMMAND: command } });
  const giveUp = setTimeout(() => {
    process.stderr.write('benchmark took too long; giving up\n');
    void h.cleanup().then(() => process.exit(2));
  }, 280_000);
  try {
    await h.link(USER, CHAT);
    await h.startBot();
    h.fake.sendUserMessage(CHAT, '/status');
    const [status] = await h.fake.waitForMessages(CHAT, 1, 30_000);
    const button = `run:${SCRIPT}`;

    const latencies: number[] = [];
    const answers: number[] = [];
    for (let i = 0; i < WARM_UP + PRESSES; i++) {
      const before = h.fake.sentMessages(CHAT).length;
      const pressedAt = Date.now();
      const qid = h.fake.pressButton(CHAT, status!.message_id, button);
      const msgs = await h.fake.waitForMessages(CHAT, before + 1, 30_000);
      const answer = await h.fake.waitForCallbackAnswer(qid, 30_000);
      const result = msgs[before]!;
      if (result.text !== 'Trivial\nran on demand') throw new Error(`press ${i} brought ${JSON.stringify(result.text)}, not the script's notification`);
      if (i >= WARM_UP) {
        latencies.push(result.receivedAt - pressedAt);
        answers.push(answer.at - pressedAt);
      }
      // Past the per-chat limit, and past the run's record-delivery call.
      await sleep(1200);
    }
    latencies.sort((a, b) => a - b);

    // The helper alone, as the bot starts it (argv split the same way, no shell).
    const argv = [...commandFor(command, USER), 'run', SCRIPT];
    const env = { ...process.env, PATH };
    const helperWall = Array.from({ length: 7 }, () => {
      const t0 = performance.now();
      const r = spawnSync(argv[0]!, argv.slice(1), { env, stdio: 'ignore' });
      if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status ?? r.signal}`);
      return performance.now() - t0;
    });
    const helperCpu = median(Array.from({ length: 7 }, () => cpuSecondsOf(argv, { env })));
    const python = median(Array.from({ length: 7 }, () => cpuSecondsOf(['python3', join(home, 'user', 'notifications', SCRIPT)], { env })));

    const report = new Report();
    process.stdout.write(`Run button -> notify-scripts run -> script -> bot -> outbox -> Telegram, ${PRESSES} presses after ${WARM_UP} (${machine()})\n\n`);
    const p50 = percentile(latencies, 50);
    report.row('Run button -> Telegram accepted, p50', `${p50.toFixed(0)} ms`, p50 <= TARGET_P50_MS, `<= ${TARGET_P50_MS} ms`);
    report.note(`p90 ${percentile(latencies, 90).toFixed(0)} ms, max ${latencies.at(-1)!.toFixed(0)} ms; the callback answered after ${median(answers).toFixed(0)} ms (median)`);
    report.note(`notify-scripts run alone: ${median(helperWall).toFixed(0)} ms wall, ${helperCpu.toFixed(3)} s CPU (the script's python3 alone ${python.toFixed(3)} s) (medians)`);
    report.finish();
  } finally {
    clearTimeout(giveUp);
    await h.cleanup();
    rmSync(home, { recursive: true, force: true });
  }
}

await main();
