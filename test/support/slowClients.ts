/**
 * Clients run as another Linux account (runuser, so the bot sees that uid on its socket):
 * a flood of slow requests that send headers and then trickle the body, and a reader of
 * what such a client prints (one JSON object a line).
 */
import { spawn } from 'node:child_process';

/**
 * Opens `count` connections, each sending headers of a large body and then one byte every
 * second; prints `{"settled": ...}` once every connection is either refused or has been open
 * a while, then `{"done": ...}` when all are closed, counting the answers by status.
 */
export const SLOW_CLIENT = `
import net from 'node:net';
const [socketPath, countText] = process.argv.slice(2);
const count = Number(countText);
const answers = {};
let closed = 0, settled = 0, printedSettled = false, openAtSettle = 0;
const live = new Set();
function settle() {
  settled += 1;
  if (settled === count && !printedSettled) {
    printedSettled = true;
    console.log(JSON.stringify({ settled: true, open: live.size, answers }));
  }
}
for (let i = 0; i < count; i += 1) {
  const s = net.connect(socketPath);
  let data = '';
  let settledThis = false;
  const once = () => { if (!settledThis) { settledThis = true; settle(); } };
  s.on('connect', () => {
    live.add(s);
    s.write('POST /send HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Type: application/json\\r\\nContent-Length: 100000\\r\\n\\r\\n{');
    const t = setInterval(() => s.writable && s.write(' '), 1000);
    s.on('close', () => clearInterval(t));
    setTimeout(once, 1500);
  });
  s.on('data', (d) => (data += d));
  s.on('error', () => {});
  s.on('close', () => {
    live.delete(s);
    const status = /^HTTP\\/1\\.1 (\\d+)/.exec(data)?.[1] ?? 'none';
    answers[status] = (answers[status] ?? 0) + 1;
    once();
    closed += 1;
    if (closed === count) {
      console.log(JSON.stringify({ done: true, answers, body: data.split('\\r\\n\\r\\n')[1] }));
      process.exit(0);
    }
  });
}
`;

/** The JSON lines a client printed, its exit, and a wait for a line with a given key. */
export interface Lines {
  lines: Array<Record<string, unknown>>;
  exit: Promise<number | null>;
  waitFor: (key: string, timeoutMs: number) => Promise<Record<string, unknown>>;
}

/** Runs `node <args>` as `user` (runuser, as root). */
export function runAs(user: string, args: string[], cwd: string): Lines {
  const child = spawn('runuser', ['-u', user, '--', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  let buf = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    buf += c.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
      for (const w of waiters) w();
    }
  });
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exit = new Promise<number | null>((resolve) => child.once('close', (code) => {
    for (const w of waiters) w();
    resolve(code);
  }));
  const waitFor = (key: string, timeoutMs: number): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const l = lines.find((x) => key in x);
        if (l) {
          clearTimeout(t);
          waiters.delete(check);
          resolve(l);
        } else if (child.exitCode !== null) {
          clearTimeout(t);
          waiters.delete(check);
          reject(new Error(`the client exited without '${key}': ${err}`));
        }
      };
      const t = setTimeout(() => {
        waiters.delete(check);
        child.kill('SIGKILL');
        reject(new Error(`no '${key}' from the client within ${timeoutMs} ms (stderr: ${err})`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return { lines, exit, waitFor };
}

