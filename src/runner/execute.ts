/**
 * Running one script as a child process with the limits docs/notifications.md promises: a timeout, a
 * cap on stdout, and no process left behind. The script is the leader of its own process
 * group (spawned detached), so its children can be signalled with it: SIGTERM to the
 * group, SIGKILL after a short grace, whether the script timed out, printed too much, or
 * exited leaving children running.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

/** How to run one script. */
export interface ExecuteOptions {
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  killGraceMs: number;
  maxStdoutBytes: number;
  /** How much of the end of stderr to keep (default 8 KiB). */
  stderrTailBytes?: number;
}

/** How the script's run ended. */
export type ExecEnd =
  | { kind: 'exited'; exitCode: number | null; signal: NodeJS.Signals | null }
  | { kind: 'timed_out' }
  | { kind: 'output_too_large' }
  | { kind: 'interrupted' }
  | { kind: 'spawn_failed'; error: string };

/** What a run produced. */
export interface ExecResult {
  end: ExecEnd;
  /** stdout as printed (complete unless the run ended otherwise than by exiting). */
  stdout: Buffer;
  /** The end of stderr. */
  stderrTail: string;
  durationMs: number;
  /** The script's exit code and signal, when it was reaped. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

/** Process groups of scripts running now, so a dying runner can take them with it. */
const runningGroups = new Map<number, () => void>();

/** Stops every script still running (SIGKILL to each group); for a runner being terminated. */
export function killAllRunning(): void {
  for (const kill of runningGroups.values()) kill();
}

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // ESRCH: the group is gone
  }
}

/** Runs a script and resolves when it and every process of its group are done. */
export function executeScript(opts: ExecuteOptions): Promise<ExecResult> {
  const started = performance.now();
  const tailBytes = opts.stderrTailBytes ?? 8192;
  return new Promise((resolve) => {
    let settled = false;
    const stdoutChunks: Buffer[] = [];
    let stdoutBytes = 0;
    let stderrTail: Buffer = Buffer.alloc(0);
    let stopReason: 'timed_out' | 'output_too_large' | 'interrupted' | null = null;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let killTimer: NodeJS.Timeout | null = null;
    let killSentAt: number | null = null;
    let closeTimer: NodeJS.Timeout | null = null;
    let pollTimer: NodeJS.Timeout | null = null;
    let killing = false;

    const child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pgid = child.pid;

    const finish = (end: ExecEnd): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      if (closeTimer) clearTimeout(closeTimer);
      if (pollTimer) clearInterval(pollTimer);
      if (killTimer) clearTimeout(killTimer);
      if (pgid !== undefined) runningGroups.delete(pgid);
      resolve({
        end,
        stdout: Buffer.concat(stdoutChunks),
        stderrTail: stderrTail.toString('utf8'),
        durationMs: Math.round(performance.now() - started),
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
      });
    };

    const sendKill = (): void => {
      if (pgid === undefined || killSentAt !== null) return;
      killSentAt = performance.now();
      signalGroup(pgid, 'SIGKILL');
    };

    /** TERM the whole group now, KILL it after the grace. */
    const killGroup = (): void => {
      if (pgid === undefined || killing) return;
      killing = true;
      signalGroup(pgid, 'SIGTERM');
      killTimer = setTimeout(sendKill, opts.killGraceMs);
    };

    const stop = (reason: 'timed_out' | 'output_too_large' | 'interrupted'): void => {
      stopReason ??= reason;
      killGroup();
    };

    if (pgid !== undefined) {
      runningGroups.set(pgid, () => {
        stopReason ??= 'interrupted';
        sendKill();
      });
    }

    const timeout = setTimeout(() => stop('timed_out'), opts.timeoutMs);

    child.stdout.on('data', (chunk: Buffer) => {
      if (stopReason === 'output_too_large') return;
      stdoutBytes += chunk.length;
      if (stdoutBytes > opts.maxStdoutBytes) {
        stop('output_too_large');
        return;
      }
      stdoutChunks.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderrTail = Buffer.concat([stderrTail, chunk]);
      if (stderrTail.length > tailBytes * 2) stderrTail = stderrTail.subarray(stderrTail.length - tailBytes);
    });

    child.on('error', (err) => {
      // Only a failure to start matters here; once running, 'exit' and 'close' follow.
      if (child.pid === undefined) finish({ kind: 'spawn_failed', error: err.message });
    });

    const finishFromExit = (): void => {
      if (stopReason) finish({ kind: stopReason });
      else finish({ kind: 'exited', exitCode: exit?.code ?? null, signal: exit?.signal ?? null });
    };

    /**
     * The script exited and its pipes are closed (or held by a process that escaped the
     * group). Resolve once nothing of its group is left: children it left behind are
     * stopped like a timed-out script. A group that still answers after SIGKILL holds only
     * zombies waiting for init to reap them, so the wait after SIGKILL is short.
     */
    let settling = false;
    const settle = (): void => {
      if (settling || settled) return;
      settling = true;
      if (pgid === undefined || !signalGroup(pgid, 0)) {
        finishFromExit();
        return;
      }
      killGroup();
      pollTimer = setInterval(() => {
        const gone = !signalGroup(pgid, 0);
        if (gone || (killSentAt !== null && performance.now() - killSentAt > 500)) finishFromExit();
      }, 20);
    };

    child.on('exit', (code, signal) => {
      exit = { code, signal };
      clearTimeout(timeout);
      // Children the script left behind belong to its group: they go too (until they do,
      // they may hold the pipes open).
      if (pgid !== undefined && signalGroup(pgid, 0)) killGroup();
      // A process that escaped the group (setsid) may hold the pipes open for ever.
      closeTimer = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        settle();
      }, opts.killGraceMs + 1000);
    });

    child.on('close', () => {
      if (exit === null) return; // spawn failure; handled by 'error'
      settle();
    });
  });
}

/**
 * What stderr says went wrong, shortened for a log line or a record: for a Python traceback
 * the exception line and where it was raised (`ZeroDivisionError: division by zero (at
 * report.py line 12)`), otherwise the last few lines.
 */
export function stderrExcerpt(stderrTail: string, maxChars = 500): string {
  const lines = stderrTail
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '');
  if (lines.length === 0) return '';
  const tb = lines.findLastIndex((l) => l.startsWith('Traceback (most recent call last):'));
  if (tb >= 0) {
    const exception = lines[lines.length - 1]!.trim();
    let where = '';
    for (let i = lines.length - 1; i > tb; i--) {
      const m = /^\s*File "([^"]+)", line (\d+)/.exec(lines[i]!);
      if (m) {
        where = ` (at ${m[1]!.split('/').pop()!} line ${m[2]!})`;
        break;
      }
    }
    return clip(`${exception}${where}`, maxChars);
  }
  return clip(lines.slice(-3).map((l) => l.trim()).join(' | '), maxChars);
}

function clip(text: string, max: number): string {
  return text.length > max ? `…${text.slice(text.length - max + 1)}` : text;
}
