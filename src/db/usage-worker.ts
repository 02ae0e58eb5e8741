// The usage writer thread (db/usage-thread.ts starts it): group commits on a connection of its
// own, then the log lines that came with them, written to stdout 16 KB at a time.
import { writevSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { StorageBusy } from '../storage/ports.ts';
import { openDb } from './open.ts';
import { noticeOutsideEdit, partnerWrites, shareWrites, writing } from './sqlite-busy.ts';
import { createSqliteUsage } from './sqlite-usage.ts';
import { THREAD, type Answer, type Commit, type WorkerData } from './usage-thread.ts';

const WRITE_BYTES = 16 * 1024;
const FLUSH_MS = 250;
/** Lines a stdout that does not read them may hold back; past it new lines are dropped (and counted). */
const MAX_HELD_BYTES = 32 * 1024 * 1024;

const { path, shared, sent, answers } = workerData as WorkerData;
shareWrites(shared, THREAD);
const db = openDb(path, { migrateNow: false, waitMs: 0 });
db.pragma('wal_autocheckpoint = 0'); // the checkpointer's worker checkpoints
const usage = createSqliteUsage(db);

// Another process's commit with no `changes` row (an edit by hand) is for the change feed to
// reload everything; the gateway's connection cannot tell it from this thread's commits, this
// connection can: its data_version moves on commits by others, the gateway's included.
const version = db.prepare('PRAGMA data_version').pluck();
const lastChange = db.prepare('SELECT coalesce(max(id), 0) FROM changes').pluck();
let seen = { version: version.get(), loop: partnerWrites(), change: lastChange.get() };
/** Run in this thread's turn: the gateway's connection is not writing meanwhile. */
function lookForEdits(): void {
  const now = { version: version.get(), loop: partnerWrites(), change: seen.change };
  if (now.version !== seen.version) {
    now.change = lastChange.get();
    if (now.loop === seen.loop && now.change === seen.change) noticeOutsideEdit();
  }
  seen = now;
}

let lines = '';
// What stdout has not taken yet: a pipe is non-blocking, and a full one says EAGAIN.
const held: Buffer[] = [];
let heldBytes = 0;
let dropped = 0;

function flush(): void {
  if (lines.length > 0) {
    if (heldBytes > MAX_HELD_BYTES) dropped += lines.split('\n').length - 1;
    else hold(lines);
    lines = '';
  }
  while (held.length > 0) {
    let n: number;
    try {
      n = writevSync(1, held.length > 64 ? held.slice(0, 64) : held);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return; // the next flush goes on
      held.length = 0; // stdout gone (a closed pipe): the lines have nowhere to go
      heldBytes = 0;
      return;
    }
    heldBytes -= n;
    while (n > 0) {
      if (n >= held[0].length) n -= held.shift()!.length;
      else {
        held[0] = held[0].subarray(n);
        n = 0;
      }
    }
    if (held.length === 0 && dropped > 0) {
      hold(`{"level":"warn","msg":"log lines dropped: stdout did not take them","lines":${dropped}}\n`);
      dropped = 0;
    }
  }
}

function hold(text: string): void {
  const bytes = Buffer.from(text);
  held.push(bytes);
  heldBytes += bytes.length;
}

const timer = setInterval(flush, FLUSH_MS);

parentPort!.on('message', (m: Commit | 'stop') => {
  if (m === 'stop') {
    clearInterval(timer);
    // The last lines, while stdout takes them (a reader that stopped reading gets 2 s).
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (const until = performance.now() + 2_000; flush(), held.length > 0 && performance.now() < until;) Atomics.wait(pause, 0, 0, 5);
    db.close();
    parentPort!.close();
    answers.close();
    return;
  }
  if (m.cells !== undefined) {
    let answer: Answer = { batch: m.batch };
    try {
      const { cells, tallies, throughId, notices } = m;
      writing(() => {
        lookForEdits();
        usage.writeCells(cells, tallies, throughId, notices);
      });
    } catch (err) {
      answer = { batch: m.batch, error: (err as Error).message, busy: err instanceof StorageBusy };
    }
    answers.postMessage(answer);
    Atomics.add(sent, 0, 1);
    Atomics.notify(sent, 0);
  }
  lines += m.lines;
  if (lines.length >= WRITE_BYTES) flush();
});
