/**
 * The dashboard's team chat API with sessions made through the real sign-in flow: a group's
 * code links it under a name owned by the one who entered it, only for the administrator
 * whose /start gave it (anyone else who saw it: 403, the code kept); a personal chat's code, a bad
 * name or a taken one are refused and leave the code usable; the list shows a team chat to
 * its owner and to those allowed, never to others; only the owner changes who may send or
 * unlinks; accounts and groups that do not exist are refused; guesses share the personal
 * code's limit; the anti-forgery token is required.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/web/app.js';
import { readWebConfig } from '../src/web/config.js';
import { LinkStore } from '../src/shared/linking.js';
import { TeamChatStore } from '../src/shared/teamChats.js';
import { type SignedIn, signIn, webEnv } from './support/oidcFlow.js';
import { type TestOidcProvider, startOidcProvider } from './support/oidcProvider.js';

const GROUP_CHAT = -100_777;
const JOHN_TELEGRAM = 710_001;
const JANE_TELEGRAM = 710_002;
const ACCOUNTS = new Set(['john.doe', 'jane.roe', 'ann_example_org', 'bob']);
const GROUPS: Record<string, string[]> = { finance: ['bob'] };

void describe('dashboard: team chats', () => {
  let provider: TestOidcProvider;
  let app: FastifyInstance;
  let dataDir: string;
  let links: LinkStore;
  let john: SignedIn;
  let jane: SignedIn;
  let bob: SignedIn;

  before(async () => {
    provider = await startOidcProvider({ redirectUris: ['http://dashboard.test/auth/callback'] });
    dataDir = mkdtempSync(join(tmpdir(), 'web-teams-'));
    const config = readWebConfig(webEnv(provider, dataDir, { NOTIFY_VERIFY_USER_LIMIT: '4' }));
    app = await buildApp({
      config,
      isMember: (user, group) => (GROUPS[group] ?? []).includes(user),
      accountExists: (name) => ACCOUNTS.has(name),
      groupExists: (name) => name in GROUPS,
    });
    links = new LinkStore(dataDir);
    john = await signIn(app, 'john.doe@example.com');
    jane = await signIn(app, 'jane.roe@example.com');
    bob = await signIn(app, 'bob@example.com');
  });
  after(async () => {
    await app?.close();
    await provider?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  function post(s: SignedIn, url: string, body: unknown, csrf: string | null = s.csrf) {
    return app.inject({ method: 'POST', url, headers: { cookie: s.jar.header(), 'content-type': 'application/json', ...(csrf ? { 'x-csrf-token': csrf } : {}) }, payload: JSON.stringify(body) });
  }
  async function list(s: SignedIn): Promise<Array<Record<string, unknown>>> {
    const res = await app.inject({ method: 'GET', url: '/api/teams', headers: { cookie: s.jar.header() } });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<{ teams: Array<Record<string, unknown>> }>().teams;
  }

  void it('the dashboard page has the Team chats card', async () => {
    const res = await app.inject({ method: 'GET', url: '/', headers: { cookie: john.jar.header() } });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /<h2 id="tm-title">Team chats<\/h2>/);
    assert.match(res.body, /<script src="\/static\/teams\.js\?v=[0-9a-f]+" defer><\/script>/);
  });

  void it('links a group with its code under a name; refusals leave the code usable', async () => {
    // The code a group administrator's /start gave: for that administrator (their Telegram id) only.
    await links.linkChat('john.doe', JOHN_TELEGRAM);
    await links.linkChat('jane.roe', JANE_TELEGRAM);
    const code = await links.issueCode(GROUP_CHAT, { title: 'Finance alerts', linkers: [JOHN_TELEGRAM] });
    const personal = await links.issueCode(700_001);

    // Another analyst who saw the code in the group cannot take the group: 403, code kept.
    const hijack = await post(jane, '/api/teams/link', { code, name: 'janes-alerts' });
    assert.equal(hijack.statusCode, 403, hijack.body);
    assert.match(hijack.json<{ error: string }>().error, /only the group administrator who sent \/start/);
    // Nor one with no Telegram of their own to be recognised by.
    const unknownTelegram = await post(bob, '/api/teams/link', { code, name: 'bobs-alerts' });
    assert.equal(unknownTelegram.statusCode, 403, unknownTelegram.body);
    assert.match(unknownTelegram.json<{ error: string }>().error, /Link your own Telegram first/);
    assert.deepEqual(await new TeamChatStore(dataDir).all(), {}, 'nothing was linked');

    assert.equal((await post(john, '/api/teams/link', { code, name: 'finance-alerts' }, null)).statusCode, 403, 'the anti-forgery token is required');
    const badName = await post(john, '/api/teams/link', { code, name: 'Finance Alerts!' });
    assert.equal(badName.statusCode, 400);
    assert.match(badName.json<{ error: string }>().error, /lower-case letters/);
    const fromPersonal = await post(john, '/api/teams/link', { code: personal, name: 'finance-alerts' });
    assert.equal(fromPersonal.statusCode, 400);
    assert.match(fromPersonal.json<{ error: string }>().error, /personal chat/);
    // The group's code in the personal card is refused too, and stays.
    const inPersonalCard = await post(john, '/api/telegram/verify', { code });
    assert.equal(inPersonalCard.statusCode, 400);
    assert.match(inPersonalCard.json<{ error: string }>().error, /group chat/);

    const ok = await post(john, '/api/teams/link', { code, name: 'finance-alerts' });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.match(ok.json<{ message: string }>().message, /linked as finance-alerts/);
    const stored = await new TeamChatStore(dataDir).get('finance-alerts');
    assert.equal(stored?.owner, 'john.doe');
    assert.equal(stored?.chat_id, GROUP_CHAT);
    assert.equal(stored?.title, 'Finance alerts');
    const again = await post(john, '/api/teams/link', { code, name: 'finance-alerts' });
    assert.equal(again.statusCode, 400, 'a code works once');

    // Another analyst cannot take the name over with another group's code.
    const other = await links.issueCode(-100_778, { linkers: [JANE_TELEGRAM] });
    const taken = await post(jane, '/api/teams/link', { code: other, name: 'finance-alerts' });
    assert.equal(taken.statusCode, 409);
    assert.match(taken.json<{ error: string }>().error, /taken/);
  });

  void it('lists a team chat to its owner and to those allowed, never to others; only the owner changes access', async () => {
    const mine = await list(john);
    assert.equal(mine.length, 1);
    assert.deepEqual({ name: mine[0]!.name, owned: mine[0]!.owned, owner: mine[0]!.owner, members: mine[0]!.members, last_delivery_at: mine[0]!.last_delivery_at }, { name: 'finance-alerts', owned: true, owner: 'john.doe', members: [], last_delivery_at: null });
    assert.deepEqual(await list(jane), [], 'not allowed yet: not listed');
    assert.deepEqual(await list(bob), []);

    const unknown = await post(john, '/api/teams/access', { name: 'finance-alerts', members: 'jane.roe, nobody.here', member_group: null });
    assert.equal(unknown.statusCode, 400);
    assert.match(unknown.json<{ error: string }>().error, /no account named 'nobody\.here'/);
    const noGroup = await post(john, '/api/teams/access', { name: 'finance-alerts', members: 'jane.roe', member_group: 'nosuchgroup' });
    assert.equal(noGroup.statusCode, 400);
    assert.match(noGroup.json<{ error: string }>().error, /no Linux group named 'nosuchgroup'/);
    assert.deepEqual((await new TeamChatStore(dataDir).get('finance-alerts'))?.members, [], 'refused changes changed nothing');

    const set = await post(john, '/api/teams/access', { name: 'finance-alerts', members: 'jane.roe', member_group: 'finance' });
    assert.equal(set.statusCode, 200, set.body);
    assert.match(set.json<{ message: string }>().message, /you and jane\.roe and members of finance may send to finance-alerts/);
    const janes = await list(jane);
    assert.equal(janes.length, 1);
    assert.equal(janes[0]!.owned, false);
    assert.equal((await list(bob)).length, 1, 'a member of the Linux group sees it');

    const hijack = await post(jane, '/api/teams/access', { name: 'finance-alerts', members: [], member_group: null });
    assert.equal(hijack.statusCode, 403);
    assert.match(hijack.json<{ error: string }>().error, /Only the owner/);
    const unlinkByOther = await post(jane, '/api/teams/unlink', { name: 'finance-alerts' });
    assert.equal(unlinkByOther.statusCode, 403);
    assert.ok(await new TeamChatStore(dataDir).get('finance-alerts'), 'still linked');

    const unlinked = await post(john, '/api/teams/unlink', { name: 'finance-alerts' });
    assert.equal(unlinked.statusCode, 200);
    assert.deepEqual(await list(john), []);
    assert.deepEqual(await list(jane), []);
  });

  void it('wrong codes count against the same limit as the personal card', async () => {
    let last = 0;
    for (let i = 0; i < 6 && last !== 429; i++) {
      const res = await post(bob, i % 2 === 0 ? '/api/teams/link' : '/api/telegram/verify', { code: '000000', name: 'ops-alerts' });
      last = res.statusCode;
      if (last !== 429) assert.equal(last, 400, res.body);
    }
    assert.equal(last, 429, 'the fifth guess across both cards was refused');
  });
});
