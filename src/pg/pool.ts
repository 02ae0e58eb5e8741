// The connection pool of a PostgreSQL backend. bigint columns (money, times, ids) come back as
// numbers, not strings: the schema keeps them under 2^53, where a JavaScript number is exact.
import pg from 'pg';

const INT8 = 20;

export type Pool = pg.Pool;
export type Client = pg.PoolClient;

export function createPool(url: string, max = 10): Pool {
  return new pg.Pool({
    connectionString: url,
    max,
    types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8 ? Number : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser },
  });
}

/** Runs `work` in one transaction on one connection: committed when it returns, rolled back when it throws. */
export async function transaction<T>(pool: Pool, work: (c: Client) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const out = await work(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

/** The database's clock in ms since the epoch: nodes compare heartbeats on one clock. */
export const NOW_MS = `(extract(epoch FROM clock_timestamp()) * 1000)::bigint`;
