// The floor: the bare proxy (relay.ts) plus only what every request through the gateway must leave
// behind, each done the plain way: the key's hash looked up in a Map (cached per connection), an
// integer debit, an X-Request-Id both ways, a usage row and an access-log line (floor-writes.ts)
// in group commits under the gateway's rule: a connection's previous row is written before it
// gets its next response. FLOOR_WRITER says where the writes run:
//   loop    on the event loop, as the gateway's; a commit is written before such a response starts
//   thread  in a worker thread of its own (floor-thread.ts); a connection's next request waits for
//           its previous row's commit before it is forwarded, as the gateway's on PostgreSQL
// Usage (from bench.ts, over fork): UPSTREAM_URL=… FLOOR_DIR=<a directory> FLOOR_WRITER=loop|thread
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { Dispatcher } from 'undici';
import { serveForParent } from './child.ts';
import { floorWriter, type Row } from './floor-writes.ts';
import { endToEnd, proxyServer, Relay } from './relay.ts';

const PRICE_MICROS = 100;
const MAX_DELAY_MS = 10;

const dir = process.env.FLOOR_DIR;
if (!dir) throw new Error('floor-proxy: FLOOR_DIR is required');
const inThread = process.env.FLOOR_WRITER === 'thread';
if (!inThread && process.env.FLOOR_WRITER !== 'loop') throw new Error('floor-proxy: FLOOR_WRITER is loop or thread');

let queued: Row[] = [];
/** Rows queued now join commit `batch`; every commit up to `durableBatch` is written. */
let batch = 1;
let durableBatch = 0;
let scheduled = false;
let nextId = 1;
/** Requests waiting for their connection's previous row (thread), by the commit that holds it. */
let waiters: { batch: number; go: () => void }[] = [];

// A worker does not inherit the parent's --import tsx: it loads the TypeScript through tsx's API.
const THREAD = `import('tsx/esm/api').then(({ tsImport }) => tsImport(${JSON.stringify(new URL('./floor-thread.ts', import.meta.url).href)}, ${JSON.stringify(import.meta.url)}))`;
const writer = inThread ? new Worker(THREAD, { eval: true, workerData: { dir } }) : undefined;
const writeHere = inThread ? undefined : floorWriter(dir);
writer?.on('message', (written: number) => {
  durableBatch = written;
  const still = [];
  for (const w of waiters) {
    if (w.batch <= written) w.go();
    else still.push(w);
  }
  waiters = still;
});
writer?.on('error', (err) => {
  console.error(`floor-proxy: the writer thread failed: ${err.message}`);
  process.exit(1);
});

function commit(): void {
  scheduled = false;
  if (queued.length === 0) return;
  if (writer) writer.postMessage({ batch, rows: queued });
  else {
    writeHere!(queued);
    durableBatch = batch;
  }
  queued = [];
  batch++;
}

// The debit: never read, as its cost is all the floor needs of it.
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

  override ready(): Promise<void> | undefined {
    const last = this.socket.floorBatch ?? 0;
    if (!writer || last <= durableBatch) return undefined;
    if (last === batch) commit(); // only queued: it goes now
    return new Promise((go) => waiters.push({ batch: last, go }));
  }

  override requestHeaders(req: IncomingMessage): OutgoingHttpHeaders {
    const out = endToEnd(req.headers);
    delete out.authorization;
    out['x-request-id'] = this.requestId;
    return out;
  }

  override onResponseStart(c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.status = statusCode;
    if (!writer && (this.socket.floorBatch ?? 0) > durableBatch) commit();
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
      0, this.bytes, Math.round(ms * 1000), PRICE_MICROS, 1, 1, null, null, null, null, null, null, null, null, 0, this.socket.remoteAddress]);
    this.socket.floorBatch = batch;
    if (!scheduled) {
      scheduled = true;
      setTimeout(commit, MAX_DELAY_MS);
    }
  }
}

serveForParent(proxyServer((req, res) => new FloorRelay(req, res)));
