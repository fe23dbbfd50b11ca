/**
 * deploy/: install.sh into a temporary root (twice: the second run must change nothing),
 * with service accounts and groups of test-unique names that are removed afterwards; the
 * installed units through systemd-analyze, the sudoers rule through visudo and through
 * sudo itself, add-analyst.sh on a real account, and shellcheck on every shell script.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { launcherNodeArgs } from './support/botHarness.js';
import { installSudoersRule } from './support/sudoers.js';

const ROOT = process.env.NOTIFY_PROJECT_ROOT ?? fileURLToPath(new URL('../..', import.meta.url));
const IS_ROOT = process.getuid?.() === 0;
const PROGRAMS = ['notify-bot', 'notify-web', 'notify-gateway', 'notify-runner', 'notify-scripts', 'notify'];
const SERVICES = ['notify-bot', 'notify-web', 'notify-gateway'];

// Test-unique account and group names (install.sh takes them as options).
const TAG = `t${process.pid.toString(36)}${Date.now().toString(36).slice(-3)}`;
const N = {
  bot: `${TAG}-bot`,
  web: `${TAG}-web`,
  gateway: `${TAG}-gw`,
  data: `${TAG}-data`,
  analysts: `${TAG}-ana`,
  dispatch: `${TAG}-disp`,
  alice: `${TAG}-alice`,
  bob: `${TAG}-bob`,
};
const NAME_OPTIONS = [
  ['--bot-user', N.bot],
  ['--web-user', N.web],
  ['--gateway-user', N.gateway],
  ['--data-group', N.data],
  ['--analyst-group', N.analysts],
  ['--dispatch-group', N.dispatch],
].flat();

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function sh(cmd: string, args: string[], opts: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, ...opts });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a command that must succeed; the failure message carries its output. */
function must(cmd: string, args: string[], opts: { input?: string; cwd?: string } = {}): Run {
  const r = sh(cmd, args, opts);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

function has(tool: string): boolean {
  return sh('sh', ['-c', `command -v ${tool}`]).status === 0;
}

/** Account commands may meet another test's lock on /etc/passwd: try again a little later. */
function accountCmd(args: string[]): Run {
  let r: Run = { status: 1, stdout: '', stderr: '' };
  for (let i = 0; i < 10; i++) {
    r = sh(args[0]!, args.slice(1));
    if (r.status === 0 || !/lock/i.test(r.stderr)) return r;
    spawnSync('sleep', ['1']);
  }
  return r;
}

function groupsOf(user: string): string[] {
  return must('id', ['-nG', user]).stdout.trim().split(/\s+/);
}

/** Mode (octal string), owner and group names of a path. */
function attrs(path: string): string {
  const r = must('stat', ['-c', '%a %U:%G', path]);
  return r.stdout.trim();
}

/** Every entry under `dir` with type, mode, ownership, size, mtime and content hash. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const path = join(dir, rel);
    const st = lstatSync(path);
    const head = `${rel || '.'} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.mtimeMs}`;
    if (st.isSymbolicLink()) out.push(`${head} -> ${readlinkSync(path)}`);
    else if (st.isDirectory()) {
      out.push(`${head} dir`);
      for (const name of readdirSync(path).sort()) walk(rel ? join(rel, name) : name);
    } else out.push(`${head} ${st.size} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`);
  };
  walk('');
  return out;
}

/** Lines in one listing and not the other, for a readable failure. */
function listingDiff(a: string[], b: string[]): string[] {
  const sa = new Set(a);
  const sb = new Set(b);
  return [...a.filter((l) => !sb.has(l)).map((l) => `- ${l}`), ...b.filter((l) => !sa.has(l)).map((l) => `+ ${l}`)];
}

/** The directives of a unit file: `Key` -> every value it is given. */
function unitDirectives(path: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    map.set(key, [...(map.get(key) ?? []), line.slice(eq + 1)]);
  }
  return map;
}

void describe('deploy/install.sh into a temporary root', { skip: IS_ROOT ? false : 'needs root (accounts, ownership, sudo)' }, () => {
  let work: string;
  let source: string;
  let root: string;
  let first: Run;
  let second: Run;
  let firstListing: string[];
  let secondListing: string[];
  const sudoersTest = `/etc/sudoers.d/${TAG}-notify-test`;

  function install(target: string, extra: string[] = [], input?: string): Run {
    return sh('bash', [join(source, 'deploy', 'install.sh'), '--root', target, '--source', source, ...NAME_OPTIONS, ...extra], {
      input,
    });
  }
  const r = (path: string): string => join(root, path);

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'notify-deploy-'));
    // The test's analysts live in here (homes, the sudo stub): they must get through.
    chmodSync(work, 0o755);
    // A snapshot of the built checkout, so a build running meanwhile cannot change the
    // sources between the two runs.
    source = join(work, 'source');
    must('mkdir', [source]);
    const parts = ['package.json', 'package-lock.json', 'bin', 'dist/src', 'docs', 'examples', 'deploy', 'node_modules'];
    for (const part of parts) assert.ok(existsSync(join(ROOT, part)), `${part} is missing: run npm ci && npm run build first`);
    must('cp', ['-a', '--parents', ...parts, source], { cwd: ROOT });

    root = join(work, 'root');
    must('mkdir', [root]);
    first = install(root);
    assert.equal(first.status, 0, `first install failed:\n${first.stdout}\n${first.stderr}`);
    firstListing = listing(root);
    second = install(root);
    assert.equal(second.status, 0, `second install failed:\n${second.stdout}\n${second.stderr}`);
    secondListing = listing(root);
  });

  after(() => {
    rmSync(sudoersTest, { force: true });
    for (const user of [N.alice, N.bob, N.bot, N.web, N.gateway]) {
      if (sh('getent', ['passwd', user]).status === 0) accountCmd(['userdel', user]);
    }
    for (const group of [N.alice, N.bob, N.data, N.analysts, N.dispatch]) {
      if (sh('getent', ['group', group]).status === 0) accountCmd(['groupdel', group]);
    }
    if (work) rmSync(work, { recursive: true, force: true });
    const left = sh('sh', ['-c', `getent passwd | grep '^${TAG}-'; getent group | grep '^${TAG}-'`]).stdout;
    assert.equal(left, '', `accounts left behind:\n${left}`);
  });

  void test('the first run installs everything and, with no systemd to call, says what it would run', () => {
    assert.match(first.stdout, /^changed: \/opt\/notify: installed from /m);
    assert.match(first.stdout, /^would run: systemctl daemon-reload$/m);
    assert.match(first.stdout, /^would run: systemctl enable --quiet notify-bot notify-web notify-gateway$/m);
    // The environment file is new and holds no secrets yet: nothing is (re)started.
    assert.match(first.stdout, /^next: fill in \/etc\/notify\/notify\.env/m);
    assert.doesNotMatch(first.stdout, /would run: systemctl restart/);
  });

  void test('the second run changes nothing, and says so', () => {
    assert.equal(second.stdout.trim(), 'nothing changed', second.stdout);
    assert.equal(second.stderr, '');
    assert.deepEqual(listingDiff(firstListing, secondListing), []);
  });

  void test('creates the service accounts and groups the units name', () => {
    assert.equal(must('id', ['-gn', N.bot]).stdout.trim(), N.data);
    assert.deepEqual(groupsOf(N.bot).sort(), [N.data, N.analysts, N.dispatch].sort());
    assert.equal(must('id', ['-gn', N.web]).stdout.trim(), N.data);
    assert.deepEqual(groupsOf(N.web).sort(), [N.data, N.analysts].sort());
    assert.equal(must('id', ['-gn', N.gateway]).stdout.trim(), N.dispatch);
    assert.deepEqual(groupsOf(N.gateway).sort(), [N.dispatch, N.data].sort());
    for (const user of [N.bot, N.web, N.gateway]) {
      const entry = must('getent', ['passwd', user]).stdout.trim().split(':');
      assert.equal(entry[6], '/usr/sbin/nologin', `${user} can log in`);
      assert.ok(Number(entry[2]) < 1000, `${user} is not a system account`);
    }
  });

  void test('lays out the tree with the owners and modes of the design', () => {
    const expected: [string, string][] = [
      ['/opt/notify', '755 root:root'],
      ['/opt/notify/bin/notify-bot.js', '755 root:root'],
      ['/opt/notify/dist/src/web/static/dashboard.js', '644 root:root'],
      ['/opt/notify/docs/operations.md', '644 root:root'],
      ['/usr/local/sbin/notify-add-analyst', '755 root:root'],
      ['/etc/systemd/system/notify-bot.service', '644 root:root'],
      ['/etc/systemd/system/notify-web.service', '644 root:root'],
      ['/etc/systemd/system/notify-gateway.service', '644 root:root'],
      ['/etc/sudoers.d/notify', '440 root:root'],
      ['/etc/logrotate.d/notify', '644 root:root'],
      ['/etc/notify', `750 root:${N.data}`],
      ['/etc/notify/notify.env', `640 root:${N.data}`],
      ['/data/notifications', `770 ${N.bot}:${N.data}`],
      ['/data/docs', '755 root:root'],
      ['/data/docs/notifications.md', '644 root:root'],
      ['/data/docs/examples/notifications', '755 root:root'],
      ['/data/docs/examples/notifications/revenue_drop.py', '644 root:root'],
      ['/data/docs/examples/notifications/metric_report.py', '644 root:root'],
      ['/data/docs/examples/notifications/data_freshness.py', '644 root:root'],
      ...PROGRAMS.map((p): [string, string] => [`/usr/local/bin/${p}`, '755 root:root']),
    ];
    for (const [path, want] of expected) {
      assert.ok(existsSync(r(path)), `${path} was not installed`);
      assert.equal(attrs(r(path)), want, `${path}`);
    }
    assert.equal(readFileSync(r('/etc/notify/notify.env'), 'utf8'), readFileSync(join(source, 'deploy/notify.env.example'), 'utf8'));
    assert.equal(readFileSync(r('/data/docs/notifications.md'), 'utf8'), readFileSync(join(source, 'docs/notifications.md'), 'utf8'));
    assert.deepEqual(readdirSync(r('/data/notifications')), [], 'the data directory should start empty');
  });

  void test('the package in /opt/notify is root-owned, writable by root alone, and runs on its own', () => {
    const loose = must('find', [r('/opt/notify'), '(', '!', '-uid', '0', '-o', '!', '-gid', '0', '-o', '(', '!', '-type', 'l', '-perm', '/022', ')', ')', '-print']).stdout;
    assert.equal(loose, '', `not root-owned or writable by others:\n${loose.slice(0, 2000)}`);
    for (const p of PROGRAMS) assert.ok(existsSync(r(`/opt/notify/bin/${p}.js`)), `bin/${p}.js missing`);
    assert.equal(existsSync(r('/opt/notify/dist/test')), false, 'the tests were installed');
    assert.equal(existsSync(r('/opt/notify/src')), false, 'the sources were installed: the package must run from the build output');
    // The script contract's module loads zod from /opt/notify/node_modules: the tree is complete.
    must(process.execPath, [
      '--input-type=module',
      '-e',
      'const m = await import(process.argv.at(-1)); if (!m.ScriptOutputSchema) process.exit(3);',
      r('/opt/notify/dist/src/shared/contract.js'),
    ]);
  });

  void test('the installed dashboard starts from the package alone and serves its assets', async () => {
    const data = join(work, 'web-data');
    /** Starts the installed notify-web on a free port; 'taken' when another process took the port first. */
    const startWeb = async (): Promise<{ web: ChildProcess; port: number; output: () => string; state: 'ready' | 'taken' }> => {
      const probe = createServer().listen(0, '127.0.0.1');
      await once(probe, 'listening');
      const port = (probe.address() as { port: number }).port;
      await new Promise((resolve) => probe.close(resolve));
      const web = spawn(process.execPath, [r('/opt/notify/bin/notify-web.js')], {
        cwd: '/',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH,
          NOTIFY_DATA_DIR: data,
          NOTIFY_WEB_PORT: String(port),
          OIDC_ISSUER: 'http://127.0.0.1:9/unused',
          OIDC_CLIENT_ID: 'deploy-test',
          NOTIFY_SESSION_SECRET: 'x'.repeat(40),
          NOTIFY_ALLOWED_DOMAINS: 'example.com',
        },
      });
      let output = '';
      web.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
      web.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
      // A bound for a hang (a loaded machine takes seconds to start it), not a speed.
      const state = await new Promise<'ready' | 'taken' | 'exited' | 'timeout'>((resolve) => {
        const timer = setTimeout(() => resolve('timeout'), 120_000);
        const check = (): void => {
          if (output.includes('notify-web ready')) resolve('ready');
          else if (/cannot listen on .*EADDRINUSE/.test(output)) resolve('taken');
          else return;
          clearTimeout(timer);
        };
        web.stdout.on('data', check);
        web.stderr.on('data', check);
        web.once('exit', () => {
          clearTimeout(timer);
          check();
          resolve('exited');
        });
      });
      if (state === 'ready' || state === 'taken') return { web, port, output: () => output, state };
      web.kill('SIGKILL');
      assert.fail(`the installed notify-web did not start (${state}):\n${output}`);
    };
    // The free port found is free no more when another program takes it meanwhile: try another.
    let started = await startWeb();
    for (let i = 0; i < 5 && started.state === 'taken'; i++) {
      started.web.kill('SIGKILL');
      started = await startWeb();
    }
    const { web, port, output } = started;
    try {
      assert.equal(started.state, 'ready', `the installed notify-web did not start:\n${output()}`);
      for (const name of ['api.js', 'dashboard.js', 'dashboard.css']) {
        const res = await fetch(`http://127.0.0.1:${port}/static/${name}`, { signal: AbortSignal.timeout(60_000) });
        assert.equal(res.status, 200, `/static/${name} from the installed tree`);
        assert.equal(await res.text(), readFileSync(join(ROOT, 'src/web/static', name), 'utf8'), `/static/${name} is not the source's`);
      }
    } finally {
      if (web.exitCode === null && web.signalCode === null) {
        const exited = once(web, 'exit');
        web.kill('SIGTERM');
        const timer = setTimeout(() => web.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      }
    }
  });

  void test('each program is a wrapper that runs node, with the flags its launcher asks for, on /opt/notify/bin/<program>.js', () => {
    for (const p of PROGRAMS) {
      const text = readFileSync(r(`/usr/local/bin/${p}`), 'utf8');
      assert.match(text, /^#!\/bin\/sh\n/);
      const flags = launcherNodeArgs(join(ROOT, 'bin', `${p}.js`)).map((f) => ` ${f}`).join('');
      assert.match(text, new RegExp(`^exec /\\S*node${flags} /opt/notify/bin/${p}\\.js "\\$@"$`, 'm'), `${p} (with its launcher's node flags${flags}):\n${text}`);
    }
  });

  void test('the installed units pass systemd-analyze verify (their ExecStart exists in the root)', (t) => {
    if (!has('systemd-analyze')) return t.skip('systemd-analyze is not installed');
    for (const svc of SERVICES) {
      const v = sh('systemd-analyze', ['verify', `--root=${root}`, '--recursive-errors=no', '--man=no', `${svc}.service`]);
      assert.equal(v.status, 0, `${svc}.service: ${v.stderr}${v.stdout}`);
      assert.equal(v.stderr.trim(), '', `${svc}.service: ${v.stderr}`);
    }
    // The check bites: without its program the unit fails.
    const wrapper = r('/usr/local/bin/notify-web');
    renameSync(wrapper, `${wrapper}.away`);
    try {
      const v = sh('systemd-analyze', ['verify', `--root=${root}`, '--recursive-errors=no', '--man=no', 'notify-web.service']);
      assert.notEqual(v.status, 0);
      assert.match(v.stderr, /notify-web.*is not executable/);
    } finally {
      renameSync(`${wrapper}.away`, wrapper);
    }
  });

  void test("the units' exposure stays where the design puts it", (t) => {
    if (!has('systemd-analyze')) return t.skip('systemd-analyze is not installed');
    // The bot and the dashboard run sudo (no NoNewPrivileges, no ProtectHome); the gateway
    // gets the full sandbox.
    for (const [svc, threshold] of [['notify-bot', 70], ['notify-web', 70], ['notify-gateway', 20]] as const) {
      const s = sh('systemd-analyze', ['security', '--offline=yes', `--root=${root}`, `--threshold=${threshold}`, `${svc}.service`]);
      const overall = /Overall exposure level for .*/.exec(s.stdout)?.[0] ?? s.stdout.slice(-300);
      assert.equal(s.status, 0, `${svc}: ${overall} (threshold ${threshold / 10})`);
    }
  });

  void test('each unit gives its service the accounts, sockets and sandbox of the design', () => {
    const bot = unitDirectives(r('/etc/systemd/system/notify-bot.service'));
    const web = unitDirectives(r('/etc/systemd/system/notify-web.service'));
    const gw = unitDirectives(r('/etc/systemd/system/notify-gateway.service'));
    for (const [u, user] of [[bot, N.bot], [web, N.web], [gw, N.gateway]] as const) {
      assert.deepEqual(u.get('User'), [user]);
      assert.deepEqual(u.get('EnvironmentFile'), ['/etc/notify/notify.env']);
      assert.deepEqual(u.get('Restart'), ['always']);
      assert.deepEqual(u.get('PrivateTmp'), ['yes']);
      assert.deepEqual(u.get('UMask'), ['0007']);
    }
    assert.deepEqual(bot.get('Group'), [N.data]);
    assert.deepEqual(bot.get('SupplementaryGroups'), [`${N.analysts} ${N.dispatch}`]);
    assert.deepEqual(bot.get('RuntimeDirectory'), ['notify-bot']);
    assert.deepEqual(bot.get('RuntimeDirectoryMode'), ['0755']);
    assert.ok(bot.get('Environment')!.includes(`NOTIFY_SOCKET_GROUP=${N.analysts}`));
    assert.ok(bot.get('Environment')!.includes(`NOTIFY_TRUSTED_USERS=${N.web}`));
    assert.deepEqual(bot.get('ExecStart'), ['/usr/local/bin/notify-bot']);
    // The services call the helper exactly as the sudoers rule allows it.
    const sudoers = readFileSync(r('/etc/sudoers.d/notify'), 'utf8');
    assert.match(sudoers, /^Cmnd_Alias\s+NOTIFY_HELPER = \/usr\/local\/bin\/notify-scripts$/m);
    for (const u of [bot, web]) {
      assert.ok(u.get('Environment')!.includes('"NOTIFY_SCRIPTS_COMMAND=sudo -n -u {user} /usr/local/bin/notify-scripts"'));
    }
    assert.deepEqual(web.get('Group'), [N.data]);
    assert.deepEqual(web.get('SupplementaryGroups'), [N.analysts]);
    assert.deepEqual(gw.get('Group'), [N.dispatch]);
    assert.deepEqual(gw.get('RuntimeDirectory'), ['ws-gateway']);
    assert.deepEqual(gw.get('RuntimeDirectoryMode'), ['0750']);
    assert.ok(gw.get('Environment')!.includes(`NOTIFY_GATEWAY_SOCKET_GROUP=${N.dispatch}`));
    // sudo needs set-uid and the analysts' homes: the two sudo users cannot have these ...
    for (const u of [bot, web]) {
      for (const key of ['NoNewPrivileges', 'ProtectHome', 'RestrictSUIDSGID', 'CapabilityBoundingSet', 'SystemCallFilter']) {
        assert.equal(u.get(key), undefined, `${key} would stop sudo or the analyst's script`);
      }
      assert.deepEqual(u.get('ProtectSystem'), ['full']);
    }
    // ... and the gateway, which runs nobody's code, has them all.
    for (const [key, value] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['RestrictSUIDSGID', 'yes'],
      ['CapabilityBoundingSet', ''],
      ['SystemCallFilter', '@system-service'],
    ]) {
      assert.deepEqual(gw.get(key!), [value], `gateway ${key}`);
    }
  });

  void test('the sudoers rule passes visudo -cf, and visudo catches a broken one', () => {
    must('visudo', ['-cf', r('/etc/sudoers.d/notify')]);
    const broken = join(work, 'broken-sudoers');
    writeFileSync(broken, readFileSync(r('/etc/sudoers.d/notify'), 'utf8').replace('NOPASSWD:', 'NOPASWD:'));
    assert.notEqual(sh('visudo', ['-cf', broken]).status, 0);
  });

  void test('add-analyst.sh prepares an account and prints its crontab line; a second run changes nothing', () => {
    const homes = join(work, 'home');
    must('mkdir', [homes]);
    for (const user of [N.alice, N.bob]) {
      const c = accountCmd(['useradd', '--create-home', '--home-dir', join(homes, user), '--shell', '/bin/sh', user]);
      assert.equal(c.status, 0, c.stderr);
    }
    const tool = r('/usr/local/sbin/notify-add-analyst');
    assert.match(readFileSync(tool, 'utf8'), new RegExp(`^DEFAULT_GROUP=${N.analysts}$`, 'm'), 'install.sh did not set its analysts group');
    const once = must(tool, [N.alice]);
    assert.match(once.stdout, new RegExp(`^changed: ${N.alice} added to group ${N.analysts}$`, 'm'));
    assert.ok(groupsOf(N.alice).includes(N.analysts));
    const aliceHome = join(homes, N.alice);
    for (const dir of ['.notifications', '.notifications/state', '.notifications/logs', 'user/notifications']) {
      assert.equal(attrs(join(aliceHome, dir)), `700 ${N.alice}:${N.alice}`, dir);
    }
    const cron = '*/5 * * * * /usr/local/bin/notify-runner >> "$HOME/.notifications/logs/cron.log" 2>&1';
    assert.ok(once.stdout.split('\n').includes(cron), `no crontab line in:\n${once.stdout}`);
    const twice = must(tool, [N.alice]);
    assert.match(twice.stdout, /^nothing changed$/m);
    assert.ok(twice.stdout.split('\n').includes(cron));
  });

  void test('add-analyst.sh refuses a symlink planted in the home instead of following it as root', () => {
    const bobHome = join(work, 'home', N.bob);
    const target = join(work, 'not-bobs');
    must('mkdir', [target]);
    symlinkSync(target, join(bobHome, '.notifications'));
    const res = sh(r('/usr/local/sbin/notify-add-analyst'), [N.bob]);
    assert.equal(res.status, 1);
    assert.match(res.stderr, /is a symbolic link/);
    assert.deepEqual(readdirSync(target), []);
    assert.equal(statSync(target).uid, 0);
    assert.ok(!groupsOf(N.bob).includes(N.analysts), 'the refused account was added to the analysts group anyway');

    // A directory of root's in the home (an older setup script's): refused, not chowned.
    rmSync(join(bobHome, '.notifications'));
    must('mkdir', [join(bobHome, '.notifications')]);
    const owned = sh(r('/usr/local/sbin/notify-add-analyst'), [N.bob]);
    assert.equal(owned.status, 1);
    assert.match(owned.stderr, /\.notifications belongs to root, not .*-bob; check it, give it to/);
    assert.equal(statSync(join(bobHome, '.notifications')).uid, 0);
    rmSync(join(bobHome, '.notifications'), { recursive: true });
  });

  void test('sudo lets only the bot and the dashboard run only the helper, only as analysts, with no environment', (t) => {
    if (!has('sudo') || !has('runuser')) return t.skip('sudo or runuser is not installed');
    // The installed rule, with the helper's path pointed at a stub that reports how it ran.
    const stub = join(work, 'stub', 'notify-scripts');
    must('mkdir', [join(work, 'stub')]);
    writeFileSync(stub, '#!/bin/sh\necho "as=$(id -un) home=$HOME leak=${LEAK-none} args=$*"\n');
    chmodSync(stub, 0o755);
    const rule = readFileSync(r('/etc/sudoers.d/notify'), 'utf8').replaceAll('/usr/local/bin/notify-scripts', stub);
    installSudoersRule(sudoersTest, rule);
    const as = (caller: string, ...args: string[]): Run =>
      sh('runuser', ['-u', caller, '--', 'sudo', '-n', ...args], { env: { ...process.env, LEAK: 'from-the-service' } });

    for (const svc of [N.bot, N.web]) {
      const ok = as(svc, '-u', N.alice, stub, 'run', 'x.py');
      assert.equal(ok.status, 0, `${svc} could not run the helper as ${N.alice}: ${ok.stderr}`);
      assert.equal(ok.stdout.trim(), `as=${N.alice} home=${join(work, 'home', N.alice)} leak=none args=run x.py`);
    }
    const refused: [string, string[], string][] = [
      [N.bot, ['-u', N.bob, stub, 'list'], 'a user outside the analysts group'],
      [N.bot, ['-u', 'root', stub, 'list'], 'root'],
      [N.bot, ['-u', N.web, stub, 'list'], 'another service account (in the analysts group)'],
      [N.gateway, ['-u', N.alice, stub, 'list'], 'the gateway, which runs no scripts'],
      [N.alice, ['-u', N.alice, stub, 'list'], 'an analyst'],
      [N.bot, ['-u', N.alice, '/bin/sh', '-c', 'id'], 'another command'],
      [N.bot, ['LEAK=1', '-u', N.alice, stub, 'list'], 'setting a variable'],
      [N.bot, ['-E', '-u', N.alice, stub, 'list'], 'keeping the environment'],
    ];
    for (const [caller, args, what] of refused) {
      const res = as(caller, ...args);
      assert.notEqual(res.status, 0, `sudo allowed ${what}: ${caller} ${args.join(' ')} -> ${res.stdout}`);
      assert.equal(res.stdout, '');
    }
  });

  void test('the environment file is never overwritten; --env-updates sets only the given keys and never prints them', () => {
    const envFile = r('/etc/notify/notify.env');
    appendFileSync(envFile, 'NOTIFY_LOG_LEVEL=debug\n');
    const edited = readFileSync(envFile, 'utf8');
    const again = install(root);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(readFileSync(envFile, 'utf8'), edited, 'an operator edit was overwritten');

    const token = '123456789:AAH-secret-token-value-for-the-test_xyz';
    const input = `TELEGRAM_BOT_TOKEN=${token}\nOIDC_CLIENT_SECRET=\n# a comment\nDESKTOP_JWT_SECRET=abc123def456\n`;
    const upd = install(root, ['--env-updates', '-'], input);
    assert.equal(upd.status, 0, upd.stderr);
    assert.doesNotMatch(upd.stdout + upd.stderr, /secret-token|abc123def456/, 'a secret value was printed');
    assert.match(upd.stdout, /^changed: \/etc\/notify\/notify\.env: set TELEGRAM_BOT_TOKEN DESKTOP_JWT_SECRET$/m);
    assert.match(upd.stdout, /^would run: systemctl restart notify-bot notify-web notify-gateway$/m);
    const text = readFileSync(envFile, 'utf8');
    assert.match(text, new RegExp(`^TELEGRAM_BOT_TOKEN=${token}$`, 'm'));
    assert.match(text, /^DESKTOP_JWT_SECRET=abc123def456$/m);
    assert.match(text, /^OIDC_CLIENT_SECRET=$/m, 'an empty update must leave the value alone');
    assert.match(text, /^NOTIFY_LOG_LEVEL=debug$/m);
    assert.equal(text.match(/^TELEGRAM_BOT_TOKEN=/gm)?.length, 1);
    assert.equal(attrs(envFile), `640 root:${N.data}`);

    const same = install(root, ['--env-updates', '-'], input);
    assert.equal(same.stdout.trim(), 'nothing changed');
    const bad = install(root, ['--env-updates', '-'], "OIDC_CLIENT_SECRET=it's\n");
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /value of OIDC_CLIENT_SECRET contains a quote/);
    assert.doesNotMatch(bad.stderr, /it's/);
  });

  void test('a changed unit is replaced and only its service restarted', () => {
    const template = join(source, 'deploy/systemd/notify-gateway.service.in');
    const original = readFileSync(template, 'utf8');
    try {
      writeFileSync(template, `${original}# changed by the test\n`);
      const res = install(root);
      assert.equal(res.status, 0, res.stderr);
      assert.deepEqual(
        res.stdout.trim().split('\n'),
        [
          'changed: /etc/systemd/system/notify-gateway.service: updated',
          'would run: systemctl daemon-reload',
          'would run: systemctl enable --quiet notify-bot notify-web notify-gateway',
          'would run: systemctl restart notify-gateway',
          '1 change(s) made',
        ],
      );
    } finally {
      writeFileSync(template, original);
    }
    assert.match(install(root).stdout, /^would run: systemctl restart notify-gateway$/m);
  });

  void test('modes and owners someone loosened are put back', () => {
    chmodSync(r('/data/notifications'), 0o777);
    writeFileSync(r('/data/notifications/telegram_users.json'), '{}\n', { mode: 0o644 });
    chmodSync(r('/data/notifications/telegram_users.json'), 0o644);
    chmodSync(r('/opt/notify/package.json'), 0o666);
    chmodSync(r('/etc/notify/notify.env'), 0o644);
    const res = install(root);
    assert.equal(res.status, 0, res.stderr);
    assert.equal(attrs(r('/data/notifications')), `770 ${N.bot}:${N.data}`);
    assert.equal(attrs(r('/data/notifications/telegram_users.json')), `660 root:${N.data}`);
    assert.equal(attrs(r('/opt/notify/package.json')), '644 root:root');
    assert.equal(attrs(r('/etc/notify/notify.env')), `640 root:${N.data}`);
    assert.equal(install(root).stdout.trim(), 'nothing changed');
  });

  void test('a dry run into an empty root changes nothing and lists what it would do', () => {
    const empty = join(work, 'dry');
    must('mkdir', [empty]);
    const res = install(empty, ['--dry-run']);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /^would change: \/opt\/notify: installed from /m);
    assert.match(res.stdout, /^would change: \/etc\/sudoers\.d\/notify: installed$/m);
    assert.match(res.stdout, /^\d+ change\(s\) would be made$/m);
    const lines = res.stdout.split('\n').filter((l) => l.startsWith('would change:'));
    assert.deepEqual(lines.filter((l, i) => lines.indexOf(l) !== i), [], `a dry run announces a change twice:\n${res.stdout}`);
    assert.deepEqual(readdirSync(empty), []);
  });

  void test('a dry run works for a normal user whose PATH has no sbin directories', () => {
    const empty = join(work, 'dry-user');
    must('mkdir', [empty]);
    const res = sh('runuser', ['-u', 'nobody', '--', 'env', 'PATH=/usr/bin:/bin', 'bash', join(source, 'deploy', 'install.sh'), '--root', empty, '--source', source, '--dry-run', ...NAME_OPTIONS]);
    assert.equal(res.status, 0, `${res.stdout}\n${res.stderr}`);
    assert.doesNotMatch(res.stderr, /not installed/);
    assert.match(res.stdout, /change\(s\) would be made$/m);
  });

  void test('install.sh refuses a Node.js older than package.json\'s engines, naming both versions', () => {
    const fake = join(work, 'old-node');
    writeFileSync(fake, '#!/bin/sh\necho 20.18.1\n', { mode: 0o755 });
    const target = join(work, 'dry-old-node');
    must('mkdir', [target]);
    const res = install(target, ['--dry-run', '--node', fake]);
    assert.equal(res.status, 1, res.stdout);
    assert.match(res.stderr, /is Node\.js 20\.18\.1; this needs 20\.19 or newer/);
  });

  void test('--no-accounts with accounts that do not exist: warns, and still gets the modes right', () => {
    const bare = join(work, 'bare');
    must('mkdir', [bare]);
    const res = sh('bash', [
      join(source, 'deploy', 'install.sh'),
      '--root', bare, '--source', source, '--no-accounts',
      '--bot-user', `${TAG}-nobot`, '--data-group', `${TAG}-nodata`,
    ]);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stderr, new RegExp(`user ${TAG}-nobot does not exist: ownership left as it is`));
    assert.equal(sh('getent', ['passwd', `${TAG}-nobot`]).status, 2, '--no-accounts created an account');
    assert.equal(attrs(join(bare, 'data/notifications')), '770 root:root');
    assert.equal(attrs(join(bare, 'etc/notify/notify.env')), '640 root:root');
    rmSync(bare, { recursive: true, force: true });
  });

  void test('the nginx example passes nginx -t (with a throwaway certificate)', (t) => {
    if (!has('nginx') || !has('openssl')) return t.skip('nginx or openssl is not installed here');
    const dir = join(work, 'nginx');
    must('mkdir', [dir]);
    must('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=notify.example.com', '-days', '1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
    const site = readFileSync(join(ROOT, 'deploy/nginx/notify.conf.example'), 'utf8')
      .replace('/etc/letsencrypt/live/notify.example.com/fullchain.pem', join(dir, 'cert.pem'))
      .replace('/etc/letsencrypt/live/notify.example.com/privkey.pem', join(dir, 'key.pem'));
    // "http2 on;" is nginx 1.25.1's (Debian 13's nginx is 1.26, where the host test checks
    // the example verbatim); an older nginx here checks the rest.
    const version = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(sh('nginx', ['-v']).stderr);
    const modern = version !== null && Number(version[1]) * 1e6 + Number(version[2]) * 1e3 + Number(version[3]) >= 1_025_001;
    if (!modern) t.diagnostic(`nginx ${version?.slice(1).join('.') ?? '?'} predates "http2 on;": checked without that line`);
    writeFileSync(join(dir, 'site.conf'), modern ? site : site.replace(/^\s*http2 on;\n/m, ''));
    writeFileSync(
      join(dir, 'nginx.conf'),
      `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp {\n  access_log off;\n  include ${dir}/site.conf;\n}\n`,
    );
    const check = must('nginx', ['-t', '-c', join(dir, 'nginx.conf'), '-p', `${dir}/`]);
    assert.doesNotMatch(check.stderr, /\[warn\]/, `nginx -t warns about the example:\n${check.stderr}`);
  });

  void test('the logrotate rule passes logrotate --debug', (t) => {
    if (!has('logrotate')) return t.skip('logrotate is not installed here');
    must('logrotate', ['--debug', r('/etc/logrotate.d/notify')]);
  });

  void test('every shell script passes shellcheck: the deploy scripts and the installed wrappers', () => {
    assert.ok(has('shellcheck'), 'shellcheck is not installed (apt-get install shellcheck)');
    const scripts = readdirSync(join(ROOT, 'deploy'))
      .filter((f) => f.endsWith('.sh'))
      .map((f) => join(ROOT, 'deploy', f));
    assert.ok(scripts.length >= 2);
    const installed = [...PROGRAMS.map((p) => r(`/usr/local/bin/${p}`)), r('/usr/local/sbin/notify-add-analyst')];
    const res = sh('shellcheck', [...scripts, ...installed]);
    assert.equal(res.status, 0, res.stdout + res.stderr);
  });
});

void describe('the operators\' and analysts\' docs match what deploy/ does', () => {
  const ops = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
  const guide = readFileSync(join(ROOT, 'docs/notifications.md'), 'utf8');

  void test('every install.sh option the docs name exists', () => {
    const help = must('bash', [join(ROOT, 'deploy/install.sh'), '--help']).stdout;
    const named = new Set<string>();
    for (const line of ops.split('\n').filter((l) => l.includes('install.sh') || l.startsWith('| `--'))) {
      for (const m of line.matchAll(/`?(--[a-z][a-z-]+)/g)) named.add(m[1]!);
    }
    assert.ok(named.size >= 10, `found only ${[...named].join(' ')}`);
    for (const opt of named) assert.ok(help.includes(opt), `docs/operations.md names ${opt}, which install.sh --help does not list`);
  });

  void test('every deploy/ file the docs name exists', () => {
    for (const m of ops.matchAll(/`(deploy\/[A-Za-z0-9_./*-]+)`/g)) {
      const path = m[1]!;
      if (path.includes('*')) continue;
      assert.ok(existsSync(join(ROOT, path)), `docs/operations.md names ${path}, which does not exist`);
    }
  });

  void test("the README's layout names every folder: the top-level ones, src/'s and their subfolders", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const layout = /## Layout\n[\s\S]*?```\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const listed = new Set(layout.split('\n').map((l) => l.trim().split(/\s/, 1)[0]!));
    const files = must('git', ['-C', ROOT, 'ls-files']).stdout.split('\n').filter(Boolean);
    const folders = new Set<string>();
    for (const f of files) {
      const parts = f.split('/').slice(0, -1);
      if (parts.length >= 1) folders.add(`${parts[0]}/`);
      if (parts[0] === 'src' && parts.length >= 2) folders.add(`src/${parts[1]}/`);
      if (parts[0] === 'src' && parts.length >= 3) folders.add(`src/${parts[1]}/${parts[2]}/`);
    }
    assert.ok(folders.size >= 20, `found only ${[...folders].join(' ')}`);
    const missing = [...folders].filter((d) => !listed.has(d) && ![...listed].some((l) => l.startsWith(d)));
    assert.deepEqual(missing, [], 'folders the README\'s layout does not show');
  });

  void test('both guides give the crontab line add-analyst.sh prints', () => {
    const line = '*/5 * * * * /usr/local/bin/notify-runner >> "$HOME/.notifications/logs/cron.log" 2>&1';
    const script = readFileSync(join(ROOT, 'deploy/add-analyst.sh'), 'utf8');
    assert.match(script, /^line="\*\/5 \* \* \* \* \$runner >> \\"\\\$HOME\/\.notifications\/logs\/cron\.log\\" 2>&1"$/m);
    assert.ok(ops.includes(line), 'docs/operations.md');
    assert.ok(guide.includes(line), 'docs/notifications.md');
  });

  void test('the analysts\' guide lists every run outcome the runner records', () => {
    for (const outcome of ['sent', 'held_by_cooldown', 'nothing_to_send', 'failed', 'timed_out', 'invalid_output', 'delivery_failed']) {
      assert.ok(guide.includes(`| \`${outcome}\` |`), `outcome ${outcome} is not in the table`);
    }
  });

  void test('the environment template lists every variable an operator sets', () => {
    const template = readFileSync(join(ROOT, 'deploy/notify.env.example'), 'utf8');
    const operatorSets = [
      'TELEGRAM_BOT_TOKEN', 'TELEGRAM_API_ROOT', 'NOTIFY_DATA_DIR', 'NOTIFY_SOCKET', 'NOTIFY_GATEWAY_SOCKET',
      'NOTIFY_TRUSTED_USERS', 'NOTIFY_SOCKET_GROUP', 'NOTIFY_GATEWAY_SOCKET_GROUP', 'NOTIFY_ANALYST_GROUP',
      'NOTIFY_WEB_HOST', 'NOTIFY_WEB_PORT', 'NOTIFY_PUBLIC_URL', 'OIDC_ISSUER', 'OIDC_CLIENT_ID', 'OIDC_CLIENT_SECRET',
      'NOTIFY_ALLOWED_DOMAINS', 'NOTIFY_ALLOWED_EMAILS', 'NOTIFY_SESSION_SECRET', 'TELEGRAM_BOT_USERNAME',
      'NOTIFY_GATEWAY_HOST', 'NOTIFY_GATEWAY_PORT', 'DESKTOP_JWT_SECRET',
    ];
    for (const name of operatorSets) {
      assert.match(template, new RegExp(`^#?${name}=`, 'm'), `${name} is missing from deploy/notify.env.example`);
    }
    // Every line that sets a value is either a secret to fill in or commented out: an
    // empty value would hide the unit's own setting.
    for (const line of template.split('\n').filter((l) => /^[A-Z_]+=/.test(l))) {
      assert.match(line, /^[A-Z_]+=$/, `the template sets a value: ${line}`);
    }
  });
});
