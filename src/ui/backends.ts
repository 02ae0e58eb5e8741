// Where the pages and the admin API act, chosen by the gateway's storage: on the SQLite file,
// Admin with this gateway's live view and db/sqlite-ui.ts; on PostgreSQL, pg-admin.ts's operations
// with this node's leases and keys and pg/pg-ui.ts. Both give the same documents and rows.
import { sqliteAdminBackend, type AdminBackend } from '../admin/backend.ts';
import type { Config } from '../config.ts';
import { Admin } from '../db/admin.ts';
import type { Db } from '../db/open.ts';
import { sqliteUiStore } from '../db/sqlite-ui.ts';
import type { Logger } from '../log.ts';
import { pgAdminBackend } from '../pg/pg-admin.ts';
import type { PgStorage } from '../pg/pg-storage.ts';
import { pgUiStore } from '../pg/pg-ui.ts';
import { liveView } from '../state/live.ts';
import type { GatewayState } from '../state/state.ts';
import type { CoreStorage, Storage } from '../storage/ports.ts';
import type { UiStore } from './ui-store.ts';

export interface PagesBackend {
  admin: AdminBackend;
  store: UiStore;
}

/** Undefined on a storage that is neither (a test's own). */
export function pagesBackend(state: GatewayState, { config, now, log }: { config: Config; now: () => number; log: Logger }): PagesBackend | undefined {
  const storage = state.storage;
  if (onSqlite(storage)) {
    return {
      admin: sqliteAdminBackend(new Admin(storage, now, liveView(state)), storage.db, { config, now, log }),
      store: sqliteUiStore(storage.db, storage.billing, state.live.pendingDays),
    };
  }
  if (onPostgres(storage)) {
    const node = { id: storage.node, holder: state.holder, keyLastUsed: (hash: string) => state.accounts.keyLastUsed(hash) };
    const written = () => state.recorder.settled();
    return { admin: pgAdminBackend(storage.pool, { config, now, log, changes: storage.changes, node, written }), store: pgUiStore(storage.pool, storage.billing) };
  }
  return undefined;
}

function onSqlite(storage: CoreStorage): storage is Storage & { db: Db } {
  return 'db' in storage;
}

function onPostgres(storage: CoreStorage): storage is PgStorage {
  return 'pool' in storage;
}
