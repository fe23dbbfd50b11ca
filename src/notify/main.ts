/**
 * `notify`: the analysts' shell command for one-off notifications. It talks to the send API
 * as the caller (the bot knows who from the socket's peer credentials), so it needs no
 * token and no configuration beyond `NOTIFY_SOCKET`. It prints one line saying what
 * happened and exits with a status a script can test.
 */
import { settingsHelp } from '../shared/settingsDocs.js';
import { parseArgs } from 'node:util';
import { ConfigError, EnvReader } from '../shared/config.js';
import { PARSE_MODES, type ParseMode } from '../shared/contract.js';
import { type PhotoUpload, type Prefer, SendClient } from '../shared/sendClient.js';
import { type DeliveryResult, deliver } from '../runner/deliver.js';
import { ImageError, loadImage } from '../runner/image.js';

/** Exit statuses (documented in --help and docs/notifications.md). */
export const EXIT = {
  /** Accepted (without --wait), or delivered (with --wait). */
  ok: 0,
  /** Refused by the send API (bad input, not allowed, nowhere to deliver), or, with --wait, Telegram refused it or delivery was given up. */
  refused: 1,
  /** Bad command line: unknown option, nothing to send, unreadable image. */
  usage: 2,
  /** With --wait: accepted and queued, not delivered within the wait (it will be delivered later). */
  queued: 3,
  /** The send API could not be reached or was overloaded: nothing was accepted, try again. */
  unavailable: 4,
  /** With --wait: not sent, by the caller's own rules (snoozed, muted, unchanged). */
  suppressed: 5,
} as const;

/** Longest message read from standard input (the send API's own bound on `message`). */
const MAX_STDIN_CHARS = 65536;
/** Largest image uploaded (the bot's default bound). */
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
/** Default of --timeout, seconds. */
const DEFAULT_WAIT_SECONDS = 30;

function helpText(): string {
  return `Usage: notify [options] [MESSAGE...]
       COMMAND | notify [options]

Sends a notification to your own Telegram chat and desktop apps, through the bot's send
API as you (no token, no setup). MESSAGE is the words given, joined by spaces; without
them, the message is read from standard input.

Examples:
  notify "Backfill finished"
  notify --title "Nightly load" --image chart.png "3 tables late"
  long_job; notify "done: $?"
  echo "text from a pipe" | notify
  notify --to finance-alerts "Month-end close is done"
  notify --to me,finance-alerts "Both: my chat and the team chat"
  notify --urgent "Disk almost full"          # breaks through your quiet hours
  notify --wait "Deploy finished" || echo "not delivered (yet)"

Options:
  -t, --title TEXT        bold header above the message
  -i, --image PATH        attach a PNG or JPEG (at most 10 MiB)
      --to NAME[,NAME]    destinations: "me" (the default) and team chats you may send
                          to; may be given more than once. If any is not allowed,
                          nothing is sent to any of them.
  -u, --urgent            break through your quiet hours
  -w, --wait              wait until delivered or failed, and say so in the exit status
      --timeout SECONDS   longest --wait [${DEFAULT_WAIT_SECONDS}]; the bot caps it (NOTIFY_SEND_WAIT_MAX)
  -p, --parse-mode MODE   ${PARSE_MODES.join(', ')} [Markdown]; text Telegram
                          rejects as Markdown still arrives, as plain text
  -q, --quiet             print nothing on success
  -h, --help              this text

${settingsHelp('notify')}

Exit status:
  0  accepted (without --wait: delivered or queued for delivery, or held back by your
     own alert rules, as the line says); with --wait: delivered
  1  refused (the line says why: bad input, a destination you may not send to, nothing
     linked to deliver to); with --wait also: Telegram refused it or delivery failed
  2  bad command line, nothing to send, or an image that cannot be read
  3  with --wait: queued, not delivered within the wait; it stays queued and will be
     delivered (e.g. during a Telegram outage)
  4  the send API is unreachable or overloaded: nothing was accepted; try again later
  5  with --wait: not sent, by your own rules (script snoozed or muted, data unchanged)
With several destinations the line says what each did, and the status is the
weightiest of theirs (1, then 3, then 5, then 0).
`;
}

/** Where the command reads and writes (swapped in tests). */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Standard input, or null when it is a terminal (nothing piped). */
  stdin: (() => Promise<string>) | null;
}

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    process.stdin.on('data', (c: Buffer) => {
      size += c.length;
      // Bytes bound the characters from above; stop reading once far past the limit.
      if (size <= MAX_STDIN_CHARS * 4 + 4) chunks.push(c);
    });
    process.stdin.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.once('error', reject);
  });
}

const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  stdin: process.stdin.isTTY ? null : readStdin,
};

/** Entry point of bin/notify.js. */
export async function main(argv: string[]): Promise<void> {
  process.exitCode = await runCli(argv, process.env, processIo);
}

/** One line describing an accepted notification. */
function describeAccepted(r: Extract<DeliveryResult, { ok: true }>): string {
  const until = r.until ? ` until ${r.until}` : '';
  if (r.suppressed === 'unchanged') return `not sent: nothing changed since the last one (id ${r.id})`;
  if (r.suppressed) return `not sent: ${r.suppressed} by your alert rules${until} (id ${r.id})`;
  if (r.held) return `held for your quiet-hours digest${until} (id ${r.id})`;
  const desktop = typeof r.desktop === 'number' ? `, ${r.desktop} desktop app${r.desktop === 1 ? '' : 's'}` : '';
  switch (r.telegram) {
    case 'delivered':
      return `delivered to Telegram${desktop} (id ${r.id})`;
    case 'not_linked':
      return `delivered to ${typeof r.desktop === 'number' ? r.desktop : 'your'} desktop app${r.desktop === 1 ? '' : 's'}; Telegram is not linked (id ${r.id})`;
    case 'refused':
      return `not delivered: Telegram refused the chat (blocked or left; link it again on the dashboard) (id ${r.id})`;
    case 'failed':
      return `not delivered: Telegram did not take it and delivery was given up (id ${r.id})`;
    default:
      return `queued, not delivered yet: the bot will deliver it (id ${r.id})`;
  }
}

/** The exit status for an accepted notification. */
function acceptedStatus(r: Extract<DeliveryResult, { ok: true }>, wait: boolean): number {
  if (!wait) return EXIT.ok;
  if (r.suppressed) return EXIT.suppressed;
  if (r.held) return EXIT.queued;
  if (r.telegram === 'delivered' || r.telegram === 'not_linked') return EXIT.ok;
  if (r.telegram === 'refused' || r.telegram === 'failed') return EXIT.refused;
  return EXIT.queued;
}

/** How much an exit status weighs when destinations differ: a refusal says most. */
const STATUS_WEIGHT: Record<number, number> = { [EXIT.ok]: 0, [EXIT.suppressed]: 1, [EXIT.queued]: 2, [EXIT.refused]: 3 };

/**
 * The exit status and the line for an accepted notification; with several destinations,
 * one part per destination and the weightiest status (any refused: 1; else any queued: 3;
 * else any held back by rules: 5).
 */
function outcomeOf(r: Extract<DeliveryResult, { ok: true }>, wait: boolean): { status: number; line: string } {
  if (!r.destinations || r.destinations.length < 2) return { status: acceptedStatus(r, wait), line: describeAccepted(r) };
  let status: number = EXIT.ok;
  const parts: string[] = [];
  for (const { name, result } of r.destinations) {
    const s = result.ok ? acceptedStatus({ ...result, queued: false, status: 200 }, wait) : EXIT.refused;
    if ((STATUS_WEIGHT[s] ?? 0) > (STATUS_WEIGHT[status] ?? 0)) status = s;
    parts.push(`${name}: ${result.ok ? describeAccepted({ ...result, queued: false, status: 200 }) : `not sent: ${result.error}`}`);
  }
  return { status, line: parts.join('; ') };
}

/** The command line of `notify`; returns the exit status. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const usage = (message: string): number => {
    io.err(`notify: ${message}\nTry 'notify --help'.\n`);
    return EXIT.usage;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        title: { type: 'string', short: 't' },
        image: { type: 'string', short: 'i' },
        to: { type: 'string', multiple: true },
        urgent: { type: 'boolean', short: 'u', default: false },
        wait: { type: 'boolean', short: 'w', default: false },
        timeout: { type: 'string' },
        'parse-mode': { type: 'string', short: 'p' },
        quiet: { type: 'boolean', short: 'q', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const args = parsed.values;
  if (args.help) {
    io.out(helpText());
    return EXIT.ok;
  }

  let waitSeconds = DEFAULT_WAIT_SECONDS;
  if (args.timeout !== undefined) {
    waitSeconds = Number(args.timeout);
    if (!Number.isFinite(waitSeconds) || waitSeconds <= 0) return usage(`--timeout must be a number of seconds above 0 (got '${args.timeout}')`);
    if (!args.wait) return usage('--timeout goes with --wait');
  }
  let parseMode: ParseMode | undefined;
  if (args['parse-mode'] !== undefined) {
    const match = PARSE_MODES.find((m) => m.toLowerCase() === args['parse-mode']!.toLowerCase());
    if (!match) return usage(`--parse-mode must be one of ${PARSE_MODES.join(', ')} (got '${args['parse-mode']}')`);
    parseMode = match;
  }
  const to = (args.to ?? []).flatMap((t) => t.split(',')).map((t) => t.trim());
  if (to.some((t) => t === '')) return usage('--to needs a destination name ("me" or a team chat)');

  let message: string | undefined;
  if (parsed.positionals.length > 0) message = parsed.positionals.join(' ');
  else if (io.stdin) {
    message = (await io.stdin()).replace(/\n+$/, '');
    if ([...message].length > MAX_STDIN_CHARS) return usage(`the message on standard input is longer than ${MAX_STDIN_CHARS} characters`);
  }
  if (message !== undefined && message.trim() === '') message = undefined;
  const title = args.title !== undefined && args.title.trim() !== '' ? args.title : undefined;
  if (message === undefined && title === undefined && args.image === undefined) {
    return usage('nothing to send: give the message as arguments or on standard input');
  }

  let socketPath: string;
  try {
    const reader = new EnvReader('notify', env);
    socketPath = reader.get('NOTIFY_SOCKET');
    reader.done();
  } catch (err) {
    if (err instanceof ConfigError) return usage(err.message);
    throw err;
  }

  let image: PhotoUpload | null = null;
  if (args.image !== undefined) {
    try {
      image = await loadImage(args.image, MAX_IMAGE_BYTES);
    } catch (err) {
      if (err instanceof ImageError) return usage(err.message);
      throw err;
    }
  }

  const fields: Record<string, unknown> = {};
  if (title !== undefined) fields.title = title;
  if (message !== undefined) fields.message = message;
  if (parseMode !== undefined) fields.parse_mode = parseMode;
  if (args.urgent) fields.urgent = true;
  if (to.length > 0) fields.to = to;

  const prefer: Prefer = args.wait ? { waitSeconds } : undefined;
  // The answer may take the whole wait; allow for the request itself on top.
  const client = new SendClient(socketPath, (args.wait ? waitSeconds : 0) * 1000 + 30_000);
  const result = await deliver(client, fields, image, prefer);
  if (!result.ok) {
    io.err(`notify: ${result.error}\n`);
    return result.unavailable ? EXIT.unavailable : EXIT.refused;
  }
  const { status, line } = outcomeOf(result, args.wait);
  if (status === EXIT.ok) {
    if (!args.quiet) io.out(`${line}\n`);
  } else io.err(`notify: ${line}\n`);
  return status;
}
