/**
 * Which accounts a verified address may sign in as: never the system's accounts (root, uids
 * below the login range), accounts without a login shell or the notification services' own
 * (the bot's, which owns the send socket), checked against real Linux accounts; and the
 * e-mail-to-name rule is one-to-one, so two people never share an account.
 */
import assert from 'node:assert/strict';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { parseLoginDefs } from '../src/shared/analystAccounts.js';
import { userByName } from '../src/shared/posix.js';
import { addressOfName, decideAccount, usernameFor } from '../src/web/accounts.js';
import { buildApp } from '../src/web/app.js';
import { readWebConfig } from '../src/web/config.js';
import { accountsUnavailable, LinuxAccounts } from './support/linuxAccounts.js';
import { CookieJar, authorize, callback, webEnv } from './support/oidcFlow.js';
import { type TestOidcProvider, startOidcProvider } from './support/oidcProvider.js';

const PUBLIC_URL = 'http://dashboard.test';
const verified = (email: string): { email: string; email_verified: true } => ({ email, email_verified: true });

void describe('the e-mail to account name rule', () => {
  const domains = ['example.com', 'other.org'];
  const emails = ['first_last@gmail.com', 'x@a.b.org', 'petr@simecek.org'];

  void it('gives one name to one address only: the first domain never takes a name another allowed domain ends', () => {
    const alice = decideAccount(verified('alice@other.org'), domains, emails);
    assert.deepEqual(alice, { ok: true, username: 'alice_other_org', email: 'alice@other.org' });
    const clash = decideAccount(verified('alice_other_org@example.com'), domains, emails);
    assert.equal(clash.ok, false);
    assert.equal(!clash.ok && clash.reason, 'name_of_another');
    assert.equal(!clash.ok && clash.reason === 'name_of_another' && clash.owner, 'alice@other.org');
    // The README's rule for the first domain and its examples are kept.
    assert.deepEqual(decideAccount(verified('John.Doe@example.com'), domains, emails), { ok: true, username: 'john.doe', email: 'john.doe@example.com' });
    assert.deepEqual(decideAccount(verified('petr@simecek.org'), domains, emails), { ok: true, username: 'petr_simecek_org', email: 'petr@simecek.org' });
    assert.equal(usernameFor('jane@other.org', domains, []), 'jane_other_org');
  });

  void it('within another domain, the name with _ for a dot is the dotted address; a listed address keeps its own', () => {
    assert.equal(decideAccount(verified('john.doe@other.org'), domains, emails).ok, true);
    const underscore = decideAccount(verified('john_doe@other.org'), domains, emails);
    assert.ok(!underscore.ok && underscore.reason === 'name_of_another' && underscore.owner === 'john.doe@other.org', JSON.stringify(underscore));
    assert.deepEqual(decideAccount(verified('first_last@gmail.com'), domains, emails), { ok: true, username: 'first_last_gmail_com', email: 'first_last@gmail.com' });
  });

  void it('a name two allowed domains could end is no one\'s', () => {
    const both = ['example.com', 'b.org'];
    const a = decideAccount(verified('x@a.b.org'), both, ['x@a.b.org']);
    const b = decideAccount(verified('x.a@b.org'), both, ['x@a.b.org']);
    assert.ok(!a.ok && a.reason === 'name_of_another' && a.owner === null, JSON.stringify(a));
    assert.ok(!b.ok && b.reason === 'name_of_another' && b.owner === null, JSON.stringify(b));
  });

  void it('no two addresses of a large mixed set get the same name', () => {
    const locals = ['a', 'b', 'a.b', 'a_b', 'b_a', 'a.b.c', 'a_b_c', 'a_b.c', 'a_other_org', 'a_b_org', 'x_a', 'x.a', 'a_gmail_com', 'a_sub_other_org'];
    const domainSets: Array<[string[], string[]]> = [
      [['example.com', 'other.org'], ['a@gmail.com', 'a_b@gmail.com', 'a.b@gmail.com']],
      [['example.com', 'other.org', 'sub.other.org', 'b.org', 'a.b.org'], ['x_a@b.org', 'a@other.org']],
      [[], ['a@x.org', 'a_b@x.org', 'a.b@x.org', 'a@b.x.org', 'a_b@x.org']],
    ];
    const allDomains = ['example.com', 'other.org', 'sub.other.org', 'b.org', 'a.b.org', 'gmail.com', 'x.org', 'b.x.org', 'org'];
    for (const [ds, es] of domainSets) {
      const owners = new Map<string, string>();
      for (const local of locals) {
        for (const d of allDomains) {
          const address = `${local}@${d}`;
          const decision = decideAccount(verified(address), ds, es);
          if (!decision.ok) continue;
          const earlier = owners.get(decision.username);
          assert.equal(earlier, undefined, `${earlier ?? ''} and ${address} both sign in as ${decision.username} (domains ${ds.join(',')}, emails ${es.join(',')})`);
          owners.set(decision.username, address);
          assert.equal(addressOfName(decision.username, ds, es), address);
        }
      }
      assert.ok(owners.size > 0, 'some addresses sign in');
    }
  });

  void it('reads the login range from login.defs', () => {
    assert.deepEqual(parseLoginDefs('# comment\nUID_MIN\t\t\t 1000\nUID_MAX\t\t\t60000\n#SYS_UID_MIN 100\n'), { min: 1000, max: 60000 });
    assert.deepEqual(parseLoginDefs('UID_MIN 500\n'), { min: 500, max: 60000 });
    assert.deepEqual(parseLoginDefs(''), { min: 1000, max: 60000 });
  });
});

void describe('signing in as a system or service account', { skip: accountsUnavailable() }, () => {
  let provider: TestOidcProvider;
  let dataDir: string;
  let app: FastifyInstance;
  const accounts = new LinuxAccounts();
  let service = '';
  let noLogin = '';
  let person = '';
  let botAccount = '';

  before(async () => {
    service = accounts.user('svc');
    noLogin = accounts.person('nologin', '/usr/sbin/nologin');
    person = accounts.person('analyst');
    botAccount = accounts.person('bot');
    provider = await startOidcProvider({ redirectUris: [`${PUBLIC_URL}/auth/callback`] });
    dataDir = mkdtempSync(join(tmpdir(), 'web-accounts-'));
    // The bot's account owns the send socket (here a file standing for it).
    const socket = join(dataDir, 'bot.sock');
    writeFileSync(socket, '');
    const bot = userByName(botAccount)!;
    chownSync(socket, bot.uid, bot.gid);
    app = await buildApp({ config: readWebConfig(webEnv(provider, dataDir, { NOTIFY_SOCKET: socket })) });
  });

  after(async () => {
    await app?.close();
    await provider?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    accounts.cleanup();
  });

  async function signInAs(local: string): Promise<{ status: number; body: string; session: boolean }> {
    provider.setAccount(`${local}@example.com`, { emailVerified: true });
    const jar = new CookieJar();
    const res = await callback(app, await authorize(app, `${local}@example.com`, jar), jar);
    return { status: res.statusCode, body: res.body, session: jar.values.has('notify_session') };
  }

  void it('refuses root, a system account, an account without a login shell and the bot\'s own account, with a page saying why', async () => {
    const cases: Array<[string, RegExp]> = [
      ['root', /system administrator&#39;s account|system administrator's account/],
      [service, /is a system account \(uid \d+, outside the login range/],
      [noLogin, /is a service account \(its shell is \/usr\/sbin\/nologin\)/],
      [botAccount, /account of one of the notification services/],
    ];
    for (const [name, why] of cases) {
      const r = await signInAs(name);
      assert.equal(r.status, 403, `${name} is refused: ${r.body.slice(0, 300)}`);
      assert.match(r.body, why, `the page says why ${name} is refused`);
      assert.equal(r.session, false, `no session for ${name}`);
    }
  });

  void it('lets a person\'s login account in', async () => {
    const r = await signInAs(person);
    assert.equal(r.status, 303, `${person} signs in: ${r.body.slice(0, 300)}`);
    assert.equal(r.session, true);
  });
});
