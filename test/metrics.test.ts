/**
 * The Prometheus endpoint (NOTIFY_METRICS_ADDR): off unless asked for; on the real bot,
 * scraped before and after a burst (with 429s from Telegram), its counts agree with what
 * the fake Telegram received; on the gateway, connections and dispatches. No label value
 * is a user name or a chat id.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readBotConfig } from '../src/bot/config.js';
import { ConfigError } from '../src/shared/config.js';
import { AlertRulesStore } from '../src/shared/alertRules.js';
import { systemClock } from '../src/shared/clock.js';
import { parseMetricsAddress } from '../src/shared/metrics.js';
import { TeamChatStore } from '../src/shared/teamChats.js';
import { LinkStore } from '../src/shared/linking.js';
import { silentLogger } from '../src/shared/logger.js';
import { buildApp } from '../src/web/app.js';
import { readWebConfig } from '../src/web/config.js';
import { WebMetrics } from '../src/web/metrics.js';
import { serveMetrics, type MetricsServer } from '../src/shared/metrics.js';
import { authorize, callback, CookieJar, signIn, webEnv } from './support/oidcFlow.js';
import { startOidcProvider, type TestOidcProvider } from './support/oidcProvider.js';
import type { FastifyInstance } from 'fastify';
import { BotHarness, compareDelivery, describeReport, expectedByChat, burst, sendInOrder, textOf } from './support/botHarness.js';
import { notification, signToken, startTestGateway, tempDir, TestDesktop, waitFor, type TestGateway } from './support/gatewayHarness.js';
import { type Sample, scrape, value } from './support/prometheus.js';

const TEAM_CHAT = -100_464;

/** One sample: metric name, labels, value. */
/** Every label value in the scrape, for the "no users, no chats" check. */
function labelValues(samples: Sample[]): Set<string> {
  return new Set(samples.flatMap((s) => Object.values(s.labels)));
}

void describe('metrics settings', () => {
  const base = { TELEGRAM_BOT_TOKEN: '123456:abcdefghijklmnopqrstuvwxyz0123456789' };

  void it('are off unless NOTIFY_METRICS_ADDR is set', () => {
    assert.equal(readBotConfig(base).metricsAddr, undefined);
    assert.deepEqual(readBotConfig({ ...base, NOTIFY_METRICS_ADDR: '127.0.0.1:9464' }).metricsAddr, { host: '127.0.0.1', port: 9464 });
  });

  void it('refuse an address that is not host:port, naming the variable', () => {
    assert.throws(() => readBotConfig({ ...base, NOTIFY_METRICS_ADDR: '9464' }), (err: unknown) => err instanceof ConfigError && /NOTIFY_METRICS_ADDR must be <host>:<port>.*got '9464'/.test(err.message));
    assert.deepEqual(parseMetricsAddress('[::1]:9464'), { host: '::1', port: 9464 });
    assert.deepEqual(parseMetricsAddress(':9464'), { host: '0.0.0.0', port: 9464 });
    assert.equal(parseMetricsAddress('host:99999'), null);
  });
});

void describe('the bot\'s metrics endpoint', () => {
  let h: BotHarness;
  let port = 0;

  before(async () => {
    h = await BotHarness.start({ users: 4, env: { NOTIFY_METRICS_ADDR: '127.0.0.1:0' }, prefix: 'notify-metrics-' });
    const line = await h.waitForLog((l) => l.msg === 'metrics endpoint listening at /metrics', 60_000, 'the metrics endpoint to listen');
    port = Number(line.port);
  });

  after(async () => {
    await h?.cleanup();
  });

  void it('agrees with what Telegram received after a burst with 429s, and names no user or chat', async () => {
    const first = await scrape(port);
    assert.equal(value(first.samples, 'notify_queue_depth'), 0);
    for (const name of ['notify_notifications_accepted_total', 'notify_notifications_delivered_total', 'notify_notifications_dead_lettered_total', 'notify_telegram_rate_limited_total', 'notify_delivery_latency_seconds_count']) {
      assert.ok(first.samples.some((s) => s.name === name), `${name} is exported before any event`);
    }
    await waitFor('polling to succeed once', async () => value((await scrape(port)).samples, 'notify_telegram_polling_up') === 1, 60_000);
    const polled = await scrape(port);
    assert.ok(value(polled.samples, 'notify_telegram_polling_last_success_timestamp_seconds') > 0);

    const sentBefore = h.fake.sentMessages().length;
    const tooManyBefore = h.fake.stats.tooManyRequests;
    // Telegram answers the next three sends with 429 (retry after 1 s).
    h.fake.setFault({ kind: '429', retryAfter: 1, count: 3 });
    const items = burst(h.users, 6, 'metrics');
    const answers = await sendInOrder(items, 8, ({ user, text }) => h.client.send({ user: user.name, message: text }, 'respond-async'));
    assert.ok(answers.every((a) => a.status === 202), 'every notification was accepted');
    const expected = expectedByChat(items);
    await h.waitForDelivery(expected, 60_000);
    const report = compareDelivery(h.fake, expected);
    assert.deepEqual(report.missing, [], describeReport(report));

    // Telegram has every message; the bot records each outcome right after Telegram's answer.
    await waitFor('the deliveries to be recorded', async () => {
      const s = await scrape(port);
      return value(s.samples, 'notify_queue_depth') === 0 && value(s.samples, 'notify_delivery_latency_seconds_count') - value(first.samples, 'notify_delivery_latency_seconds_count') >= items.length;
    }, 60_000);
    const afterBurst = await scrape(port);
    const delta = (name: string, labels: Record<string, string> = {}): number => value(afterBurst.samples, name, labels) - value(first.samples, name, labels);
    const received = h.fake.sentMessages().length - sentBefore;
    assert.equal(received, items.length, 'Telegram received each message once');
    assert.equal(delta('notify_notifications_accepted_total', { channel: 'telegram' }), items.length);
    assert.equal(delta('notify_notifications_delivered_total', { channel: 'telegram' }), received);
    assert.equal(delta('notify_delivery_latency_seconds_count'), received);
    assert.equal(delta('notify_telegram_rate_limited_total'), h.fake.stats.tooManyRequests - tooManyBefore);
    assert.ok(delta('notify_telegram_rate_limited_total') >= 3, 'the injected 429s were counted');
    assert.equal(delta('notify_notifications_dead_lettered_total'), 0);
    assert.equal(value(afterBurst.samples, 'notify_queue_depth'), 0);
    assert.equal(value(afterBurst.samples, 'notify_queue_oldest_age_seconds'), 0);
    // The 429s made some wait a second or more: the latency histogram shows it.
    assert.ok(value(afterBurst.samples, 'notify_delivery_latency_seconds_bucket', { le: '+Inf' }) > value(afterBurst.samples, 'notify_delivery_latency_seconds_bucket', { le: '0.5' }));

    const labels = labelValues(afterBurst.samples);
    for (const u of h.users) {
      assert.ok(!labels.has(u.name), `user ${u.name} is not a label value`);
      assert.ok(!labels.has(String(u.chatId)), `chat ${u.chatId} is not a label value`);
    }
  });

  void it('shows the queue depth and the age of the oldest message during an outage', async () => {
    h.fake.setFault({ kind: 'outage' });
    try {
      await h.client.send({ user: h.users[0]!.name, message: 'during the outage' }, 'respond-async');
      const s = await scrape(port);
      assert.equal(value(s.samples, 'notify_queue_depth'), 1);
      await waitFor('the oldest message to age', async () => value((await scrape(port)).samples, 'notify_queue_oldest_age_seconds') > 0.2, 60_000);
      await waitFor('a retry to be counted', async () => value((await scrape(port)).samples, 'notify_notifications_retried_total') > 0, 60_000);
    } finally {
      h.fake.setFault(null);
    }
    await h.fake.waitForMessages(h.users[0]!.chatId, 7, 30_000);
    await waitFor('the queue to empty', async () => value((await scrape(port)).samples, 'notify_queue_depth') === 0, 60_000);
  });

  void it('counts what a rule held back by the channel it would have gone to and the reason, and Telegram gets none of it', async () => {
    const user = h.users[2]!;
    const rules = new AlertRulesStore(h.dataDir, systemClock);
    await rules.mute(user.name, 'muted.py');
    await rules.snooze(user.name, 'snoozed.py', Date.now() + 3_600_000);
    const teams = new TeamChatStore(h.dataDir);
    h.fake.createGroup(TEAM_CHAT, 'Metrics team', [user.chatId]);
    await teams.file.update(() => ({ next: { 'metrics-team': { chat_id: TEAM_CHAT, owner: user.name, linked_at: '2026-12-01T00:00:00Z', members: [] } }, result: undefined }));
    await teams.silence(TEAM_CHAT, user.name, 'team.py', { muted: true, by: user.name });

    const before = await scrape(port);
    const sentBefore = h.fake.sentMessages().length;
    const sends = [
      { user: user.name, script: 'muted.py', message: 'held by a mute' },
      { user: user.name, script: 'snoozed.py', message: 'held by a snooze' },
      { user: user.name, script: 'team.py', to: ['metrics-team'], message: 'held in the team chat' },
    ];
    for (const body of sends) {
      const res = await h.client.send(body, 'respond-async');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal((res.body as { telegram?: string }).telegram, 'suppressed', JSON.stringify(res.body));
    }
    const after = await scrape(port);
    const delta = (labels: Record<string, string>): number => value(after.samples, 'notify_notifications_suppressed_total', labels) - value(before.samples, 'notify_notifications_suppressed_total', labels);
    assert.equal(delta({ channel: 'telegram', reason: 'muted' }), 2, 'the personal mute and the team chat mute');
    assert.equal(delta({ channel: 'desktop', reason: 'muted' }), 1, 'a team chat has no desktop copy');
    assert.equal(delta({ channel: 'telegram', reason: 'snoozed' }), 1);
    assert.equal(delta({ channel: 'desktop', reason: 'snoozed' }), 1);
    assert.equal(value(after.samples, 'notify_notifications_accepted_total') - value(before.samples, 'notify_notifications_accepted_total'), 0, 'nothing held back was accepted for a channel');
    assert.equal(h.fake.sentMessages().length, sentBefore, 'Telegram received none of them');
    const labels = labelValues(after.samples);
    assert.ok(!labels.has(user.name) && !labels.has(String(TEAM_CHAT)) && !labels.has('metrics-team') && !labels.has('muted.py'), 'no user, chat, team or script is a label value');
  });

  void it('counts a notification Telegram rejects for good as dead-lettered, and one a chat refuses as refused', async () => {
    const before = await scrape(port);
    const sentBefore = h.fake.sentMessages().length;
    const rejectedUser = h.users[1]!;
    const blocked = h.users[3]!;
    // Refused by a word on its second line: the notice about it quotes the first line only.
    h.fake.refuseMessages({ textIncludes: 'XQ-REFUSE-7', error_code: 400, description: 'Bad Request: message refused by the test' });
    try {
      const rejected = await h.client.send({ user: rejectedUser.name, message: 'a message Telegram rejects\nXQ-REFUSE-7', parse_mode: 'plain' }, { waitSeconds: 10 });
      assert.equal((rejected.body as { telegram?: string }).telegram, 'failed', JSON.stringify(rejected.body));
      h.fake.blockChat(blocked.chatId);
      const refused = await h.client.send({ user: blocked.name, message: 'to a chat that blocked the bot' }, { waitSeconds: 10 });
      assert.equal((refused.body as { telegram?: string }).telegram, 'refused', JSON.stringify(refused.body));
      // The analyst is told of the rejected one in their chat.
      await h.waitUntil(() => h.fake.sentMessages(rejectedUser.chatId).some((m) => /could not be delivered: "a message Telegram rejects"/.test(textOf(m))), 15_000, () => 'no notice of the rejected notification');
    } finally {
      h.fake.refuseMessages(null);
      h.fake.unblockChat(blocked.chatId);
    }
    const received = h.fake.sentMessages().length - sentBefore;
    assert.equal(received, 1, 'Telegram received the notice only');
    await waitFor('the notice to be recorded', async () => {
      const s = await scrape(port);
      return value(s.samples, 'notify_queue_depth') === 0 && value(s.samples, 'notify_notifications_delivered_total', { channel: 'telegram' }) - value(before.samples, 'notify_notifications_delivered_total', { channel: 'telegram' }) === received;
    }, 60_000);
    const s = await scrape(port);
    const delta = (name: string, labels: Record<string, string> = {}): number => value(s.samples, name, labels) - value(before.samples, name, labels);
    assert.equal(delta('notify_notifications_dead_lettered_total', { channel: 'telegram', reason: 'rejected' }), 1);
    assert.equal(delta('notify_notifications_dead_lettered_total'), 1);
    assert.equal(delta('notify_notifications_refused_total', { channel: 'telegram' }), 1);
    assert.equal(delta('notify_notifications_accepted_total', { channel: 'telegram' }), 3, 'the two, and the notice');
  });

  void it('answers 404 outside /metrics', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 404);
  });
});

void describe('the gateway\'s metrics endpoint', () => {
  const dir = tempDir('notify-gw-metrics-');
  let gw: TestGateway;
  let port = 0;

  before(async () => {
    gw = await startTestGateway(dir.path, { metricsAddr: { host: '127.0.0.1', port: 0 } });
    const line = gw.logLines.find((l) => l.msg === 'metrics endpoint listening at /metrics');
    assert.ok(line, 'the gateway logged where metrics are served');
    port = Number(line.port);
  });

  after(async () => {
    await gw?.stop();
    dir.remove();
  });

  void it('counts desktop connections and dispatches, naming no user', async () => {
    const before = await scrape(port);
    assert.equal(value(before.samples, 'notify_desktop_connections'), 0);
    const desktop = await TestDesktop.authenticated(gw.url, await signToken({ sub: 'metrics-ann' }));
    try {
      await waitFor('the connection to count', async () => value((await scrape(port)).samples, 'notify_desktop_connections') === 1);
      await gw.gateway.deliver('metrics-ann', notification('m1') as never);
      await gw.gateway.deliver('metrics-bob', notification('m2') as never);
      const s = await scrape(port);
      assert.equal(value(s.samples, 'notify_desktop_users'), 1);
      assert.equal(value(s.samples, 'notify_gateway_dispatches_total', { result: 'delivered' }), 1);
      assert.equal(value(s.samples, 'notify_gateway_dispatches_total', { result: 'no_connection' }), 1);
      assert.equal(value(s.samples, 'notify_gateway_notifications_sent_total'), 1);
      const labels = labelValues(s.samples);
      assert.ok(!labels.has('metrics-ann') && !labels.has('metrics-bob'), 'no user name is a label value');
    } finally {
      desktop.ws.close();
    }
  });
});

void describe('the dashboard\'s metrics endpoint', () => {
  const dir = tempDir('notify-web-metrics-');
  let provider: TestOidcProvider;
  let app: FastifyInstance;
  let server: MetricsServer;

  before(async () => {
    provider = await startOidcProvider({ redirectUris: ['http://dashboard.test/auth/callback'] });
    const config = readWebConfig(webEnv(provider, dir.path, { NOTIFY_METRICS_ADDR: '127.0.0.1:0' }));
    assert.ok(config.metricsAddr, 'NOTIFY_METRICS_ADDR is read by the dashboard');
    const metrics = new WebMetrics();
    const logger = silentLogger();
    app = await buildApp({ config, logger, metrics });
    server = await serveMetrics(metrics.registry, config.metricsAddr, logger);
  });

  after(async () => {
    await server?.close();
    await app?.close();
    await provider?.close();
    dir.remove();
  });

  void it('counts sign-ins and code verifications by result, naming no one', async () => {
    const port = server.address.port;
    const before = await scrape(port);
    const john = await signIn(app, 'john.doe@example.com');
    // Not an allowed address: refused.
    const jar = new CookieJar();
    const refused = await callback(app, await authorize(app, 'eve@elsewhere.test', jar), jar);
    assert.equal(refused.statusCode, 403);
    // A callback without a sign-in started in this browser: failed.
    const stale = await app.inject({ method: 'GET', url: '/auth/callback?code=abc&state=def' });
    assert.equal(stale.statusCode, 400);

    const verify = (code: string) => app.inject({ method: 'POST', url: '/api/telegram/verify', headers: { cookie: john.jar.header(), 'x-csrf-token': john.csrf, 'content-type': 'application/json' }, payload: JSON.stringify({ code }) });
    const issued = await new LinkStore(dir.path).issueCode(700_777);
    const wrong = issued === '000000' ? '000001' : '000000';
    assert.equal((await verify(wrong)).statusCode, 400);
    assert.equal((await verify(wrong)).statusCode, 400);
    assert.equal((await verify(issued)).statusCode, 200);

    const afterAll = await scrape(port);
    const delta = (name: string, labels: Record<string, string>): number => value(afterAll.samples, name, labels) - value(before.samples, name, labels);
    assert.equal(delta('notify_web_sign_ins_total', { result: 'ok' }), 1);
    assert.equal(delta('notify_web_sign_ins_total', { result: 'refused' }), 1);
    assert.equal(delta('notify_web_sign_ins_total', { result: 'failed' }), 1);
    assert.equal(delta('notify_web_code_verifications_total', { result: 'invalid' }), 2);
    assert.equal(delta('notify_web_code_verifications_total', { result: 'ok' }), 1);
    const labels = [...labelValues(afterAll.samples)].join(' ');
    assert.ok(!/john|eve|example|elsewhere|700777/.test(labels), `no user, address or chat is a label value: ${labels}`);
  });
});
