// Money in memory against leases: a lease may hold less than the balance (several gateways, a
// cap) or all of a small balance, and either way N requests at once against money for K get
// exactly K yeses. Credits another process grants are usable within a second; a debit that finds
// the balance short takes back what the lease holds. Leases and the graceful stop run on the
// SQLite file and on PostgreSQL (where leases are rows of the node that holds them).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { bearer, fetchText, ledgerCheck, openAdmin, seedAccount, startGateway, startUpstream, tempDir, type TestGateway, type Upstream } from './helpers.ts';
import { until } from './until.ts';
import { holdWriteLock } from './write-lock.ts';

const PRICE = 1_000;

describe.each(BACKENDS)('leases on $backend', ({ backend }) => {
  let up: Upstream;
  let gw: BackendGateway;
  beforeAll(async () => {
    up = await startUpstream();
    gw = await startBackendGateway(backend, {
      // Leases of at most 2.5 requests' worth: every few requests a refill, as with several gateways.
      env: { LEASE_MAX_MICROS: String(2_500) },
      file: {
        routes: [{ path: '/api/', upstream: up.url, priceMicros: PRICE }],
        plans: { paid: { limits: { perSecond: 10_000 }, burst: 10_000, monthlyQuota: 0, overage: 'credits' } },
      },
    });
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  const get = (key: string) => fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
  const kinds = async (accountId: string) => (await gw.ledger(accountId)).map((e) => e.kind);
  const balanced = async (accountId: string) => {
    const { balance, ledgerSum } = await gw.books(accountId);
    expect(balance).toBe(ledgerSum);
    expect(balance).toBeGreaterThanOrEqual(0);
  };
  const customer = async (micros = 0) => {
    const { id, key } = await gw.seed('paid', micros);
    return { account: { id }, key };
  };

  it('leases smaller than the balance: 40 requests at once against money for 10 get exactly 10 yeses', async () => {
    const { account, key } = await customer(10 * PRICE);
    const statuses = (await Promise.all(Array.from({ length: 40 }, () => get(key)))).map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 402)).toHaveLength(30);
    expect(await gw.charges(account.id)).toEqual(Array(10).fill(PRICE));
    // Several lease calls took it out, never more than the cap at once.
    const leases = (await gw.ledger(account.id)).filter((e) => e.kind === 'lease');
    expect(leases.length).toBeGreaterThanOrEqual(4);
    for (const l of leases) expect(-l.amountMicros).toBeLessThanOrEqual(2_500);
    await gw.returnLeases();
    expect(await gw.balance(account.id)).toBe(0);
    await balanced(account.id);
  });

  it('a balance smaller than one lease works exactly: no overdraw, no spurious 402', async () => {
    const { account, key } = await customer(PRICE + 400);
    expect((await get(key)).status).toBe(200);
    expect((await get(key)).status).toBe(402);
    expect(await gw.balance(account.id)).toBe(400);
    await gw.operations().grantCredits(account.id, { amountMicros: 600, reason: 'test' });
    expect((await get(key)).status).toBe(200);
    expect(await gw.balance(account.id)).toBe(0);
    await gw.returnLeases();
    await balanced(account.id);
    expect((await kinds(account.id)).filter((k) => k === 'grant')).toHaveLength(2);
  });

  it('credits granted by another process are usable within a second', async () => {
    const { account, key } = await customer();
    expect((await get(key)).status).toBe(402);
    const cli = await gw.remote();
    try {
      await cli.ops.grantCredits(account.id, { amountMicros: 3 * PRICE, reason: 'from the CLI' });
    } finally {
      await cli.close();
    }
    const grantedAt = performance.now();
    await until(async () => (await get(key)).status === 200, 1_000, 'the granted credits to be usable');
    expect(performance.now() - grantedAt).toBeLessThan(1_000);
    await balanced(account.id);
  });

  it('a debit by another process while the gateway holds the money: it takes what is left, the gateway\'s writes go on', async () => {
    const { account, key } = await customer(10 * PRICE);
    expect((await get(key)).status).toBe(200); // the lease now holds 2 500 of it
    const cli = await gw.remote();
    try {
      // The other process sees only the durable balance: 7 500 is there, 8 000 is not.
      expect(await cli.debit(account.id, 8_000, 'operator', 'too much')).toBe(false);
      expect(await cli.debit(account.id, 7_500, 'operator', 'all of it')).toBe(true);
    } finally {
      await cli.close();
    }
    expect((await get(key)).status).toBe(200);
    expect(await gw.charges(account.id)).toEqual([PRICE, PRICE]);
    await gw.returnLeases();
    expect(await gw.balance(account.id)).toBe(500);
    await balanced(account.id);
  });
});

// SQLite's Money in the gateway's process (storage.ledger.money); on PostgreSQL money moves in the
// gateway's process only through an admin deduction (admin-credits.test.ts) or a webhook's effect.
describe('leases and a debit in the gateway\'s process', () => {
  it('a debit in this process that finds the balance short takes back what the lease holds', async () => {
    const up = await startUpstream();
    const gw = await startGateway({
      env: { LEASE_MAX_MICROS: String(2_500) },
      file: { routes: [{ path: '/api/', upstream: up.url, priceMicros: PRICE }], plans: { paid: { limits: { perSecond: 10_000 }, monthlyQuota: 0, overage: 'credits' } } },
    });
    try {
      const { account, key } = seedAccount(gw.admin, 'paid');
      gw.admin.grantCredits(account.id, 2_000, 'test');
      expect((await fetchText(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(200); // the lease holds all 2 000; 1 000 spent
      expect(gw.storage.ledger.money.debit(account.id, 1_000, 'refund', 'ch_1')).toBe(true);
      expect(gw.balance(account.id)).toBe(0);
      expect((await fetchText(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(402);
      await gw.returnLeases();
      expect(gw.admin.ledger(account.id).map((e) => e.kind)).toEqual(['grant', 'lease', 'lease_return', 'refund']);
      const { balance, ledgerSum } = ledgerCheck(gw.db, account.id);
      expect(balance).toBe(ledgerSum);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});

describe.each(BACKENDS)('a graceful stop on $backend', ({ backend }) => {
  it('leaves every counter its rows owe counted and every lease returned', async () => {
    const up = await startUpstream();
    // Counters wait an hour: none is written before the stop, all of them are owed by its rows.
    const gw = await startBackendGateway(backend, {
      env: { COUNTER_DELAY_MS: String(3_600_000) },
      file: {
        routes: [{ path: '/api/', upstream: up.url, priceMicros: PRICE }],
        plans: { paid: { limits: { perSecond: 10_000 }, burst: 10_000, monthlyQuota: 2, overage: 'credits' } },
      },
    });
    const accounts = await Promise.all(Array.from({ length: 20 }, () => gw.seed('paid', 1_000_000)));
    for (let round = 0; round < 5; round++) {
      for (const { key } of accounts) expect((await fetchText(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
    }
    const period = new Date().toISOString().slice(0, 7);
    await gw.close();
    await up.close();

    const db = await gw.remote();
    try {
      expect(await db.select('SELECT CAST(count(*) AS bigint) AS n FROM leases WHERE closed_at IS NULL')).toEqual([{ n: 0 }]);
      for (const { id } of accounts) {
        // Five requests: the two of the quota, then three paid from credits.
        expect(await db.ops.usage(id, { month: period })).toMatchObject({ quotaUsed: 2, requests: 5, chargedMicros: 3 * PRICE });
        expect((await db.ops.account(id)).balanceMicros).toBe(1_000_000 - 3 * PRICE);
        expect(await db.select(`SELECT balance_micros AS balance, (SELECT CAST(sum(amount_micros) AS bigint) FROM ledger WHERE account_id = a.id) AS sum
          FROM accounts a WHERE id = '${id}'`)).toEqual([{ balance: 1_000_000 - 3 * PRICE, sum: 1_000_000 - 3 * PRICE }]);
        expect(await db.select(`SELECT CAST(sum(consumed_micros) AS bigint) AS n FROM leases WHERE account_id = '${id}'`)).toEqual([{ n: 3 * PRICE }]);
      }
    } finally {
      await db.close();
    }
  });
});

describe('a graceful stop on the SQLite file', () => {
  it('with the file locked by another process, stops cleanly: the next start returns the leases', async () => {
    const up = await startUpstream();
    const file = { routes: [{ path: '/api/', upstream: up.url, priceMicros: PRICE }], plans: { paid: { limits: { perSecond: 1000 }, monthlyQuota: 0, overage: 'credits' } } };
    const gw = await startGateway({ file });
    const { account, key } = seedAccount(gw.admin, 'paid', 'locked-stop@example.com');
    gw.admin.grantCredits(account.id, 100_000, 'test');
    for (let i = 0; i < 3; i++) expect((await fetchText(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
    gw.flush();
    const lock = holdWriteLock(gw.dbPath, 1_000);
    await lock.held;
    await gw.close();
    await lock.released;
    let f = openAdmin(gw.dbPath);
    expect(f.storage.db.prepare('SELECT count(*) FROM leases WHERE closed_at IS NULL').pluck().get()).toBe(1);
    f.close();

    const again = await startGateway({ file, dbPath: gw.dbPath });
    await again.close();
    await up.close();
    f = openAdmin(gw.dbPath);
    try {
      expect(f.storage.db.prepare('SELECT count(*) FROM leases WHERE closed_at IS NULL').pluck().get()).toBe(0);
      expect(f.storage.ledger.balance(account.id)).toBe(100_000 - 3 * PRICE);
      const { balance, ledgerSum } = ledgerCheck(f.storage.db, account.id);
      expect(balance).toBe(ledgerSum);
    } finally {
      f.close();
    }
  });
});

describe('a lease ended meanwhile on the SQLite file', () => {
  // Heard after shutdown's recover() closed the lease, a balance change once topped it up: the
  // money left the balance into a closed lease, and nothing would ever give it back.
  it('takes nothing from the balance when it is topped up', () => {
    const { admin, storage, close } = openAdmin(join(tempDir(), 'tollgate.db'));
    try {
      const { account } = seedAccount(admin, 'default');
      admin.grantCredits(account.id, 10_000, 'test');
      const { leaseId } = storage.ledger.lease(account.id, undefined, 1, 4_000) as { leaseId: number };
      storage.ledger.close(leaseId);
      expect(storage.ledger.lease(account.id, leaseId, 1, 4_000)).toEqual({ leaseId, micros: 0 });
      expect(storage.ledger.balance(account.id)).toBe(10_000);
      const { balance, ledgerSum } = ledgerCheck(storage.db, account.id);
      expect(balance).toBe(10_000);
      expect(ledgerSum).toBe(10_000);
    } finally {
      close();
    }
  });
});
