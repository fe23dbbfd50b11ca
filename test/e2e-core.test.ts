/**
 * The core path end to end: the real notify-bot process against the fake Telegram, the
 * real notify-runner in a temporary home. /start gives a stored code, a second /start
 * replaces it, other messages get the bot's usual reply; after linking, a script's alert
 * arrives with its title bold, the cooldown holds a second run, and a script's PNG arrives
 * as a photo with the same bytes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BotHarness, PROJECT_ROOT } from './support/botHarness.js';

const CHAT = 5501;

function runRunner(home: string, socketPath: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'notify-runner.js')], {
      env: { PATH: process.env.PATH, HOME: home, NOTIFY_SOCKET: socketPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => resolve({ code, out }));
  });
}

void describe('a script alert reaches Telegram through the real bot and runner', () => {
  let h: BotHarness;
  let home: string;
  let code = '';
  const png = Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==',
    'base64',
  );

  before(async () => {
    h = await BotHarness.start({ users: [] });
    home = mkdtempSync(join(tmpdir(), 'notify-home-'));
    mkdirSync(join(home, 'user', 'notifications'), { recursive: true });
  });
  after(async () => {
    await h.cleanup();
    rmSync(home, { recursive: true, force: true });
  });

  void it('/start answers a 6-digit code valid 10 minutes, stored in pending_codes.json', async () => {
    h.fake.sendUserMessage(CHAT, '/start');
    const [m] = await h.fake.waitForMessages(CHAT, 1, 60_000);
    const found = /\b(\d{6})\b/.exec(m!.text ?? '');
    assert.ok(found, `a code in: ${m!.text}`);
    code = found[1]!;
    assert.match(m!.text ?? '', /10 minutes/);
    const pending = JSON.parse(readFileSync(join(h.dataDir, 'pending_codes.json'), 'utf8')) as Record<string, { chat_id: number; created_at: number }>;
    assert.equal(pending[code]?.chat_id, CHAT);
    assert.ok(Math.abs(pending[code]!.created_at - Date.now() / 1000) < 30, 'created_at is unix seconds');
  });

  void it('a second /start replaces the chat\'s code', async () => {
    h.fake.sendUserMessage(CHAT, '/start');
    const msgs = await h.fake.waitForMessages(CHAT, 2, 60_000);
    const second = /\b(\d{6})\b/.exec(msgs[1]!.text ?? '')![1]!;
    const pending = JSON.parse(readFileSync(join(h.dataDir, 'pending_codes.json'), 'utf8')) as Record<string, { chat_id: number }>;
    assert.deepEqual(Object.keys(pending).filter((k) => pending[k]!.chat_id === CHAT), [second]);
    if (second !== code) assert.equal(pending[code], undefined, 'the first code is gone');
    code = second;
  });

  void it('any other message from an unlinked chat gets the exact reply', async () => {
    h.fake.sendUserMessage(CHAT, 'hello?');
    const msgs = await h.fake.waitForMessages(CHAT, 3, 60_000);
    assert.equal(msgs[2]!.text, 'Use /start to link your account.');
  });

  void it('after linking, the runner\'s alert arrives with its title bold, and the cooldown holds a second run', async () => {
    // The test runs as root, so the runner's notifications are for 'root'.
    await h.links.verifyCode('root', code);
    writeFileSync(
      join(home, 'user', 'notifications', 'revenue_drop.py'),
      'import json\nprint(json.dumps({"notify": True, "title": "revenue_drop *alert* [x]", "message": "Today: $45k | 7d avg: $60k", "cooldown": "1h"}))\n',
    );
    const run = await runRunner(home, h.socketPath);
    assert.equal(run.code, 0, run.out);
    const msgs = await h.fake.waitForMessages(CHAT, 4, 60_000);
    const alert = msgs[3]!;
    assert.equal(alert.text, 'revenue_drop *alert* [x]\nToday: $45k | 7d avg: $60k');
    assert.deepEqual(alert.entities[0], { type: 'bold', offset: 0, length: 'revenue_drop *alert* [x]'.length });
    const state = JSON.parse(readFileSync(join(home, '.notifications', 'state', 'revenue_drop.json'), 'utf8')) as { last_sent: number };
    assert.ok(Math.abs(state.last_sent - Date.now() / 1000) < 60);

    const again = await runRunner(home, h.socketPath);
    assert.equal(again.code, 0, again.out);
    // A notification sent after the second run: anything that run sent would arrive before it.
    const later = await h.client.send({ user: 'root', message: 'after the second run' });
    assert.ok(later.status === 200 || later.status === 202, JSON.stringify(later.body));
    const all = await h.fake.waitForMessages(CHAT, 5, 60_000);
    assert.equal(all[4]!.text, 'after the second run', 'nothing sent within the cooldown');
    assert.equal(h.fake.sentMessages(CHAT).length, 5, 'nothing sent within the cooldown');
    assert.match(readFileSync(join(home, '.notifications', 'logs', 'runner.log'), 'utf8'), /revenue_drop\.py.*cooldown/i);
  });

  void it('a script that writes a PNG and returns image_path arrives as a photo with the same bytes', async () => {
    const imagePath = join(home, 'chart.png');
    writeFileSync(
      join(home, 'user', 'notifications', 'metric_chart.py'),
      `import base64, json\nopen(${JSON.stringify(imagePath)}, "wb").write(base64.b64decode(${JSON.stringify(png.toString('base64'))}))\nprint(json.dumps({"notify": True, "title": "Daily chart", "message": "See the chart", "image_path": ${JSON.stringify(imagePath)}}))\n`,
    );
    const run = await runRunner(home, h.socketPath);
    assert.equal(run.code, 0, run.out);
    const msgs = await h.fake.waitForMessages(CHAT, 6, 60_000);
    const photo = msgs[5]!;
    assert.equal(photo.kind, 'photo');
    assert.ok(photo.photo?.equals(png), 'the same bytes');
    assert.equal(photo.caption, 'Daily chart\nSee the chart');
  });

  void it('a photo alert\'s multi-line caption arrives byte for byte as the script printed it (no \\r\\n from the upload)', async () => {
    const imagePath = join(home, 'lines.png');
    const message = 'Revenue by region:\nEU 45k\nUS 60k\n\n  indented line\nend';
    writeFileSync(
      join(home, 'user', 'notifications', 'multi_line.py'),
      `import base64, json\nopen(${JSON.stringify(imagePath)}, "wb").write(base64.b64decode(${JSON.stringify(png.toString('base64'))}))\nprint(json.dumps({"notify": True, "title": "Regions", "message": ${JSON.stringify(message)}, "image_path": ${JSON.stringify(imagePath)}}))\n`,
    );
    const run = await runRunner(home, h.socketPath);
    assert.equal(run.code, 0, run.out);
    const msgs = await h.fake.waitForMessages(CHAT, 7, 60_000);
    const photo = msgs.find((m) => m.kind === 'photo' && (m.caption ?? '').startsWith('Regions'));
    assert.ok(photo, `a photo titled Regions among ${JSON.stringify(msgs.map((m) => m.caption ?? m.text))}`);
    assert.equal(photo.caption, `Regions\n${message}`, 'the caption the fake Telegram received is the title line plus the script\'s message, unchanged');
    // Telegram drops \r itself, so look at the caption parameter as the fake received it.
    const sent = String(photo.params.caption);
    assert.ok(!sent.includes('\r'), `no carriage return was added on the way: ${JSON.stringify(sent)}`);
    assert.ok(sent.endsWith(message), `the script's message, unchanged, ends the caption parameter: ${JSON.stringify(sent)}`);
  });
});

void describe('the bot process itself', () => {
  void it('refuses to start twice on one data directory, and says why', async () => {
    const h = await BotHarness.start({ users: [] });
    try {
      const second = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'notify-bot.js')], {
        env: { ...h.env(), NOTIFY_SOCKET: join(h.dir, 'second.sock') },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      second.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((resolve) => second.on('exit', resolve));
      assert.equal(code, 1);
      assert.match(err, /Another notify-bot is already running with the data directory/);
      assert.equal((await h.health()).status, 200, 'the first one is unharmed');
    } finally {
      await h.cleanup();
    }
  });

  void it('never writes the token to bot.log or stdout, even when Telegram is unreachable', async () => {
    const h = await BotHarness.start({ users: ['tokenless'] });
    try {
      h.fake.setFault({ kind: 'outage', as: 'reset' });
      await h.client.send({ user: 'tokenless', message: 'during the outage' }, 'respond-async');
      await h.waitForLog((l) => l.msg === 'delivery failed; will retry', 60_000, 'a failed delivery logged');
      h.fake.setFault(null);
      await h.fake.waitForMessages(h.users[0]!.chatId, 1, 60_000);
      const secret = h.fake.token.split(':')[1]!;
      const fileLog = readFileSync(join(h.dataDir, 'bot.log'), 'utf8');
      assert.ok(fileLog.length > 0, 'bot.log is written');
      assert.ok(!fileLog.includes(secret), 'the token is not in bot.log');
      assert.ok(!JSON.stringify(h.logs).includes(secret) && !h.otherOutput.join('\n').includes(secret), 'nor on stdout or stderr');
    } finally {
      await h.cleanup();
    }
  });

  void it('exits with a clear error when the token is missing', async () => {
    const r = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'notify-bot.js')], { env: { PATH: process.env.PATH, NOTIFY_DATA_DIR: mkdtempSync(join(tmpdir(), 'notify-notoken-')) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    r.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => r.on('exit', resolve));
    assert.equal(code, 1);
    assert.match(err, /TELEGRAM_BOT_TOKEN is not set/);
  });
});
