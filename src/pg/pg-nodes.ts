// Gateways as nodes of one PostgreSQL database. Each node writes a heartbeat; one silent past the
// TTL (on the database's clock, so no node's clock matters) is dead, and any survivor ends its
// leases: what they did not spend returns to the balances. A node that was taken for dead and
// comes back (a long pause, a partition) learns it from its next heartbeat and must drop its
// leases from memory; until then its own deadline (TTL since its last heartbeat that succeeded)
// stops it spending them. A node's rows are counted into its leases as they are written
// (pg-usage.ts), so what a dead node's leases spent is known when they end; a commit it had not
// finished was not written, and what those requests held goes back to the customer.
import { closeLease } from './pg-leases.ts';
import { NOW_MS, transaction, type Pool } from './pool.ts';

export interface Nodes {
  /** Records this node as alive; call once at start. */
  join(): Promise<void>;
  /** Renews this node's heartbeat; false when survivors took it for dead (its leases are gone). */
  heartbeat(): Promise<boolean>;
  /** Ends the leases of nodes silent for `ttlMs` and forgets those nodes; returns the leases ended. */
  reapDead(ttlMs: number): Promise<number>;
  /** Leaves: the node's row goes (its leases must be returned first). */
  leave(): Promise<void>;
}

export function createPgNodes(pool: Pool, node: string): Nodes {
  return {
    async join() {
      await pool.query(`INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ($1, ${NOW_MS}, ${NOW_MS})
        ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`, [node]);
    },

    async heartbeat() {
      const r = await pool.query(`UPDATE nodes SET heartbeat_at = ${NOW_MS} WHERE id = $1`, [node]);
      return r.rowCount === 1;
    },

    reapDead: (ttlMs) => transaction(pool, async (c) => {
      // SKIP LOCKED: survivors reaping at once split the dead between them.
      const dead = await c.query<{ id: string }>(`SELECT id FROM nodes WHERE id <> $1 AND heartbeat_at < ${NOW_MS} - $2
        FOR UPDATE SKIP LOCKED`, [node, ttlMs]);
      if (dead.rows.length === 0) return 0;
      const ids = dead.rows.map((r) => r.id);
      const leases = await c.query<{ id: number }>('SELECT id FROM leases WHERE node = ANY($1) AND closed_at IS NULL ORDER BY id', [ids]);
      for (const { id } of leases.rows) await closeLease(c, id);
      await c.query('DELETE FROM nodes WHERE id = ANY($1)', [ids]);
      return leases.rows.length;
    }),

    async leave() {
      await pool.query('DELETE FROM nodes WHERE id = $1', [node]);
    },
  };
}
