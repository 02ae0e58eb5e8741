// The CLI on PostgreSQL (DATABASE_URL): migrate, accounts, keys, credits, usage, requests, webhook
// events, the audit log and billing, each change with its audit row, answered as on the SQLite
// file, and notifications; a gateway on the same database hears of each change within a second.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished, vi } from 'vitest';
import { configDoc } from '../src/admin/config.ts';
import type { AccountDoc, AuditDoc, DayDoc, EventDoc, KeyDoc, LedgerEntryDoc, NewKeyDoc, Page, RecentDoc, UsageDoc } from '../src/admin/shapes.ts';
import { loadConfig } from '../src/config.ts';
import { EmailTakenError, InvalidInputError, NotFoundError } from '../src/db/admin-types.ts';
import { hashKey } from '../src/keys.ts';
import { formatMicros } from '../src/money.ts';
import { pgOperations } from '../src/pg/pg-operations.ts';
import { pgUsageOperations } from '../src/pg/pg-usage-operations.ts';
import { createPool, type Pool } from '../src/pg/pool.ts';
import { expectFailure, parsed, runCli } from './cli-run.ts';
import { billingEnv, fixture, startFakeStripe, stripeEvent } from './fake-stripe.ts';
import { bearer, startUpstream, tempDir, type Upstream } from './helpers.ts';
import { freshDatabase } from './postgres.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { until } from './until.ts';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** billingEnv's METER_INTERVAL_SECONDS. */
const METER_INTERVAL_MS = 60_000;
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const isoAt = (ms: number) => new Date(ms).toISOString();
const dayOf = (ms: number) => isoAt(ms).slice(0, 10);

describe('the CLI on PostgreSQL', { timeout: 30_000 }, () => {
  let env: Record<string, string>;
  let pool: Pool;
  let up: Upstream;
  let gateway: ServerProcess | undefined;

  beforeAll(async () => {
    const url = await freshDatabase(inject('postgresUrl'));
    pool = await createPool(url, 2);
    // /api/status/503 answers 503, and so on; anything else 200.
    up = await startUpstream((req, res) => {
      res.writeHead(Number(/^\/api\/status\/(\d{3})$/.exec(req.url!)?.[1] ?? 200), { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    const config = join(tempDir(), 'tollgate.config.json');
    const limits = { perSecond: 1_000 };
    writeFileSync(config, JSON.stringify({
      routes: [{ path: '/api/', upstream: up.url, priceMicros: 1_000 }],
      plans: {
        paid: { limits, monthlyQuota: 0, overage: 'credits' }, pro: { limits, monthlyQuota: 0, overage: 'credits' },
        metered: { limits, monthlyQuota: 2, overage: 'credits' },
      },
      defaultPlan: 'paid',
    }));
    env = { DATABASE_URL: url, TOLLGATE_CONFIG: config };
  });
  afterAll(async () => {
    gateway?.child.kill('SIGKILL');
    await up?.close();
    await pool?.end();
  });

  const run = (...args: string[]) => runCli([...args, '--json'], env);
  /** The operations the CLI runs, for those it has no command of (one key, the config). */
  const ops = () => pgOperations(pool, { config: () => loadConfig(env, { serving: false }), now: Date.now, actor: 'cli' });
  /** A gateway on the database, started by the first test that needs one. */
  const serving = async () => (gateway ??= await spawnServer(env, 20_000));
  const call = (key: string) => fetch(`${gateway!.url}/api/x`, { headers: bearer(key) }).then(async (r) => (await r.arrayBuffer(), r.status));
  const account = async (email: string, ...more: string[]) => parsed<AccountDoc>(await run('accounts', 'create', '--email', email, ...more));
  const shown = async (id: string) => parsed<AccountDoc>(await run('accounts', 'show', id));
  const durableMicros = async (id: string) => (await pool.query<{ micros: number }>('SELECT balance_micros AS micros FROM accounts WHERE id = $1', [id])).rows[0].micros;
  /** The audit log's entries about `target`, oldest first. */
  const audits = async (target: string) => (await pool.query<{ action: string; change: string }>(
    'SELECT action, change FROM audit_log WHERE target = $1 ORDER BY id', [target])).rows.map((r) => ({ action: r.action, change: JSON.parse(r.change) as unknown }));
  /** How many changes of `subject` the CLI recorded for the nodes (as no node: ''). */
  const changes = async (kind: string, subject: string) => (await pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM changes WHERE kind = $1 AND subject = $2 AND node = ''", [kind, subject])).rows[0].n;

  /** An account with $1.00 and a key the gateway has served once: its lease holds part of the balance. */
  async function served(email: string): Promise<{ id: string; keyId: string; key: string }> {
    await serving();
    const { id } = await account(email);
    const key = parsed<NewKeyDoc>(await run('keys', 'create', '--account', id));
    parsed(await run('credits', 'grant', id, '1.00'));
    expect(await call(key.key!)).toBe(200);
    await until(async () => (await shown(id)).balanceMicros === 1_000_000 - 1_000, 5_000, 'the charge to be written');
    return { id, keyId: key.id, key: key.key! };
  }

  /** A new account on `plan` with $1.00 and a key that has requested `paths` in turn: each response's X-Request-Id. */
  async function traffic(email: string, plan: string, paths: string[]): Promise<{ id: string; keyId: string; requestIds: string[] }> {
    await serving();
    const { id } = await account(email, '--plan', plan);
    const key = parsed<NewKeyDoc>(await run('keys', 'create', '--account', id));
    parsed(await run('credits', 'grant', id, '1.00'));
    const requestIds: string[] = [];
    for (const path of paths) {
      const r = await fetch(`${gateway!.url}${path}`, { headers: bearer(key.key!) });
      await r.arrayBuffer();
      requestIds.push(r.headers.get('x-request-id')!);
    }
    return { id, keyId: key.id, requestIds };
  }
  /** Rows of usage_daily for `day`: [status, requests, billable, charged micros, input, cached, cache-write and output tokens]. */
  const rollups = (accountId: string, day: number, rows: number[][]) => Promise.all(rows.map((r) => pool.query(`INSERT INTO usage_daily
    (account_id, day, route, model, status, requests, billable, charged_micros, input_tokens, cached_tokens, cache_write_tokens, output_tokens)
    VALUES ($1, $2, '/api/', 'gpt-x', $3, $4, $5, $6, $7, $8, $9, $10)`, [accountId, day, ...r])));

  it('migrates, issues an account, a key and credits, and a gateway on the database serves them', async () => {
    const migrated = parsed<{ applied: string[] }>(await runCli(['migrate', '--json'], env));
    expect(migrated.applied.length).toBeGreaterThanOrEqual(7);
    expect(parsed<{ applied: string[] }>(await runCli(['migrate', '--json'], env)).applied).toEqual([]);

    const account = parsed<{ id: string; balanceMicros: number }>(await runCli(['accounts', 'create', '--email', 'pg@example.com', '--json'], env));
    expectFailure(await runCli(['accounts', 'create', '--email', 'PG@example.com', '--json'], env), 1,
      new RegExp(`an account with the email pg@example\\.com already exists: ${account.id} \\(emails are compared ignoring case\\)`));
    const key = parsed<{ id: string; key: string }>(await runCli(['keys', 'create', '--account', account.id, '--json'], env));
    const granted = parsed<{ balanceMicros: number }>(await runCli(['credits', 'grant', account.id, '2.50', '--json'], env));
    expect(granted.balanceMicros).toBe(2_500_000);

    await serving();
    expect(await call(key.key)).toBe(200);
    const show = async () => parsed<{ balanceMicros: number; keys: { id: string; state: string }[] }>(await runCli(['accounts', 'show', account.id, '--json'], env));
    // The balance and what the gateway's lease holds unspent, once the request's row is written
    // (the next commit: a connection's row is durable before its next request, not its response).
    await until(async () => (await show()).balanceMicros === 2_500_000 - 1_000, 5_000, 'the charge to be written');
    expect((await show()).keys.map((k) => k.state)).toEqual(['active']);

    parsed(await runCli(['keys', 'revoke', key.id, '--json'], env));
    const revoked = performance.now();
    await until(async () => (await call(key.key)) === 401, 1_000, 'the gateway to refuse the revoked key');
    expect(performance.now() - revoked).toBeLessThan(1_000);

    const ledger = parsed<{ ledger: { kind: string; amountMicros: number }[] }>(await runCli(['credits', 'show', account.id, '--json'], env));
    expect(ledger.ledger.map((e) => e.kind)).toEqual(['lease', 'grant']);
    const { rows } = await pool.query('SELECT action, actor FROM audit_log ORDER BY id');
    expect(rows).toEqual([
      { action: 'account.create', actor: 'cli' }, { action: 'key.create', actor: 'cli' },
      { action: 'credits.grant', actor: 'cli' }, { action: 'key.revoke', actor: 'cli' },
    ]);
  }, 60_000);

  it('accounts list pages oldest first and filters by plan, status and email (ignoring case)', async () => {
    const made = [await account('list1@example.com'), await account('list2@example.com', '--plan', 'pro'), await account('list3@example.com', '--plan', 'pro')];
    parsed(await run('accounts', 'suspend', made[2].id));
    made[2] = { ...made[2], status: 'suspended', statusReason: 'operator' };

    const all = parsed<Page<AccountDoc>>(await run('accounts', 'list'));
    expect(all.next).toBeNull();
    expect(all.data.slice(-3)).toEqual(made);
    expect(all.data.map((a) => a.createdAt)).toEqual(all.data.map((a) => a.createdAt).sort());
    // Two at a time, each page after the last account of the previous one.
    const paged: AccountDoc[] = [];
    let after: string | null = null;
    do {
      const p: Page<AccountDoc> = parsed(await run('accounts', 'list', '--limit', '2', ...(after === null ? [] : ['--after', after])));
      expect(p.data.length).toBeLessThanOrEqual(2);
      expect(p.next).toBe(p.next === null ? null : p.data[1].id);
      paged.push(...p.data);
      after = p.next;
    } while (after !== null);
    expect(paged).toEqual(all.data);

    const ids = async (...filters: string[]) => parsed<Page<AccountDoc>>(await run('accounts', 'list', ...filters)).data.map((a) => a.id);
    expect(await ids('--email', 'LIST2@Example.COM')).toEqual([made[1].id]);
    expect((await ids('--plan', 'pro')).filter((id) => made.some((m) => m.id === id))).toEqual([made[1].id, made[2].id]);
    expect(await ids('--plan', 'pro', '--status', 'suspended')).toEqual([made[2].id]);
    expect(await ids('--email', 'list1@example.com', '--plan', 'pro')).toEqual([]);
    expectFailure(await run('accounts', 'list', '--after', 'acct_nope'), 2, /after: no account acct_nope \(pass the "next" cursor of the previous page\)/);
  });

  it('set-plan, suspend and reactivate reach a gateway within a second, audited with the diff; an email another account has is refused', async () => {
    const { id, key } = await served('standing@example.com');
    expect(await shown(id)).toMatchObject({ plan: 'paid', status: 'active', statusReason: null });
    expect(parsed<AccountDoc>(await run('accounts', 'set-plan', id, 'pro'))).toMatchObject({ id, plan: 'pro' });
    expectFailure(await run('accounts', 'set-plan', id, 'gold'), 2, /unknown plan "gold" \(plans: paid, pro, metered\)/);

    // By hand: the reason is 'operator'; reactivating clears it.
    expect(parsed<AccountDoc>(await run('accounts', 'suspend', id))).toMatchObject({ id, status: 'suspended', statusReason: 'operator' });
    await until(async () => (await call(key)) === 402, 1_000, 'the gateway to refuse the suspended account');
    // Suspending again changes nothing and records nothing.
    expect(parsed<AccountDoc>(await run('accounts', 'suspend', id))).toMatchObject({ status: 'suspended', statusReason: 'operator' });
    expect(parsed<AccountDoc>(await run('accounts', 'reactivate', id))).toMatchObject({ id, status: 'active', statusReason: null });
    await until(async () => (await call(key)) === 200, 1_000, 'the gateway to serve the reactivated account');
    expect((await audits(id)).filter((a) => a.action === 'account.update').map((a) => a.change)).toEqual([
      { plan: { from: 'paid', to: 'pro' } },
      { status: { from: 'active', to: 'suspended' }, statusReason: { from: null, to: 'operator' } },
      { status: { from: 'suspended', to: 'active' }, statusReason: { from: 'operator', to: null } },
    ]);
    expect(await changes('account', id)).toBe(3);

    // The email of another account, in any case: refused as on SQLite, nothing changed.
    const other = await account('other@example.com');
    const taken = ops().updateAccount(other.id, { email: 'STANDING@example.com' });
    await expect(taken).rejects.toBeInstanceOf(EmailTakenError);
    await expect(taken).rejects.toThrow(`an account with the email standing@example.com already exists: ${id} (emails are compared ignoring case)`);
    expect(await shown(other.id)).toMatchObject(other);
    expect(await audits(other.id)).toHaveLength(1);
    // Its own email in another case is no conflict.
    expect(await ops().updateAccount(other.id, { email: 'Other@Example.com' })).toMatchObject({ email: 'Other@Example.com' });
  });

  it('keys rotate: the old key works through its grace, then no gateway takes it; keys show reads one key', async () => {
    const { id, keyId, key } = await served('rotate@example.com');
    const before = Date.now();
    const rotated = parsed<{ old: KeyDoc; new: NewKeyDoc }>(await run('keys', 'rotate', keyId, '--grace', '1h'));
    const grace = Date.parse(rotated.old.expiresAt!);
    expect(grace).toBeGreaterThanOrEqual(before + HOUR_MS);
    expect(grace).toBeLessThanOrEqual(Date.now() + HOUR_MS);
    expect(rotated.new).toMatchObject({
      id: expect.stringMatching(/^key_/), accountId: id, state: 'active', key: expect.stringMatching(/^tg_/), replacedBy: null, expiresAt: null,
    });
    expect(rotated.old).toMatchObject({ id: keyId, accountId: id, state: 'active', replacedBy: rotated.new.id, revokedAt: null });
    expect(rotated.old).not.toHaveProperty('key');
    expect(await ops().key(keyId)).toEqual(rotated.old);
    await expect(ops().key('key_nope')).rejects.toThrow(new NotFoundError('key key_nope'));
    expect(await call(key)).toBe(200);
    expect(await call(rotated.new.key!)).toBe(200);

    // Without grace the replaced key stops at once: the gateway hears of it within a second.
    const again = parsed<{ old: KeyDoc; new: NewKeyDoc }>(await run('keys', 'rotate', rotated.new.id, '--grace', '0s'));
    expect(again.old).toMatchObject({ id: rotated.new.id, state: 'expired', replacedBy: again.new.id });
    await until(async () => (await call(rotated.new.key!)) === 401, 1_000, 'the gateway to refuse the key whose grace ended');
    expect(await call(again.new.key!)).toBe(200);
    expect(await call(key)).toBe(200);

    expectFailure(await run('keys', 'rotate', rotated.new.id), 1, new RegExp(`key ${rotated.new.id} has expired; create a new key instead`));
    parsed(await run('keys', 'revoke', again.new.id));
    expectFailure(await run('keys', 'rotate', again.new.id), 1, new RegExp(`key ${again.new.id} is revoked; create a new key instead`));
    expect(await audits(keyId)).toEqual([
      { action: 'key.create', change: { name: null, expiresAt: null } },
      { action: 'key.rotate', change: { newKeyId: rotated.new.id, expiresAt: { from: null, to: grace } } },
    ]);
    // Each key's hash: a change when it was issued, and one when it was rotated.
    expect(await changes('key', hashKey(key))).toBe(2);
    expect(await changes('key', hashKey(rotated.new.key!))).toBe(2);
    expectFailure(await run('keys', 'list', '--after', 'key_nope'), 2, /after: no key key_nope/);
  });

  it('credits deduct takes credits back with an adjustment row, never below zero, and not what a gateway\'s lease holds', async () => {
    const a = await account('deduct@example.com');
    parsed(await run('credits', 'grant', a.id, '5.00'));
    expect(parsed(await run('credits', 'deduct', a.id, '1.50', '--reason', 'goodwill reversal'))).toEqual({
      ...a, balanceMicros: 3_500_000, balance: '3.50', deductedMicros: 1_500_000, deducted: '1.50', reason: 'goodwill reversal',
    });
    const ledger = async () => parsed<{ ledger: LedgerEntryDoc[] }>(await run('credits', 'show', a.id)).ledger;
    expect((await ledger())[0]).toMatchObject({ kind: 'adjustment', reference: 'goodwill reversal', amountMicros: -1_500_000, balanceAfterMicros: 3_500_000 });
    expect((await audits(a.id)).at(-1)).toEqual({
      action: 'credits.deduct', change: { amountMicros: 1_500_000, reason: 'goodwill reversal', balanceMicros: { from: 5_000_000, to: 3_500_000 } },
    });
    expect(await changes('balance', a.id)).toBe(2);

    // A micro-dollar more than it has: refused (exit 1), and nothing moves.
    const books = async () => ({ ledger: await ledger(), audit: await audits(a.id), changes: await changes('balance', a.id) });
    const was = await books();
    expectFailure(await run('credits', 'deduct', a.id, '3.500001', '--reason', 'too much'), 1,
      new RegExp(`^tollgate: account ${a.id} cannot pay 3\\.500001: it can give 3\\.50\\n$`));
    expect(await books()).toEqual(was);
    expect((await shown(a.id)).balanceMicros).toBe(3_500_000);

    // What a gateway's lease holds is the gateway's to spend: the CLI says so, and takes what the balance has.
    const { id } = await served('leased@example.com');
    const durable = await durableMicros(id);
    expect(durable).toBeLessThan(1_000_000 - 1_000);
    expectFailure(await run('credits', 'deduct', id, '0.999', '--reason', 'all of it'), 1, new RegExp(`cannot pay 0\\.999: it can give ${escape(formatMicros(durable))} `
      + `\\(the gateways' open leases hold ${escape(formatMicros(1_000_000 - 1_000 - durable))} more, which the CLI cannot take on PostgreSQL`));
    expect(parsed<AccountDoc>(await run('credits', 'deduct', id, formatMicros(durable), '--reason', 'what the balance has')).balanceMicros).toBe(1_000_000 - 1_000 - durable);
    expect(await durableMicros(id)).toBe(0);
  });

  it('webhooks list: newest first, in pages, the failed alone; replay applies an event once, audited, and a second replay changes nothing', async () => {
    const buyer = await account('buyer@example.com');
    const whale = await account('whale@example.com');
    // Sessions the gateway created for $10 of credits (POST /_tollgate/billing/checkout records them), as Stripe sends them once paid.
    const paid = async (accountId: string, sessionId: string) => {
      await pool.query('INSERT INTO checkout_sessions (session_id, account_id, amount_micros, created_at) VALUES ($1, $2, 10000000, $3)', [sessionId, accountId, Date.now()]);
      return stripeEvent('checkout.session.completed', {
        ...fixture('openapi-fixtures3.checkout.session.json'), id: sessionId, status: 'complete', payment_status: 'paid',
        currency: 'usd', amount_total: 1000, payment_intent: `pi_of_${sessionId}`,
      });
    };
    const bought = await paid(buyer.id, 'cs_pg_cli_buyer');
    const big = await paid(whale.id, 'cs_pg_cli_whale');
    const other = stripeEvent('customer.created', { id: 'cus_pg_cli', object: 'customer' });
    // As nodes recorded them: two whose handling failed, then one that needed no change.
    const t = Date.now() - 10_000;
    const recorded = (event: Record<string, unknown>, status: string, note: string, at: number) => pool.query(`INSERT INTO webhook_events
      (id, source, type, status, note, payload, received_at, applied_at) VALUES ($1, 'stripe', $2, $3, $4, $5, $6, $7)`,
    [event.id, event.type, status, note, JSON.stringify(event), at, status === 'failed' ? null : at]);
    await recorded(bought, 'failed', 'Connection terminated unexpectedly', t);
    await recorded(big, 'failed', 'Connection terminated unexpectedly', t + 1_000);
    const unused = 'event type customer.created is not used by the gateway';
    await recorded(other, 'ignored', unused, t + 2_000);
    const iso = (ms: number) => new Date(ms).toISOString();

    const list = async (...args: string[]) => parsed<Page<EventDoc>>(await run('webhooks', 'list', ...args));
    const all = await list();
    expect(all).toEqual({
      data: [
        { id: other.id, type: 'customer.created', status: 'ignored', note: unused, attempts: 1, receivedAt: iso(t + 2_000), appliedAt: iso(t + 2_000) },
        { id: big.id, type: 'checkout.session.completed', status: 'failed', note: 'Connection terminated unexpectedly', attempts: 1, receivedAt: iso(t + 1_000), appliedAt: null },
        { id: bought.id, type: 'checkout.session.completed', status: 'failed', note: 'Connection terminated unexpectedly', attempts: 1, receivedAt: iso(t), appliedAt: null },
      ],
      next: null,
    });
    expect((await list('--failed')).data.map((e) => e.id)).toEqual([big.id, bought.id]);
    expect(await list('--limit', '2')).toEqual({ data: all.data.slice(0, 2), next: big.id });
    expect(await list('--limit', '2', '--after', big.id as string)).toEqual({ data: all.data.slice(2), next: null });
    expectFailure(await run('webhooks', 'list', '--after', 'evt_nope'), 2, /after: no event evt_nope/);

    const replay = async (id: unknown) => parsed<{ id: string; type: string; outcome: string }>(await run('webhooks', 'replay', String(id)));
    const replays = async (id: unknown) => (await pool.query<{ actor: string; accountId: string | null; change: string }>(`SELECT actor,
      account_id AS "accountId", change FROM audit_log WHERE action = 'webhook.replay' AND target = $1 ORDER BY id`, [id])).rows
      .map((r) => ({ ...r, change: JSON.parse(r.change) as unknown }));
    const purchases = async (accountId: string) => (await pool.query<{ micros: number }>(
      "SELECT amount_micros AS micros FROM ledger WHERE account_id = $1 AND kind = 'purchase'", [accountId])).rows;
    const row = async (id: unknown) => (await pool.query('SELECT status, attempts FROM webhook_events WHERE id = $1', [id])).rows[0] as unknown;

    expect(await replay(bought.id)).toEqual({ id: bought.id, type: 'checkout.session.completed', outcome: 'applied' });
    expect(await purchases(buyer.id)).toEqual([{ micros: 10_000_000 }]);
    expect((await shown(buyer.id)).balanceMicros).toBe(10_000_000);
    expect(await row(bought.id)).toEqual({ status: 'applied', attempts: 2 });
    expect(await replays(bought.id)).toEqual([{ actor: 'cli', accountId: null, change: { type: 'checkout.session.completed', outcome: 'applied', note: null } }]);
    // The nodes hear of the balance, from the effect's own transaction.
    expect(await changes('balance', buyer.id)).toBe(1);
    // Again: applied before, so nothing is done and nothing recorded.
    expect(await replay(bought.id)).toEqual({ id: bought.id, type: 'checkout.session.completed', outcome: 'duplicate' });
    expect(await purchases(buyer.id)).toHaveLength(1);
    expect(await replays(bought.id)).toHaveLength(1);

    // One top-up away from the largest balance the schema allows: crediting $10 violates its CHECK.
    parsed(await run('credits', 'grant', whale.id, formatMicros(Number.MAX_SAFE_INTEGER - 5_000_000)));
    const failing = await run('webhooks', 'replay', String(big.id));
    expect(failing.status).toBe(1);
    expect(JSON.parse(failing.stdout)).toEqual({ id: big.id, type: 'checkout.session.completed', outcome: 'failed' });
    expect(await purchases(whale.id)).toEqual([]);
    expect(await row(big.id)).toEqual({ status: 'failed', attempts: 2 });
    // The operator makes room; the replay now applies it.
    parsed(await run('credits', 'deduct', whale.id, '9000000000', '--reason', 'make room'));
    expect((await replay(big.id)).outcome).toBe('applied');
    expect(await purchases(whale.id)).toEqual([{ micros: 10_000_000 }]);
    expect((await replays(big.id)).map((r) => r.change)).toEqual([
      { type: 'checkout.session.completed', outcome: 'failed', note: expect.stringMatching(/violates check constraint/) },
      { type: 'checkout.session.completed', outcome: 'applied', note: null },
    ]);
    expect((await list('--failed')).data).toEqual([]);

    // One that needed no change runs again and is recorded with its note; an unknown one is not found.
    expect(await replay(other.id)).toEqual({ id: other.id, type: 'customer.created', outcome: 'ignored' });
    expect((await replays(other.id)).map((r) => r.change)).toEqual([{ type: 'customer.created', outcome: 'ignored', note: unused }]);
    expectFailure(await run('webhooks', 'replay', 'evt_never_seen'), 1, /event evt_never_seen not found/);
  });

  it('audit lists the changes newest first, in pages, all or one account\'s', async () => {
    const a = await account('audited@example.com', '--name', 'Audited Ltd');
    parsed(await run('credits', 'grant', a.id, '2.00', '--reason', 'welcome'));
    const k = parsed<NewKeyDoc>(await run('keys', 'create', '--account', a.id, '--name', 'ci'));
    const mine = parsed<Page<AuditDoc>>(await run('audit', '--account', a.id));
    expect(mine.next).toBeNull();
    expect(mine.data.map((e) => [e.action, e.target])).toEqual([['key.create', k.id], ['credits.grant', a.id], ['account.create', a.id]]);
    expect(mine.data[2]).toEqual({
      id: expect.any(Number), at: expect.stringMatching(ISO), actor: 'cli', action: 'account.create', target: a.id, accountId: a.id,
      change: { email: 'audited@example.com', name: 'Audited Ltd', plan: 'paid' }, requestId: null,
    });
    expect(mine.data[1].change).toEqual({ amountMicros: 2_000_000, reason: 'welcome', balanceMicros: { from: 0, to: 2_000_000 } });

    const newest = (await pool.query<{ id: number }>('SELECT id FROM audit_log ORDER BY id DESC LIMIT 5')).rows.map((r) => r.id);
    const first = parsed<Page<AuditDoc>>(await run('audit', '--limit', '2'));
    expect(first.data.map((e) => e.id)).toEqual(newest.slice(0, 2));
    expect(first.next).toBe(String(newest[1]));
    expect(parsed<Page<AuditDoc>>(await run('audit', '--limit', '3', '--after', first.next!)).data.map((e) => e.id)).toEqual(newest.slice(2, 5));
    expectFailure(await run('audit', '--after', 'abc'), 2, /after: not an audit cursor: "abc"/);
    expectFailure(await run('audit', '--account', 'acct_nope'), 1, /account acct_nope not found/);
  });

  it('config is the document SQLite\'s operations give for the configuration the CLI reads', async () => {
    const doc = await ops().config();
    expect(doc).toEqual(configDoc(loadConfig(env, { serving: false })));
    expect(doc).toMatchObject({ defaultPlan: 'paid', stripe: null, admin: null });
    expect(Object.keys(doc.plans)).toEqual(['paid', 'pro', 'metered']);
    expect(doc.routes.map((r) => [r.path, r.priceMicros])).toEqual([['/api/', 1_000]]);
  });

  it('billing status reads the account\'s Stripe side and what it has, a gateway\'s lease included', async () => {
    const { id } = await served('status@example.com');
    await pool.query("UPDATE accounts SET stripe_customer_id = 'cus_pg_status', debt_micros = 250000 WHERE id = $1", [id]);
    expect(parsed(await run('billing', 'status', id))).toEqual({
      id, plan: 'paid', status: 'active', statusReason: null, stripeCustomerId: 'cus_pg_status', subscriptionId: null, subscriptionStatus: null,
      pastDueSince: null, periodStart: null, periodEnd: null, balanceMicros: 999_000, balance: '0.999', debtMicros: 250_000, debt: '0.25',
    });
    expect(await durableMicros(id)).toBeLessThan(999_000);
    const human = await runCli(['billing', 'status', id], env);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/^customer:\s+cus_pg_status$/m);
    expectFailure(await run('billing', 'status', 'acct_nope'), 1, /account acct_nope not found/);
  });

  it('billing sync reports the overage due to Stripe once and lists what is not due yet', async () => {
    const stripe = await startFakeStripe();
    try {
      const a = await account('metered@example.com');
      await pool.query("UPDATE accounts SET stripe_customer_id = 'cus_pg_sync' WHERE id = $1", [a.id]);
      const open = Math.floor(Date.now() / METER_INTERVAL_MS) * METER_INTERVAL_MS;
      const due = open - 60 * METER_INTERVAL_MS;
      await pool.query(`INSERT INTO meter_outbox (account_id, event_name, interval_start, value, identifier)
        VALUES ($1, 'api_requests', $2, 7, 'mo_pg_cli_due'), ($1, 'api_requests', $3, 2, 'mo_pg_cli_open')`, [a.id, due, open]);
      const withStripe = { ...env, ...billingEnv(stripe) };
      const sync = async () => parsed<{ reported: unknown[]; pending: unknown[] }>(await runCli(['billing', 'sync', '--json'], withStripe));
      const pending = [{ id: 'mo_pg_cli_open', accountId: a.id, eventName: 'api_requests', value: 2, intervalStart: new Date(open).toISOString() }];
      expect(await sync()).toEqual({ reported: [{ identifier: 'mo_pg_cli_due', accountId: a.id, eventName: 'api_requests', value: 7, ok: true }], pending });
      expect(stripe.meterEvents.get('mo_pg_cli_due')).toMatchObject({ event_name: 'api_requests', payload: { stripe_customer_id: 'cus_pg_sync', value: '7' } });
      expect(await sync()).toEqual({ reported: [], pending });
      expect(stripe.callsTo('/v1/billing/meter_events')).toHaveLength(1);
    } finally {
      await stripe.close();
    }
  });

  it('usage: the quota used and the requests by status the gateway wrote, in the period it counts against now, or in a month', async () => {
    // Two within the plan's quota of 2 (free), one charged, one the upstream refused (404: billable) and one it failed (503: free).
    const { id } = await traffic('usage@example.com', 'metered', ['/api/a', '/api/b', '/api/c', '/api/status/404', '/api/status/503']);
    const usage = async (...args: string[]) => parsed<UsageDoc>(await run('usage', id, ...args));
    // A row is written with the commit after its response: wait for the last one's.
    await until(async () => (await usage()).requests === 5, 5_000, 'the rows to be written');
    const now = new Date();
    const month = now.toISOString().slice(0, 7);
    const current = {
      id, period: month, periodStart: isoAt(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)), periodEnd: isoAt(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)),
      plan: 'metered', monthlyQuota: 2, quotaUsed: 2, requests: 5, billable: 4, chargedMicros: 2_000, charged: '0.002', byStatus: { 200: 3, 404: 1, 503: 1 },
    };
    expect(await usage()).toEqual(current);
    const human = await runCli(['usage', id], env);
    expect(human.stdout).toMatch(/^quota:\s+2 of 2$/m);
    expect(human.stdout).toMatch(/^503\s+1$/m);

    // A day of another month, as a node's commit leaves it in the rollups: --month reads that month (its quota counter untouched), the current period not.
    const past = now.getTime() - (now.getTime() % DAY_MS) - 40 * DAY_MS;
    await rollups(id, past, [[200, 3, 3, 3_000, 0, 0, 0, 0], [429, 7, 0, 0, 0, 0, 0, 0]]);
    const pastMonth = isoAt(past).slice(0, 7);
    expect(await usage('--month', pastMonth)).toMatchObject({ period: pastMonth, quotaUsed: 0, requests: 10, billable: 3, chargedMicros: 3_000, charged: '0.003', byStatus: { 200: 3, 429: 7 } });
    expect(await usage()).toEqual(current);

    // On a subscription, its billing period and its quota counter; the period starts after these requests, but its first day counts whole (usage_daily's days).
    const times = (await pool.query<{ ts: number }>('SELECT ts FROM usage WHERE account_id = $1', [id])).rows.map((r) => r.ts);
    const start = Math.max(...times) + 1;
    const end = start + 30 * DAY_MS;
    await pool.query('UPDATE accounts SET period_start = $2, period_end = $3 WHERE id = $1', [id, start, end]);
    const sub = `sub:${isoAt(start)}`;
    await pool.query('INSERT INTO quota_usage (account_id, period, used) VALUES ($1, $2, 1)', [id, sub]);
    expect(await usage()).toMatchObject({
      period: sub, periodStart: isoAt(start), periodEnd: isoAt(end), quotaUsed: 1, requests: times.filter((t) => t >= start - (start % DAY_MS)).length,
    });
    expect(await usage('--month', month)).toEqual(current);

    // A plan the config no longer has: the default plan's quota, as the gateway applies it.
    await pool.query("UPDATE accounts SET plan = 'retired', period_start = NULL, period_end = NULL WHERE id = $1", [id]);
    expect(await usage()).toEqual({ ...current, plan: 'retired', monthlyQuota: 0 });
    expectFailure(await run('usage', 'acct_nope'), 1, /^tollgate: account acct_nope not found\n$/);
  });

  it('usage --daily: the last 30 UTC days, today last, zeros where nothing was served; other days through the operations, at most 367', async () => {
    const { id } = await traffic('daily@example.com', 'paid', ['/api/a', '/api/status/503']);
    await until(async () => parsed<UsageDoc>(await run('usage', id)).requests === 2, 5_000, 'the rows to be written');
    // The day the gateway wrote the rows on, and the CLI's clock held there: a run across midnight (UTC) is the same run.
    const ts = Number((await pool.query<{ ts: string }>('SELECT max(ts) AS ts FROM usage WHERE account_id = $1', [id])).rows[0].ts);
    vi.useFakeTimers({ toFake: ['Date'], now: ts });
    onTestFinished(() => void vi.useRealTimers());
    const today = ts - (ts % DAY_MS);
    await rollups(id, today - 3 * DAY_MS, [[200, 4, 4, 40_000, 100, 10, 5, 50], [429, 1, 0, 0, 0, 0, 0, 0]]);
    const { daily: days, ...usage } = parsed<UsageDoc & { daily: DayDoc[] }>(await run('usage', id, '--daily'));
    expect(usage).toEqual(parsed<UsageDoc>(await run('usage', id)));
    expect(days.map((d) => d.day)).toEqual(Array.from({ length: 30 }, (_, i) => dayOf(today - (29 - i) * DAY_MS)));
    const zero = { requests: 0, billable: 0, chargedMicros: 0, charged: '0.00', inputTokens: 0, cachedTokens: 0, cacheWriteTokens: 0, outputTokens: 0 };
    const served = { ...zero, day: dayOf(today), requests: 2, billable: 1, chargedMicros: 1_000, charged: '0.001' };
    const rolled = { day: dayOf(today - 3 * DAY_MS), requests: 5, billable: 4, chargedMicros: 40_000, charged: '0.04', inputTokens: 100, cachedTokens: 10, cacheWriteTokens: 5, outputTokens: 50 };
    expect(days.at(-1)).toEqual(served);
    expect(days.at(-4)).toEqual(rolled);
    expect(days.filter((d) => d.day !== served.day && d.day !== rolled.day)).toEqual(days.filter((d) => d.requests === 0).map((d) => ({ ...zero, day: d.day })));
    expect(days.filter((d) => d.requests === 0)).toHaveLength(28);

    const o = ops();
    expect(await o.usageByDay(id, { from: rolled.day, to: dayOf(today - 2 * DAY_MS) })).toEqual({ id, from: rolled.day, to: dayOf(today - 2 * DAY_MS), days: [rolled, { ...zero, day: dayOf(today - 2 * DAY_MS) }] });
    expect(await o.usageByDay(id, { to: rolled.day })).toMatchObject({ from: dayOf(today - 32 * DAY_MS), to: rolled.day, days: expect.arrayContaining([rolled]) });
    expect((await o.usageByDay(id, { from: dayOf(today - 366 * DAY_MS) })).days).toHaveLength(367);
    await expect(o.usageByDay(id, { from: dayOf(today - 367 * DAY_MS) })).rejects.toThrow(new InvalidInputError('at most 367 days at once'));
    await expect(o.usageByDay(id, { from: '2026-11-05', to: '2026-11-03' })).rejects.toThrow(new InvalidInputError('to: before from'));
    await expect(o.usageByDay(id, { from: 'yesterday' })).rejects.toThrow(new InvalidInputError('from: not a day (YYYY-MM-DD): "yesterday"'));
    await expect(o.usageByDay('acct_nope', {})).rejects.toThrow(new NotFoundError('account acct_nope'));
  });

  it('requests list: the account\'s latest requests, newest first; requests show finds one by its X-Request-Id, or says where it looked', async () => {
    const { id, keyId, requestIds } = await traffic('requests@example.com', 'metered', ['/api/a', '/api/b?x=1', '/api/status/404', '/api/status/503']);
    const list = async (...args: string[]) => parsed<{ id: string; requests: RecentDoc[] }>(await run('requests', 'list', id, ...args));
    await until(async () => (await list()).requests.length === 4, 5_000, 'the rows to be written');
    const { requests } = await list();
    expect(requests.map((r) => r.requestId)).toEqual([...requestIds].reverse());
    expect(requests.map((r) => [r.path, r.status, r.priceMicros, r.cost])).toEqual([
      ['/api/status/503', 503, 0, '0.00'], ['/api/status/404', 404, 1_000, '0.001'], ['/api/b?x=1', 200, 0, '0.00'], ['/api/a', 200, 0, '0.00'],
    ]);
    expect(requests[0]).toEqual({
      time: expect.stringMatching(ISO), requestId: requestIds[3], method: 'GET', path: '/api/status/503', status: 503, priceMicros: 0, cost: '0.00',
      model: null, inputTokens: null, outputTokens: null, estimated: false,
    });
    expect(requests.map((r) => r.time)).toEqual(requests.map((r) => r.time).sort().reverse());
    expect(await list('--limit', '2')).toEqual({ id, requests: requests.slice(0, 2) });
    expectFailure(await run('requests', 'list', 'acct_nope'), 1, /^tollgate: account acct_nope not found\n$/);

    const show = async (requestId: string, ...args: string[]) => parsed<Record<string, unknown>>(await run('requests', 'show', requestId, ...args));
    const rowId = async (requestId: string) => (await pool.query<{ id: number }>('SELECT id FROM usage WHERE request_id = $1', [requestId])).rows[0].id;
    const first = await show(requestIds[0]);
    expect(first).toEqual({
      time: requests[3].time, id: await rowId(requestIds[0]), requestId: requestIds[0], accountId: id, keyId, route: '/api/', method: 'GET', path: '/api/a',
      status: 200, requestBytes: 0, responseBytes: 11, latencyUs: expect.any(Number), priceMicros: 0, billable: true, quotaPeriod: requests[3].time.slice(0, 7),
      model: null, inputTokens: null, cachedTokens: null, cacheWriteTokens: null, outputTokens: null, estimated: false, cost: '0.00',
    });
    expect(await show(requestIds[2])).toMatchObject({ path: '/api/status/404', status: 404, billable: true, quotaPeriod: null, priceMicros: 1_000, cost: '0.001' });
    expect(await show(requestIds[3])).toMatchObject({ path: '/api/status/503', status: 503, billable: false, quotaPeriod: null, priceMicros: 0 });
    expect(await show(requestIds[0], '--around', requests[3].time)).toEqual(first);

    // Not there: where it looked (here every row: fewer than it reads), or that nothing is stored around the time given.
    const { rows: [all] } = await pool.query<{ from: number; to: number }>('SELECT min(ts) AS "from", max(ts) AS "to" FROM usage');
    expectFailure(await run('requests', 'show', 'nope'), 1, new RegExp(`^tollgate: request nope not found: it looked from ${escape(isoAt(all.from))} `
      + `to ${escape(isoAt(all.to))}; give the time of the request \\(around\\) to look elsewhere\\n$`));
    expectFailure(await run('requests', 'show', requestIds[0], '--around', isoAt(all.to + HOUR_MS)), 1,
      new RegExp(`^tollgate: request ${requestIds[0]} not found: no requests are stored there; give the time of the request \\(around\\) to look elsewhere\\n$`));
    expectFailure(await run('requests', 'show', requestIds[0], '--around', 'yesterday'), 2, /^tollgate: around: not an ISO 8601 time: "yesterday"\n$/);
  });

  it('requests show reads each node\'s share of the latest rows, or the half hour around the time given', async () => {
    await serving();
    // A node that no longer runs left 20,000 rows, one a second, ending two days ago.
    const start = Date.now() - 2 * DAY_MS - 20_000_000;
    await pool.query(`INSERT INTO usage (node, id, ts, request_id, route, method, path, status, request_bytes, response_bytes, latency_us, price_micros, billable)
      SELECT 'gone', g, $1::bigint + g * 1000, 'gone-' || g, '/api/', 'GET', '/api/x', 200, 0, 0, 0, 0, true FROM generate_series(1, 20000) g`, [start]);
    // 5,000 rows shared among the nodes alive (the gateway, with far fewer rows of its own, and one
    // more, whose heartbeat no reaper finds stale): the gone node's latest share are read.
    await pool.query("INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ('idle', 0, $1)", [Number.MAX_SAFE_INTEGER]);
    onTestFinished(() => pool.query("DELETE FROM nodes WHERE id = 'idle'").then(() => undefined));
    const alive = (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM nodes')).rows[0].n;
    expect(alive).toBeGreaterThanOrEqual(2);
    const share = Math.floor(5_000 / alive);
    const { rows: [{ newest }] } = await pool.query<{ newest: number }>('SELECT max(ts) AS newest FROM usage');
    const lookup = pgUsageOperations(pool, { config: () => loadConfig(env, { serving: false }), now: Date.now, scanRows: 5_000 });
    const oldest = 20_000 - share + 1;
    expect(await lookup.findRequest(`gone-${oldest}`)).toMatchObject({ requestId: `gone-${oldest}`, id: oldest, time: isoAt(start + oldest * 1000) });
    await expect(lookup.findRequest(`gone-${oldest - 1}`)).rejects.toThrow(new NotFoundError(`request gone-${oldest - 1}`,
      `it looked from ${isoAt(start + oldest * 1000)} to ${isoAt(newest)}; give the time of the request (around) to look elsewhere`));
    // Given a time, 15 minutes either side of it.
    expect(await lookup.findRequest('gone-10', isoAt(start + 10_000 + 14 * 60_000))).toMatchObject({ requestId: 'gone-10', id: 10, accountId: null, billable: true });
    await expect(lookup.findRequest('gone-10', isoAt(start + 10_000 + 16 * 60_000))).rejects.toThrow(new NotFoundError('request gone-10',
      `it looked from ${isoAt(start + 70_000)} to ${isoAt(start + 1_869_000)}; give the time of the request (around) to look elsewhere`));
    // The CLI reads a million: all of these.
    expect(parsed(await run('requests', 'show', 'gone-10'))).toMatchObject({ requestId: 'gone-10', id: 10, accountId: null, keyId: null });
  });

  it('notifications: set-alerts, list and resend, each change with its audit row; backup stays on the SQLite file', async () => {
    const { id } = await account('notified@example.com');
    const alerts = parsed<{ id: string; lowBalanceMicros: number | null }>(await run('notifications', 'set-alerts', id, '--low-balance', '5.00'));
    expect(alerts).toEqual({ id, lowBalanceMicros: 5_000_000, lowBalance: '5.00' });
    expect(parsed(await run('notifications', 'set-alerts', id, '--low-balance', 'plan'))).toEqual({ id, lowBalanceMicros: null, lowBalance: null });
    expect((await audits(id)).filter((a) => a.action === 'account.alerts').map((a) => a.change)).toEqual([
      { lowBalanceMicros: { from: null, to: 5_000_000 } }, { lowBalanceMicros: { from: 5_000_000, to: null } },
    ]);
    expectFailure(await run('notifications', 'set-alerts', 'acct_nobody', '--low-balance', '1'), 1, /account acct_nobody/);

    // The grant's credits.added, given a webhook delivery that gave up (as a node's deliverer would leave it).
    await run('credits', 'grant', id, '1.00');
    const { rows: [event] } = await pool.query<{ id: number; eventId: string }>(
      `SELECT id, event_id AS "eventId" FROM notifications WHERE account_id = $1 AND type = 'credits.added'`, [id]);
    const { rows: [d] } = await pool.query<{ id: number }>(`INSERT INTO notification_deliveries (notification_id, channel, target, status, attempts,
      last_status, last_error) VALUES ($1, 'webhook', 'https://hooks.example.com/t', 'failed', 9, 500, 'HTTP 500') RETURNING id`, [event.id]);
    const failed = parsed<Page<{ id: number; status: string; eventId: string; attempts: number }>>(await run('notifications', 'list', '--failed', '--account', id));
    expect(failed.data).toEqual([expect.objectContaining({ id: d.id, eventId: event.eventId, type: 'credits.added', status: 'failed', attempts: 9, lastError: 'HTTP 500' })]);
    const resent = parsed<{ id: number; status: string; nextAttemptAt: string }>(await run('notifications', 'resend', String(d.id)));
    expect(resent).toMatchObject({ id: d.id, status: 'pending', eventId: event.eventId });
    expect(Date.parse(resent.nextAttemptAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(parsed<Page<unknown>>(await run('notifications', 'list', '--failed', '--account', id)).data).toEqual([]);
    expect((await audits(String(d.id))).map((a) => a.action)).toEqual(['notification.resend']);
    expectFailure(await run('notifications', 'resend', '999999'), 1, /delivery 999999/);
    expectFailure(await run('notifications', 'list', '--after', 'x'), 2, /not a delivery cursor/);

    expectFailure(await runCli(['backup', join(tempDir(), 'copy.db')], env), 1, /SQLite file only/);
  });
});
