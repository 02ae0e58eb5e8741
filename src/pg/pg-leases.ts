// Leases on PostgreSQL, for several nodes sharing the balances. A take is one conditional update
// of the account's row (what it takes never exceeds what the balance holds, `balance_micros >=
// min`), with its ledger row in the same transaction; the row lock it takes is what orders the
// takes of all nodes on one account. So the sum of every node's leases of an account never
// exceeds what its balance held, and at every commit the balance equals the sum of its ledger.
import type { LeaseGrant, Leases } from '../storage/ports.ts';
import { NOW_MS, transaction, type Client, type Pool } from './pool.ts';

interface OpenLease { accountId: string; granted: number; consumed: number }

/** What the open leases of the account `a` hold unspent: every node's, or those of nodes other than `$2`. */
const unspent = (others: boolean) => `coalesce((SELECT sum(granted_micros - consumed_micros) FROM leases l
  WHERE l.account_id = a.id AND l.closed_at IS NULL${others ? ' AND l.node <> $2' : ''}), 0)::bigint`;

/** What a customer has, for the account `a`: the durable balance and what every node's open leases hold unspent. */
export const HELD_MICROS = `a.balance_micros + ${unspent(false)}`;

/** The ledger row of a lease's move of `micros` (signed) in or out of the balance, which is now `after`. */
async function ledgerRow(c: Client, accountId: string, micros: number, after: number, leaseId: number): Promise<void> {
  await c.query(`INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, reference, created_at)
    VALUES ($1, $2, $3, $4, $5, ${NOW_MS})`, [accountId, micros, after, micros < 0 ? 'lease' : 'lease_return', `lease:${leaseId}`]);
}

/** Moves `micros` of a lease back into the balance, with its ledger row. */
async function giveToBalance(c: Client, accountId: string, micros: number, leaseId: number): Promise<void> {
  const { rows } = await c.query<{ after: number }>(
    'UPDATE accounts SET balance_micros = balance_micros + $2 WHERE id = $1 RETURNING balance_micros AS after', [accountId, micros]);
  await ledgerRow(c, accountId, micros, rows[0].after, leaseId);
}

/** The lease if it is open, locked until the transaction ends. */
async function openLease(c: Client, leaseId: number): Promise<OpenLease | undefined> {
  const { rows } = await c.query<OpenLease>(`SELECT account_id AS "accountId", granted_micros AS granted, consumed_micros AS consumed
    FROM leases WHERE id = $1 AND closed_at IS NULL FOR UPDATE`, [leaseId]);
  return rows[0];
}

/**
 * Ends a lease in the caller's transaction: what its rows did not spend returns to the balance.
 * Returns what was given back (0 when it was closed already: by its node, or by a survivor).
 */
export async function closeLease(c: Client, leaseId: number): Promise<number> {
  const lease = await openLease(c, leaseId);
  if (!lease) return 0;
  const rest = lease.granted - lease.consumed;
  if (rest > 0) await giveToBalance(c, lease.accountId, rest, leaseId);
  await c.query(`UPDATE leases SET granted_micros = consumed_micros, closed_at = ${NOW_MS} WHERE id = $1`, [leaseId]);
  return rest;
}

export function createPgLeases(pool: Pool, node: string): Leases {
  return {
    lease: (accountId, leaseId, min, max) => transaction(pool, async (c): Promise<LeaseGrant> => {
      max = Math.min(max, Number.MAX_SAFE_INTEGER); // Infinity: as much as the balance holds
      // Locks in one order everywhere, the lease's row before its account's (giveBack, closeLease).
      // Closed meanwhile (by a survivor that took this node for dead), the lease cannot grow.
      if (leaseId !== undefined && !(await openLease(c, leaseId))) throw new Error(`lease ${leaseId} of ${node} is not open`);
      // The account's row lock orders every node's takes and give-backs of it: once it is held, the
      // next statement reads all of theirs that committed, and none can commit until this does.
      const locked = await c.query<{ before: number }>('SELECT balance_micros AS before FROM accounts WHERE id = $1 FOR UPDATE', [accountId]);
      const before = locked.rows[0]?.before ?? 0;
      if (before < min || before === 0) {
        const elsewhere = await c.query<{ micros: number }>(`SELECT ${unspent(true)} AS micros FROM accounts a WHERE a.id = $1`, [accountId, node]);
        return { leaseId: leaseId ?? 0, micros: 0, heldElsewhere: elsewhere.rows[0]?.micros ?? 0 };
      }
      const taken = Math.min(before, max);
      const after = before - taken;
      await c.query('UPDATE accounts SET balance_micros = $2 WHERE id = $1', [accountId, after]);
      let id = leaseId;
      if (id === undefined) {
        const opened = await c.query<{ id: number }>(`INSERT INTO leases (account_id, node, granted_micros, created_at)
          VALUES ($1, $2, $3, ${NOW_MS}) RETURNING id`, [accountId, node, taken]);
        id = opened.rows[0].id;
      } else {
        await c.query('UPDATE leases SET granted_micros = granted_micros + $2 WHERE id = $1', [id, taken]);
      }
      await ledgerRow(c, accountId, -taken, after, id);
      return { leaseId: id, micros: taken };
    }),

    giveBack: (leaseId, micros) => transaction(pool, async (c) => {
      const lease = await openLease(c, leaseId);
      if (!lease) throw new Error(`no open lease ${leaseId}`);
      if (lease.granted - micros < lease.consumed) throw new Error(`lease ${leaseId} cannot give back ${micros}: it has spent more`);
      await c.query('UPDATE leases SET granted_micros = granted_micros - $2 WHERE id = $1', [leaseId, micros]);
      await giveToBalance(c, lease.accountId, micros, leaseId);
    }),

    close: (leaseId) => transaction(pool, (c) => closeLease(c, leaseId)),

    balance: async (accountId, others = false) => {
      const { rows } = await pool.query<{ micros: number }>(`SELECT a.balance_micros + ${unspent(others)} AS micros FROM accounts a WHERE a.id = $1`,
        others ? [accountId, node] : [accountId]);
      return rows[0]?.micros ?? 0;
    },
  };
}
