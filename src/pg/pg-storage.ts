// The request path's storage on PostgreSQL, shared by several gateways: each process is a node of
// the database (node-life.ts) with its own leases, rows and id, and Stripe's webhooks may reach any
// of them (pg-billing.ts), and so may admin API calls (pg-admin.ts); every node delivers the
// notifications' outbox (pg-outbox.ts).
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { createRedisBuckets, type RedisTokenStore } from '../limiter/redis-buckets.ts';
import type { BillingStorage, CoreStorage, Fencing, NotifyStorage } from '../storage/ports.ts';
import { migratePg } from './migrate.ts';
import { startNode, type NodeLife } from './node-life.ts';
import { createPgBilling } from './pg-billing.ts';
import { createPgChanges, type PgChangeFeed } from './pg-changes.ts';
import { createPgKeys } from './pg-keys.ts';
import { createPgOutbox } from './pg-outbox.ts';
import { createPgQuotas } from './pg-quotas.ts';
import { createPgRateBuckets } from './pg-rate-buckets.ts';
import { closeLease, createPgLeases } from './pg-leases.ts';
import { createPgUsage } from './pg-usage.ts';
import { createPool, transaction, type Pool } from './pool.ts';

export type PgStorage = CoreStorage & BillingStorage & NotifyStorage & { pool: Pool; changes: PgChangeFeed; close(): Promise<void> };

export interface PgStorageOptions {
  /** How long a node may be silent before the others take it for dead and end its leases. */
  ttlMs: number;
  /** This node's id (default: host, process and a random part, new each run). */
  node?: string;
  /** Milliseconds since the epoch, for the times billing records (tests pass a fake clock). */
  now?: () => number;
  /** The rate-limit buckets in Redis rather than in the database. */
  redisUrl?: string;
  onError: (msg: string, err: Error) => void;
}

/** A new id each run: a crashed run's leases belong to a dead node, which the others end. */
const newNodeId = () => `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

/** Connects, applies the migrations, and joins the database as a node. */
export async function createPgStorage(url: string, o: PgStorageOptions): Promise<PgStorage> {
  const node = o.node ?? newNodeId();
  const pool = await createPool(url);
  let life: NodeLife | undefined;
  let redis: RedisTokenStore | undefined;
  try {
    if (o.redisUrl) redis = await createRedisBuckets(o.redisUrl, (err) => o.onError('Redis', err));
    await migratePg(pool);
    const listeners: ((reaped: boolean) => void)[] = [];
    life = await startNode(pool, node, { ttlMs: o.ttlMs, onError: o.onError, onFenced: (reaped) => listeners.forEach((l) => l(reaped)) });
    const fencing: Fencing = { spendable: () => life!.spendable(), onFenced: (l) => listeners.push(l) };
    const changes = createPgChanges(pool, url, node, (err) => o.onError('a change could not be recorded for the other nodes', err));
    const { billing, events, alone, holder } = createPgBilling(pool, { changes, node, now: o.now });
    let open = true;
    return {
      pool, node, fencing, changes, billing, events, alone,
      outbox: createPgOutbox(pool, node),
      keys: createPgKeys(pool, node),
      ledger: { ...createPgLeases(pool, node), holder },
      usage: createPgUsage(pool, node),
      rateBuckets: redis ?? createPgRateBuckets(pool),
      quotas: createPgQuotas(pool),
      // Rows are counted as they are written: only this node's own open leases are left to end (at shutdown).
      recover: () => transaction(pool, async (c) => {
        const { rows } = await c.query<{ id: number }>('SELECT id FROM leases WHERE node = $1 AND closed_at IS NULL ORDER BY id', [node]);
        for (const { id } of rows) await closeLease(c, id);
        return { leasesClosed: rows.length, rowsCounted: 0 };
      }),
      isReady: () => open && life!.spendable(),
      async close() {
        open = false;
        await changes.stop();
        await life!.stop();
        await pool.end();
        await redis?.close();
      },
    };
  } catch (err) {
    await redis?.close().catch(() => undefined);
    await life?.stop().catch(() => undefined);
    await pool.end();
    throw err;
  }
}
