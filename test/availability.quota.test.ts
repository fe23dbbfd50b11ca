/**
 * Per-analyst quotas on the outbox: an analyst whose queued notifications (or their bytes,
 * photos included) reach the quota gets 429 with a reason and Retry-After, stores nothing
 * (no photo left behind), and every other analyst keeps sending; once the queue drains the
 * analyst sends again. Telegram is held down meanwhile, so the queue only grows. An image is
 * stored once (the outbox's copy and the desktop's are one file), and what an analyst keeps
 * for desktop apps has a quota of its own.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startBotWorld } from './support/inProcessBot.js';
import { pngOf } from './support/png.js';


void describe('per-analyst outbox quotas', () => {
  void it('an analyst at the count quota gets 429 and stores nothing; the others keep sending; it sends again once delivered', async () => {
    const w = await startBotWorld({ NOTIFY_USER_QUEUE_MAX: '5' });
    try {
      await w.link('alice', 8101);
      await w.link('bob', 8102);
      w.fake.setFault({ kind: 'outage' });
      for (let i = 0; i < 5; i += 1) {
        const r = await w.client.send({ user: 'alice', message: `alice ${i}` }, 'respond-async');
        assert.equal(r.status, 202, `alice's send ${i} is queued: ${JSON.stringify(r.body)}`);
      }
      const over = await w.client.send({ user: 'alice', message: 'alice over quota' }, 'respond-async');
      assert.equal(over.status, 429, `the sixth is refused: ${JSON.stringify(over.body)}`);
      assert.match(String((over.body as { error?: string }).error), /'alice' has 5 notifications waiting .*NOTIFY_USER_QUEUE_MAX=5.*nothing was stored/);
      assert.ok(over.headers['retry-after'], 'Retry-After is given');
      for (let i = 0; i < 5; i += 1) {
        const r = await w.client.send({ user: 'bob', message: `bob ${i}` }, 'respond-async');
        assert.equal(r.status, 202, `another analyst keeps sending (${i}): ${JSON.stringify(r.body)}`);
      }
      // Sends made at once cannot slip past the quota together.
      await w.link('dave', 8103);
      const together = await Promise.all(Array.from({ length: 10 }, (_, i) => w.client.send({ user: 'dave', message: `dave ${i}` }, 'respond-async')));
      assert.deepEqual(
        together.map((r) => r.status).sort(),
        [202, 202, 202, 202, 202, 429, 429, 429, 429, 429],
        'of ten sends at once, five are queued and five refused',
      );
      w.fake.setFault(null);
      await w.fake.waitForMessages(8101, 5, 30_000);
      // The outbox forgets a delivered record just after its message is seen: try until taken.
      const deadline = Date.now() + 30_000;
      let again = await w.client.send({ user: 'alice', message: 'alice after delivery' }, 'respond-async');
      while (again.status === 429 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        again = await w.client.send({ user: 'alice', message: 'alice after delivery' }, 'respond-async');
      }
      assert.equal(again.status, 202, `alice sends again once her queue is delivered: ${JSON.stringify(again.body)}`);
      const texts = (await w.fake.waitForMessages(8101, 6, 30_000)).map((m) => m.text ?? '');
      assert.ok(!texts.some((t) => t.includes('over quota')), 'the refused send was never delivered');
    } finally {
      await w.close();
    }
  });

  void it('an analyst at the bytes quota gets 429 for the photo that would pass it, and no photo is left behind', async () => {
    const w = await startBotWorld({ NOTIFY_USER_QUEUE_BYTES: String(300 * 1024) });
    try {
      await w.link('alice', 8201);
      await w.link('bob', 8202);
      w.fake.setFault({ kind: 'outage' });
      const photo = pngOf(120 * 1024);
      for (let i = 0; i < 2; i += 1) {
        const r = await w.client.sendPhoto({ user: 'alice', caption: `chart ${i}` }, { bytes: photo, filename: 'c.png', contentType: 'image/png' }, 'respond-async');
        assert.equal(r.status, 202, `photo ${i} fits: ${JSON.stringify(r.body)}`);
      }
      const over = await w.client.sendPhoto({ user: 'alice', caption: 'chart 2' }, { bytes: photo, filename: 'c.png', contentType: 'image/png' }, 'respond-async');
      assert.equal(over.status, 429, `the third photo passes the bytes quota: ${JSON.stringify(over.body)}`);
      assert.match(String((over.body as { error?: string }).error), /NOTIFY_USER_QUEUE_BYTES.*nothing was stored/);
      assert.equal(readdirSync(join(w.dataDir, 'outbox', 'photos')).length, 2, 'only the accepted photos are stored');
      const bob = await w.client.sendPhoto({ user: 'bob', caption: 'bob chart' }, { bytes: photo, filename: 'c.png', contentType: 'image/png' }, 'respond-async');
      assert.equal(bob.status, 202, `another analyst sends photos: ${JSON.stringify(bob.body)}`);
      const small = await w.client.send({ user: 'alice', message: 'a short text still fits' }, 'respond-async');
      assert.equal(small.status, 202, 'a send that fits in what is left is taken');
      w.fake.setFault(null);
      await w.fake.waitForMessages(8202, 1, 30_000);
    } finally {
      await w.close();
    }
  });

  void it('a photo is stored once: the desktop image and the queued copy are the same file', async () => {
    const w = await startBotWorld();
    try {
      await w.link('alice', 8301);
      w.fake.setFault({ kind: 'outage' });
      const photo = pngOf(200 * 1024);
      const r = await w.client.sendPhoto({ user: 'alice', caption: 'one copy' }, { bytes: photo, filename: 'c.png', contentType: 'image/png' }, 'respond-async');
      assert.equal(r.status, 202, JSON.stringify(r.body));
      const queued = readdirSync(join(w.dataDir, 'outbox', 'photos')).map((n) => statSync(join(w.dataDir, 'outbox', 'photos', n)));
      const kept = readdirSync(join(w.dataDir, 'images')).filter((n) => n.endsWith('.img')).map((n) => statSync(join(w.dataDir, 'images', n)));
      assert.equal(queued.length, 1);
      assert.equal(kept.length, 1);
      assert.equal(kept[0]!.ino, queued[0]!.ino, 'the desktop image is the queued photo under a second name');
      assert.equal(kept[0]!.nlink, 2);
      assert.equal(kept[0]!.size, photo.length);
      // Delivered, the queue lets go of its name; the desktop's stays for its retention.
      w.fake.setFault(null);
      await w.fake.waitForMessages(8301, 1, 30_000);
      const deadline = Date.now() + 30_000;
      while (readdirSync(join(w.dataDir, 'outbox', 'photos')).length > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
      assert.deepEqual(readdirSync(join(w.dataDir, 'outbox', 'photos')), [], 'the queue let go of its copy');
      const left = readdirSync(join(w.dataDir, 'images')).filter((n) => n.endsWith('.img'));
      assert.equal(left.length, 1);
      assert.equal(statSync(join(w.dataDir, 'images', left[0]!)).nlink, 1, 'the image stays, now under one name');
    } finally {
      await w.close();
    }
  });

  void it('an analyst at the stored-images quota gets 429 for another photo (texts and other analysts go on); delivered images still count while kept', async () => {
    const w = await startBotWorld({ NOTIFY_USER_IMAGE_BYTES: String(300 * 1024) });
    try {
      await w.link('alice', 8401);
      await w.link('bob', 8402);
      const photo = pngOf(120 * 1024);
      for (let i = 0; i < 2; i += 1) {
        const r = await w.client.sendPhoto({ user: 'alice', caption: `kept ${i}` }, { bytes: photo, filename: 'c.png', contentType: 'image/png' }, 'respond-async');
        assert.equal(r.status, 202, `photo ${i} fits: ${JSON.stringify(r.body)}`);
      }
      await w.fake.waitForMessages(8401, 2, 30_000);
      const over = await w.client.sendPhoto({ user: 'alice', caption: 'one too many' }, { bytes: photo, filename: 'c.png', contentType: 'image/png' }, 'respond-async');
      assert.equal(over.status, 429, `the third photo passes the stored-images quota: ${JSON.stringify(over.body)}`);
      assert.match(String((over.body as { error?: string }).error), /'alice' keeps 0\.2 MiB of images for desktop apps .*NOTIFY_USER_IMAGE_BYTES.*nothing was stored\. Send it without the image/);
      const retry = Number(over.headers['retry-after']);
      assert.ok(retry > 6 * 86_400, `Retry-After points at the oldest image's expiry, about a week away (${retry} s)`);
      const kept = readdirSync(join(w.dataDir, 'images')).filter((n) => n.endsWith('.img'));
      assert.equal(kept.length, 2, 'no image was stored for the refused photo');
      const text = await w.client.send({ user: 'alice', message: 'text still goes' }, 'respond-async');
      assert.equal(text.status, 202, JSON.stringify(text.body));
      const bob = await w.client.sendPhoto({ user: 'bob', caption: 'bob chart' }, { bytes: photo, filename: 'c.png', contentType: 'image/png' }, 'respond-async');
      assert.equal(bob.status, 202, `another analyst sends photos: ${JSON.stringify(bob.body)}`);
      const texts = (await w.fake.waitForMessages(8401, 3, 30_000)).map((m) => m.caption ?? m.text ?? '');
      assert.ok(!texts.some((t) => t.includes('one too many')), 'the refused photo was never delivered');
    } finally {
      await w.close();
    }
  });
});
