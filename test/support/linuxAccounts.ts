/**
 * Real Linux accounts and groups for tests that need the kernel to tell callers apart
 * (peer credentials on the send socket): unique names with a random tag, created with
 * useradd/groupadd and removed by cleanup(), even after a failure. Needs root.
 *
 *   const accounts = new LinuxAccounts();
 *   const alice = accounts.user('alice');        // notify-t-alice-1a2b3c
 *   const team = accounts.group('team', [alice]);
 *   const r = await accounts.run(alice, process.execPath, ['bin/notify.js', 'hi'], { env });
 *   accounts.cleanup();
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Can this process create accounts (root, with useradd, groupadd and runuser)? A reason when not. */
export function accountsUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to create Linux accounts';
  const tools = spawnSync('sh', ['-c', 'command -v useradd && command -v userdel && command -v groupadd && command -v groupdel && command -v gpasswd && command -v runuser'], { encoding: 'utf8' });
  return tools.status === 0 ? false : 'needs useradd, userdel, groupadd, groupdel, gpasswd and runuser';
}

/** What a command printed and how it ended. */
export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Accounts and groups created for one test file. */
export class LinuxAccounts {
  readonly tag = randomBytes(3).toString('hex');
  private readonly users: string[] = [];
  private readonly groups: string[] = [];

  /** Creates a system account `nt-<base>-<tag>` with its own group; returns its name. */
  user(base: string): string {
    const name = `nt-${base}-${this.tag}`;
    const r = spawnSync('useradd', ['--system', '-M', '-U', '-s', '/usr/sbin/nologin', name], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`useradd ${name} failed: ${r.stderr}`);
    this.users.push(name);
    return name;
  }

  /** Creates a person's login account `nt-<base>-<tag>` whose primary group is `group` (not listed as a member of it). */
  personInGroup(base: string, group: string): string {
    const name = `nt-${base}-${this.tag}`;
    const r = spawnSync('useradd', ['-M', '-N', '-g', group, '-s', '/bin/bash', name], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`useradd ${name} failed: ${r.stderr}`);
    this.users.push(name);
    return name;
  }

  /** Creates a person's login account `nt-<base>-<tag>` (uid in the login range) with this shell; returns its name. */
  person(base: string, shell = '/bin/bash'): string {
    const name = `nt-${base}-${this.tag}`;
    const r = spawnSync('useradd', ['-M', '-U', '-s', shell, name], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`useradd ${name} failed: ${r.stderr}`);
    this.users.push(name);
    return name;
  }

  /** Creates a group `nt-<base>-<tag>` with these members; returns its name. */
  group(base: string, members: readonly string[] = []): string {
    const name = `nt-${base}-${this.tag}`;
    const r = spawnSync('groupadd', ['--system', name], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`groupadd ${name} failed: ${r.stderr}`);
    this.groups.push(name);
    for (const m of members) this.addToGroup(m, name);
    return name;
  }

  /** Adds a user to a group. */
  addToGroup(user: string, group: string): void {
    const r = spawnSync('gpasswd', ['-a', user, group], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`gpasswd -a ${user} ${group} failed: ${r.stderr}`);
  }

  /** Runs a command as `user` (runuser, its groups as /etc/group says), with stdin if given. */
  run(user: string, cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = spawn('runuser', ['-u', user, '--', cmd, ...args], {
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
      child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${cmd} ${args.join(' ')} as ${user} did not finish within ${opts.timeoutMs ?? 60_000} ms\n${stdout}${stderr}`));
      }, opts.timeoutMs ?? 60_000);
      child.once('error', reject);
      child.once('close', (status) => {
        clearTimeout(timer);
        resolve({ status, stdout, stderr });
      });
      if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
    });
  }

  /** Removes every account and group created here. */
  cleanup(): void {
    for (const u of this.users.splice(0)) {
      spawnSync('userdel', [u]);
      spawnSync('groupdel', [u]);
    }
    for (const g of this.groups.splice(0)) spawnSync('groupdel', [g]);
  }
}
