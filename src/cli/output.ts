// The CLI's two faces (Cli.emit prints one or the other). --json: exactly one JSON document on
// stdout, the admin API's (src/admin/shapes.ts): every object with its id, times as ISO 8601 UTC,
// money as integer micros plus a formatted dollar string. Otherwise: short aligned text.
import type { AccountDoc, KeyDoc } from '../admin/shapes.ts';

export { iso } from '../admin/shapes.ts';

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

/** The last line of a page that is not the last: the command that prints the next one. */
export function nextPage(next: string | null, command: string, flags: Record<string, string | number | boolean | undefined>): string[] {
  if (next === null) return [];
  const given = Object.entries(flags).filter(([, v]) => v !== undefined && v !== false)
    .map(([name, v]) => (v === true ? ` --${name}` : ` --${name} ${v}`)).join('');
  return ['', `next page: tollgate ${command}${given} --after ${next}`];
}

export function accountFields(a: AccountDoc): string[] {
  return fields([
    ['id', a.id], ['email', a.email], ['name', a.name], ['plan', a.plan], ['status', a.status + (a.statusReason ? ` (${a.statusReason})` : '')],
    ['balance', `$${a.balance}`], ['created', a.createdAt],
  ]);
}

export function keyRows(keys: KeyDoc[]): string[] {
  return table(
    ['ID', 'ACCOUNT', 'PREFIX', 'NAME', 'STATE', 'CREATED', 'EXPIRES', 'LAST USED'],
    keys.map((k) => [k.id, k.accountId, `${k.prefix}…`, k.name, k.state, k.createdAt, k.expiresAt, k.lastUsedAt]),
    'no keys',
  );
}
