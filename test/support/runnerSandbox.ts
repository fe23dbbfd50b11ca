/**
 * What the runner and notify-scripts tests share: a temporary $HOME with a notifications
 * folder (and, for the runner, a recording send-API stub), scripts written into it, the
 * real bin/ programs run as child processes, and the runner's log and history read back.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunRecord } from '../../src/shared/history.js';
import { type SendApiStub, startSendApiStub } from './sendApiStub.js';

export const ROOT = process.env.NOTIFY_PROJECT_ROOT ?? fileURLToPath(new URL('../../../', import.meta.url));
export const RUNNER = join(ROOT, 'bin', 'notify-runner.js');
export const HELPER = join(ROOT, 'bin', 'notify-scripts.js');
/** A PATH with the system python3 first (not a version manager's shim that depends on $HOME). */
export const PATH = '/usr/local/bin:/usr/bin:/bin';

/** A temporary $HOME with user/notifications in it. */
export function makeHome(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(dir, 'user', 'notifications'), { recursive: true });
  return dir;
}

export interface Sandbox {
  dir: string;
  home: string;
  stub: SendApiStub;
}

const sandboxes: Sandbox[] = [];

/** A temporary directory holding a $HOME and a send-API stub; `closeSandboxes` removes it. */
export async function sandbox(prefix: string): Promise<Sandbox> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const home = join(dir, 'home');
  mkdirSync(join(home, 'user', 'notifications'), { recursive: true });
  const stub = await startSendApiStub(dir);
  const sb = { dir, home, stub };
  sandboxes.push(sb);
  return sb;
}

/** Closes the stubs and removes the directories of every sandbox made so far (for afterEach). */
export async function closeSandboxes(): Promise<void> {
  for (const sb of sandboxes.splice(0)) {
    await sb.stub.close();
    rmSync(sb.dir, { recursive: true, force: true });
  }
}

/** Writes a script into `home`'s notifications folder. */
export function script(home: string, name: string, code: string): void {
  writeFileSync(join(home, 'user', 'notifications', name), code);
}

/** A script printing this object. */
export function printing(home: string, name: string, output: unknown): void {
  // A JSON string literal is a valid Python string literal.
  script(home, name, `print(${JSON.stringify(JSON.stringify(output))})\n`);
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `node bin args` with exactly `env`, killing it (and rejecting) after 60 s. */
export function runProcess(bin: string, args: string[], env: Record<string, string>): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${bin} ${args.join(' ')} did not finish within 60 s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 60_000);
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Runs a bin/ program in the sandbox: its $HOME, the stub as NOTIFY_SOCKET, plus `env`. */
export function runBin(bin: string, sb: Sandbox, args: string[] = [], env: Record<string, string> = {}): Promise<RunResult> {
  return runProcess(bin, args, { PATH, HOME: sb.home, NOTIFY_SOCKET: sb.stub.socketPath, ...env });
}

export function runnerLog(sb: Sandbox): string {
  const p = join(sb.home, '.notifications', 'logs', 'runner.log');
  return existsSync(p) ? readFileSync(p, 'utf8') : '';
}

export function historyOf(sb: Sandbox): RunRecord[] {
  const p = join(sb.home, '.notifications', 'history.jsonl');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as RunRecord);
}

/** The last history record of script `name` (fails when there is none). */
export function lastRun(sb: Sandbox, name: string): RunRecord {
  const rec = historyOf(sb)
    .filter((r) => r.script === name)
    .pop();
  assert.ok(rec, `no history record for ${name}; history: ${JSON.stringify(historyOf(sb))}`);
  return rec;
}
