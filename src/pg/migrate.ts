// Applies migrations/pg/NNNN_name.sql in order and records them in schema_migrations as SQLite's
// are: the pending ones in one transaction (PostgreSQL's DDL is transactional: all or none), under
// an advisory lock, so nodes starting at once apply each migration once.
import { available, migrationName } from '../db/migrate.ts';
import { transaction, type Pool } from './pool.ts';

/** Any number, the same in every node: the lock migrations are applied under. */
const MIGRATION_LOCK = 0x7467_6d31;

/** Returns the names of the migrations it applied (none when the schema is current). */
export async function migratePg(pool: Pool): Promise<string[]> {
  return transaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)');
    const done = new Set((await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    const applied: string[] = [];
    for (const m of available('pg/')) {
      if (done.has(m.version)) continue;
      await c.query(m.sql);
      await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
      applied.push(migrationName(m));
    }
    return applied;
  });
}
