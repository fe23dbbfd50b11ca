/**
 * The desktop token store and verification shared by the gateway and the dashboard.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { JsonFile } from '../src/shared/jsonFile.js';
import { after, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { DesktopTokenError, DesktopTokenStore, REFRESH_GRACE_SECONDS, verifyDesktopToken } from '../src/shared/desktopTokens.js';
import { signToken, tempDir, TEST_SECRET, unsignedToken } from './support/gatewayHarness.js';

void describe('desktop token store', () => {
  const dir = tempDir();
  after(() => dir.remove());
  let now = Date.parse('2025-03-01T10:00:00Z');
  const clock = { now: () => now };
  const store = new DesktopTokenStore(dir.path, clock);

  void it('issues an HS256 token with sub, exp, iat and jti, and records it in the contract format', async () => {
    const issued = await store.issue(TEST_SECRET, 'alice', 3600, { label: 'work laptop' });
    assert.equal(decodeProtectedHeader(issued.token).alg, 'HS256');
    const claims = decodeJwt(issued.token);
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.jti, issued.jti);
    assert.equal(claims.iat, now / 1000);
    assert.equal(claims.exp, now / 1000 + 3600);
    assert.equal(issued.expiresAt, '2025-03-01T11:00:00.000Z');
    const file = JSON.parse(readFileSync((store.file as JsonFile<unknown>).path, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(file[issued.jti], {
      user: 'alice',
      created_at: '2025-03-01T10:00:00.000Z',
      expires_at: '2025-03-01T11:00:00.000Z',
      label: 'work laptop',
    });
  });

  void it('lists a user\'s tokens only, and revokes only the owner\'s token', async () => {
    const bobs = await store.issue(TEST_SECRET, 'bob', 600);
    assert.deepEqual((await store.list('bob')).map((t) => t.jti), [bobs.jti]);
    assert.equal((await store.list('alice')).length, 1);
    assert.equal(await store.revoke('alice', bobs.jti), 'not_found', 'alice revoked bob\'s token');
    assert.equal(await store.isRevoked(bobs.jti), false);
    assert.equal(await store.revoke('bob', bobs.jti), 'revoked');
    assert.equal(await store.revoke('bob', bobs.jti), 'already_revoked');
    assert.equal(await store.isRevoked(bobs.jti), true);
    const [listed] = await store.list('bob');
    assert.equal(listed?.revoked_at, '2025-03-01T10:00:00.000Z');
    assert.deepEqual(await store.revokedIds(), new Set([bobs.jti]));
  });

  void it('keeps expired records through the refresh grace (revocations hold), then drops them on a write', async () => {
    now += 7200_000;
    assert.equal((await store.list('alice')).length, 0, 'an expired token is not listed');
    await store.issue(TEST_SECRET, 'carol', 60);
    const users = (): string[] => Object.values(JSON.parse(readFileSync((store.file as JsonFile<unknown>).path, 'utf8')) as Record<string, { user: string }>).map((r) => r.user).sort();
    assert.deepEqual(users(), ['alice', 'bob', 'carol']);
    now += REFRESH_GRACE_SECONDS * 1000 + 120_000;
    await store.issue(TEST_SECRET, 'carol', 60);
    assert.deepEqual(users(), ['carol']);
  });

  void it('refuses nonsense lifetimes', async () => {
    await assert.rejects(store.issue(TEST_SECRET, 'dan', 0), /lifetime/);
    await assert.rejects(store.issue(TEST_SECRET, 'dan', 1.5), /lifetime/);
  });
});

void describe('verifyDesktopToken', () => {
  const dir = tempDir();
  after(() => dir.remove());
  const store = new DesktopTokenStore(dir.path);

  async function refusal(token: string, revocations?: DesktopTokenStore): Promise<DesktopTokenError> {
    try {
      await verifyDesktopToken(TEST_SECRET, token, revocations);
    } catch (err) {
      assert.ok(err instanceof DesktopTokenError, `expected DesktopTokenError, got ${String(err)}`);
      return err;
    }
    assert.fail('the token was accepted');
  }

  void it('accepts a good token and says whose it is', async () => {
    const issued = await store.issue(TEST_SECRET, 'erin', 600);
    const v = await verifyDesktopToken(TEST_SECRET, issued.token, store);
    assert.equal(v.username, 'erin');
    assert.equal(v.jti, issued.jti);
  });

  void it('refuses alg none, other secrets, expired tokens, missing exp or sub, and revoked ones', async () => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    assert.equal((await refusal(unsignedToken({ sub: 'erin', exp }))).reason, 'algorithm');
    assert.equal((await refusal(await signToken({ sub: 'erin' }, 'another-secret-another-secret'))).reason, 'signature');
    assert.equal((await refusal(await signToken({ sub: 'erin', exp: exp - 1200 }))).reason, 'expired');
    assert.equal((await refusal(await signToken({}))).reason, 'claims');
    assert.equal((await refusal('a.b.c')).reason, 'malformed');
    const issued = await store.issue(TEST_SECRET, 'erin', 600);
    await store.revoke('erin', issued.jti);
    assert.equal((await refusal(issued.token, store)).reason, 'revoked');
  });

  void it('refuses a token without exp', async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('erin').sign(new TextEncoder().encode(TEST_SECRET));
    const err = await refusal(token);
    assert.equal(err.reason, 'claims');
    assert.match(err.message, /exp/);
  });
});
