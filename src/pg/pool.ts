// The connection pool of a PostgreSQL backend. bigint columns (money, times, ids) come back as
// numbers, not strings: the schema keeps them under 2^53, where a JavaScript number is exact.
import type pg from 'pg';

const INT8 = 20;

export type Pool = pg.Pool;
export type Client = pg.PoolClient;

/** The driver, loaded on first use: a gateway on SQLite never holds its 3 MB of heap. */
export async function pgDriver(): Promise<typeof pg> {
  return (await import('pg')).default;
}

export async function createPool(url: string, max = 10): Promise<Pool> {
  const pg = await pgDriver();
  return new pg.Pool({
    connectionString: url,
    max,
    types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8 ? Number : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser },
  });
}

/**
 * Runs `work` in one transaction on one connection: committed when it returns, rolled back when it
 * throws. Given a connection already in a transaction (an admin action's), `work` joins it.
 */
export async function transaction<T>(db: Pool | Client, work: (c: Client) => Promise<T>): Promise<T> {
  if (inTransaction(db)) return work(db);
  const c = await db.connect();
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

/** A connection checked out of the pool (they run transactions); the pool itself has none. */
function inTransaction(db: Pool | Client): db is Client {
  return 'release' in db;
}

/** The database's clock in ms since the epoch: nodes compare heartbeats on one clock. */
export const NOW_MS = `(extract(epoch FROM clock_timestamp()) * 1000)::bigint`;
