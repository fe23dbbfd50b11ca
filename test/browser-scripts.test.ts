/**
 * "My scripts" and "Alert settings" in a real browser (Debian's chromium) against the whole
 * stack: local OpenID Connect provider, fake Telegram, the real bot and the dashboard, with
 * the analyst's scripts run by the real `notify-scripts` in a temporary home (no sudo).
 * A linked analyst signs in, sees the scripts and their outcomes, presses Run now and the
 * notification arrives in the fake Telegram; then sets quiet hours and mutes a script on
 * the dashboard and sees both in the bot's /status. Screenshots go to test-artifacts/.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LinkStore } from '../src/shared/linking.js';
import { AlertRulesStore } from '../src/shared/alertRules.js';
import { systemClock } from '../src/shared/clock.js';
import { HistoryStore, newRunId } from '../src/shared/history.js';
import { ScriptsHelper } from '../src/scripts/client.js';
import { runCli } from '../src/runner/main.js';
import { PATH } from './support/runnerSandbox.js';
import { ARTIFACTS, type BrowserStack, CHROMIUM, PROJECT_ROOT, signedInPage, startBrowserStack } from './support/browserStack.js';

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;

void describe('browser: My scripts and alert settings', { skip }, () => {
  let stack: BrowserStack;
  let home: string;
  let helper: ScriptsHelper;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'browser-scripts-home-'));
    const dir = join(home, 'user', 'notifications');
    mkdirSync(dir, { recursive: true });
    const write = (name: string, body: string): void => {
      writeFileSync(join(dir, name), body);
      chmodSync(join(dir, name), 0o755);
    };
    write('revenue_drop.py', 'import json\nprint(json.dumps({"notify": True, "title": "Revenue down 12%", "message": "Yesterday: 8 800 EUR, 12% below the 14-day average."}))\n');
    write('signups.py', 'print(\'{"notify": false}\')\n');
    write('warehouse_check.py', 'import sys\nprint("connecting to the warehouse", file=sys.stderr)\nraise RuntimeError("the warehouse refused the connection")\n');
    // Both the bot (spawned with this environment) and the dashboard use this helper command.
    process.env.NOTIFY_SCRIPTS_COMMAND = `env HOME=${home} ${process.execPath} ${join(PROJECT_ROOT, 'bin', 'notify-scripts.js')}`;
    helper = new ScriptsHelper({ command: process.env.NOTIFY_SCRIPTS_COMMAND, timeoutMs: 90_000 });
    stack = await startBrowserStack();
    // Earlier runs, so the panel has outcomes to show.
    await helper.run('john.doe', 'warehouse_check.py').catch(() => undefined);
    await helper.run('john.doe', 'signups.py');
  });
  after(async () => {
    await stack?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  void it('shows the scripts, runs one into Telegram, and sets quiet hours and a mute that /status shows', async () => {
    const chat = 777001;
    stack.telegram.registerChat(chat, { first_name: 'John' });
    await new LinkStore(stack.dataDir).linkChat('john.doe', chat);

    const { context, page, consoleErrors } = await signedInPage(stack, 'john.doe@example.com', { timezoneId: 'Europe/Prague' });
    try {
      await page.getByRole('heading', { name: 'My scripts' }).waitFor();

      // The scripts and their outcomes.
      const list = page.locator('#sc-list');
      const warehouse = list.locator('li[data-script="warehouse_check.py"]');
      await warehouse.waitFor();
      assert.match((await warehouse.textContent()) ?? '', /Failed/);
      assert.match((await warehouse.locator('.script-error').textContent()) ?? '', /RuntimeError: the warehouse refused the connection/);
      assert.match((await list.locator('li[data-script="signups.py"]').textContent()) ?? '', /Nothing to send/);
      assert.match((await list.locator('li[data-script="revenue_drop.py"]').textContent()) ?? '', /Never ran/);
      await page.locator('#sc-runs tr').first().waitFor();
      assert.equal(await page.locator('#sc-runs tr').count(), 2);
      await page.locator('#scripts-card').screenshot({ path: join(ARTIFACTS, 'dashboard-scripts.png') });

      // Run now: the notification arrives in Telegram.
      await page.getByRole('button', { name: 'Run revenue_drop.py now' }).click();
      await page.locator('#sc-live').filter({ hasText: 'revenue_drop.py ran and its notification is on its way' }).waitFor({ timeout: 30_000 });
      const [alert] = await stack.telegram.waitForMessages(chat, 1, 60_000);
      assert.match(alert?.text ?? '', /Revenue down 12%/, `the alert arrives: ${alert?.text}\n${stack.botOutput()}`);
      await list.locator('li[data-script="revenue_drop.py"]', { hasText: /Sent/ }).waitFor();
      await page.locator('#sc-runs tr', { hasText: 'revenue_drop.py' }).waitFor();
      await page.locator('#scripts-card').screenshot({ path: join(ARTIFACTS, 'dashboard-scripts-run.png') });

      // A failing run says why.
      await page.getByRole('button', { name: 'Run warehouse_check.py now' }).click();
      await page.locator('#sc-live .notice-error').filter({ hasText: 'warehouse refused the connection' }).waitFor({ timeout: 30_000 });

      // Quiet hours: the time zone defaults to the browser's.
      assert.equal(await page.getByLabel('Time zone').inputValue(), 'Europe/Prague');
      await page.getByLabel('Time zone').fill('Mars/Olympus');
      await page.getByRole('button', { name: 'Save quiet hours' }).click();
      await page.locator('#ru-quiet-error').filter({ hasText: 'is not a time zone' }).waitFor();
      await page.getByLabel('From', { exact: true }).fill('22:00');
      await page.getByLabel('Until').fill('07:00');
      await page.getByLabel('Time zone').fill('Europe/Prague');
      await page.getByRole('button', { name: 'Save quiet hours' }).click();
      await page.locator('#ru-live').filter({ hasText: 'Quiet hours set: 22:00–07:00 (Europe/Prague)' }).waitFor();
      await page.locator('#ru-quiet-state').filter({ hasText: 'Quiet hours 22:00–07:00' }).waitFor();

      // Mute one script from its row.
      await page.getByRole('button', { name: 'Mute warehouse_check.py' }).click();
      await page.locator('#sc-live').filter({ hasText: 'warehouse_check.py is muted until you unmute it' }).waitFor();
      await list.locator('li[data-script="warehouse_check.py"] .tag', { hasText: 'Muted' }).waitFor();
      await page.getByRole('button', { name: 'Unmute warehouse_check.py' }).waitFor();
      await page.locator('#ru-mute-state').filter({ hasText: 'Muted: warehouse_check.py' }).waitFor();
      await page.locator('#rules-card').screenshot({ path: join(ARTIFACTS, 'dashboard-scripts-rules.png') });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-scripts-page.png'), fullPage: true });

      const rules = JSON.parse(readFileSync(join(stack.dataDir, 'alert_rules.json'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual(rules['john.doe'], { scripts: { 'warehouse_check.py': { muted: true } }, quiet_hours: { start: '22:00', end: '07:00', tz: 'Europe/Prague' } });

      // The bot's /status shows both.
      stack.telegram.sendUserMessage(chat, '/status');
      const messages = await stack.telegram.waitForMessages(chat, 2, 60_000);
      const status = messages.find((m) => (m.text ?? '').startsWith('Scripts of john.doe'));
      assert.ok(status, `a /status answer arrives: ${JSON.stringify(messages.map((m) => m.text))}\n${stack.botOutput()}`);
      assert.match(status.text ?? '', /Quiet hours 22:00-07:00 Europe\/Prague/);
      assert.match(status.text ?? '', /warehouse_check\.py[^\n]*\n(?:[^\n]*\n)*?\s*🔕 muted/u);

      // The desktop card: a token is shown once, listed, and revoked behind a confirmation.
      await page.locator('#dt-label').fill('Work laptop');
      await page.locator('#dt-create').click();
      await page.locator('#dt-new').waitFor({ state: 'visible', timeout: 60_000 });
      const token = await page.locator('#dt-token').inputValue();
      assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT is shown once');
      await page.locator('#dt-rows').filter({ hasText: 'Work laptop' }).waitFor();
      const tokens = JSON.parse(readFileSync(join(stack.dataDir, 'desktop_tokens.json'), 'utf8')) as Record<string, { user: string; label?: string; revoked_at?: string }>;
      const [jti, record] = Object.entries(tokens)[0]!;
      assert.equal(record.user, 'john.doe');
      await page.locator('#dt-done').click();
      await page.locator('#dt-rows button', { hasText: 'Revoke' }).first().click();
      await page.locator('#dt-revoke-confirm').click();
      await page.locator('#dt-live').filter({ hasText: /revoked/i }).waitFor();
      const after = JSON.parse(readFileSync(join(stack.dataDir, 'desktop_tokens.json'), 'utf8')) as Record<string, { revoked_at?: string }>;
      assert.ok(after[jti]?.revoked_at, 'the token is revoked in desktop_tokens.json');
      await page.locator('#desktop-card').screenshot({ path: join(ARTIFACTS, 'dashboard-desktop.png') });

      // Phone-sized screen.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.locator('#scripts-card').screenshot({ path: join(ARTIFACTS, 'dashboard-scripts-mobile.png') });

      assert.deepEqual(consoleErrors, [], 'no errors in the browser console (CSP violations included)');
    } finally {
      await context.close();
    }
  });

  void it('shows each script\'s schedule and next run, a wrong schedule\'s error, and a resolved alert with how long it lasted', async () => {
    const dir = join(home, 'user', 'notifications');
    writeFileSync(join(dir, 'morning_report.py'), '#!/usr/bin/env python3\n# schedule: 0 9 * * 1-5 Europe/Prague\nprint(\'{"notify": false}\')\n');
    writeFileSync(join(dir, 'bad_schedule.py'), '# schedule: 0 25 * * *\nprint(\'{"notify": false}\')\n');
    const flag = join(home, 'disk.flag');
    writeFileSync(
      join(dir, 'disk_space.py'),
      `import json, os\nif os.path.exists(${JSON.stringify(flag)}):\n    print(json.dumps({"notify": True, "title": "Disk low on /data", "message": "20 GB left.", "send_resolved": True}))\nelse:\n    print(json.dumps({"notify": False}))\n`,
    );
    // The runner's passes as this test's account (root, linked to a chat of its own), with
    // an injected clock: the alert, and 2 h 5 min later the run that finds it over.
    const rootChat = 777002;
    stack.telegram.registerChat(rootChat, { first_name: 'Root' });
    await new LinkStore(stack.dataDir).linkChat('root', rootChat);
    const t0 = Date.now() - 126 * 60_000;
    const pass = async (at: number): Promise<void> => {
      let out = '';
      const code = await runCli(['--script', 'disk_space.py'], { PATH, HOME: home, NOTIFY_SOCKET: stack.socketPath }, { out: (t) => (out += t), err: (t) => (out += t), isTty: false }, { now: () => at });
      assert.equal(code, 0, out);
    };
    writeFileSync(flag, '');
    await pass(t0);
    await stack.telegram.waitForMessages(rootChat, 1, 60_000);
    rmSync(flag);
    await pass(t0 + 125 * 60_000);
    await stack.telegram.waitForMessages(rootChat, 2, 60_000);

    const { context, page, consoleErrors } = await signedInPage(stack, 'john.doe@example.com', { timezoneId: 'Europe/Prague' });
    try {
      const list = page.locator('#sc-list');
      const morning = list.locator('li[data-script="morning_report.py"] .script-schedule');
      await morning.waitFor();
      const schedule = (await morning.textContent()) ?? '';
      assert.match(schedule, /^Schedule 0 9 \* \* 1-5 Europe\/Prague · next run /u, schedule);
      const next = await morning.locator('time').getAttribute('datetime');
      const prague = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Prague', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(Date.parse(next ?? ''));
      assert.match(prague, /^(Mon|Tue|Wed|Thu|Fri) 09:00$/, `the next run is a weekday at 09:00 in Prague: ${next}`);
      assert.match((await list.locator('li[data-script="bad_schedule.py"] .script-schedule-error').textContent()) ?? '', /invalid schedule: invalid cron expression '0 25 \* \* \*'/);

      const runs = page.locator('#sc-runs tr', { hasText: 'disk_space.py' });
      await runs.first().waitFor();
      await page.locator('#sc-runs .tag-resolved', { hasText: /^✅ Resolved after 2 h 5 min, / }).waitFor();
      await page.locator('#sc-runs .run-resolved', { hasText: 'Condition cleared after 2 h 5 min: resolved notice sent' }).waitFor();

      // A resolved notice held for the quiet-hours digest says so until the digest goes.
      await new HistoryStore(join(home, '.notifications', 'history.jsonl')).append({
        run_id: newRunId(), time: new Date().toISOString(), script: 'night_check.py', trigger: 'schedule', outcome: 'nothing_to_send', duration_ms: 5, exit_code: 0,
        resolved_alert: 'a-night', resolved_after_ms: 10 * 60_000, resolved_notice: 'n-night', resolved_notice_held: 'quiet_hours', resolved_notice_until: new Date(Date.now() + 3_600_000).toISOString(),
      });
      const rules = new AlertRulesStore(stack.dataDir, systemClock);
      await rules.hold('john.doe', { id: 'n-night', at: new Date().toISOString(), title: '✅ Resolved: night check', message: 'cleared', script: 'night_check.py' });
      await page.locator('#sc-refresh').click();
      await page.locator('#sc-runs .run-resolved', { hasText: /^Condition cleared after 10 min: resolved notice held for the quiet-hours digest, sent at / }).waitFor();
      await rules.releaseHeld('john.doe', async () => undefined);
      await page.locator('#sc-refresh').click();
      await page.locator('#sc-runs .run-resolved', { hasText: 'Condition cleared after 10 min: resolved notice sent with the quiet-hours digest' }).waitFor();
      await page.locator('#scripts-card').screenshot({ path: join(ARTIFACTS, 'dashboard-scripts-schedule-resolved.png') });
      assert.deepEqual(consoleErrors, [], 'no errors in the browser console');
    } finally {
      await context.close();
    }
  });
});
