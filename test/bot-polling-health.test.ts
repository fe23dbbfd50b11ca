/**
 * Polling health tells the truth: while the bot cannot poll Telegram (the API root does not
 * answer, or Telegram is down), `/health` says `telegram_polling: false` with the reason, and
 * the log has one warning for the whole outage, then one line when polling works again.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { BotHarness, type LogLine } from './support/botHarness.js';

const WARN = 40;

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function health(h: BotHarness): Promise<Record<string, unknown>> {
  const res = await h.health();
  assert.equal(res.status, 200);
  return res.body as Record<string, unknown>;
}

const failsWarning = (l: LogLine): boolean => l.level === WARN && typeof l.msg === 'string' && l.msg.startsWith('polling Telegram fails');

void describe('polling health', () => {
  const harnesses: BotHarness[] = [];
  after(async () => {
    for (const h of harnesses) await h.cleanup();
  });

  void it('an unreachable API root: one warning with the reason, and /health says polling fails', async () => {
    const port = await closedPort();
    const h = await BotHarness.start({ env: { TELEGRAM_API_ROOT: `http://127.0.0.1:${port}` } });
    harnesses.push(h);
    const warning = await h.waitForLog(failsWarning, 30_000, 'the polling warning');
    assert.match(String(warning.msg), /cannot reach Telegram \(ECONNREFUSED/);
    assert.doesNotMatch(String(warning.msg), new RegExp(h.fake.token.split(':')[1]!), 'the token is not logged');
    const body = await health(h);
    assert.equal(body.telegram_polling, false);
    assert.match(String(body.telegram_polling_error), /cannot reach Telegram \(ECONNREFUSED/);
    assert.doesNotMatch(String(body.telegram_polling_error), new RegExp(h.fake.token.split(':')[1]!), 'the token is not in /health');
    assert.ok(!Number.isNaN(Date.parse(String(body.telegram_polling_failing_since))), JSON.stringify(body));
  });

  void it('Telegram down for a while: /health goes false and back, one warning and one recovery line', async () => {
    const h = await BotHarness.start();
    harnesses.push(h);
    await h.waitUntil(async () => (await health(h)).telegram_polling === true || undefined, 30_000, () => `polling to work:\n${h.logTail()}`);

    const polls = (): number => h.fake.stats.requests.getUpdates ?? 0;
    h.fake.setFault({ kind: 'outage', methods: 'all' });
    const before = polls();
    await h.waitForLog(failsWarning, 30_000, 'the polling warning');
    // Three polls fail in this outage.
    await h.waitUntil(() => polls() - before >= 3 || undefined, 60_000, () => `three failed polls:\n${h.logTail()}`);
    const failing = await health(h);
    assert.equal(failing.telegram_polling, false);
    assert.equal(typeof failing.telegram_polling_error, 'string');
    assert.equal(h.logs.filter(failsWarning).length, 1, h.logTail(40));

    h.fake.setFault(null);
    const recovered = await h.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('polling Telegram works again after'), 60_000, 'the recovery line');
    assert.ok(Number(recovered.failedAttempts) >= 3, JSON.stringify(recovered));
    const ok = await health(h);
    assert.equal(ok.telegram_polling, true);
    assert.equal(ok.telegram_polling_error, undefined);
    assert.equal(h.logs.filter(failsWarning).length, 1, h.logTail(40));
  });
});
