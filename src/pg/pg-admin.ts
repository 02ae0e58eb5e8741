// The admin API on PostgreSQL (src/admin/backend.ts): the operations of pg-operations.ts, and a
// POST with an Idempotency-Key done on one connection's transaction with its kept answer, under an
// advisory lock of the key: a retry on any node, even one at the same time, finds the answer and
// never does the action twice.
import type { AdminBackend } from '../admin/backend.ts';
import { IdempotencyStore, type KeptRow, type KeptRows } from '../admin/idempotency.ts';
import type { Config } from '../config.ts';
import type { Actor } from '../db/admin.ts';
import type { Operations } from '../admin/operations.ts';
import type { Logger } from '../log.ts';
import type { MaybePromise } from '../storage/ports.ts';
import type { PgChangeFeed } from './pg-changes.ts';
import { pgOperations, type PgOperationsDeps } from './pg-operations.ts';
import { transaction, type Client, type Pool } from './pool.ts';

function pgKeptRows(c: Client | Pool): KeptRows {
  return {
    find: async (actor, key, since) => (await c.query<KeptRow>(`SELECT request_hash AS hash, status, body FROM admin_idempotency
      WHERE actor = $1 AND key = $2 AND created_at >= $3`, [actor, key, since])).rows[0],
    async save(actor, key, row, at, olderThan) {
      await c.query('DELETE FROM admin_idempotency WHERE created_at < $1', [olderThan]);
      await c.query(`INSERT INTO admin_idempotency (actor, key, request_hash, status, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (actor, key) DO UPDATE SET request_hash = excluded.request_hash, status = excluded.status, body = excluded.body,
          created_at = excluded.created_at WHERE admin_idempotency.created_at < $7`, [actor, key, row.hash, row.status, row.body, at, olderThan]);
    },
  };
}

export interface PgAdminDeps {
  config: Config;
  now: () => number;
  log: Logger;
  /** This node's changes: what an action changed is heard here before its answer goes out. */
  changes: PgChangeFeed;
  /** This node's leases and keys in memory (PgOperationsDeps.node). */
  node: PgOperationsDeps['node'];
  /** Resolves once the usage rows this node has queued are written, with their charges: the reads of AFTER_WRITES count them then. */
  written?: () => MaybePromise<unknown>;
}

export function pgAdminBackend(pool: Pool, { config, now, log, changes, node, written }: PgAdminDeps): AdminBackend {
  const deps = ({ by, requestId }: Actor): PgOperationsDeps => ({ config: () => config, now, actor: by, requestId, log, node });
  return {
    // The operations record their changes for every node to read; this node reads them at once.
    operations: (caller) => afterWrites(heard(pgOperations(pool, deps(caller)), changes), written),
    answers: new IdempotencyStore(pgKeptRows(pool), now),
    async atomically(caller, lock, work) {
      const done = await transaction(pool, async (c) => {
        await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [lock]);
        return work(pgOperations(pool, deps(caller), c), new IdempotencyStore(pgKeptRows(c), now));
      });
      await changes.catchUp();
      return done;
    },
  };
}

/** The operations that change something a node holds a copy of: answered once this node has heard of the change. */
const CHANGES = new Set<keyof Operations>(['createAccount', 'updateAccount', 'createKey', 'revokeKey', 'rotateKey', 'grantCredits', 'deductCredits', 'replayWebhook', 'setAlerts']);
/**
 * The operations whose answers show balances, usage or requests: answered once this node's queued
 * rows are written, with the charges of the requests it has answered (SQLite's Admin reads those from memory).
 */
const AFTER_WRITES = new Set<keyof Operations>(['account', 'listAccounts', 'updateAccount', 'grantCredits', 'deductCredits', 'ledger', 'alerts',
  'usage', 'usageByDay', 'recentRequests', 'findRequest']);

function heard(ops: Operations, changes: PgChangeFeed): Operations {
  return around(ops, CHANGES, async (op) => {
    const answer = await op();
    await changes.catchUp();
    return answer;
  });
}

function afterWrites(ops: Operations, written: PgAdminDeps['written']): Operations {
  return written ? around(ops, AFTER_WRITES, async (op) => (await written(), op())) : ops;
}

/** `ops` with each of `names` run through `run`. */
function around(ops: Operations, names: ReadonlySet<keyof Operations>, run: (op: () => unknown) => Promise<unknown>): Operations {
  const wrapped = Object.entries(ops).map(([name, op]) => [name, !names.has(name as keyof Operations) ? op
    : (...args: unknown[]) => run(() => (op as (...a: unknown[]) => unknown)(...args))]);
  return Object.fromEntries(wrapped) as unknown as Operations;
}
