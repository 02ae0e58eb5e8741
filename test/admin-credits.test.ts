// Credits through the admin API on a running gateway: a grant pays for the very next request,
// a deduction takes money back (also what the gateway's lease holds) and never goes below zero,
// the ledger is paged newest first, and a retried POST with its Idempotency-Key is done once.
// Every test runs on the SQLite file and on PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccountDoc, AuditDoc, DeductDoc, GrantDoc, KeyDoc, LedgerDoc, NewKeyDoc, Page } from '../src/admin/shapes.ts';
import { adminApi, OTHER_TOKEN, problem, startAdminBackend } from './admin-client.ts';
import { BACKENDS } from './backend-gateway.ts';
import { bearer, checkProblem, fakeClock, fetchText, startUpstream, type Upstream } from './helpers.ts';

const PRICE = 1000;

describe.each(BACKENDS)('admin API: credits on $backend', ({ backend }) => {
  const clock = fakeClock('2026-11-10T09:00:00.000Z');
  let up: Upstream;
  let gw: Awaited<ReturnType<typeof startAdminBackend>>;
  beforeAll(async () => {
    up = await startUpstream();
    gw = await startAdminBackend(backend, {
      now: clock.now, env: {},
      file: { routes: [{ path: '/api/', upstream: up.url, priceMicros: PRICE }], plans: { prepaid: { monthlyQuota: 0, overage: 'credits' } } },
    });
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  async function customer(email: string) {
    const account = (await gw.api.post<AccountDoc>('/admin/v1/accounts', { email })).body;
    const { key } = (await gw.api.post<NewKeyDoc>('/admin/v1/keys', { accountId: account.id })).body;
    return { id: account.id, key };
  }
  const call = (key: string) => fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
  const grant = (id: string, amountMicros: number, headers: Record<string, string> = {}) =>
    gw.api.post<GrantDoc>(`/admin/v1/accounts/${id}/credits/grant`, { amountMicros, reason: 'welcome' }, { headers });
  const balanced = async (id: string) => {
    const { balance, ledgerSum } = await gw.books(id);
    expect(balance).toBe(ledgerSum);
  };

  it('a grant through the API lets the next paid request pass', async () => {
    const c = await customer('grant@example.com');
    checkProblem(await call(c.key), 402, 'insufficient-credits');
    const granted = await grant(c.id, 2 * PRICE);
    expect(granted.status).toBe(200);
    expect(granted.body).toMatchObject({ id: c.id, balanceMicros: 2 * PRICE, grantedMicros: 2 * PRICE, granted: '0.002', reason: 'welcome' });
    expect((await call(c.key)).status).toBe(200);
    expect((await call(c.key)).status).toBe(200);
    checkProblem(await call(c.key), 402, 'insufficient-credits');
    await balanced(c.id);
    problem(await grant(c.id, 0), 422, 'invalid-input');
    problem(await gw.api.post(`/admin/v1/accounts/${c.id}/credits/grant`, { amountMicros: 5 }), 422, 'invalid-input');
    problem(await grant('acct_nope', 5), 404, 'not-found');
  });

  it('a deduction takes credits back, as far as zero, including what the running gateway\'s lease holds; more is refused and nothing moves', async () => {
    const c = await customer('deduct@example.com');
    await grant(c.id, 10 * PRICE);
    expect((await call(c.key)).status).toBe(200); // the gateway now leases the balance
    const deducted = await gw.api.post<DeductDoc>(`/admin/v1/accounts/${c.id}/credits/deduct`, { amountMicros: 4 * PRICE, reason: 'goodwill reversed' });
    expect(deducted.body).toMatchObject({ balanceMicros: 5 * PRICE, deductedMicros: 4 * PRICE, deducted: '0.004', reason: 'goodwill reversed' });
    const refused = await gw.api.post(`/admin/v1/accounts/${c.id}/credits/deduct`, { amountMicros: 5 * PRICE + 1, reason: 'too much' });
    expect(problem(refused, 409, 'insufficient-balance').detail).toBe(`account ${c.id} cannot pay 0.005001: it can give 0.005`);
    expect(await gw.balance(c.id)).toBe(5 * PRICE);
    expect((await gw.api.post<DeductDoc>(`/admin/v1/accounts/${c.id}/credits/deduct`, { amountMicros: 5 * PRICE, reason: 'to zero' })).body.balanceMicros).toBe(0);
    checkProblem(await call(c.key), 402, 'insufficient-credits');
    await gw.returnLeases();
    await balanced(c.id);
    const kinds = (await gw.ledger(c.id)).map((e) => e.kind);
    expect(kinds.filter((k) => k === 'adjustment')).toHaveLength(2);
  });

  it('the ledger is paged newest first', async () => {
    const c = await customer('ledger@example.com');
    for (let i = 1; i <= 5; i++) await grant(c.id, i);
    const first = (await gw.api.get<LedgerDoc>(`/admin/v1/accounts/${c.id}/ledger?limit=3`)).body;
    expect(first).toMatchObject({ id: c.id, balanceMicros: 15, balance: '0.000015' });
    expect(first.ledger.map((e) => e.amountMicros)).toEqual([5, 4, 3]);
    const rest = (await gw.api.get<LedgerDoc>(`/admin/v1/accounts/${c.id}/ledger?limit=3&before=${first.nextBefore}`)).body;
    expect(rest.ledger.map((e) => e.amountMicros)).toEqual([2, 1]);
    expect(rest.nextBefore).toBeNull();
    problem(await gw.api.get(`/admin/v1/accounts/${c.id}/ledger?before=x`), 422, 'invalid-input');
  });
});

describe.each(BACKENDS)('admin API: Idempotency-Key on $backend', ({ backend }) => {
  const clock = fakeClock('2026-11-10T09:00:00.000Z');
  let gw: Awaited<ReturnType<typeof startAdminBackend>>;
  beforeAll(async () => {
    gw = await startAdminBackend(backend, { now: clock.now, file: {}, env: {} });
  });
  afterAll(() => gw.close());

  const account = async (email: string) => (await gw.api.post<AccountDoc>('/admin/v1/accounts', { email })).body.id;
  const grant = (id: string, amountMicros: number, key: string, api = gw.api) =>
    api.post<GrantDoc>(`/admin/v1/accounts/${id}/credits/grant`, { amountMicros, reason: 'r' }, { headers: { 'idempotency-key': key } });

  it('a retried grant grants once: the same answer, marked as replayed, and one ledger row', async () => {
    const id = await account('idem@example.com');
    const first = await grant(id, 700, 'grant-1');
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const retry = await grant(id, 700, 'grant-1');
    expect(retry.status).toBe(200);
    expect(retry.text).toBe(first.text);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await gw.balance(id)).toBe(700);
    expect(await gw.ledger(id)).toHaveLength(1);
    const audit = (await gw.api.get<Page<AuditDoc>>(`/admin/v1/audit?account=${id}`)).body.data;
    expect(audit.filter((e) => e.action === 'credits.grant')).toHaveLength(1);
    // Another key is another grant.
    await grant(id, 700, 'grant-2');
    expect(await gw.balance(id)).toBe(1400);
  });

  it('five tries at once with one key grant once: one does it, four get its answer', async () => {
    const id = await account('race@example.com');
    const tries = await Promise.all(Array.from({ length: 5 }, () => grant(id, 300, 'race-1')));
    expect(tries.map((t) => t.status)).toEqual([200, 200, 200, 200, 200]);
    expect(tries.filter((t) => t.headers.get('idempotent-replayed') === 'true')).toHaveLength(4);
    expect(new Set(tries.map((t) => t.text)).size).toBe(1);
    expect(await gw.balance(id)).toBe(300);
    expect(await gw.ledger(id)).toHaveLength(1);
  });

  it('the same key with another body, or on another endpoint, is 422 and does nothing', async () => {
    const id = await account('reuse@example.com');
    await grant(id, 100, 'reused');
    expect(problem(await grant(id, 200, 'reused'), 422, 'idempotency-key-reused').detail).toMatch(/different request/);
    problem(await gw.api.post('/admin/v1/accounts', { email: 'x@example.com' }, { headers: { 'idempotency-key': 'reused' } }), 422, 'idempotency-key-reused');
    expect(await gw.balance(id)).toBe(100);
    problem(await grant(id, 100, ''), 422, 'invalid-input');
    problem(await grant(id, 100, 'x'.repeat(256)), 422, 'invalid-input');
  });

  it('keys belong to the token that sent them; a refusal is not kept; answers are kept 24 hours', async () => {
    const id = await account('scope@example.com');
    await grant(id, 1, 'k');
    await grant(id, 1, 'k', adminApi(gw.adminUrl, OTHER_TOKEN));
    expect(await gw.balance(id)).toBe(2);
    // Refused (unknown account), then retried once the mistake is fixed: done.
    problem(await grant('acct_nope', 1, 'after-fix'), 404, 'not-found');
    expect((await grant(id, 1, 'after-fix')).status).toBe(200);
    expect(await gw.balance(id)).toBe(3);
    clock.advance(24 * 3_600_000 + 1);
    expect((await grant(id, 1, 'k')).headers.get('idempotent-replayed')).toBeNull();
    expect(await gw.balance(id)).toBe(4);
  });

  it('a retried key creation returns the same key once more, and the database holds it only encrypted', async () => {
    const id = await account('newkey@example.com');
    const headers = { 'idempotency-key': 'create-key-1' };
    const first = await gw.api.post<NewKeyDoc>('/admin/v1/keys', { accountId: id }, { headers });
    const retry = await gw.api.post<NewKeyDoc>('/admin/v1/keys', { accountId: id }, { headers });
    expect(retry.body.key).toBe(first.body.key);
    expect((await gw.api.get<Page<KeyDoc>>(`/admin/v1/keys?account=${id}`)).body.data).toHaveLength(1);
    const stored = (await gw.select<{ body: Buffer }>('SELECT body FROM admin_idempotency')).map((r) => r.body);
    expect(stored.length).toBeGreaterThan(0);
    for (const b of stored) {
      expect(b.toString('latin1')).not.toContain(first.body.key);
      expect(b.toString('latin1')).not.toContain(id);
    }
  });
});
