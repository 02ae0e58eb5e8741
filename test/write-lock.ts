// Another process holding SQLite's write lock on a file, as a long CLI transaction, a migration
// or sqlite3 by hand would: BEGIN IMMEDIATE in a child process, held for `ms`, then committed.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

const BETTER_SQLITE3 = createRequire(import.meta.url).resolve('better-sqlite3');

export interface HeldLock {
  /** Resolves once the lock is held. */
  held: Promise<void>;
  /** Resolves once the child committed and exited. */
  released: Promise<void>;
}

export function holdWriteLock(dbPath: string, ms: number): HeldLock {
  const script = `
    const Database = require(${JSON.stringify(BETTER_SQLITE3)});
    const db = new Database(${JSON.stringify(dbPath)});
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); }, ${ms});`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const held = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      if (c.toString().includes('locked')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the lock holder exited with ${code} before locking`)));
  });
  const released = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { held, released };
}
