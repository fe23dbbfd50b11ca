/**
 * Test sudoers rules in /etc/sudoers.d, put in place whole: sudo and `visudo -c` read every
 * file there, and a rule half-written by one test file must never fail another's check.
 */
import { execFileSync } from 'node:child_process';
import { renameSync, rmSync, writeFileSync } from 'node:fs';

/**
 * Checks `rule` with `visudo -cf` (this rule alone: a whole-system `visudo -c` also reads other
 * test files' rules, which come and go meanwhile) and writes it to `path` atomically (sudo
 * skips names with a dot, so the draft is never read). Throws, leaving nothing, when visudo refuses it.
 */
export function installSudoersRule(path: string, rule: string): void {
  const draft = `${path}.draft`;
  writeFileSync(draft, rule, { mode: 0o440 });
  try {
    execFileSync('visudo', ['-cf', draft], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    rmSync(draft, { force: true });
    throw err;
  }
  renameSync(draft, path);
}
