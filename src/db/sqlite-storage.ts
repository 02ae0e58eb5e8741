// The storage ports on one SQLite file: the embedded default. One gateway per file (it holds the
// file's lock, db/gateway-lock.ts), so this process numbers the usage rows and every open lease
// in the file is its own or a previous run's.
import { statSync } from 'node:fs';
import type { Storage } from '../storage/ports.ts';
import { isMigrated } from './migrate.ts';
import type { Db } from './open.ts';
import { createSqliteBillingStore } from './sqlite-billing-store.ts';
import { writing } from './sqlite-busy.ts';
import { createSqliteChanges } from './sqlite-changes.ts';
import { createSqliteEvents } from './sqlite-events.ts';
import { createSqliteKeys } from './sqlite-keys.ts';
import { createSqliteLedger } from './sqlite-ledger.ts';
import { createSqliteOutbox } from './sqlite-outbox.ts';
import { createSqliteUsage } from './sqlite-usage.ts';

/** The only node a SQLite file has. */
const NODE = 'local';

export type SqliteStorage = Storage & { db: Db; close(): void };

export function createSqliteStorage(db: Db, { now = Date.now }: { now?: () => number } = {}): SqliteStorage {
  const changes = createSqliteChanges(db, now);
  const ledger = createSqliteLedger(db, { now, node: NODE, changes });
  const billing = createSqliteBillingStore(db, changes, now);
  const usage = createSqliteUsage(db);
  const outbox = createSqliteOutbox(db);
  const openLeases = db.prepare('SELECT id FROM leases WHERE closed_at IS NULL AND node = ?').pluck();
  // One transaction for all of them: with 100 000 accounts, one each took 30 s.
  const closeAll = db.transaction((): number => {
    const ids = openLeases.all(NODE) as number[];
    for (const id of ids) ledger.close(id);
    return ids.length;
  });
  // A file deleted (or replaced) under the running gateway: what it writes goes nowhere anyone
  // will read, and the CLI would open a new empty file. Readiness says so.
  const inode = db.memory ? undefined : statSync(db.name).ino;
  return {
    db,
    node: NODE,
    keys: createSqliteKeys(db),
    billing,
    ledger,
    usage,
    events: createSqliteEvents(db, { money: ledger.money, billing, outbox }, now),
    changes,
    outbox,
    recover() {
      const rowsCounted = usage.recount();
      const leasesClosed = writing(() => closeAll.immediate());
      return { leasesClosed, rowsCounted };
    },
    isReady: () => db.open && isMigrated(db) && (inode === undefined || statSync(db.name, { throwIfNoEntry: false })?.ino === inode),
    close() {
      changes.stop();
      if (db.open) db.close();
    },
  };
}
