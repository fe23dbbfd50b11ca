/**
 * Wall time of one `notify-runner` pass (the real bin/notify-runner.js as a child process)
 * against the recording send API stand-in: 8 scripts that each sleep 1 s (target at most
 * 3 s with the default bound of 4 at once) and 8 instant scripts. Every run is bounded
 * (killed after 30 s). Usage: node dist/bench/runner.js [repetitions]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startSendApiStub } from '../test/support/sendApiStub.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUNNER = join(ROOT, 'bin', 'notify-runner.js');
const PATH = `/usr/local/bin:/usr/bin:/bin:${process.env.PATH ?? ''}`;
const RUN_LIMIT_MS = 30_000;

/** One scenario's result. */
export interface BenchResult {
  name: string;
  runs: number[];
  medianMs: number;
  targetMs?: number;
  sends: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

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

async function scenario(name: string, count: number, body: string, reps: number, targetMs?: number): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'notify-bench-'));
  const stub = await startSendApiStub(dir);
  try {
    const home = join(dir, 'home');
    mkdirSync(join(home, 'user', 'notifications'), { recursive: true });
    for (let i = 0; i < count; i++) {
      writeFileSync(join(home, 'user', 'notifications', `s${i}.py`), `${body}\nprint('{"notify": true, "message": "bench ${i}"}')\n`);
    }
    const env = { PATH, HOME: home, NOTIFY_SOCKET: stub.socketPath };
    const runs: number[] = [];
    for (let r = 0; r < reps; r++) {
      const res = await timeRunner(['--force'], env);
      if (res.code !== 0) throw new Error(`notify-runner exited ${res.code}: ${res.stderr}`);
      runs.push(Math.round(res.ms));
    }
    const result: BenchResult = { name, runs, medianMs: median(runs), sends: stub.sends().length };
    if (targetMs !== undefined) result.targetMs = targetMs;
    return result;
  } finally {
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the runner benchmarks. */
export async function benchRunner(reps = 3): Promise<BenchResult[]> {
  const startup: number[] = [];
  for (let r = 0; r < reps; r++) startup.push(Math.round((await timeRunner(['--help'], { PATH })).ms));
  return [
    { name: 'process start (notify-runner --help)', runs: startup, medianMs: median(startup), sends: 0 },
    await scenario('8 scripts sleeping 1 s (default bound 4)', 8, 'import time\ntime.sleep(1)', reps, 3000),
    await scenario('8 instant scripts', 8, '', reps),
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const reps = Number(process.argv[2] ?? 3);
  const results = await benchRunner(Number.isInteger(reps) && reps > 0 && reps <= 20 ? reps : 3);
  for (const r of results) {
    const target = r.targetMs !== undefined ? `  target <= ${r.targetMs} ms: ${r.medianMs <= r.targetMs ? 'met' : 'MISSED'}` : '';
    console.log(`${r.name.padEnd(42)} median ${String(r.medianMs).padStart(5)} ms  runs [${r.runs.join(', ')}]  sends ${r.sends}${target}`);
  }
}
