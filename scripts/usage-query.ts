// How long `usage` for one account and month takes with millions of raw usage rows in the file
// (issue 9 asks under 50 ms at 10 million): the totals come from the daily rollups, whatever the
// size of the usage table. Builds a database of ROWS rows (default 10 000 000) spread over
// ACCOUNTS accounts (1 000) and 90 days, with the rollups the gateway would have written, then
// times Admin.usage for one account and month, and the same totals from the raw rows.
//
//   npx tsx scripts/usage-query.ts            ROWS=10000000 ACCOUNTS=1000 RUNS=20
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Admin } from '../src/db/admin.ts';
import { openDb } from '../src/db/open.ts';
import { createSqliteStorage } from '../src/db/sqlite-storage.ts';
import { seedUsage } from './seed-usage.ts';

const ROWS = Number(process.env.ROWS ?? 10_000_000);
const ACCOUNTS = Number(process.env.ACCOUNTS ?? 1_000);
const RUNS = Number(process.env.RUNS ?? 20);
const DAY = 86_400_000;
const END = Date.UTC(2026, 11, 1);
const START = END - 90 * DAY;

const dir = mkdtempSync(join(tmpdir(), 'tollgate-usage-query-'));
try {
  const path = join(dir, 'tollgate.db');
  const storage = createSqliteStorage(openDb(path));
  const { db } = storage;
  const admin = new Admin(storage);
  let t = performance.now();
  seedUsage(db, { rows: ROWS, accounts: ACCOUNTS, start: START, end: END });
  console.log(`built ${ROWS} rows and their rollups for ${ACCOUNTS} accounts in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const month = '2026-11';
  const times: number[] = [];
  let summary = admin.usage('acct_7', month);
  for (let i = 0; i < RUNS; i++) {
    t = performance.now();
    summary = admin.usage('acct_7', month);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(`usage acct_7 ${month} from the rollups: median ${median.toFixed(2)} ms, max ${times.at(-1)!.toFixed(2)} ms over ${RUNS} runs`);
  console.log(`  ${JSON.stringify(summary)}`);

  // The same totals from the raw rows (what the rollups replace), once.
  t = performance.now();
  const raw = db.prepare(`SELECT count(*) AS requests, sum(billable) AS billable, sum(price_micros) AS charged FROM usage
    WHERE ts >= ? AND ts < ? AND account_id = ?`).get(Date.UTC(2026, 10, 1), END, 'acct_7') as { requests: number; billable: number; charged: number };
  console.log(`the same from the raw rows: ${(performance.now() - t).toFixed(0)} ms (${JSON.stringify(raw)})`);
  const agree = raw.requests === summary.requests && raw.billable === summary.billable && raw.charged === summary.chargedMicros;
  console.log(agree ? 'rollups and raw rows agree' : 'MISMATCH between rollups and raw rows');
  console.log(median < 50 ? 'target < 50 ms: met' : 'target < 50 ms: MISSED');
  storage.close();
  process.exitCode = agree ? 0 : 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
