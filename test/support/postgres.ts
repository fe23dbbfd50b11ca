/**
 * A real PostgreSQL server for tests, from Debian's `postgresql` packages: `initdb` into a
 * temporary directory owned by an unprivileged account, listening only on a unix socket in
 * that directory (no TCP), started and stopped by the test and removed afterwards.
 *
 * The server runs as the system account `postgres` when it exists (the Debian package
 * creates it); otherwise a uniquely named account is created for the run and removed.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, before } from 'node:test';

/** Where Debian installs the server binaries (the newest version present). */
export function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

/** Why PostgreSQL tests cannot run here, or null when they can. */
export function postgresUnavailable(): string | null {
  if (!postgresBinDir()) return 'PostgreSQL server binaries not installed (Debian package postgresql)';
  if (process.getuid?.() !== 0) return 'starting a test PostgreSQL needs root (to run it as an unprivileged account)';
  return null;
}

function accountExists(name: string): boolean {
  try {
    execFileSync('getent', ['passwd', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function uidGid(name: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** A running test server. */
export class TestPostgres {
  private server: ChildProcess | null = null;
  private createdAccount: string | null = null;
  readonly dir: string;
  readonly dataDir: string;
  private readonly account: string;
  private readonly bin: string;
  private readonly ids: { uid: number; gid: number };

  /** fsync on (a benchmark measuring durable commits), or off (tests: faster, same behaviour). */
  private durable = false;

  private constructor() {
    const bin = postgresBinDir();
    if (!bin) throw new Error('PostgreSQL is not installed');
    this.bin = bin;
    this.dir = mkdtempSync(join(tmpdir(), 'notify-pg-'));
    this.dataDir = join(this.dir, 'data');
    if (accountExists('postgres')) {
      this.account = 'postgres';
    } else {
      this.account = `notifypg${randomBytes(4).toString('hex')}`;
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', this.account]);
      this.createdAccount = this.account;
    }
    this.ids = uidGid(this.account);
    chownSync(this.dir, this.ids.uid, this.ids.gid);
  }

  /** Initialises a cluster in a new temporary directory and starts it. */
  static async start(opts: { durable?: boolean } = {}): Promise<TestPostgres> {
    const pg = new TestPostgres();
    pg.durable = opts.durable ?? false;
    try {
      pg.asAccount(join(pg.bin, 'initdb'), ['-D', pg.dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
      await pg.startServer();
      return pg;
    } catch (err) {
      await pg.cleanup();
      throw err;
    }
  }

  /** Runs a server program as the account (spawned with its uid, so signals reach it directly). */
  private asAccount(cmd: string, args: string[]): void {
    execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...this.ids, cwd: this.dir });
  }

  /** The server's major version (its directory under /usr/lib/postgresql). */
  get version(): string {
    return this.bin.split('/').slice(-2, -1)[0] ?? '?';
  }

  /** The libpq URL of the server's `postgres` database (unix socket, no password). */
  get url(): string {
    return this.urlFor('postgres');
  }

  /** The libpq URL of one database on this server. */
  urlFor(database: string): string {
    return `postgres://postgres@/${database}?host=${encodeURIComponent(this.dir)}`;
  }

  /** Creates a fresh database and returns its URL (one per test keeps tests apart). */
  async createDatabase(): Promise<string> {
    const name = `t_${randomBytes(6).toString('hex')}`;
    execFileSync(join(this.bin, 'psql'), ['-h', this.dir, '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-q', '-c', `CREATE DATABASE ${name}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    return this.urlFor(name);
  }

  /** Starts the server (again, after stop()); resolves when it accepts connections. */
  async startServer(): Promise<void> {
    if (this.server) return;
    const server = spawn(join(this.bin, 'postgres'), ['-D', this.dataDir, '-k', this.dir, '-c', 'listen_addresses=', '-c', `fsync=${this.durable ? 'on' : 'off'}`, '-c', 'max_connections=200'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...this.ids,
      cwd: this.dir,
    });
    let stderr = '';
    server.stderr?.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString('utf8')).slice(-4000);
    });
    this.server = server;
    for (;;) {
      if (server.exitCode !== null) throw new Error(`PostgreSQL exited at start:\n${stderr}`);
      try {
        execFileSync(join(this.bin, 'pg_isready'), ['-h', this.dir, '-q', '-t', '5'], { stdio: 'ignore' });
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Stops the server (fast shutdown: connections are cut, as when a database restarts). */
  async stopServer(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    if (server.exitCode === null) {
      const exited = once(server, 'exit');
      // SIGINT is the server's "fast" shutdown.
      server.kill('SIGINT');
      await exited;
    }
  }

  /** Stops the server and removes its directory and any account created for it. */
  async cleanup(): Promise<void> {
    await this.stopServer();
    rmSync(this.dir, { recursive: true, force: true });
    if (this.createdAccount) {
      try {
        execFileSync('userdel', [this.createdAccount], { stdio: 'ignore' });
      } catch {
        // Already gone.
      }
      this.createdAccount = null;
    }
  }
}

/**
 * One test PostgreSQL for a test file: started before its tests and removed after them
 * (node:test's file-level hooks). `skip` is why it cannot run here, for the suite's skip.
 */
export function postgresForFile(): { skip: string | null; server: () => TestPostgres } {
  const skip = postgresUnavailable();
  let pg: TestPostgres | undefined;
  before(async () => {
    if (!skip) pg = await TestPostgres.start();
  });
  after(async () => {
    await pg?.cleanup();
  });
  return {
    skip,
    server: () => {
      if (!pg) throw new Error('the test PostgreSQL is not running (used outside the file\'s tests)');
      return pg;
    },
  };
}
