/**
 * Group burst: the real bot with its default group pacing (NOTIFY_GROUP_RATE 20 per
 * NOTIFY_GROUP_WINDOW 61 s) against the fake Telegram with Telegram's group limit (20
 * messages per minute per group, and the per-chat and per-bot limits). A team chat linked
 * the way an analyst links one (/start in the group, the code), then a burst of 40
 * notifications to it at once.
 *
 *   npx tsc -p . && node dist/bench/group-burst.js
 *
 * Prints: messages accepted and delivered, the time until the last arrived, the most that
 * arrived in any 60 s, and the 429s Telegram answered. Exits non-zero if one was lost, a
 * 429 came, more than 20 arrived in a minute, or the burst took longer than its target
 * (two windows of 61 s plus the per-chat pacing of the second twenty, with a margin).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { TeamChatStore } from '../src/shared/teamChats.js';
import { BotHarness, textOf } from '../test/support/botHarness.js';

const GROUP = -100_200_300;
const MEMBER = 9200;
const COUNT = 40;
const TARGETS = { lost: 0, tooMany: 0, perMinute: 20, seconds: 95 };

const misses: string[] = [];
function report(label: string, value: string, ok: boolean, target: string): void {
  process.stdout.write(`${label.padEnd(46)} ${value.padStart(12)}   target ${target.padEnd(10)} ${ok ? 'ok' : 'MISSED'}\n`);
  if (!ok) misses.push(label);
}

async function main(): Promise<void> {
  const h = await BotHarness.start({ users: [], prefix: 'notify-bench-group-' });
  const deadline = setTimeout(() => {
    process.stderr.write('benchmark took too long; giving up\n');
    void h.cleanup().then(() => process.exit(2));
  }, 280_000);
  try {
    await h.link('root', MEMBER);
    h.fake.createGroup(GROUP, 'Bench team', [MEMBER]);
    h.fake.sendGroupMessage(GROUP, MEMBER, '/start');
    const [reply] = await h.fake.waitForMessages(GROUP, 1, 20_000);
    const code = /\b(\d{6})\b/.exec(textOf(reply!))?.[1];
    if (!code) throw new Error(`no code in the group's /start answer: ${textOf(reply!)}`);
    await new TeamChatStore(h.dataDir).linkWithCode('root', code, 'bench-team', h.links);
    // The /start answer used one of the group's 20 a minute: start on a fresh window.
    await sleep(61_000);

    const before = h.fake.sentMessages(GROUP).length;
    const tooManyBefore = h.fake.stats.tooManyRequests;
    const t0 = performance.now();
    const answers = await Promise.all(Array.from({ length: COUNT }, (_, i) => h.client.send({ message: `group burst #${i + 1}`, to: ['bench-team'] }, 'respond-async')));
    const accepted = answers.filter((a) => a.status === 202).length;
    const arrivals: number[] = [];
    const until = Date.now() + 200_000;
    while (arrivals.length < accepted && Date.now() < until) {
      const n = h.fake.sentMessages(GROUP).length - before;
      while (arrivals.length < n) arrivals.push(performance.now() - t0);
      await sleep(20);
    }
    const texts = h.fake.sentMessages(GROUP).slice(before).map(textOf);
    const distinct = new Set(texts.filter((t) => t.startsWith('group burst #'))).size;
    const lastS = arrivals.length > 0 ? arrivals[arrivals.length - 1]! / 1000 : NaN;
    let perMinute = 0;
    for (let i = 0; i < arrivals.length; i++) {
      let j = i;
      while (j < arrivals.length && arrivals[j]! - arrivals[i]! < 60_000) j++;
      perMinute = Math.max(perMinute, j - i);
    }
    const tooMany = h.fake.stats.tooManyRequests - tooManyBefore;

    console.log(`group burst: ${COUNT} notifications at once to one team chat, default pacing (20 per 61 s)`);
    report('accepted (202)', `${accepted}/${COUNT}`, accepted === COUNT, `${COUNT}`);
    report('lost (accepted, never delivered once)', String(accepted - distinct), accepted - distinct <= TARGETS.lost, `${TARGETS.lost}`);
    report('delivered twice', String(texts.length - distinct), texts.length === distinct, '0');
    report('time until the last arrived', `${lastS.toFixed(1)} s`, lastS <= TARGETS.seconds, `<= ${TARGETS.seconds} s`);
    report('most arrived in any 60 s', String(perMinute), perMinute <= TARGETS.perMinute, `<= ${TARGETS.perMinute}`);
    report('429s from Telegram', String(tooMany), tooMany <= TARGETS.tooMany, `${TARGETS.tooMany}`);
    if (misses.length > 0) console.log(`arrivals (s after the burst): ${arrivals.map((a) => (a / 1000).toFixed(1)).join(' ')}`);
    if (tooMany > 0) console.log(h.logTail(2000).split('\n').filter((l) => /429|slow down/.test(l)).join('\n'));
  } finally {
    clearTimeout(deadline);
    await h.cleanup();
  }
  if (misses.length > 0) process.exit(1);
}

await main();
