// Nodes on a real PostgreSQL, as processes: one killed with SIGKILL has its leases ended by a
// survivor within the TTL; one paused (SIGSTOP) past the TTL loses its leases the same way and,
// resumed, learns it was taken for dead before it could spend them.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migratePg } from '../src/pg/migrate.ts';
import { startNode, type NodeLife } from '../src/pg/node-life.ts';
import { createPool, type Pool } from '../src/pg/pool.ts';
import { freshDatabase, seedPgAccount } from './postgres.ts';
import { until } from './until.ts';

const TTL_MS = 900;
const CHILD = fileURLToPath(new URL('./pg-node-child.ts', import.meta.url));

describe('node lives on PostgreSQL', () => {
  let url: string;
  let pool: Pool;
  let survivor: NodeLife;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    url = await freshDatabase(inject('postgresUrl'));
    pool = await createPool(url, 4);
    await migratePg(pool);
    survivor = await startNode(pool, 'survivor', { ttlMs: TTL_MS, onFenced: () => undefined, onError: () => undefined });
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await survivor.stop();
    await pool.end();
  });

  /** A node process that leased `micros` of `account`; its stdout lines, parsed. */
  async function node(id: string, account: string, micros: number) {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      env: { ...process.env, DATABASE_URL: url, NODE_ID: id, TTL_MS: String(TTL_MS), ACCOUNT: account, LEASE_MICROS: String(micros) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    const said: Record<string, unknown>[] = [];
    let rest = '';
    child.stdout!.on('data', (b: Buffer) => {
      const lines = (rest + b.toString()).split('\n');
      rest = lines.pop()!;
      for (const l of lines) said.push(JSON.parse(l));
    });
    await until(() => said.some((s) => s.leased !== undefined), 20_000, `${id} to take its lease`);
    return { child, said };
  }

  async function books(account: string) {
    const { rows } = await pool.query(`SELECT balance_micros AS balance, (SELECT sum(amount_micros) FROM ledger WHERE account_id = a.id)::bigint AS ledger,
      (SELECT count(*) FROM leases WHERE account_id = a.id AND closed_at IS NULL)::int AS open FROM accounts a WHERE id = $1`, [account]);
    return rows[0];
  }

  it('a node killed with SIGKILL has its leases ended by a survivor within the TTL', async () => {
    await seedPgAccount(pool, 'acct_killed', 10_000);
    const { child, said } = await node('killed', 'acct_killed', 4_000);
    expect(said).toContainEqual({ leased: 4_000 });
    expect(await books('acct_killed')).toEqual({ balance: 6_000, ledger: 6_000, open: 1 });
    child.kill('SIGKILL');
    const killedAt = Date.now();
    await until(async () => (await books('acct_killed')).open === 0, 5_000, 'the survivor to end the dead node\'s lease');
    // Silent for the TTL, then found by a pass of the survivor's (every third of the TTL): slack for a loaded machine.
    expect(Date.now() - killedAt).toBeLessThan(TTL_MS * 3);
    expect(await books('acct_killed')).toEqual({ balance: 10_000, ledger: 10_000, open: 0 });
  });

  it('a node paused past the TTL loses its leases, and resumed it hears it was taken for dead', async () => {
    await seedPgAccount(pool, 'acct_paused', 10_000);
    const { child, said } = await node('paused', 'acct_paused', 3_000);
    child.kill('SIGSTOP');
    await until(async () => (await books('acct_paused')).open === 0, 5_000, 'the survivor to end the paused node\'s lease');
    expect(await books('acct_paused')).toEqual({ balance: 10_000, ledger: 10_000, open: 0 });
    child.kill('SIGCONT');
    await until(() => said.some((s) => s.fenced === 'reaped'), 5_000, 'the resumed node to hear it was reaped');
    // Its deadline had passed too: it stopped spending before any heartbeat could tell it.
    await until(() => said.some((s) => s.fenced === 'late'), 5_000, 'the resumed node to find its deadline passed');
    // Back as a node with no leases: it beats again, and the survivor leaves it be.
    await until(async () => (await pool.query(`SELECT 1 FROM nodes WHERE id = 'paused'`)).rowCount === 1, 5_000, 'the node to join again');
    expect(said.filter((s) => s.error !== undefined)).toEqual([]);
  });
});
