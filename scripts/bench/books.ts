// What a gateway's file says once it has stopped (SIGTERM: requests drained, usage flushed, any
// money held in memory returned), and the checks every paid case makes on it. Only what any
// storage design keeps is read: usage rows and their price, balances, ledger amounts.
import Database from 'better-sqlite3';

export interface Books {
  usageRows: number;
  /** Sum of usage.price_micros, and the rows that charged nothing. */
  chargedMicros: number;
  freeRows: number;
  /** Sums over every account. */
  balanceMicros: number;
  ledgerMicros: number;
  /** Accounts whose balance is not the sum of their ledger rows. */
  unbalanced: number;
}

export function readBooks(databasePath: string): Books {
  const db = new Database(databasePath, { readonly: true });
  try {
    const one = (sql: string) => {
      const n = db.prepare(sql).pluck().get() as number;
      if (!Number.isSafeInteger(n)) throw new Error(`${sql}: ${n} is past what a JavaScript number holds exactly`);
      return n;
    };
    return {
      usageRows: one('SELECT count(*) FROM usage'),
      chargedMicros: one('SELECT coalesce(sum(price_micros), 0) FROM usage'),
      freeRows: one('SELECT count(*) FROM usage WHERE price_micros = 0'),
      balanceMicros: one('SELECT coalesce(sum(balance_micros), 0) FROM accounts'),
      ledgerMicros: one('SELECT coalesce(sum(amount_micros), 0) FROM ledger'),
      unbalanced: one(`SELECT count(*) FROM accounts a
        LEFT JOIN (SELECT account_id, sum(amount_micros) AS total FROM ledger GROUP BY account_id) l ON l.account_id = a.id
        WHERE a.balance_micros != coalesce(l.total, 0)`),
    };
  } finally {
    db.close();
  }
}

/**
 * Prints the books and returns what is wrong with them: a usage row per response the load
 * generator counted (and at most one more per connection per run: the requests in flight when a
 * run ended, which the gateway still recorded, free of charge when the client left before its
 * answer), the balance fallen by exactly what the rows charged (with `priceMicros`: by the price
 * of every row that was charged), and the ledger adding up to the balance on every account.
 */
export function checkBooks(
  books: Books, o: { counted: number; inFlight: number; grantedMicros: number; priceMicros?: number },
): string[] {
  const problems: string[] = [];
  const extra = books.usageRows - o.counted;
  const rowsOk = extra >= 0 && extra <= o.inFlight;
  console.log(`  usage rows: ${books.usageRows} for ${o.counted} responses counted (+${extra}, expected 0…${o.inFlight} in flight)` +
    (rowsOk ? '' : '  MISMATCH'));
  if (!rowsOk) problems.push(`usage rows ${books.usageRows}, responses counted ${o.counted}, in flight at most ${o.inFlight}`);

  const spent = o.grantedMicros - books.balanceMicros;
  const charged = books.usageRows - books.freeRows;
  const byPrice = o.priceMicros === undefined ? undefined : charged * o.priceMicros;
  const spentOk = spent === books.chargedMicros && (byPrice === undefined || (spent === byPrice && charged >= o.counted));
  console.log(`  balance fell by ${spent} µ$, what the usage rows charged: ${books.chargedMicros} µ$` +
    (byPrice === undefined ? '' : ` = ${charged} charged rows × ${o.priceMicros} µ$ (${books.freeRows} free: cut when a run stopped)`) +
    (spentOk ? '' : '  MISMATCH'));
  if (!spentOk) {
    problems.push(`balance fell by ${spent} µ$, usage rows charged ${books.chargedMicros}` +
      (byPrice === undefined ? '' : `, ${charged} charged rows × price is ${byPrice} for ${o.counted} responses counted`));
  }

  const ledgerOk = books.unbalanced === 0 && books.ledgerMicros === books.balanceMicros;
  console.log(`  ledger ${books.ledgerMicros} µ$, balances ${books.balanceMicros} µ$` +
    (ledgerOk ? ' (ledger = balance on every account)' : `  MISMATCH on ${books.unbalanced} accounts`));
  if (!ledgerOk) problems.push(`ledger ≠ balance: ${books.unbalanced} accounts, ledger ${books.ledgerMicros}, balances ${books.balanceMicros}`);
  return problems;
}
