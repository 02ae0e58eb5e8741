// The floor: the bare proxy (relay.ts) plus only what every request through the gateway must leave
// behind, each done the plain way: the key's hash looked up in a Map (cached per connection), an
// integer debit, an X-Request-Id both ways, a usage row of the gateway's 25 columns in group
// commits to SQLite under the gateway's rule (a connection's previous row is written before its
// next response; multi-row INSERTs; no checkpoint on the event loop), and an access-log line
// (JSON.stringify, written 16 KB at a time). No design that does these on its event loop costs less.
// Usage (from bench.ts, over fork): UPSTREAM_URL=… FLOOR_DIR=<a directory for floor.db and floor.log>
import { createHash, randomUUID } from 'node:crypto';
import { openSync, writeSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Dispatcher } from 'undici';
import { USAGE_COLUMNS } from '../../src/storage/usage-columns.ts';
import { serveForParent } from './child.ts';
import { endToEnd, proxyServer, Relay } from './relay.ts';

const PRICE_MICROS = 100;
const MAX_DELAY_MS = 10;
const LOG_BYTES = 16 * 1024;
const SIZES = [32, 16, 8, 4, 2, 1];

const dir = process.env.FLOOR_DIR;
if (!dir) throw new Error('floor-proxy: FLOOR_DIR is required');
const db = new Database(join(dir, 'floor.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0'); // the gateway checkpoints off the event loop
db.exec(`CREATE TABLE usage (${USAGE_COLUMNS.map((c, i) => (i === 0 ? `${c} INTEGER PRIMARY KEY` : c)).join(', ')})`);
const width = USAGE_COLUMNS.length;
const inserts = SIZES.map((n) => ({
  n,
  statement: db.prepare(`INSERT INTO usage VALUES ${Array(n).fill(`(${Array(width).fill('?').join(', ')})`).join(', ')}`),
  args: new Array<unknown>(n * width),
}));
const write = db.transaction((rows: unknown[][]) => {
  let i = 0;
  for (const { n, statement, args } of inserts) {
    for (; i + n <= rows.length; i += n) {
      for (let j = 0; j < n; j++) for (let c = 0; c < width; c++) args[j * width + c] = rows[i + j][c];
      statement.run(args);
    }
  }
});

let queued: unknown[][] = [];
let batch = 1;
let durableBatch = 0;
let scheduled = false;
let nextId = 1;
function commit(): void {
  scheduled = false;
  if (queued.length === 0) return;
  write(queued);
  queued = [];
  durableBatch = batch++;
}

const log = openSync(join(dir, 'floor.log'), 'w');
let lines = '';
let balanceMicros = Number.MAX_SAFE_INTEGER;
const keys = new Map<string, { keyId: string; accountId: string }>();

type Connection = Socket & { floorKey?: { header: string; keyId: string; accountId: string }; floorBatch?: number };

class FloorRelay extends Relay {
  private readonly requestId = randomUUID();
  private readonly startedAt = performance.now();
  private readonly socket: Connection;
  private readonly key: { keyId: string; accountId: string };
  private status = 0;
  private bytes = 0;

  constructor(private readonly req: IncomingMessage, res: ServerResponse) {
    super(res);
    this.socket = req.socket as Connection;
    const header = req.headers.authorization ?? '';
    let k = this.socket.floorKey;
    if (k?.header !== header) {
      const hash = createHash('sha256').update(header.slice('Bearer '.length)).digest('hex');
      let known = keys.get(hash);
      if (!known) keys.set(hash, (known = { keyId: `key_${hash.slice(0, 12)}`, accountId: `acct_${hash.slice(12, 24)}` }));
      k = this.socket.floorKey = { header, ...known };
    }
    this.key = k;
    balanceMicros -= PRICE_MICROS;
  }

  override requestHeaders(req: IncomingMessage): OutgoingHttpHeaders {
    const out = endToEnd(req.headers);
    delete out.authorization;
    out['x-request-id'] = this.requestId;
    return out;
  }

  override onResponseStart(c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.status = statusCode;
    if ((this.socket.floorBatch ?? 0) > durableBatch) commit();
    super.onResponseStart(c, statusCode, { ...headers, 'x-request-id': this.requestId });
  }

  override onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytes += chunk.length;
    super.onResponseData(c, chunk);
  }

  override onResponseEnd(): void {
    super.onResponseEnd();
    const ms = performance.now() - this.startedAt;
    const { req, key } = this;
    queued.push([nextId++, 0, Date.now(), this.requestId, key.accountId, key.keyId, '/', req.method, req.url, this.status,
      0, this.bytes, Math.round(ms * 1000), PRICE_MICROS, 1, 1, null, null, null, null, null, null, null, null, 0]);
    this.socket.floorBatch = batch;
    if (!scheduled) {
      scheduled = true;
      setTimeout(commit, MAX_DELAY_MS);
    }
    lines += `${JSON.stringify({
      level: 30, time: Date.now(), requestId: this.requestId, client: this.socket.remoteAddress, accountId: key.accountId,
      keyId: key.keyId, route: '/', method: req.method, path: req.url, status: this.status, durationMs: Math.round(ms * 1000) / 1000,
      bytesIn: 0, bytesOut: this.bytes, costMicros: PRICE_MICROS,
    })}\n`;
    if (lines.length >= LOG_BYTES) {
      writeSync(log, lines);
      lines = '';
    }
  }
}

serveForParent(proxyServer((req, res) => new FloorRelay(req, res)));
