import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Admin } from '../src/db/admin.ts';
import { isMigrated, migrate, migrationsDir } from '../src/db/migrate.ts';
import { openDb, type Db } from '../src/db/open.ts';
import { createSqliteStorage } from '../src/db/sqlite-storage.ts';
import { tempDir } from './helpers.ts';

const onDisk = readdirSync(migrationsDir()).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();

function fresh(): Db {
  return openDb(join(tempDir(), 'tollgate.db'), { migrateNow: false });
}

describe('migrate', () => {
  it('applies 0001_init on a fresh file and records it', () => {
    const db = fresh();
    try {
      expect(isMigrated(db)).toBe(false);
      const applied = migrate(db);
      expect(applied[0]).toBe('0001_init');
      expect(applied).toEqual(onDisk.map((f) => f.replace(/\.sql$/, '')));
      const recorded = db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all() as
        { version: number; name: string; applied_at: number }[];
      expect(recorded[0]).toMatchObject({ version: 1, name: 'init' });
      expect(recorded).toHaveLength(onDisk.length);
      expect(recorded[0].applied_at).toBeGreaterThan(Date.now() - 60_000);
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
      expect(tables).toEqual(expect.arrayContaining(['accounts', 'api_keys', 'ledger', 'quota_usage', 'usage', 'webhook_events']));
      expect(isMigrated(db)).toBe(true);
    } finally {
      db.close();
    }
  });

  it('applies nothing the second time, on the same or a new connection', () => {
    const dir = tempDir();
    const path = join(dir, 'tollgate.db');
    const first = openDb(path, { migrateNow: false });
    expect(migrate(first)).not.toEqual([]);
    expect(migrate(first)).toEqual([]);
    first.close();
    const second = openDb(path, { migrateNow: false });
    try {
      expect(migrate(second)).toEqual([]);
      expect(isMigrated(second)).toBe(true);
      expect(second.prepare('SELECT count(*) FROM schema_migrations').pluck().get()).toBe(onDisk.length);
    } finally {
      second.close();
    }
  });

  it('openDb migrates by default and sets WAL', () => {
    const db = openDb(join(tempDir(), 'sub', 'dir', 'tollgate.db'));
    try {
      expect(isMigrated(db)).toBe(true);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    } finally {
      db.close();
    }
  });
});

describe('the schema guards the money', () => {
  function withAccount() {
    const storage = createSqliteStorage(openDb(join(tempDir(), 'tollgate.db')));
    const admin = new Admin(storage);
    const account = admin.createAccount({ email: 'a@example.com', plan: 'default' });
    admin.grantCredits(account.id, 5_000, 'test');
    return { db: storage.db, store: storage, money: storage.ledger.money, account };
  }

  it('ledger rows cannot be updated or deleted', () => {
    const { db, store, account } = withAccount();
    try {
      expect(() => db.prepare('UPDATE ledger SET amount_micros = 1 WHERE account_id = ?').run(account.id))
        .toThrow(/append-only/);
      expect(() => db.prepare('DELETE FROM ledger WHERE account_id = ?').run(account.id)).toThrow(/append-only/);
      expect(db.prepare('SELECT amount_micros FROM ledger WHERE account_id = ?').pluck().all(account.id)).toEqual([5_000]);
    } finally {
      store.close();
    }
  });

  it('a balance cannot go negative, not even by a direct UPDATE', () => {
    const { db, store, money, account } = withAccount();
    try {
      expect(() => db.prepare('UPDATE accounts SET balance_micros = -1 WHERE id = ?').run(account.id))
        .toThrow(/CHECK constraint failed/);
      expect(() => db.prepare(`INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, created_at)
        VALUES (?, -6000, -1000, 'test', 0)`).run(account.id)).toThrow(/CHECK constraint failed/);
      // Through the ledger: a debit it cannot pay changes nothing.
      expect(money.debit(account.id, 5_001, 'request', 'r1')).toBe(false);
      expect(money.debit(account.id, 5_000, 'request', 'r2')).toBe(true);
      expect(db.prepare('SELECT balance_micros FROM accounts WHERE id = ?').pluck().get(account.id)).toBe(0);
      expect(db.prepare('SELECT sum(amount_micros) FROM ledger WHERE account_id = ?').pluck().get(account.id)).toBe(0);
    } finally {
      store.close();
    }
  });
});
