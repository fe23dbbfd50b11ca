/** Where an analyst's scripts and the runner's files live, all under their home. */
import { join } from 'node:path';

/** The analyst's notification paths. */
export interface AnalystPaths {
  home: string;
  /** `~/user/notifications`: the scripts. */
  scriptsDir: string;
  /** `~/.notifications`. */
  baseDir: string;
  /** `~/.notifications/state`: one `<stem>.json` per script (`{"last_sent": ...}`). */
  stateDir: string;
  /** `~/.notifications/logs`. */
  logsDir: string;
  /** `~/.notifications/logs/runner.log`. */
  runnerLog: string;
  /** `~/.notifications/runner.lock`: one runner at a time. */
  runnerLock: string;
  /** `~/.notifications/history.jsonl`: every run. */
  history: string;
  /** `~/.venv/bin/python`: used instead of `python3` when present. */
  venvPython: string;
}

/** The paths under one home directory. */
export function analystPaths(home: string): AnalystPaths {
  const baseDir = join(home, '.notifications');
  return {
    home,
    scriptsDir: join(home, 'user', 'notifications'),
    baseDir,
    stateDir: join(baseDir, 'state'),
    logsDir: join(baseDir, 'logs'),
    runnerLog: join(baseDir, 'logs', 'runner.log'),
    runnerLock: join(baseDir, 'runner.lock'),
    history: join(baseDir, 'history.jsonl'),
    venvPython: join(home, '.venv', 'bin', 'python'),
  };
}

/** The state file of a script stem. */
export function stateFile(paths: AnalystPaths, stem: string): string {
  return join(paths.stateDir, `${stem}.json`);
}
