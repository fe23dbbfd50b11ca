/**
 * `npm start`: the whole stack on this machine with embedded defaults, for a first try.
 *
 * Starts, as child processes whose output is prefixed on the console and written to
 * `.first-run/logs/<name>.log`: a local OpenID Connect provider (unless OIDC_CLIENT_ID is
 * set: then the real one, Google by default), a Telegram stand-in with a chat page (unless
 * TELEGRAM_BOT_TOKEN is set: then the real Telegram), the desktop gateway, the bot and the
 * dashboard. All state lives under `.first-run/` (or FIRST_RUN_DIR): the data directory,
 * the sockets, generated secrets (`secrets.env`, mode 0600, reused) and a demo analyst home
 * with the example scripts and sample data for them. Ctrl-C stops everything.
 *
 * `npm run first-run:notify` (this program with the argument `notify`) runs the runner
 * as the demo analyst against the running stack; further arguments go to notify-runner.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync, type WriteStream } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { userInfo } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LinkStore } from '../shared/linking.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');
const STATE = process.env.FIRST_RUN_DIR ?? join(ROOT, '.first-run');
const DIRS = {
  data: join(STATE, 'data'),
  run: join(STATE, 'run'),
  logs: join(STATE, 'logs'),
  home: join(STATE, 'home'),
};
const BOT_SOCKET = join(DIRS.run, 'bot.sock');
const GATEWAY_SOCKET = join(DIRS.run, 'ws.sock');
const SECRETS = join(STATE, 'secrets.env');
/** Which Telegram the last start used: `stand-in` or `real`. */
const TELEGRAM_MODE = join(STATE, 'telegram-mode');
/** The one chat of the stand-in. */
const CHAT_ID = 5550001;
/** A token of the right shape for the stand-in (not a secret: nothing real accepts it). */
const STAND_IN_TOKEN = '7000000001:FirstRunLocalStandInNotARealToken';
const OIDC_CLIENT_ID = 'notify-web-first-run';
const DEBIAN_PYTHON = '/usr/bin/python3';

const env = process.env;
const osUser = userInfo().username;
const show = (p: string): string => (p.startsWith(`${ROOT}/`) ? relative(ROOT, p) : p);

function fail(message: string): never {
  console.error(`first-run: ${message}`);
  process.exit(1);
}

function port(name: string, fallback: number): { name: string; port: number } {
  const raw = env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) fail(`${name}='${raw}' is not a port number`);
  return { name, port: n };
}

// ---------------------------------------------------------------------------------------
// Demo analyst: scripts, sample data, environment

/** Where the demo scripts find their data (the examples read these variables). */
function scriptEnv(): Record<string, string> {
  return {
    REVENUE_DB: join(DIRS.home, 'user', 'data', 'revenue.sqlite'),
    FRESHNESS_DIR: join(DIRS.home, 'user', 'data', 'parquet'),
    METRIC_CSV: join(DIRS.home, 'user', 'data', 'daily_signups.csv'),
  };
}

function python(): string {
  return existsSync(DEBIAN_PYTHON) ? DEBIAN_PYTHON : 'python3';
}

/**
 * Copies the example scripts (keeping any the analyst changed) and writes sample data
 * relative to today: revenue 25% under its 7-day average, three daily "parquet" files of
 * which two are stale, and 20 days of a metric. Makes ~/.venv from Debian's Python (which
 * has matplotlib) once, when there is one.
 */
function prepareHome(quiet = false): void {
  const home = DIRS.home;
  const scripts = join(home, 'user', 'notifications');
  const data = join(home, 'user', 'data');
  for (const d of [scripts, data, join(home, '.notifications', 'state'), join(home, '.notifications', 'logs')]) mkdirSync(d, { recursive: true });
  const examples = join(ROOT, 'examples', 'notifications');
  for (const name of readdirSync(examples).filter((n) => n.endsWith('.py'))) {
    const target = join(scripts, name);
    if (!existsSync(target)) {
      copyFileSync(join(examples, name), target);
      chmodSync(target, 0o755);
    }
  }
  const se = scriptEnv();
  const build = spawnSync(
    python(),
    [
      '-c',
      [
        'import datetime, sqlite3, sys, os',
        'path = sys.argv[1]',
        'os.path.exists(path) and os.remove(path)',
        'con = sqlite3.connect(path)',
        'con.execute("CREATE TABLE revenue (day TEXT, amount REAL)")',
        'today = datetime.date.today()',
        'rows = [((today - datetime.timedelta(days=d)).isoformat(), 60000.0) for d in range(1, 8)]',
        'rows += [(today.isoformat() + " 09:30:00", 30000.0), (today.isoformat(), 15000.0)]',
        'con.executemany("INSERT INTO revenue VALUES (?, ?)", rows)',
        'con.commit()',
        'with open(sys.argv[2], "w") as f:',
        '    f.write("date,value\\n")',
        '    for d in range(19, -1, -1):',
        '        f.write("%s,%d\\n" % ((today - datetime.timedelta(days=d)).isoformat(), 120 + (d * 37) % 45))',
      ].join('\n'),
      se.REVENUE_DB!,
      se.METRIC_CSV!,
    ],
    { encoding: 'utf8' },
  );
  if (build.status !== 0) fail(`could not write the sample data with ${python()}: ${build.error?.message ?? build.stderr}`);
  const now = Date.now() / 1000;
  for (const [rel, hours] of [['orders.parquet', 1], ['daily_sales/part-0.parquet', 30], ['customers_eu.parquet', 75]] as const) {
    const file = join(se.FRESHNESS_DIR!, rel);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, 'PAR1 (sample file of the first run)\n');
    utimesSync(file, now - hours * 3600, now - hours * 3600);
  }
  const venv = join(home, '.venv');
  if (!existsSync(venv) && existsSync(DEBIAN_PYTHON)) {
    if (!quiet) console.log(`[setup] making the demo analyst's ~/.venv (${show(venv)}) from ${DEBIAN_PYTHON} ...`);
    const r = spawnSync(DEBIAN_PYTHON, ['-m', 'venv', '--system-site-packages', venv], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) console.log(`[setup] no ~/.venv (${(r.stderr || r.error?.message || '').trim().split('\n').pop()}); the scripts use python3`);
  }
}

/** A word for NOTIFY_SCRIPTS_COMMAND (split like a shell, without one). */
function quoteWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

// ---------------------------------------------------------------------------------------
// Secrets

function loadSecrets(): Record<string, string> {
  const values: Record<string, string> = {};
  if (existsSync(SECRETS)) {
    for (const line of readFileSync(SECRETS, 'utf8').split('\n')) {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m) values[m[1]!] = m[2]!;
    }
  }
  let changed = false;
  for (const key of ['NOTIFY_SESSION_SECRET', 'DESKTOP_JWT_SECRET', 'FIRST_RUN_OIDC_CLIENT_SECRET']) {
    if (!values[key]) {
      values[key] = randomBytes(32).toString('hex');
      changed = true;
    }
  }
  if (changed || !existsSync(SECRETS)) {
    const text = `# Generated by npm start for the first run; reused on the next start. Keep private.\n${Object.entries(values)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`;
    writeFileSync(SECRETS, text, { mode: 0o600 });
  }
  chmodSync(SECRETS, 0o600);
  return values;
}

// ---------------------------------------------------------------------------------------
// Children

interface Child {
  name: string;
  proc: ChildProcess;
  log: WriteStream;
  tail: string[];
}

const children: Child[] = [];

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** A JSON log line (pino) shortened for the console: level, message, the other fields. */
function readable(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const { level, msg, time: _t, pid: _p, hostname: _h, name: _n, ...rest } = JSON.parse(line) as Record<string, unknown>;
    const extra = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
    return [LEVELS[Number(level)] ?? JSON.stringify(level), typeof msg === 'string' ? msg : JSON.stringify(msg ?? ''), ...extra].join(' ');
  } catch {
    return line;
  }
}
let stopping = false;

function startChild(name: string, script: string, childEnv: NodeJS.ProcessEnv): Child {
  const log = createWriteStream(join(DIRS.logs, `${name}.log`), { flags: 'a' });
  log.write(`--- ${new Date().toISOString()} started by npm start\n`);
  const proc = spawn(process.execPath, [join(ROOT, script)], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const child: Child = { name, proc, log, tail: [] };
  const label = `[${name}]`.padEnd(10);
  for (const stream of [proc.stdout, proc.stderr]) {
    let partial = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        log.write(`${line}\n`);
        child.tail.push(line);
        if (child.tail.length > 20) child.tail.shift();
        process.stdout.write(`${label} ${readable(line)}\n`);
      }
    });
  }
  proc.on('exit', (code, signal) => {
    log.write(`--- exited (${signal ?? code})\n`);
    if (!stopping) {
      console.error(`\nfirst-run: ${name} stopped unexpectedly (${signal ?? `exit code ${code}`}); its log: ${show(join(DIRS.logs, `${name}.log`))}`);
      void shutdown(1);
    }
  });
  children.push(child);
  return child;
}

async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    console.log('\nfirst-run: stopping ...');
    await Promise.all(
      [...children].reverse().map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve();
            const timer = setTimeout(() => c.proc.kill('SIGKILL'), 8000);
            c.proc.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            c.proc.kill('SIGTERM');
          }),
      ),
    );
    await Promise.all(children.map((c) => new Promise<void>((r) => c.log.end(() => r()))));
    console.log('first-run: stopped.');
    process.exit(code);
  }
  return new Promise<never>(() => undefined);
}

// ---------------------------------------------------------------------------------------
// Readiness

function urlParts(url: string): http.RequestOptions {
  const u = new URL(url);
  return { host: u.hostname, port: u.port, path: `${u.pathname}${u.search}` };
}

function get(target: { url: string } | { socketPath: string; path: string }): Promise<number> {
  return new Promise((resolve) => {
    const opts: http.RequestOptions = 'url' in target ? { ...urlParts(target.url), timeout: 2000 } : { socketPath: target.socketPath, path: target.path, timeout: 2000 };
    const req = http.get(opts, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

async function waitReady(child: Child, what: string, target: Parameters<typeof get>[0], timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while ((await get(target)) !== 200) {
    if (stopping) await new Promise<never>(() => undefined);
    if (Date.now() > until) {
      console.error(`first-run: ${child.name} did not come up (${what}) within ${timeoutMs / 1000} s; see ${show(join(DIRS.logs, `${child.name}.log`))}`);
      await shutdown(1);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function checkPortFree(p: { name: string; port: number }): Promise<void> {
  await new Promise<void>((resolve) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      fail(
        err.code === 'EADDRINUSE'
          ? `port ${p.port} is already in use (is another npm start running?); set ${p.name} to another port`
          : `cannot use port ${p.port} (${p.name}): ${err.message}`,
      );
    });
    srv.listen(p.port, '127.0.0.1', () => srv.close(() => resolve()));
  });
}

// ---------------------------------------------------------------------------------------
// Telegram: stand-in links, reachability

/**
 * Starting with a real token after the stand-in: the stand-in's chat does not exist in the
 * real Telegram, so alerts to it could never arrive. Its link goes (saying so); the analyst
 * links their real chat as the banner says.
 */
async function dropStandInLinks(): Promise<void> {
  const previous = existsSync(TELEGRAM_MODE) ? readFileSync(TELEGRAM_MODE, 'utf8').trim() : 'stand-in';
  if (previous === 'real') return;
  const links = new LinkStore(DIRS.data);
  const name = await links.unlinkChat(CHAT_ID);
  if (name !== null) {
    console.log(`first-run: '${name}' was linked to the Telegram stand-in's chat, which does not exist in the real Telegram: unlinked. Link your real Telegram account as step 2 below says.`);
  }
}

/** The bot's /health answer (null when it does not answer). */
function botHealth(): Promise<Record<string, unknown> | null> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath: BOT_SOCKET, path: '/health', timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as Record<string, unknown>);
        } catch {
          resolve(null);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

/**
 * With a real token: says on the console when the bot cannot reach Telegram (and why), and
 * when it gets through again, for as long as the stack runs.
 */
function watchTelegram(): void {
  let reported: 'ok' | 'failing' | null = null;
  const check = async (): Promise<void> => {
    const h = await botHealth();
    if (!h || stopping) return;
    if (h.telegram_polling === true) {
      if (reported === 'failing') console.log('first-run: the bot reaches Telegram again.');
      reported = 'ok';
    } else if (typeof h.telegram_polling_failing_since === 'string' && reported !== 'failing') {
      reported = 'failing';
      console.error(
        [
          '',
          '!!! The bot cannot reach Telegram:',
          `!!!   ${String(h.telegram_polling_error)}`,
          '!!! Commands and alerts wait until it can. Check that this machine reaches https://api.telegram.org',
          '!!! (or TELEGRAM_API_ROOT, when set) and that TELEGRAM_BOT_TOKEN is right. The bot keeps trying;',
          '!!! this console says when it gets through.',
          '',
        ].join('\n'),
      );
    }
  };
  const timer = setInterval(() => void check(), 1000);
  timer.unref();
  void check();
}

// ---------------------------------------------------------------------------------------
// npm start

async function start(): Promise<void> {
  const realTelegram = Boolean(env.TELEGRAM_BOT_TOKEN);
  const realOidc = Boolean(env.OIDC_CLIENT_ID);
  const web = port('NOTIFY_WEB_PORT', 8080);
  const chat = port('FIRST_RUN_CHAT_PORT', 8081);
  const telegram = port('FIRST_RUN_TELEGRAM_PORT', 8082);
  const oidc = port('FIRST_RUN_OIDC_PORT', 8083);
  const gateway = port('NOTIFY_GATEWAY_PORT', 8765);
  const publicUrl = (env.NOTIFY_PUBLIC_URL ?? `http://localhost:${web.port}`).replace(/\/$/, '');
  const email = (env.FIRST_RUN_EMAIL ?? `${osUser}@example.com`).toLowerCase();
  if (realOidc && !env.NOTIFY_ALLOWED_DOMAINS && !env.NOTIFY_ALLOWED_EMAILS) {
    fail('with a real OIDC client, set NOTIFY_ALLOWED_DOMAINS (e.g. your company domain) or NOTIFY_ALLOWED_EMAILS (your address)');
  }
  if (realOidc && !env.OIDC_CLIENT_SECRET) fail('OIDC_CLIENT_ID is set but OIDC_CLIENT_SECRET is not');
  const ports = [web, gateway, ...(realTelegram ? [] : [chat, telegram]), ...(realOidc ? [] : [oidc])];
  if (new Set(ports.map((p) => p.port)).size !== ports.length) fail(`two services would share a port: ${ports.map((p) => `${p.name}=${p.port}`).join(', ')}`);
  for (const p of ports) await checkPortFree(p);

  for (const d of Object.values(DIRS)) mkdirSync(d, { recursive: true });
  chmodSync(DIRS.data, 0o770);
  const secrets = loadSecrets();
  prepareHome();

  const se = scriptEnv();
  const scriptsCommand = ['env', `HOME=${DIRS.home}`, ...Object.entries(se).map(([k, v]) => `${k}=${v}`), process.execPath, join(ROOT, 'bin', 'notify-scripts.js')]
    .map(quoteWord)
    .join(' ');
  const shared: NodeJS.ProcessEnv = {
    ...env,
    NOTIFY_DATA_DIR: DIRS.data,
    NOTIFY_SOCKET: BOT_SOCKET,
    NOTIFY_GATEWAY_SOCKET: GATEWAY_SOCKET,
    NOTIFY_PUBLIC_URL: publicUrl,
    DESKTOP_JWT_SECRET: env.DESKTOP_JWT_SECRET ?? secrets.DESKTOP_JWT_SECRET,
    // The bot's /status and the dashboard's "My scripts" run the demo analyst's scripts so.
    NOTIFY_SCRIPTS_COMMAND: env.NOTIFY_SCRIPTS_COMMAND ?? scriptsCommand,
  };

  let issuer = env.OIDC_ISSUER ?? 'https://accounts.google.com';
  if (!realOidc) {
    issuer = `http://127.0.0.1:${oidc.port}`;
    const c = startChild('oidc', 'dist/src/dev/localOidc.js', {
      ...env,
      FIRST_RUN_OIDC_PORT: String(oidc.port),
      FIRST_RUN_OIDC_CLIENT_ID: OIDC_CLIENT_ID,
      FIRST_RUN_OIDC_CLIENT_SECRET: secrets.FIRST_RUN_OIDC_CLIENT_SECRET,
      FIRST_RUN_REDIRECT_URI: `${publicUrl}/auth/callback`,
      FIRST_RUN_EMAIL: email,
    });
    await waitReady(c, 'OpenID configuration', { url: `${issuer}/.well-known/openid-configuration` });
  }

  let chatUrl = '';
  if (!realTelegram) {
    chatUrl = `http://127.0.0.1:${chat.port}/`;
    const c = startChild('telegram', 'dist/src/dev/telegramStandIn.js', {
      ...env,
      FIRST_RUN_TELEGRAM_PORT: String(telegram.port),
      FIRST_RUN_CHAT_PORT: String(chat.port),
      FIRST_RUN_TELEGRAM_TOKEN: STAND_IN_TOKEN,
      FIRST_RUN_CHAT_ID: String(CHAT_ID),
      FIRST_RUN_USER: osUser,
    });
    await waitReady(c, 'chat page', { url: chatUrl });
  }

  const gw = startChild('gateway', 'bin/notify-gateway.js', {
    ...shared,
    NOTIFY_GATEWAY_HOST: '127.0.0.1',
    NOTIFY_GATEWAY_PORT: String(gateway.port),
  });
  await waitReady(gw, 'dispatch socket', { socketPath: GATEWAY_SOCKET, path: '/health' });

  if (realTelegram) await dropStandInLinks();
  writeFileSync(TELEGRAM_MODE, `${realTelegram ? 'real' : 'stand-in'}\n`);
  const bot = startChild('bot', 'bin/notify-bot.js', {
    ...shared,
    ...(realTelegram ? {} : { TELEGRAM_BOT_TOKEN: STAND_IN_TOKEN, TELEGRAM_API_ROOT: `http://127.0.0.1:${telegram.port}` }),
  });
  await waitReady(bot, 'send API socket', { socketPath: BOT_SOCKET, path: '/health' });
  if (realTelegram) watchTelegram();

  const dash = startChild('web', 'bin/notify-web.js', {
    ...shared,
    NOTIFY_WEB_HOST: env.NOTIFY_WEB_HOST ?? '127.0.0.1',
    NOTIFY_WEB_PORT: String(web.port),
    NOTIFY_SESSION_SECRET: env.NOTIFY_SESSION_SECRET ?? secrets.NOTIFY_SESSION_SECRET,
    ...(realOidc
      ? {}
      : {
          OIDC_ISSUER: issuer,
          OIDC_CLIENT_ID: OIDC_CLIENT_ID,
          OIDC_CLIENT_SECRET: secrets.FIRST_RUN_OIDC_CLIENT_SECRET,
          NOTIFY_ALLOWED_DOMAINS: email.split('@')[1] ?? 'example.com',
          NOTIFY_ALLOWED_EMAILS: '',
        }),
    // Every part runs as this account here, the analyst's own: it may sign in.
    NOTIFY_SIGN_IN_EXCEPTIONS: osUser,
  });
  await waitReady(dash, 'dashboard', { url: `http://127.0.0.1:${web.port}/healthz` });

  const who = realOidc ? `your Google account (its user name must be '${osUser}' for step 4 to reach you)` : email;
  const lines = [
    '',
    '==================================================================================',
    ` The notification stack is running on this machine (state in ${show(STATE)}/).`,
    ` 1. Open the dashboard ${publicUrl} and sign in as ${who}`,
    realTelegram
      ? ' 2. Open your bot in Telegram and send /start'
      : ` 2. Open the Telegram stand-in ${chatUrl} and send /start`,
    ' 3. Type the 6-digit code the bot answers into the dashboard card: it shows Linked',
    ' 4. In another terminal, run: npm run first-run:notify',
    `    (the example scripts in ${show(join(DIRS.home, 'user', 'notifications'))}/ run; their alerts arrive in the chat)`,
    ` Ctrl-C stops everything. Logs: ${show(DIRS.logs)}/`,
    '==================================================================================',
    '',
  ];
  console.log(lines.join('\n'));
}

// ---------------------------------------------------------------------------------------
// npm run first-run:notify

function notify(args: string[]): void {
  if (!existsSync(BOT_SOCKET)) fail(`${show(BOT_SOCKET)} does not exist: start the stack with npm start first (in another terminal)`);
  prepareHome(true);
  const vars = { HOME: DIRS.home, NOTIFY_SOCKET: BOT_SOCKET, ...scriptEnv() };
  console.log(`Running the demo analyst's scripts, as: ${Object.entries(vars).map(([k, v]) => `${k}=${quoteWord(show(v))}`).join(' ')} npx notify-runner ${args.join(' ')}`.trim());
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'notify-runner.js'), ...args], { cwd: DIRS.home, env: { ...env, ...vars }, stdio: 'inherit' });
  if (r.status === 0) {
    console.log(
      `\nDone: look at the chat. The runner log is ${show(join(DIRS.home, '.notifications', 'logs', 'runner.log'))}.` +
        '\nRun it again and the cooldowns hold the repeats (that is their job); add --force to send anyway.',
    );
  }
  process.exit(r.status ?? 1);
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'notify') notify(rest);
else if (command === undefined || command === 'start') {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void shutdown(0));
  start().catch(async (err: unknown) => {
    console.error(`first-run: ${err instanceof Error ? err.stack : String(err)}`);
    await shutdown(1);
  });
} else if (command === '--help' || command === '-h') {
  console.log('Usage: npm start   (node scripts/first-run.mjs)       the whole stack on this machine\n       npm run first-run:notify [-- notify-runner options]   run the demo scripts');
} else fail(`unknown command '${command}' (try --help)`);
