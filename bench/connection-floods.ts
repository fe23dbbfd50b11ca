/**
 * Connection floods, with every default: how much of a service one client can hold.
 *
 * 1. Slow request bodies on the send socket: a Linux account made for the run (removed
 *    after) opens 1,000 connections to the real bot, sends headers and trickles the body.
 *    Printed: the connections it holds open (NOTIFY_MAX_CONNECTIONS_PER_UID), how many were
 *    answered 503 at once, how long the held ones lasted before their 408
 *    (NOTIFY_REQUEST_TIMEOUT), an ordinary send's answer time meanwhile, and the bot's RSS.
 * 2. Unauthenticated WebSockets on the gateway: one address opens 2,000 sockets and never
 *    authenticates. Printed: the sockets it holds (NOTIFY_GATEWAY_MAX_UNAUTHENTICATED_PER_ADDRESS),
 *    whether a desktop with a token still gets in, and the gateway's RSS.
 *
 *   npx tsc -p . && node dist/bench/connection-floods.js      (as root: it makes an account)
 *
 * Exits non-zero if a target is missed.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BotHarness } from '../test/support/botHarness.js';
import { floodUnauthenticated, signToken, spawnGateway, TestDesktop, TEST_SECRET } from '../test/support/gatewayHarness.js';
import { runAs, SLOW_CLIENT } from '../test/support/slowClients.js';

const SLOW = 1000;
const SOCKETS = 2000;
const TARGETS = { perUid: 32, perAddress: 50, sendMs: 2000, botMb: 150, gatewayMb: 150 };

const misses: string[] = [];
function report(label: string, value: string, ok: boolean, target: string): void {
  process.stdout.write(`${label.padEnd(52)} ${value.padStart(12)}   target ${target.padEnd(10)} ${ok ? 'ok' : 'MISSED'}\n`);
  if (!ok) misses.push(label);
}

function rssMb(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function slowBodies(): Promise<void> {
  const tag = randomBytes(3).toString('hex');
  const group = `notify-bc-${tag}`;
  const user = `notify-bs-${tag}`;
  const work = mkdtempSync(join(tmpdir(), 'notify-bench-conn-'));
  let h: BotHarness | undefined;
  try {
    if (spawnSync('groupadd', [group]).status !== 0) throw new Error('groupadd failed');
    if (spawnSync('useradd', ['--system', '-M', '-s', '/usr/sbin/nologin', '-G', group, user]).status !== 0) throw new Error('useradd failed');
    chmodSync(work, 0o755);
    writeFileSync(join(work, 'slow.mjs'), SLOW_CLIENT, { mode: 0o644 });
    h = await BotHarness.start({ users: 1, env: { NOTIFY_SOCKET_GROUP: group, NOTIFY_REQUEST_TIMEOUT: undefined }, prefix: 'notify-bench-conn-bot-' });
    chmodSync(h.dir, 0o711);
    chmodSync(join(h.dir, 'run'), 0o711);
    const before = h.rssKb()! / 1024;
    const flood = runAs(user, [join(work, 'slow.mjs'), h.socketPath, String(SLOW)], work);
    await flood.waitFor('settled', 120_000);
    const floodAt = performance.now();
    const health = (await h.health()).body as { connections: { largestCaller: number } };
    const held = health.connections.largestCaller;
    const under = h.rssKb()! / 1024;
    const t0 = performance.now();
    const send = await h.client.send({ user: h.users[0]!.name, message: 'sent during the flood' }, 'respond-async');
    const sendMs = performance.now() - t0;
    const done = await flood.waitFor('done', 120_000);
    const heldS = (performance.now() - floodAt) / 1000;
    const answers = done.answers as Record<string, number>;
    // Counted once every connection closed: a refusal may land after the flood settled.
    const refused = answers['503'] ?? 0;

    console.log(`slow request bodies: one uid opens ${SLOW} connections to the send socket and trickles (defaults)`);
    report('connections one uid holds open', String(held), held <= TARGETS.perUid, `<= ${TARGETS.perUid}`);
    // Not held: answered 503, or refused by the kernel (the socket's backlog) before the bot saw them.
    const notHeld = SLOW - (answers['408'] ?? 0);
    report('not held (503 at once, or refused at connect)', `${notHeld}/${SLOW}`, notHeld === SLOW - held, `${SLOW - held}`);
    process.stdout.write(`  (of those, ${refused} answered 503 by the bot, ${notHeld - refused} refused at connect)\n`);
    report('held ones closed with 408 after (s from the flood)', `${(answers['408'] ?? 0)} in ${heldS.toFixed(1)} s`, (answers['408'] ?? 0) === held, `${held}`);
    report('an ordinary send meanwhile: answer time', `${send.status} in ${sendMs.toFixed(0)} ms`, send.status === 202 && sendMs <= TARGETS.sendMs, `202 <= ${TARGETS.sendMs} ms`);
    process.stdout.write(`  (bot RSS before the flood: ${before.toFixed(1)} MB)\n`);
    report('bot RSS under the flood', `${under.toFixed(1)} MB`, under <= TARGETS.botMb, `<= ${TARGETS.botMb} MB`);
  } finally {
    await h?.cleanup();
    rmSync(work, { recursive: true, force: true });
    spawnSync('userdel', [user]);
    spawnSync('groupdel', [group]);
  }
}

async function unauthenticatedSockets(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'notify-bench-gw-'));
  const gw = spawnGateway({
    DESKTOP_JWT_SECRET: TEST_SECRET,
    NOTIFY_GATEWAY_PORT: '0',
    NOTIFY_GATEWAY_SOCKET: join(dir, 'gw.sock'),
    NOTIFY_DATA_DIR: join(dir, 'data'),
  });
  const sockets: Array<{ terminate: () => void }> = [];
  try {
    const port = await gw.ready;
    const url = `ws://127.0.0.1:${port}/`;
    const before = rssMb(gw.child.pid);
    const flood = await floodUnauthenticated(url, SOCKETS, '127.0.0.1');
    sockets.push(...flood.all);
    const under = rssMb(gw.child.pid);
    const desktop = await TestDesktop.connect(url, { localAddress: '127.0.0.4' });
    sockets.push(desktop.ws);
    const answer = await desktop.auth(await signToken({ sub: 'mona' }));
    const refused1013 = flood.refused.filter((r) => r.code === 1013).length;

    console.log(`unauthenticated WebSockets: one address opens ${SOCKETS} and never authenticates (defaults)`);
    report('sockets one address holds before authenticating', String(flood.open.length), flood.open.length <= TARGETS.perAddress, `<= ${TARGETS.perAddress}`);
    report('refused at once with 1013', `${refused1013}/${SOCKETS}`, refused1013 === SOCKETS - flood.open.length, `${SOCKETS - flood.open.length}`);
    report('a desktop with a token gets in meanwhile', answer.type, answer.type === 'auth_ok', 'auth_ok');
    process.stdout.write(`  (gateway RSS before the flood: ${before.toFixed(1)} MB)\n`);
    report('gateway RSS under the flood', `${under.toFixed(1)} MB`, under <= TARGETS.gatewayMb, `<= ${TARGETS.gatewayMb} MB`);
  } finally {
    for (const s of sockets) s.terminate();
    gw.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.getuid?.() !== 0) {
  console.log('connection floods: needs root (it makes a Linux account for the slow client); not run');
  process.exit(0);
}
const giveUp = setTimeout(() => {
  process.stderr.write('benchmark took too long; giving up\n');
  process.exit(2);
}, 280_000);
await slowBodies();
await unauthenticatedSockets();
clearTimeout(giveUp);
if (misses.length > 0) process.exit(1);
process.exit(0);
