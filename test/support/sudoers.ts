/**
 * Test sudoers rules in /etc/sudoers.d, put in place whole: sudo and `visudo -c` read every
 * file there, and a rule half-written by one test file must never fail another's check.
 */
import { renameSync, writeFileSync } from 'node:fs';

/** Writes `rule` to `path` atomically (sudo skips names with a dot, so the draft is never read). */
export function installSudoersRule(path: string, rule: string): void {
  const draft = `${path}.draft`;
  writeFileSync(draft, rule, { mode: 0o440 });
  renameSync(draft, path);
}
