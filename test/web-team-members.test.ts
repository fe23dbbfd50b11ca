/**
 * The dashboard lists each team chat's members from the system's user database: its owner,
 * the analysts named, and the accounts of the allowed Linux group (listed members and those
 * whose primary group it is), read anew on each look, with the last delivery. Real Linux
 * accounts and groups with unique names, removed afterwards; sessions through the real
 * sign-in flow (the account name is the e-mail's local part).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { LinkStore } from '../src/shared/linking.js';
import { groupMembers } from '../src/shared/posix.js';
import { TeamChatStore } from '../src/shared/teamChats.js';
import { buildApp } from '../src/web/app.js';
import { readWebConfig } from '../src/web/config.js';
import { accountsUnavailable, LinuxAccounts } from './support/linuxAccounts.js';
import { type SignedIn, signIn, webEnv } from './support/oidcFlow.js';
import { type TestOidcProvider, startOidcProvider } from './support/oidcProvider.js';

const GROUP_CHAT = -100_888;
const OWNER_TELEGRAM = 720_001;

interface TeamView {
  name: string;
  owner: string;
  members: string[];
  member_group: string | null;
  member_group_members: string[] | null;
  last_delivery_at: string | null;
}

void describe('dashboard: a team chat\'s members from the user database', { skip: accountsUnavailable() }, () => {
  const accounts = new LinuxAccounts();
  let provider: TestOidcProvider;
  let app: FastifyInstance;
  let dataDir: string;
  let owner = '';
  let named = '';
  let listed = '';
  let primary = '';
  let late = '';
  let group = '';
  let ownerSession: SignedIn;

  before(async () => {
    owner = accounts.person('own');
    named = accounts.user('named');
    listed = accounts.user('listed');
    late = accounts.user('late');
    group = accounts.group('fin', [listed]);
    primary = accounts.personInGroup('prim', group);
    provider = await startOidcProvider({ redirectUris: ['http://dashboard.test/auth/callback'] });
    dataDir = mkdtempSync(join(tmpdir(), 'web-team-members-'));
    // No stand-ins: accounts, groups and membership come from the system.
    app = await buildApp({ config: readWebConfig(webEnv(provider, dataDir)) });
    ownerSession = await signIn(app, `${owner}@example.com`);
  });

  after(async () => {
    await app?.close();
    await provider?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    accounts.cleanup();
  });

  function post(s: SignedIn, url: string, body: unknown) {
    return app.inject({ method: 'POST', url, headers: { cookie: s.jar.header(), 'content-type': 'application/json', 'x-csrf-token': s.csrf }, payload: JSON.stringify(body) });
  }
  async function list(s: SignedIn): Promise<TeamView[]> {
    const res = await app.inject({ method: 'GET', url: '/api/teams', headers: { cookie: s.jar.header() } });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<{ teams: TeamView[] }>().teams;
  }

  void it('the user database lists a group\'s listed members and those whose primary group it is', () => {
    assert.deepEqual(groupMembers(group), [listed, primary].sort());
    assert.equal(groupMembers(`${group}-none`), null);
  });

  void it('lists the owner, the analysts named and every account of the Linux group, and the last delivery', async () => {
    const links = new LinkStore(dataDir);
    await links.linkChat(owner, OWNER_TELEGRAM);
    const code = await links.issueCode(GROUP_CHAT, { title: 'Finance', linkers: [OWNER_TELEGRAM] });
    const linked = await post(ownerSession, '/api/teams/link', { code, name: 'fin-alerts' });
    assert.equal(linked.statusCode, 200, linked.body);
    const access = await post(ownerSession, '/api/teams/access', { name: 'fin-alerts', members: [named], member_group: group });
    assert.equal(access.statusCode, 200, access.body);

    const [team] = await list(ownerSession);
    assert.equal(team?.name, 'fin-alerts');
    assert.equal(team.owner, owner);
    assert.deepEqual(team.members, [named]);
    assert.equal(team.member_group, group);
    assert.deepEqual(team.member_group_members, [listed, primary].sort());
    assert.equal(team.last_delivery_at, null);

    // A member of the group (by the system, not by name) sees it with the same members.
    const viaGroup = await signIn(app, `${primary}@example.com`);
    const [seen] = await list(viaGroup);
    assert.deepEqual(seen?.member_group_members, [listed, primary].sort());

    // Read anew: an account added to the group shows at once; a delivery shows its time.
    accounts.addToGroup(late, group);
    await new TeamChatStore(dataDir).noteDelivery(GROUP_CHAT, Date.now());
    const [again] = await list(ownerSession);
    assert.deepEqual(again?.member_group_members, [late, listed, primary].sort());
    assert.ok(again.last_delivery_at && Date.now() - Date.parse(again.last_delivery_at) < 60_000, `last delivery shown: ${again.last_delivery_at}`);

    // An analyst outside the group and not named sees nothing of it.
    const outsider = await signIn(app, `${accounts.person('out')}@example.com`);
    assert.deepEqual(await list(outsider), []);
  });
});
