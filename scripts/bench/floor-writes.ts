// What the floor proxy writes for each request, wherever it runs (floor-proxy.ts: on the event
// loop, or in a worker thread of its own): usage rows of the gateway's 25 columns in multi-row
// INSERTs, one transaction a commit, and an access-log line a row (JSON.stringify, written 16 KB
// at a time). A row is an array: the 25 columns, then the client's address for the log line.
import { openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { USAGE_COLUMNS } from '../../src/storage/usage-columns.ts';

const SIZES = [32, 16, 8, 4, 2, 1];
const LOG_BYTES = 16 * 1024;
const WIDTH = USAGE_COLUMNS.length;
/** Where in a row each field of the log line is (USAGE_COLUMNS order; the client after them). */
const AT = Object.fromEntries(USAGE_COLUMNS.map((c, i) => [c, i])) as Record<(typeof USAGE_COLUMNS)[number], number>;
const CLIENT = WIDTH;

export type Row = unknown[];

/** Opens floor.db (a new usage table) and floor.log in `dir`; `write` commits rows and logs them. */
export function floorWriter(dir: string): (rows: Row[]) => void {
  const db = new Database(join(dir, 'floor.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 0'); // the gateway checkpoints off the event loop
  db.exec(`CREATE TABLE IF NOT EXISTS usage (${USAGE_COLUMNS.map((c, i) => (i === 0 ? `${c} INTEGER PRIMARY KEY` : c)).join(', ')})`);
  const inserts = SIZES.map((n) => ({
    n,
    statement: db.prepare(`INSERT INTO usage VALUES ${Array(n).fill(`(${Array(WIDTH).fill('?').join(', ')})`).join(', ')}`),
    args: new Array<unknown>(n * WIDTH),
  }));
  const insert = db.transaction((rows: Row[]) => {
    let i = 0;
    for (const { n, statement, args } of inserts) {
      for (; i + n <= rows.length; i += n) {
        for (let j = 0; j < n; j++) for (let c = 0; c < WIDTH; c++) args[j * WIDTH + c] = rows[i + j][c];
        statement.run(args);
      }
    }
  });
  const log = openSync(join(dir, 'floor.log'), 'a');
  let lines = '';
  return (rows) => {
    insert(rows);
    for (const r of rows) {
      lines += `${JSON.stringify({
        level: 30, time: r[AT.ts], requestId: r[AT.request_id], client: r[CLIENT], accountId: r[AT.account_id], keyId: r[AT.key_id],
        route: r[AT.route], method: r[AT.method], path: r[AT.path], status: r[AT.status], durationMs: (r[AT.latency_us] as number) / 1000,
        bytesIn: r[AT.request_bytes], bytesOut: r[AT.response_bytes], costMicros: r[AT.price_micros],
      })}\n`;
    }
    if (lines.length >= LOG_BYTES) {
      writeSync(log, lines);
      lines = '';
    }
  };
}
