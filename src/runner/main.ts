/**
 * `notify-runner`: runs the analyst's notification scripts once (from their crontab) and
 * sends what they report through the send API. One runner per analyst at a time (flock on
 * `~/.notifications/runner.lock`): an invocation that finds another one running leaves.
 */
import { homedir } from 'node:os';
import { isAbsolute } from 'node:path';
import { parseArgs } from 'node:util';
import { type Clock, systemClock } from '../shared/clock.js';
import { ConfigError, EnvReader } from '../shared/config.js';
import { settingsHelp } from '../shared/settingsDocs.js';
import { readRunnerConfig, type RunnerConfig } from './config.js';
import { analystPaths } from './paths.js';

/** Exit statuses (documented in --help). */
export const EXIT = {
  /** Every script was handled (failures are recorded), or another runner was running. */
  ok: 0,
  /** Bad command line or configuration, or no such script. */
  usage: 1,
  /** Could not work at all: ~/.notifications not writable, the lock or the scripts unreadable. */
  cannotRun: 2,
  /** Notifications were due but the send API was unreachable (or 5xx) for every one. */
  sendApiUnavailable: 3,
} as const;

function helpText(): string {
  return `Usage: notify-runner [--script NAME] [--dry-run] [--force]

Runs every ~/user/notifications/*.py once (with ~/.venv/bin/python if present, else
python3; cwd $HOME), at most NOTIFY_RUNNER_CONCURRENCY at a time, and sends what each
script asks for through the send API. Scripts find NOTIFY_TRIGGER=schedule (or
on_demand, when run by notify-scripts) in their environment. For the crontab, e.g.
  */5 * * * * notify-runner >> ~/.notifications/logs/cron.log 2>&1

A script may carry its own schedule in a comment among its first 30 lines:
  # schedule: 0 9 * * 1-5 Europe/Prague
(5 cron fields or @hourly/@daily/@weekly/@monthly/@yearly, then optionally a time
zone; without one, the server's). It then runs only when a scheduled time passed since
its last scheduled run: once, however many were missed. Scripts without one run on
every pass. An invalid schedule is a failed run saying what is wrong. --script runs the
named script whatever its schedule.

A script that fails NOTIFY_HEALTH_FAILURES runs in a row gets you one "is failing"
alert, and one "recovered" message when it works again (at most one new failing alert
per script a day).

Options:
  --script NAME   run only this script (report.py, or just report)
  --dry-run       run and validate, print what would be sent and whether the cooldown
                  would hold it; send nothing, change no state, record no history
  --force         ignore the cooldown (the send still starts a new cooldown)
  -h, --help      this text

${settingsHelp('runner')}

Files:
  ~/.notifications/state/<stem>.json   cooldown state {"last_sent": <unix seconds>}, the
                                       script's health (consecutive_failures, health_state,
                                       health_alert_at) and last_scheduled_run
  ~/.notifications/logs/runner.log     one line per script run (kept under 5 MiB, then .1)
  ~/.notifications/history.jsonl       every run, scheduled or on demand (notify-scripts history)
  ~/.notifications/runner.lock         held while a runner works

Exit status:
  0  every script was handled (a failing script is handled: it is recorded), or another
     runner was already running and this one left it to finish
  1  bad command line or configuration, or no such script
  2  could not work at all (~/.notifications not writable, scripts directory unreadable)
  3  notifications were due but the send API was unreachable or failing (5xx) for every
     one of them; nothing was recorded as sent, so the next run sends them
`;
}

/** Where the runner writes. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  isTty: boolean;
}

const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTty: process.stdout.isTTY === true,
};

/** Entry point of bin/notify-runner.js. */
export async function main(argv: string[]): Promise<void> {
  process.exitCode = await runCli(argv, process.env, processIo);
}

/** The runner's command line; returns the exit status. `clock` decides what "now" is for schedules and cooldowns. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv, io: Io, clock: Clock = systemClock): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        script: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    io.err(`notify-runner: ${(err as Error).message}\nTry 'notify-runner --help'.\n`);
    return EXIT.usage;
  }
  if (args.help) {
    io.out(helpText());
    return EXIT.ok;
  }

  let config: RunnerConfig;
  try {
    const reader = new EnvReader('runner', env);
    config = readRunnerConfig(reader);
    reader.done();
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`notify-runner: ${err.message}\n`);
      return EXIT.usage;
    }
    throw err;
  }
  const home = env.HOME && env.HOME.trim() !== '' ? env.HOME : homedir();
  if (!isAbsolute(home)) {
    io.err(`notify-runner: HOME must be an absolute path (got '${home}')\n`);
    return EXIT.usage;
  }
  const paths = analystPaths(home);

  // What a pass needs (validation, history, the send client) is loaded only for a pass:
  // --help and a bad command line cost what Node costs.
  const { runPass } = await import('./pass.js');
  return runPass({ script: args.script, dryRun: args['dry-run'], force: args.force }, config, paths, env, io, clock);
}
