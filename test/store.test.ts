// The SQLite Store's bookkeeping that the request path relies on between restarts.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Admin } from '../src/db/admin.ts';
import { openDb } from '../src/db/open.ts';
import { createSqliteStore } from '../src/db/sqlite-store.ts';
import { ledgerCheck, tempDir } from './helpers.ts';

function fresh() {
  const path = join(tempDir(), 'store.db');
  const db = openDb(path);
  const store = createSqliteStore(db);
  const admin = new Admin(db, store);
  const account = admin.createAccount({ email: 'store@example.com', plan: 'default' });
  return { path, db, store, admin, account };
}

describe('quota counts', () => {
  it('a unit given back after its batch was written is given back in the table too', () => {
    const { path, store, account } = fresh();
    expect(store.takeQuota(account.id, '2026-11', 5)).toBe(true);
    expect(store.takeQuota(account.id, '2026-11', 5)).toBe(true);
    store.flush();
    store.returnQuota(account.id, '2026-11');
    store.close();
    // A new process reads the table: one unit is used, not two.
    const again = createSqliteStore(openDb(path));
    expect(again.quotaUsed(account.id, '2026-11')).toBe(1);
    again.close();
  });
});

describe('releaseReservations', () => {
  it('gives back reservations no settle row followed, and leaves settled ones alone', () => {
    const { db, store, admin, account } = fresh();
    admin.grantCredits(account.id, 1_000_000, 'test');
    expect(store.debit(account.id, 300_000, 'reserve', 'req-settled')).toBe(true);
    store.credit(account.id, 250_000, 'settle', 'req-settled');
    expect(store.debit(account.id, 400_000, 'reserve', 'req-died')).toBe(true);
    expect(store.balance(account.id)).toBe(550_000);

    expect(store.releaseReservations()).toBe(1);
    expect(store.balance(account.id)).toBe(950_000); // 1.00 − the 0.05 the settled request cost
    expect(admin.ledger(account.id).at(-1)).toMatchObject({ kind: 'release', amountMicros: 400_000, reference: 'req-died' });
    // Once released, a reservation is not released again.
    expect(store.releaseReservations()).toBe(0);
    const { balance, ledgerSum } = ledgerCheck(db, account.id);
    expect(balance).toBe(ledgerSum);
  });
});
