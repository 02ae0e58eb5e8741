// WAL checkpoints off the event loop. SQLite's own (every 1000 pages, in whichever connection
// commits) copied pages into the file and synced it inside a group commit: 20–28 ms with the
// loop stopped, about one commit in thirty under load. Here the gateway's connection never
// checkpoints; a worker thread with a connection of its own runs a PASSIVE checkpoint twice a
// second, which takes no lock a writer needs. Where no worker can load better-sqlite3 (the single
// executable carries the addon as an asset), the gateway's connection checkpoints as before.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Db } from './open.ts';

const INTERVAL_MS = 500;
/** SQLite's default, where no worker checkpoints. */
const AUTOCHECKPOINT_PAGES = 1000;

// CommonJS in the worker: `require` resolves nothing relative to it, so the module's path is given.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path, { fileMustExist: true });
// Said once when checkpoints start failing, not twice a second until they stop.
let failing = false;
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    failing = false;
  } catch (err) {
    if (!failing) parentPort.postMessage({ error: String(err && err.message) });
    failing = true;
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', () => { clearInterval(timer); checkpoint(); db.close(); parentPort.close(); });
`;

export interface Checkpointer {
  /** A last checkpoint, then the worker's connection closes. */
  stop(): Promise<void>;
}

/** Moves `db`'s checkpoints to a worker; `onError` hears of a checkpoint that failed. */
export function startCheckpointer(db: Db, onError: (msg: string, err: Error) => void): Checkpointer {
  let module: string;
  try {
    module = createRequire(import.meta.url).resolve('better-sqlite3');
  } catch {
    return { stop: async () => {} }; // no module path to give a worker: SQLite's own checkpoints stay
  }
  db.pragma('wal_autocheckpoint = 0');
  const worker = new Worker(WORKER, { eval: true, workerData: { module, path: db.name, intervalMs: INTERVAL_MS } });
  worker.unref();
  worker.on('message', (m: { error?: string }) => {
    if (m.error !== undefined) onError('WAL checkpoints are failing; retrying twice a second', new Error(m.error));
  });
  worker.on('error', (err) => {
    onError('the checkpoint worker stopped; the gateway checkpoints itself', err);
    if (db.open) db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
  });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    async stop() {
      worker.postMessage('stop');
      await exited;
    },
  };
}
