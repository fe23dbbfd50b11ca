/**
 * The pacer's bot-wide window: a message counts from when Telegram answered it, and as
 * "now" while in flight. The pacer's group window: a team chat gets at most NOTIFY_GROUP_RATE messages in any
 * NOTIFY_GROUP_WINDOW, counted from when Telegram answered each (a slow request moves the
 * window's end later, never earlier); private chats are not held to it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pacer } from '../src/bot/telegram/pacer.js';

function pacerAt(): { pacer: Pacer; clock: { t: number; now(): number } } {
  const clock = { t: 1_000_000, now(): number { return this.t; } };
  const pacer = new Pacer({ botPerWindow: 1000, windowMs: 1000, chatBurst: 1000, chatIntervalMs: 1, groupPerWindow: 3, groupWindowMs: 60_000 }, clock);
  return { pacer, clock };
}

void describe('pacer', () => {
  void it('holds the next message of a full group until the oldest leaves the window', () => {
    const { pacer, clock } = pacerAt();
    for (let i = 0; i < 3; i++) {
      assert.equal(pacer.chatDelay(-100), 0);
      pacer.settled(-100, pacer.take(-100));
      clock.t += 1000;
    }
    // Sent at +0, +1 s, +2 s; now +3 s: the first leaves the window at +60 s.
    assert.equal(pacer.chatDelay(-100), 57_000);
    assert.equal(pacer.chatDelay(4242), 0, 'a private chat is not held to the group limit');
    clock.t += 57_000;
    assert.equal(pacer.chatDelay(-100), 0);
  });

  void it('counts a message from when Telegram answered it, not from when it was started', () => {
    const { pacer, clock } = pacerAt();
    const first = pacer.take(-100);
    clock.t += 5000; // a slow request: Telegram got it later than take()
    pacer.settled(-100, first);
    pacer.settled(-100, pacer.take(-100));
    pacer.settled(-100, pacer.take(-100));
    assert.equal(pacer.chatDelay(-100), 60_000, 'the window ends 60 s after the first answer, not after its start');
  });

  void it("a chat's full bucket refills from when Telegram answered the first of a burst", () => {
    const clock = { t: 1_000_000, now(): number { return this.t; } };
    const pacer = new Pacer({ botPerWindow: 1000, windowMs: 1000, chatBurst: 3, chatIntervalMs: 1000 }, clock);
    const first = pacer.take(7);
    clock.t += 600; // the first request of the burst was slow to arrive
    pacer.settled(7, first);
    pacer.settled(7, pacer.take(7));
    pacer.settled(7, pacer.take(7));
    // Counted from take(), 0.6 tokens would have come back; from the answer, none yet.
    assert.equal(pacer.chatDelay(7), 1000);
  });
  void it("the bot's window holds a message in flight as now and counts it from its answer", () => {
    const clock = { t: 1_000_000, now(): number { return this.t; } };
    const pacer = new Pacer({ botPerWindow: 3, windowMs: 1000, chatBurst: 100, chatIntervalMs: 1 }, clock);
    const a = pacer.take(1);
    const b = pacer.take(2);
    const c = pacer.take(3);
    assert.equal(pacer.botDelay(), 50, 'three in flight: look again once one is answered');
    clock.t += 3000; // the requests hang on a busy host; taken long ago, none answered yet
    assert.ok(pacer.botDelay() > 0, 'a message in flight never leaves the window');
    pacer.settled(1, a);
    pacer.settled(2, b);
    clock.t += 400;
    pacer.settled(3, c);
    // Answered at +3 s, +3 s and +3.4 s: the first place frees 1 s after the first answer.
    assert.equal(pacer.botDelay(), 600);
    clock.t += 600;
    assert.equal(pacer.botDelay(), 0);
    pacer.settled(4, pacer.take(4));
    pacer.settled(5, pacer.take(5));
    assert.equal(pacer.botDelay(), 400, 'the answer at +3.4 s is the next to leave the window');
  });
});
