// Where the admin API acts: the operations of one backend, bound to the token that called, and
// a POST done in one transaction with its Idempotency-Key's answer. On the SQLite file the
// operations answer at once and run inside better-sqlite3's synchronous transaction; PostgreSQL's
// (src/pg/pg-admin.ts) run on one connection's transaction and answer later.
import type { Config } from '../config.ts';
import type { Actor, Admin } from '../db/admin.ts';
import type { Db } from '../db/open.ts';
import { writing } from '../db/sqlite-busy.ts';
import type { Logger } from '../log.ts';
import type { MaybePromise } from '../storage/ports.ts';
import { IdempotencyStore, sqliteKeptRows } from './idempotency.ts';
import { LocalOperations, type Operations } from './operations.ts';

export interface AdminBackend {
  /** The operations as `caller`, each in a transaction of its own. */
  operations(caller: Actor): Operations;
  /** Answers kept for Idempotency-Keys, outside any action's transaction. */
  answers: IdempotencyStore;
  /**
   * Runs `work` in one transaction, with the operations and the kept answers of that transaction,
   * holding `lock` (an Idempotency-Key) until it ends.
   */
  atomically<T>(caller: Actor, lock: string, work: (ops: Operations, answers: IdempotencyStore) => MaybePromise<T>): Promise<T>;
}

export function sqliteAdminBackend(admin: Admin, db: Db, { config, now, log }: { config: Config; now: () => number; log: Logger }): AdminBackend {
  const answers = new IdempotencyStore(sqliteKeptRows(db), now);
  const operations = (caller: Actor) => new LocalOperations({ admin: admin.as(caller), config: () => config, now, log });
  return {
    operations, answers,
    // One writer at a time: the IMMEDIATE transaction is the lock.
    atomically: async (caller, _lock, work) => writing(() => db.transaction(() => {
      const done = work(operations(caller), answers);
      // better-sqlite3 would commit before a promise settled: atomic routes are synchronous here.
      if (done instanceof Promise) throw new Error('an atomic admin action on SQLite must not wait');
      return done;
    }).immediate()),
  };
}
