/**
 * `notify-scripts`: lets services (the bot, the dashboard) list and run an analyst's
 * scripts without reading their home: it runs as the analyst, through
 * `sudo -n -u <analyst> notify-scripts ...`, and answers in JSON on stdout. Errors are
 * `{"error": "...", "code": "..."}` with exit status 1.
 */
import { settingsHelp } from '../shared/settingsDocs.js';
import type { Io } from './commands.js';

const HELP = `Usage: notify-scripts COMMAND ...

Runs as the analyst (services call it through sudo -n -u <analyst>) and answers in JSON.

Commands:
  list                          the scripts in ~/user/notifications with their last run:
                                [{"name", "stem", "last_run", "last_outcome", "last_error"?,
                                  "last_sent", "cooldown"?, "cooldown_until"?,
                                  "consecutive_failures"?, "health_failing"?,
                                  "schedule"?, "schedule_zone"?, "next_run"?,
                                  "schedule_due"?, "schedule_error"?, ...}]
  history [--limit N] [--script NAME]
                                recent runs, newest first (default 50, at most 2000)
  run [--run-id ID] [--with-image] NAME.py
                                runs the script now like notify-runner does (same timeout,
                                output cap, validation), ignoring and keeping its cooldown;
                                prints the script's JSON object plus "_run": {"id", ...}
                                (left out if the script printed its own "_run");
                                --with-image adds the checked image as "_run.image" (base64);
                                it does not count toward the script's health (failing or
                                recovered alerts follow notify-runner's runs only)
  record-delivery RUN_ID NOTIFICATION_ID [--queued] [--outcome snoozed|muted|unchanged|held_quiet_hours [--until ISO]]
  record-delivery RUN_ID --failed REASON
                                joins an on-demand run to the notification the service sent
                                for it (the run becomes "sent" or "delivery_failed")

Errors print {"error": "...", "code": "..."} and exit 1.

The environment is the same as notify-runner's (where sudo passes it).
${settingsHelp('scripts')}
`;

/** Entry point of bin/notify-scripts.js. */
export async function main(argv: string[]): Promise<void> {
  process.exitCode = await runCli(argv, process.env, {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
  });
}

/** The helper's command line; returns the exit status. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.out(HELP);
    return 0;
  }
  // The commands' code (validation, history, the runner's machinery) is loaded only for a
  // command: --help costs what Node costs.
  const { runCommand } = await import('./commands.js');
  return runCommand(command, rest, env, io);
}
