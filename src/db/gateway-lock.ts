// One gateway per SQLite file. A second one started on a file in use (even one that then fails to
// bind its port) must not touch its data: at start it would take the running gateway's state for
// a dead one's. The lock is an OS file lock on "<file>.lock" (SQLite's own, held by an open
// EXCLUSIVE transaction on that small side file), so the kernel releases it when the process
// dies, kill -9 included. The CLI does not take it: it may work on the file beside a gateway.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export class GatewayLockedError extends Error {
  constructor(readonly databasePath: string, readonly lockPath: string) {
    super(`another gateway is running on ${databasePath} (it holds ${lockPath}); stop it first, or give this one another DATABASE_PATH`);
    this.name = 'GatewayLockedError';
  }
}

export interface GatewayLock { release(): void }

export function lockDatabase(databasePath: string): GatewayLock {
  const file = resolve(databasePath);
  const lockPath = `${file}.lock`;
  mkdirSync(dirname(file), { recursive: true });
  const lock = new Database(lockPath, { timeout: 0 });
  try {
    lock.pragma('journal_mode = MEMORY'); // no journal file beside it
    lock.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    lock.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new GatewayLockedError(file, lockPath);
    throw err;
  }
  return { release: () => lock.close() };
}
