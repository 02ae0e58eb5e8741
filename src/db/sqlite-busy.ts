// SQLite errors that mean "not now" rather than "never": another process holds the write lock
// (the gateway's connection does not wait for it), or the disk is full or failing. Nothing was
// written; the caller keeps what it meant to write and tries again later.
//
// One process may write with two connections: the gateway's and its usage writer thread's
// (db/usage-thread.ts). They take turns through a shared word rather than meet at SQLite's lock,
// which neither waits for: the gateway waits at most for one group commit of its own thread
// (under a millisecond), never for another process.
import { StorageBusy } from '../storage/ports.ts';

const TRANSIENT = /^SQLITE_(?:BUSY|LOCKED|FULL|IOERR)/;
/** A turn not had in this long: the database counts as busy. */
const TURN_MS = 1_000;

// [0]: whose turn it is (0: nobody's, else the writer's number); [1], [2]: writes by writer 1 and
// 2; [3]: commits by other processes that writer 2 noticed (db/usage-worker.ts).
let gate: Int32Array | undefined;
let me = 0;
let depth = 0;

/** The words the two writers share. */
export const sharedWrites = () => new Int32Array(new SharedArrayBuffer(16));

/** Writes of this thread take turns with another's through `shared` (`who`: 1 or 2, a name of its own); undefined: alone again. */
export function shareWrites(shared: Int32Array | undefined, who = 0): void {
  gate = shared;
  me = who;
}

/** How many writes the other writer of this process has made (0 when there is none). */
export function partnerWrites(): number {
  return gate ? Atomics.load(gate, 3 - me) : 0;
}

/** How many commits by other processes, with no `changes` row, writer 2 has noticed. */
export function outsideEdits(): number {
  return gate ? Atomics.load(gate, 3) : 0;
}

export function noticeOutsideEdit(): void {
  if (gate) Atomics.add(gate, 3, 1);
}

/** Runs `write`; a transient failure becomes StorageBusy, anything else is thrown as is. */
export function writing<T>(write: () => T): T {
  const turn = gate !== undefined && depth === 0 ? take(gate) : undefined;
  depth++;
  try {
    return write();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== undefined && TRANSIENT.test(code)) throw new StorageBusy(err);
    throw err;
  } finally {
    depth--;
    if (turn) {
      Atomics.add(turn, me, 1);
      Atomics.store(turn, 0, 0);
      Atomics.notify(turn, 0);
    }
  }
}

function take(shared: Int32Array): Int32Array {
  for (const deadline = performance.now() + TURN_MS; ;) {
    const holder = Atomics.compareExchange(shared, 0, 0, me);
    if (holder === 0) return shared;
    const left = deadline - performance.now();
    if (left <= 0) throw new StorageBusy(new Error('the other writer of this process kept the database'));
    Atomics.wait(shared, 0, holder, left);
  }
}
