// Opens the SQLite file with the pragmas the gateway relies on and applies pending migrations.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { migrate } from './migrate.ts';

export type Db = Database.Database;

/**
 * `waitMs`: how long a write waits for another process's write lock. The CLI can wait; the
 * gateway (0) never does: its writes are retried off the request path (db/sqlite-busy.ts).
 * Migrations always wait, before anything is served.
 */
export function openDb(path: string, { migrateNow = true, waitMs = 5000 } = {}): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  // WAL lets the CLI read and write while the server runs; NORMAL syncs at checkpoints only,
  // which loses nothing on a process crash (kill -9), only on a power cut.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  if (migrateNow) migrate(db);
  db.pragma(`busy_timeout = ${waitMs}`);
  return db;
}
