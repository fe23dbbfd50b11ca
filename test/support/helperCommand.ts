/**
 * The `notify-scripts` command a test's service runs scripts with. Only the scripts meant
 * to hang get a short timeout; every other script gets the default, so that a slow Python
 * start on a loaded machine never turns a run that must succeed into a timeout.
 */
import { join } from 'node:path';

const ROOT = process.env.NOTIFY_PROJECT_ROOT ?? new URL('../../../', import.meta.url).pathname;

/** Timeout of the scripts meant to hang (and the kill grace after it). */
export const HANG_TIMEOUT = '1500ms';

/** The command template: HOME set, the helper run by this Node, `hanging` scripts cut short. */
export function helperCommand(home: string, hanging: readonly string[] = []): string {
  const helper = `${process.execPath} ${join(ROOT, 'bin', 'notify-scripts.js')}`;
  if (hanging.length === 0) return `env HOME=${home} ${helper}`;
  // A shell between env and the helper looks at the script name among the arguments.
  const cases = hanging.map((n) => n.replace(/[^A-Za-z0-9._-]/g, '')).join('|');
  const pick = `for a in "$@"; do case "$a" in ${cases}) export NOTIFY_SCRIPT_TIMEOUT=${HANG_TIMEOUT} NOTIFY_SCRIPT_KILL_GRACE=200ms;; esac; done; exec "$0" "$@"`;
  return `env HOME=${home} sh -c '${pick}' ${helper}`;
}
