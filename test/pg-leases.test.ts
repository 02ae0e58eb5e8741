// Money across nodes on a real PostgreSQL: several gateways' leases of one balance, taken at once,
// never add up to more than it held; what a lease did not spend goes back; a dead node's leases
// are ended by a survivor, once.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { available, migrationName } from '../src/db/migrate.ts';
import { migratePg } from '../src/pg/migrate.ts';
import { createPgLeases } from '../src/pg/pg-leases.ts';
import { createPgNodes } from '../src/pg/pg-nodes.ts';
import { createPool, type Pool } from '../src/pg/pool.ts';
import { freshDatabase, seedPgAccount } from './postgres.ts';
import { until } from './until.ts';

const UNIT = 1_000;

describe('leases on PostgreSQL, three nodes', () => {
  let url: string;
  const pools: Pool[] = [];
  let accounts = 0;

  /** A pool of its own: a node's connections, as a separate gateway process would have. */
  const node = async (max = 10) => {
    const p = await createPool(url, max);
    pools.push(p);
    return p;
  };

  async function account(p: Pool, micros: number): Promise<string> {
    const id = `acct_${++accounts}`;
    await seedPgAccount(p, id, micros);
    return id;
  }

  /** The stored balance, the sum of the ledger, and what open leases hold. */
  async function books(p: Pool, id: string) {
    const { rows } = await p.query<{ balance: number; ledger: number; leased: number; returns: number }>(`SELECT balance_micros AS balance,
      (SELECT sum(amount_micros) FROM ledger WHERE account_id = a.id)::bigint AS ledger,
      (SELECT coalesce(sum(granted_micros - consumed_micros), 0) FROM leases WHERE account_id = a.id AND closed_at IS NULL)::bigint AS leased,
      (SELECT count(*) FROM ledger WHERE account_id = a.id AND kind = 'lease_return')::bigint AS returns
      FROM accounts a WHERE id = $1`, [id]);
    return rows[0];
  }

  beforeAll(async () => {
    url = await freshDatabase(inject('postgresUrl'));
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
  });

  it('three nodes migrating at once apply each migration once', async () => {
    const onDisk = available('pg/');
    expect(onDisk.length).toBeGreaterThan(0);
    const results = await Promise.all([node(2), node(2), node(2)].map(async (p) => migratePg(await p)));
    expect(results.flat()).toEqual(onDisk.map(migrationName));
    expect(await migratePg(await node(1))).toEqual([]);
    const { rows } = await pools[0].query('SELECT version, name FROM schema_migrations ORDER BY version');
    expect(rows).toEqual(onDisk.map(({ version, name }) => ({ version, name })));
  });

  it('150 takes from three nodes at once against a balance for 7 get exactly 7; the ledger equals the balance', async () => {
    const nodes = await Promise.all(['a', 'b', 'c'].map(async (name) => createPgLeases(await node(10), `node-${name}`)));
    const id = await account(pools[0], 7 * UNIT);
    const grants = await Promise.all(Array.from({ length: 150 }, (_, i) => nodes[i % 3].lease(id, undefined, UNIT, UNIT)));
    expect(grants.filter((g) => g.micros === UNIT)).toHaveLength(7);
    expect(grants.filter((g) => g.micros !== UNIT && g.micros !== 0)).toEqual([]);
    expect(await books(pools[0], id)).toEqual({ balance: 0, ledger: 0, leased: 7 * UNIT, returns: 0 });
    // What a customer has is still all of it: the balance and what the leases hold.
    expect(await nodes[1].balance(id)).toBe(7 * UNIT);
  });

  it('a balance smaller than a lease is taken whole; one smaller than the minimum is left untouched', async () => {
    const leases = createPgLeases(await node(2), 'node-a');
    const id = await account(pools[0], 2_500);
    expect(await leases.lease(id, undefined, 3_000, 10_000)).toEqual({ leaseId: 0, micros: 0, heldElsewhere: 2_500 });
    expect(await books(pools[0], id)).toEqual({ balance: 2_500, ledger: 2_500, leased: 0, returns: 0 });
    const g = await leases.lease(id, undefined, 1, 10_000);
    expect(g.micros).toBe(2_500);
    // Its own lease is not "elsewhere"; another node's call is told where the money is.
    expect(await leases.lease(id, g.leaseId, 1, 10_000)).toEqual({ leaseId: g.leaseId, micros: 0, heldElsewhere: 0 });
    expect(await createPgLeases(await node(1), 'node-b').lease(id, undefined, 1, 10_000)).toEqual({ leaseId: 0, micros: 0, heldElsewhere: 2_500 });
    expect(await books(pools[0], id)).toEqual({ balance: 0, ledger: 0, leased: 2_500, returns: 0 });
  });

  it('giving back and ending a lease return what it holds, each with its ledger row', async () => {
    const leases = createPgLeases(await node(2), 'node-a');
    const id = await account(pools[0], 10 * UNIT);
    const g = await leases.lease(id, undefined, UNIT, 4 * UNIT);
    const more = await leases.lease(id, g.leaseId, UNIT, 2 * UNIT);
    expect(more).toEqual({ leaseId: g.leaseId, micros: 2 * UNIT });
    await leases.giveBack(g.leaseId, UNIT);
    expect(await books(pools[0], id)).toEqual({ balance: 5 * UNIT, ledger: 5 * UNIT, leased: 5 * UNIT, returns: 1 });
    await expect(leases.giveBack(g.leaseId, 6 * UNIT)).rejects.toThrow(/cannot give back/);
    expect(await leases.close(g.leaseId)).toBe(5 * UNIT);
    expect(await leases.close(g.leaseId)).toBe(0);
    expect(await books(pools[0], id)).toEqual({ balance: 10 * UNIT, ledger: 10 * UNIT, leased: 0, returns: 2 });
  });

  it('a node silent past the TTL loses its leases to the survivors, once; it learns so at its next heartbeat', async () => {
    const [pa, pb, pc] = await Promise.all([node(2), node(2), node(2)]);
    const [a, b, c] = [createPgNodes(pa, 'alive-a'), createPgNodes(pb, 'dead-b'), createPgNodes(pc, 'alive-c')];
    await Promise.all([a.join(), b.join(), c.join()]);
    const bLeases = createPgLeases(pb, 'dead-b');
    const id = await account(pa, 9 * UNIT);
    const first = await bLeases.lease(id, undefined, UNIT, 3 * UNIT);
    await bLeases.lease(id, undefined, UNIT, 3 * UNIT);
    expect(await books(pa, id)).toMatchObject({ balance: 3 * UNIT, leased: 6 * UNIT });

    // b stops; a and c keep beating and reap at once until b's silence passes the TTL.
    const ttlMs = 300;
    let reaped = 0;
    await until(async () => {
      await Promise.all([a.heartbeat(), c.heartbeat()]);
      const [x, y] = await Promise.all([a.reapDead(ttlMs), c.reapDead(ttlMs)]);
      reaped += x + y;
      return reaped > 0;
    }, 5_000, 'a survivor to reap the silent node');
    expect(reaped).toBe(2);
    expect(await books(pa, id)).toEqual({ balance: 9 * UNIT, ledger: 9 * UNIT, leased: 0, returns: 2 });
    expect(await a.heartbeat()).toBe(true);

    // b comes back: its heartbeat says it was taken for dead, and its leases cannot grow again.
    expect(await b.heartbeat()).toBe(false);
    await expect(bLeases.lease(id, first.leaseId, UNIT, UNIT)).rejects.toThrow(/not open/);
    expect(await books(pa, id)).toEqual({ balance: 9 * UNIT, ledger: 9 * UNIT, leased: 0, returns: 2 });
  });
});
