// The CLI's two faces (Cli.emit prints one or the other). --json: exactly one JSON document on
// stdout, every object with its id, times as ISO 8601 UTC, money as integer micros plus a formatted
// dollar string. Otherwise: short aligned text.
import type { Account, ApiKey, LedgerEntry } from '../db/admin.ts';
import { formatMicros } from '../money.ts';

export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function accountJson(a: Account) {
  return {
    id: a.id, email: a.email, name: a.name, plan: a.plan, status: a.status,
    balanceMicros: a.balanceMicros, balance: formatMicros(a.balanceMicros), createdAt: iso(a.createdAt),
  };
}

export type KeyState = 'active' | 'revoked' | 'expired';

export function keyState(k: ApiKey, now: number): KeyState {
  if (k.revokedAt !== null && k.revokedAt <= now) return 'revoked';
  if (k.expiresAt !== null && k.expiresAt <= now) return 'expired';
  return 'active';
}

export function keyJson(k: ApiKey, now: number) {
  return {
    id: k.id, accountId: k.accountId, name: k.name, prefix: k.prefix, state: keyState(k, now),
    createdAt: iso(k.createdAt), expiresAt: iso(k.expiresAt), revokedAt: iso(k.revokedAt), replacedBy: k.replacedBy,
  };
}

export function ledgerJson(e: LedgerEntry) {
  return {
    id: e.id, kind: e.kind, reference: e.reference,
    amountMicros: e.amountMicros, amount: formatMicros(e.amountMicros),
    balanceAfterMicros: e.balanceAfterMicros, balanceAfter: formatMicros(e.balanceAfterMicros),
    createdAt: iso(e.createdAt),
  };
}

/** "label:  value" lines with the values in one column. */
export function fields(pairs: [string, string | number | null][]): string[] {
  const width = Math.max(...pairs.map(([label]) => label.length)) + 2;
  return pairs.map(([label, value]) => `${`${label}:`.padEnd(width)}${value ?? '-'}`);
}

/** A header row and rows, columns padded to their widest cell; `empty` when there are no rows. */
export function table(header: string[], rows: (string | number | null)[][], empty: string): string[] {
  if (rows.length === 0) return [empty];
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null ? '-' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  '));
}

export function accountFields(a: Account): string[] {
  return fields([
    ['id', a.id], ['email', a.email], ['name', a.name], ['plan', a.plan], ['status', a.status],
    ['balance', `$${formatMicros(a.balanceMicros)}`], ['created', iso(a.createdAt)],
  ]);
}

export function keyRows(keys: ApiKey[], now: number): string[] {
  return table(
    ['ID', 'ACCOUNT', 'PREFIX', 'NAME', 'STATE', 'CREATED', 'EXPIRES'],
    keys.map((k) => [k.id, k.accountId, `${k.prefix}…`, k.name, keyState(k, now), iso(k.createdAt), iso(k.expiresAt)]),
    'no keys',
  );
}
