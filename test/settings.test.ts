/**
 * The settings registry (src/shared/settings.ts) is the one declaration of every setting:
 * each program reads exactly the settings it lists for that program, every default is a
 * value the reader accepts, and the text generated from it (README tables, env template
 * tunables, every --help) is current.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readBotConfig } from '../src/bot/config.js';
import { readGatewayConfig } from '../src/gateway/config.js';
import { readRunnerConfig } from '../src/runner/config.js';
import { ConfigError, EnvReader, parseSetting } from '../src/shared/config.js';
import { allSettings, type Program, PROGRAMS, SETTINGS, settingsOf } from '../src/shared/settings.js';
import { generatedRegions, shownDefault, withRegion } from '../src/shared/settingsDocs.js';
import { readWebConfig } from '../src/web/config.js';

const ROOT = process.env.NOTIFY_PROJECT_ROOT ?? join(import.meta.dirname, '..', '..');

/** An environment valid for every program, with each setting set to its default or a sample. */
function fullEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, spec] of allSettings()) env[name] = spec.default ?? (spec.kind === 'list' ? 'example.com' : 'x');
  Object.assign(env, {
    TELEGRAM_BOT_TOKEN: '123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ012345678',
    OIDC_CLIENT_ID: 'client',
    NOTIFY_SESSION_SECRET: 's'.repeat(40),
    DESKTOP_JWT_SECRET: 'd'.repeat(40),
    NOTIFY_SOCKET_GROUP: 'analysts',
    NOTIFY_GATEWAY_SOCKET_GROUP: String(process.getgid?.() ?? 0),
    TELEGRAM_BOT_USERNAME: 'my_alerts_bot',
    NOTIFY_ALLOWED_EMAILS: 'a@example.com',
    NOTIFY_METRICS_ADDR: '127.0.0.1:9464',
    NOTIFY_DATABASE_URL: 'postgres://notify@/notify?host=/run/postgresql',
  });
  return env;
}

/** Runs a program's reader over an environment that records which variables were looked at. */
function variablesRead(program: Program, env: NodeJS.ProcessEnv): Set<string> {
  const seen = new Set<string>();
  const spy = new Proxy(env, {
    get(target, key) {
      if (typeof key === 'string') seen.add(key);
      return target[key as string];
    },
  });
  const readers: Record<Program, () => unknown> = {
    bot: () => readBotConfig(spy),
    web: () => readWebConfig(spy),
    gateway: () => readGatewayConfig(spy),
    runner: () => readRunnerConfig(new EnvReader('runner', spy)),
    scripts: () => readRunnerConfig(new EnvReader('scripts', spy)),
    notify: () => new EnvReader('notify', spy).get('NOTIFY_SOCKET'),
  };
  readers[program]();
  return seen;
}

void describe('settings registry', () => {
  for (const program of Object.keys(PROGRAMS) as Program[]) {
    void it(`${PROGRAMS[program]} reads exactly the settings the registry lists for it`, () => {
      const read = [...variablesRead(program, fullEnv())].sort();
      const listed = settingsOf(program).map(([n]) => n as string).sort();
      assert.deepEqual(read, listed);
    });
  }

  void it('every default and bound is a value its own reader accepts', () => {
    for (const [name, spec] of allSettings()) {
      for (const text of [spec.default, spec.min, spec.max]) {
        if (text === undefined) continue;
        const parsed = parseSetting(name, { ...spec, min: undefined, max: undefined }, text);
        assert.ok('value' in parsed, `${name}: '${text}' is refused by its reader: ${'problem' in parsed ? parsed.problem : ''}`);
      }
      if (spec.default !== undefined) {
        const parsed = parseSetting(name, spec, spec.default);
        assert.ok('value' in parsed, `${name}: the default '${spec.default}' is outside its bounds`);
      }
    }
  });

  void it('a program started with nothing set names exactly its required settings', () => {
    const required = (p: Program): string[] => settingsOf(p).filter(([, s]) => s.required?.includes(p)).map(([n]) => n);
    const missing = (read: () => unknown): string[] => {
      try {
        read();
        return [];
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return err.problems.filter((p) => / is not set: /.test(p)).map((p) => p.split(' ')[0]!);
      }
    };
    assert.deepEqual(missing(() => readBotConfig({})), required('bot'));
    assert.deepEqual(missing(() => readWebConfig({})), required('web'));
    assert.deepEqual(missing(() => readGatewayConfig({})), required('gateway'));
    assert.deepEqual(required('runner'), []);
  });

  void it('reading a setting not declared for the program is refused', () => {
    assert.throws(() => new EnvReader('runner', {}).get('TELEGRAM_BOT_TOKEN'), /notify-runner reads TELEGRAM_BOT_TOKEN, which settings.ts does not list for it/);
  });

  void it('accepts what --help shows: sizes with units, durations with units, checked log levels', () => {
    const bot = readBotConfig({ ...fullEnv(), NOTIFY_MAX_BODY: '256KiB', NOTIFY_TELEGRAM_TIMEOUT: '30s', NOTIFY_POLL_TIMEOUT: '25' });
    assert.equal(bot.maxBodyBytes, 262_144);
    assert.equal(bot.requestTimeoutSeconds, 30);
    assert.equal(bot.pollTimeoutSeconds, 25);
    assert.throws(() => readGatewayConfig({ ...fullEnv(), NOTIFY_LOG_LEVEL: 'loud' }), /NOTIFY_LOG_LEVEL must be one of trace, debug, info/);
    assert.throws(() => readBotConfig({ ...fullEnv(), NOTIFY_MAX_BODY: '1TiB' }), /NOTIFY_MAX_BODY must be a size such as/);
    assert.throws(() => readBotConfig({ ...fullEnv(), NOTIFY_MAX_BODY: '100MiB' }), /NOTIFY_MAX_BODY must be a size from 1KiB to 64MiB \(got '100MiB'\)/);
    const web = readWebConfig({ ...fullEnv(), OIDC_CLIENT_SECRET: '' });
    assert.equal(web.oidc.clientSecret, undefined, 'OIDC_CLIENT_SECRET is optional (a public client)');
    assert.ok(web.secrets.includes('s'.repeat(40)) && web.secrets.includes('d'.repeat(40)), 'the secrets read are kept out of logs');
  });

  void it('the README tables and the env template tunables are generated from the registry (npm run gen)', () => {
    for (const region of generatedRegions()) {
      const current = readFileSync(join(ROOT, region.file), 'utf8');
      assert.equal(current, withRegion(current, region), `${region.file} is stale: run npm run gen`);
    }
  });

  void it('the env template mentions every setting of the services', () => {
    const template = readFileSync(join(ROOT, 'deploy', 'notify.env.example'), 'utf8');
    for (const [name, spec] of allSettings()) {
      if (!spec.programs.some((p) => p === 'bot' || p === 'web' || p === 'gateway')) continue;
      assert.match(template, new RegExp(`^#? ?${name}=`, 'm'), `deploy/notify.env.example does not mention ${name}`);
    }
  });

  void it("every program's --help lists each of its settings with the default", () => {
    for (const program of Object.keys(PROGRAMS) as Program[]) {
      const res = spawnSync(process.execPath, [join(ROOT, 'bin', `${PROGRAMS[program]}.js`), '--help'], { encoding: 'utf8', env: {} });
      assert.equal(res.status, 0, `${PROGRAMS[program]} --help: ${res.stderr}`);
      for (const [name, spec] of settingsOf(program)) {
        assert.ok(res.stdout.includes(`${name} `) && res.stdout.includes(`[${shownDefault(spec, program)}]`), `${PROGRAMS[program]} --help does not list ${name} with its default`);
      }
    }
    assert.ok(SETTINGS.NOTIFY_SCRIPTS_COMMAND.programs.includes('web'));
  });
});
