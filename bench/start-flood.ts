/**
 * /start flood: 3,000 chats send /start at once (they all wait in Telegram before the bot
 * fetches them) to the real bot with its default pacing, against the fake Telegram with
 * Telegram's limits (30 messages a second per bot, a burst of 3 then 1 a second per chat).
 *
 *   npx tsc -p . && node dist/bench/start-flood.js      (BENCH_START_CHATS=<n> for another count)
 *
 * Prints: chats answered with their own code (and the codes file checked against the
 * answers), the time until the last answer, the 429s Telegram answered (the fake counts
 * Telegram's 30 a second exactly), updates left unconfirmed in Telegram, and the bot's RSS before and at
 * its peak during the flood. Exits non-zero if a target is missed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BotHarness } from '../test/support/botHarness.js';
import { answered, codeProblems, floodChats, sendStarts } from '../test/support/startFlood.js';

const CHATS = Number(process.env.BENCH_START_CHATS ?? 3000);
const TARGETS = {
  /** Default pacing is 30 per 1.1 s (27.3 a second): the flood's floor, plus a margin. */
  seconds: Math.ceil(CHATS / 27.3 + 20),
  perSecond: 30,
  tooMany: 0,
  peakMb: 250,
};

const misses: string[] = [];
function report(label: string, value: string, ok: boolean, target: string): void {
  process.stdout.write(`${label.padEnd(46)} ${value.padStart(12)}   target ${target.padEnd(10)} ${ok ? 'ok' : 'MISSED'}\n`);
  if (!ok) misses.push(label);
}

async function main(): Promise<void> {
  const h = await BotHarness.start({ users: 0, prefix: 'notify-bench-start-', env: { NOTIFY_POLL_TIMEOUT: '30' } });
  const giveUp = setTimeout(() => {
    process.stderr.write('benchmark took too long; giving up\n');
    void h.cleanup().then(() => process.exit(2));
  }, 290_000);
  try {
    await sleep(2000);
    const idleKb = h.rssKb() ?? NaN;
    const chats = floodChats(CHATS);
    const t0 = performance.now();
    sendStarts(h, chats);
    let peakKb = idleKb;
    const arrivals: number[] = [];
    const until = Date.now() + TARGETS.seconds * 1000 + 60_000;
    let seen = 0;
    while (seen < chats.length && Date.now() < until) {
      await sleep(50);
      const n = answered(h, chats);
      while (seen < n) {
        arrivals.push(performance.now() - t0);
        seen += 1;
      }
      peakKb = Math.max(peakKb, h.rssKb() ?? 0);
    }
    const lastS = arrivals.length > 0 ? arrivals[arrivals.length - 1]! / 1000 : NaN;
    let perSecond = 0;
    for (let i = 0, j = 0; i < arrivals.length; i++) {
      while (j < arrivals.length && arrivals[j]! - arrivals[i]! < 1000) j++;
      perSecond = Math.max(perSecond, j - i);
    }
    const problems = seen === chats.length ? codeProblems(h, chats) : [`only ${seen} chats were answered`];

    console.log(`/start flood: ${CHATS} chats at once, default pacing (NOTIFY_TELEGRAM_RATE 30 per NOTIFY_TELEGRAM_WINDOW 1100ms)`);
    report('chats answered with a code', `${seen}/${CHATS}`, seen === CHATS, `${CHATS}`);
    report('codes file matches every answer', problems.length === 0 ? 'yes' : 'no', problems.length === 0, 'yes');
    report('time until the last answer', `${lastS.toFixed(1)} s`, lastS <= TARGETS.seconds, `<= ${TARGETS.seconds} s`);
    report('429s from Telegram', String(h.fake.stats.tooManyRequests), h.fake.stats.tooManyRequests <= TARGETS.tooMany, `${TARGETS.tooMany}`);
    // Sampled every 50 ms by this process, so a late sample counts two seconds' answers as one;
    // the fake's own sliding window (30 a second, its 429s above) is the exact measure.
    process.stdout.write(`  (most answers seen in one second of sampling: ${perSecond}; Telegram's limit ${TARGETS.perSecond}, enforced by the fake)\n`);
    report('updates left unconfirmed in Telegram', String(h.fake.pendingUpdates), h.fake.pendingUpdates === 0, '0');
    process.stdout.write(`  (bot RSS before the flood: ${(idleKb / 1024).toFixed(1)} MB)\n`);
    report('bot RSS at its peak during the flood', `${(peakKb / 1024).toFixed(1)} MB`, peakKb / 1024 <= TARGETS.peakMb, `<= ${TARGETS.peakMb} MB`);
    for (const p of problems) console.log(`  ${p}`);
  } finally {
    clearTimeout(giveUp);
    await h.cleanup();
  }
  if (misses.length > 0) process.exit(1);
}

await main();
