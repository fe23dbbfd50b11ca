/**
 * `notify-runner` passes (the real bin/notify-runner.js as a child process) against the
 * recording send API stand-in:
 * - wall time of 8 scripts that each sleep 1 s (target at most 3 s with the default bound
 *   of 4 at once) and of 8 instant scripts;
 * - CPU (the runner and its scripts) of a pass whose 10 scripts are all held by their
 *   cooldown, the pass a crontab makes most often (target below the seed's 0.96 s).
 * Python is the system's (/usr/bin first on PATH). Every run is bounded (killed after 30 s).
 *
 *   npx tsc -p . && node dist/bench/runner.js [repetitions]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSendApiStub, type SendApiStub } from '../test/support/sendApiStub.js';
import { cpuSecondsOf } from './cpu.js';
import { machine, median, Report } from './report.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUNNER = join(ROOT, 'bin', 'notify-runner.js');
const PATH = `/usr/local/bin:/usr/bin:/bin:${process.env.PATH ?? ''}`;
const RUN_LIMIT_MS = 30_000;
const TARGETS = { sleepingMs: 3000, heldCpuSeconds: 0.96 };

function timeRunner(args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; code: number | null; stderr: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUNNER, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`notify-runner did not finish within ${RUN_LIMIT_MS} ms`));
    }, RUN_LIMIT_MS);
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ ms: performance.now() - started, code, stderr });
    });
  });
}

/** A home with `count` scripts (`body`, then a line printing a notification), a send API stub, and the runner's environment. */
async function sandbox<T>(count: number, body: string, use: (env: NodeJS.ProcessEnv, stub: SendApiStub) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'notify-bench-'));
  const stub = await startSendApiStub(dir);
  try {
    const home = join(dir, 'home');
    mkdirSync(join(home, 'user', 'notifications'), { recursive: true });
    for (let i = 0; i < count; i++) {
      writeFileSync(join(home, 'user', 'notifications', `s${i}.py`), `${body}\nprint('{"notify": true, "message": "bench ${i}", "cooldown": "1h"}')\n`);
    }
    return await use({ PATH, HOME: home, NOTIFY_SOCKET: stub.socketPath }, stub);
  } finally {
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Median wall time (ms) of `reps` forced passes, and the sends they made. */
function wallOfPasses(count: number, body: string, reps: number): Promise<{ runs: number[]; sends: number }> {
  return sandbox(count, body, async (env, stub) => {
    const runs: number[] = [];
    for (let r = 0; r < reps; r++) {
      const res = await timeRunner(['--force'], env);
      if (res.code !== 0) throw new Error(`notify-runner exited ${res.code}: ${res.stderr}`);
      runs.push(Math.round(res.ms));
    }
    return { runs, sends: stub.sends().length };
  });
}

/** Median CPU seconds of `reps` passes over 10 scripts that all sent on a first pass, so their cooldown holds them. */
function cpuOfHeldPasses(reps: number): Promise<{ runs: number[]; sends: number }> {
  return sandbox(10, '', async (env, stub) => {
    const first = await timeRunner([], env);
    if (first.code !== 0 || stub.sends().length !== 10) throw new Error(`the first pass exited ${first.code} with ${stub.sends().length} of 10 sent: ${first.stderr}`);
    const runs = Array.from({ length: reps }, () => cpuSecondsOf([process.execPath, RUNNER], { env }));
    // Held passes send nothing; a send here would mean the figure is not the one named.
    return { runs, sends: stub.sends().length - 10 };
  });
}

async function main(): Promise<void> {
  const arg = Number(process.argv[2] ?? 3);
  const reps = Number.isInteger(arg) && arg > 0 && arg <= 20 ? arg : 3;
  const report = new Report();
  process.stdout.write(`notify-runner passes against a send API stand-in, median of ${reps} (${machine()})\n\n`);

  const sleeping = await wallOfPasses(8, 'import time\ntime.sleep(1)', reps);
  report.row('8 scripts sleeping 1 s (bound 4): wall', `${median(sleeping.runs)} ms`, median(sleeping.runs) <= TARGETS.sleepingMs, `<= ${TARGETS.sleepingMs} ms`);
  report.note(`runs ${sleeping.runs.join(', ')} ms; ${sleeping.sends} sent`);
  const instant = await wallOfPasses(8, '', reps);
  report.row('8 instant scripts: wall', `${median(instant.runs)} ms`, true, '-');
  report.note(`runs ${instant.runs.join(', ')} ms; ${instant.sends} sent`);
  const held = await cpuOfHeldPasses(Math.max(reps, 5));
  const heldCpu = median(held.runs);
  report.row('pass of 10 scripts held by cooldown (CPU)', `${heldCpu.toFixed(3)} s`, heldCpu < TARGETS.heldCpuSeconds && held.sends === 0, `< ${TARGETS.heldCpuSeconds} s`);
  report.note(`runner and scripts together; runs ${held.runs.map((s) => s.toFixed(2)).join(', ')} s; ${held.sends} sent while held`);
  report.finish();
}

await main();
