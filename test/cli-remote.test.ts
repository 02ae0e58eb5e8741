// tollgate --url: the CLI managing a running gateway through its admin API, with the same output
// as on the database file; its changes are the gateway's at once (a key revoked this way is
// refused by the next request) and audited under its token.
import { closedPort } from './helpers.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint } from '../src/admin/auth.ts';
import type { AccountDoc, AuditDoc, KeyDoc, NewKeyDoc, Page } from '../src/admin/shapes.ts';
import { ADMIN_TOKEN, startAdminGateway, type AdminGateway } from './admin-client.ts';
import { expectFailure, parsed, runCli } from './cli-run.ts';
import { bearer, checkProblem, fetchText, startUpstream, type Upstream } from './helpers.ts';

describe('tollgate --url: the CLI through a running gateway\'s admin API', () => {
  let up: Upstream;
  let gw: AdminGateway;
  let env: Record<string, string>;
  beforeAll(async () => {
    up = await startUpstream();
    gw = await startAdminGateway({
      file: { routes: [{ path: '/api/', upstream: up.url, priceMicros: 1000 }], plans: { free: { monthlyQuota: 0, overage: 'credits' }, pro: { monthlyQuota: 10 } }, defaultPlan: 'free' },
    });
    // No config file and no database here: everything goes through the API.
    env = { TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN };
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  const remote = (...args: string[]) => runCli([...args, '--url', gw.adminUrl, '--json'], env);
  const local = (...args: string[]) => runCli([...args, '--db', gw.dbPath, '--json'], { TOLLGATE_CONFIG: gw.config.source });
  const call = (key: string) => fetchText(`${gw.url}/api/x`, { headers: bearer(key) });

  it('manages accounts, keys and credits; the running gateway acts on each change at once', async () => {
    const account = parsed<AccountDoc>(await remote('accounts', 'create', '--email', 'remote@example.com', '--name', 'R'));
    expect(account).toMatchObject({ email: 'remote@example.com', plan: 'free', status: 'active' });
    const key = parsed<NewKeyDoc>(await remote('keys', 'create', '--account', account.id));
    checkProblem(await call(key.key), 402, 'insufficient-credits');
    expect(parsed<AccountDoc>(await remote('credits', 'grant', account.id, '0.002', '--reason', 'remote')).balanceMicros).toBe(2000);
    expect((await call(key.key)).status).toBe(200);
    expect(parsed<AccountDoc>(await remote('credits', 'deduct', account.id, '0.001', '--reason', 'back')).balanceMicros).toBe(0);
    checkProblem(await call(key.key), 402, 'insufficient-credits');
    expect(parsed<AccountDoc>(await remote('accounts', 'set-plan', account.id, 'pro')).plan).toBe('pro');
    expect((await call(key.key)).status).toBe(200);
    expect(parsed<AccountDoc>(await remote('accounts', 'suspend', account.id))).toMatchObject({ status: 'suspended', statusReason: 'operator' });
    checkProblem(await call(key.key), 402, 'account-suspended');
    parsed(await remote('accounts', 'reactivate', account.id));
    const rotated = parsed<{ old: KeyDoc; new: NewKeyDoc }>(await remote('keys', 'rotate', key.id, '--grace', '0s'));
    checkProblem(await call(key.key), 401, 'invalid-key');
    expect((await call(rotated.new.key)).status).toBe(200);
    // The gateway's memory knows when a key was last used; the file does not.
    const listed = (via: typeof remote) => via('keys', 'list', '--account', account.id).then((r) => parsed<Page<KeyDoc>>(r).data);
    expect((await listed(remote))[1].lastUsedAt).not.toBeNull();
    expect((await listed(local))[1].lastUsedAt).toBeNull();
    parsed(await remote('keys', 'revoke', rotated.new.id));
    checkProblem(await call(rotated.new.key), 401, 'invalid-key');
    expect((await listed(remote)).map((k) => [k.id, k.state])).toEqual([[key.id, 'expired'], [rotated.new.id, 'revoked']]);
    // Every POST went with an Idempotency-Key.
    expect(gw.db.prepare('SELECT count(*) FROM admin_idempotency').pluck().get()).toBe(6);
    const audit = parsed<Page<AuditDoc>>(await remote('audit', '--account', account.id));
    expect(new Set(audit.data.map((e) => e.actor))).toEqual(new Set([fingerprint(ADMIN_TOKEN)]));
    expect(audit.data.map((e) => e.action)).toEqual(['key.revoke', 'key.rotate', 'account.update', 'account.update', 'account.update', 'credits.deduct', 'credits.grant', 'key.create', 'account.create']);
  });

  it('prints what the same command prints on the file, JSON and text', async () => {
    const id = parsed<AccountDoc>(await remote('accounts', 'create', '--email', 'same@example.com')).id;
    parsed(await local('credits', 'grant', id, '1.00'));
    // What the gateway's leases spent reaches the file with its counters (COUNTER_DELAY_MS): written now.
    gw.flush();
    for (const args of [
      ['accounts', 'list', '--limit', '2'], ['accounts', 'show', id], ['credits', 'show', id, '--limit', '1'], ['usage', id], ['usage', id, '--daily'],
      ['requests', 'list', id], ['webhooks', 'list'], ['audit', '--account', id],
    ]) {
      expect(await remote(...args), args.join(' ')).toEqual(await local(...args));
      const text = (via: string[]) => runCli([...args, ...via], { ...env, TOLLGATE_CONFIG: gw.config.source });
      expect(await text(['--url', gw.adminUrl]), args.join(' ')).toEqual(await text(['--db', gw.dbPath]));
    }
    // Through TOLLGATE_ADMIN_URL as well as --url.
    expect(await runCli(['accounts', 'show', id, '--json'], { ...env, TOLLGATE_ADMIN_URL: gw.adminUrl })).toEqual(await local('accounts', 'show', id));
  });

  it('looks a request up by its id', async () => {
    const id = parsed<AccountDoc>(await remote('accounts', 'create', '--email', 'lookup@example.com', '--plan', 'pro')).id;
    const key = parsed<NewKeyDoc>(await remote('keys', 'create', '--account', id)).key;
    const requestId = (await call(key)).headers.get('x-request-id')!;
    expect(parsed<{ requestId: string; accountId: string }>(await remote('requests', 'show', requestId))).toMatchObject({ requestId, accountId: id });
    gw.flush();
    expect(await remote('requests', 'show', requestId)).toEqual(await local('requests', 'show', requestId));
    expectFailure(await remote('requests', 'show', 'nope'), 1, /^tollgate: request nope not found: it looked from /);
  });

  it('fails as on the file: the same line and exit code for what is not found or refused, and bad input', async () => {
    for (const args of [['accounts', 'show', 'acct_nope'], ['accounts', 'set-plan', 'acct_nope', 'pro'], ['keys', 'revoke', 'key_nope'], ['credits', 'deduct', 'acct_nope', '1', '--reason', 'x']]) {
      const [r, l] = [await remote(...args), await local(...args)];
      expectFailure(r, 1, /not found/);
      expect(r).toEqual(l);
    }
    const id = parsed<Page<AccountDoc>>(await remote('accounts', 'list', '--email', 'remote@example.com')).data[0].id;
    const [r, l] = [await remote('accounts', 'set-plan', id, 'gold'), await local('accounts', 'set-plan', id, 'gold')];
    expectFailure(r, 2, /unknown plan "gold" \(plans: free, pro\)/);
    expect(r).toEqual(l);
    expectFailure(await remote('credits', 'deduct', id, '1000', '--reason', 'x'), 1, /cannot pay 1000\.00/);
    expectFailure(await remote('accounts', 'create', '--email', 'REMOTE@example.com'), 1, /already exists/);
    expectFailure(await remote('accounts', 'list', '--after', 'acct_nope'), 2, /after: no account acct_nope/);
  });

  it('refuses without a token, with a wrong one, when nothing listens, and for commands the API does not serve', async () => {
    expectFailure(await runCli(['accounts', 'list', '--url', gw.adminUrl]), 78, /TOLLGATE_ADMIN_TOKEN: required/);
    expectFailure(await runCli(['accounts', 'list', '--url', gw.adminUrl], { TOLLGATE_ADMIN_TOKEN: 'wrong-token-wrong-token' }), 1,
      /the admin API at http:\/\/127\.0\.0\.1:\d+ refused the token/);
    expectFailure(await runCli(['accounts', 'list', '--url', `http://127.0.0.1:${await closedPort()}`], env), 1, /cannot reach the admin API at .*ECONNREFUSED/);
    expectFailure(await runCli(['accounts', 'list', '--url', 'ftp://x'], env), 78, /--url: expected an http\(s\) URL/);
    for (const args of [['billing', 'status', 'acct_x'], ['billing', 'sync'], ['migrate'], ['backup', '/tmp/never.db']]) {
      expectFailure(await remote(...args), 2, /works on the database file only .*drop --url/);
    }
  });
});
