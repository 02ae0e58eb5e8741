// An online, consistent copy of the database while the gateway serves: VACUUM INTO reads one
// snapshot (a WAL reader never waits for the writer, nor makes it wait) and writes a compact new
// file, which is then opened and checked. SQLite's backup API would restart its copy each time
// the gateway commits, which under load is always.
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import type { Db } from './open.ts';

export interface BackupReport {
  file: string;
  bytes: number;
  integrity: string;
  accounts: number;
  /** Accounts whose balance does not equal the sum of their ledger rows (never any). */
  unbalanced: number;
}

export function backup(db: Db, file: string): BackupReport {
  if (existsSync(file)) throw new Error(`${file} exists: a backup never overwrites a file; pick a new name`);
  db.prepare('VACUUM INTO ?').run(file);
  const copy = new Database(file, { readonly: true });
  try {
    const integrity = copy.pragma('integrity_check', { simple: true }) as string;
    const accounts = copy.prepare('SELECT count(*) FROM accounts').pluck().get() as number;
    const unbalanced = copy.prepare(`SELECT count(*) FROM accounts a
      WHERE a.balance_micros <> coalesce((SELECT sum(amount_micros) FROM ledger l WHERE l.account_id = a.id), 0)`).pluck().get() as number;
    const bytes = (copy.prepare('PRAGMA page_count').pluck().get() as number) * (copy.prepare('PRAGMA page_size').pluck().get() as number);
    return { file, bytes, integrity, accounts, unbalanced };
  } finally {
    copy.close();
  }
}
