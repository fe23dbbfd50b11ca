/**
 * One rule for a server account name: the send API, the gateway's dispatch, the script
 * helper and the dashboard's sign-in accept and refuse the same names (useradd's rule:
 * a letter or `_` first, then letters, digits, `_`, `.`, `-`, an optional trailing `$`,
 * 32 characters at most).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DispatchRequestSchema } from '../src/gateway/client.js';
import { ScriptsHelper, ScriptsHelperError } from '../src/scripts/client.js';
import { SendRequestSchema } from '../src/shared/contract.js';
import { USER_NAME_MAX, userNameProblem } from '../src/shared/userName.js';
import { decideAccount } from '../src/web/accounts.js';

const ACCEPTED = ['alice', 'john.doe', '_svc', 'build-bot', 'host01$', 'a', 'x'.repeat(USER_NAME_MAX)];
const REFUSED = ['', '1alice', '-alice', '.alice', 'al ice', 'alice/..', 'al$ice', 'alice$$', 'ali:ce', 'élise', 'x'.repeat(USER_NAME_MAX + 1)];

/** Whether each entrance takes `name` as an account name. */
async function entrances(name: string): Promise<Record<string, boolean>> {
  const notification = { id: 'n1', title: 't', message: 'm', script: '', timestamp: '2026-01-01T00:00:00Z' };
  // `false` is a command that exists everywhere: a name that passes the rule reaches it and fails there.
  const helper = new ScriptsHelper({ command: 'false {user}', timeoutMs: 60_000 });
  const helperTakes = await helper.list(name).then(
    () => true,
    (err: unknown) => !(err instanceof ScriptsHelperError && err.kind === 'invalid_request'),
  );
  return {
    rule: userNameProblem(name) === null,
    sendApi: SendRequestSchema.safeParse({ user: name, text: 'hi' }).success,
    dispatch: DispatchRequestSchema.safeParse({ user: name, notification }).success,
    scriptHelper: helperTakes,
  };
}

void describe('account names', () => {
  for (const name of ACCEPTED) {
    void it(`'${name.length > 20 ? `${name.slice(0, 8)}… (${name.length})` : name}' is an account name everywhere`, async () => {
      assert.deepEqual(await entrances(name), { rule: true, sendApi: true, dispatch: true, scriptHelper: true });
    });
  }
  for (const name of REFUSED) {
    void it(`'${name.length > 20 ? `${name.slice(0, 8)}… (${name.length})` : name}' is refused everywhere, with a reason`, async () => {
      assert.deepEqual(await entrances(name), { rule: false, sendApi: false, dispatch: false, scriptHelper: false });
      assert.match(userNameProblem(name) ?? '', /user name/);
    });
  }

  void it('an e-mail address whose account name breaks the rule cannot sign in', () => {
    const domains = ['example.com'];
    const long = `${'a'.repeat(USER_NAME_MAX + 1)}@example.com`;
    assert.deepEqual(decideAccount({ email: long, email_verified: true }, domains, []), { ok: false, reason: 'no_account_name', email: long });
    assert.deepEqual(decideAccount({ email: '1st@example.com', email_verified: true }, domains, []), { ok: false, reason: 'no_account_name', email: '1st@example.com' });
    const fits = `${'a'.repeat(USER_NAME_MAX)}@example.com`;
    assert.equal(decideAccount({ email: fits, email_verified: true }, domains, []).ok, true);
  });
});
