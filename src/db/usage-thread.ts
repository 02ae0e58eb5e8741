// Group commits in a worker thread (db/usage-worker.ts) with a connection of its own, so the
// event loop neither binds a row's values nor runs SQLite's write; the lines bound for stdout
// (the access log's, and pino's) go with them and are written there too. The usage log then
// answers later (UsageLog.remote): a connection's next request waits for its previous row's
// commit, as over the network, and the two connections take turns at the file
// (db/sqlite-busy.ts). Where no worker can load the writer (the single executable), or should the
// worker stop, the gateway writes on its own connection.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { Logger } from '../log.ts';
import { Deferred } from '../storage/deferred.ts';
import { StorageBusy, type Notice, type Tally, type UsageLog } from '../storage/ports.ts';
import { usageCells } from '../storage/usage-columns.ts';
import type { Db } from './open.ts';
import { sharedWrites, shareWrites } from './sqlite-busy.ts';

/** What the loop sends: a commit (cells undefined: only lines), and the log lines since the last. */
export interface Commit {
  batch: number;
  cells: unknown[] | undefined;
  tallies: readonly Tally[];
  throughId: number;
  notices: readonly Notice[];
  lines: string;
}
export interface Answer {
  batch: number;
  error?: string;
  busy?: boolean;
}
/** What the worker is given: the file, the shared words and the port its answers go to. */
export interface WorkerData {
  path: string;
  /** The words the two writers share (db/sqlite-busy.ts). */
  shared: Int32Array;
  /** [0]: answers sent, for waitNow. */
  sent: Int32Array;
  answers: MessagePort;
}
export const LOOP = 1;
export const THREAD = 2;

const LINES_MS = 250;
/**
 * The thread's young generation, at most: its garbage is each commit's message, and V8's default
 * (16 MB semi-spaces under load) made the gateway's RSS 15 MB larger for the same CPU.
 */
const YOUNG_MB = 4;
/** waitNow() gives up after this long (the recorder then counts the database as busy). */
const WAIT_NOW_MS = 5_000;
/** stop() ends a thread that has not closed its connection in this long. */
const STOP_MS = 10_000;

export interface UsageThread {
  usage: UsageLog;
  /** Should it stop ('exit'), writes come back to the gateway's connection. */
  worker: Worker;
  /** Writes the last lines and closes the thread's connection. */
  stop(): Promise<void>;
}

/**
 * `usage`'s writes, and `log`'s lines bound for stdout, in a worker on `db`'s file;
 * undefined where no worker can load the writer.
 */
export function startUsageThread(db: Db, usage: UsageLog, log: Logger): UsageThread | undefined {
  const shared = sharedWrites();
  const sentCount = new Int32Array(new SharedArrayBuffer(4));
  const { port1: answers, port2 } = new MessageChannel();
  const worker = spawn({ path: db.name, shared, sent: sentCount, answers: port2 });
  if (!worker) return undefined;
  worker.unref();
  answers.unref();
  shareWrites(shared, LOOP);
  let alive = true;
  let batch = 0;
  let lines = '';
  // Commits sent, by number: each answered through its Deferred (no promise, no microtask).
  const waiting = new Map<number, Deferred>();
  const send = (m: Omit<Commit, 'lines'>) => {
    worker.postMessage({ ...m, lines } satisfies Commit);
    lines = '';
  };
  const sendLines = () => send({ batch: 0, cells: undefined, tallies: [], throughId: 0, notices: [] });
  // Lines with no row to carry them (refusals, own endpoints, pino's) go on a timer.
  const timer = setInterval(() => lines.length > 0 && sendLines(), LINES_MS);
  timer.unref();
  // Every line bound for stdout, pino's too: the thread is then its only writer.
  const stdout = log.moveStdout((json) => {
    lines += json;
  });
  const answered = (a: Answer) => {
    const sent = waiting.get(a.batch);
    if (!sent) return;
    waiting.delete(a.batch);
    if (a.error === undefined) sent.resolve();
    else sent.reject(a.busy ? new StorageBusy(new Error(a.error)) : new Error(a.error));
  };
  answers.on('message', answered);
  const lost = (err: Error) => {
    if (!alive) return;
    alive = false;
    clearInterval(timer);
    shareWrites(undefined);
    log.moveStdout(undefined);
    // The lines it was not sent, and every later one, go to stdout from here.
    if (lines.length > 0) stdout(lines);
    lines = '';
    log.error('the usage writer thread stopped; the gateway writes usage itself', { error: err.message });
    for (const sent of waiting.values()) sent.reject(new StorageBusy(err));
    waiting.clear();
  };
  worker.on('error', lost);
  const exited = new Promise<void>((resolve) => worker.once('exit', (code) => {
    lost(new Error(`exited with ${code}`));
    resolve();
  }));
  return {
    worker,
    usage: {
      ...usage,
      remote: true,
      commitsAtOnce: true,
      write(rows, tallies, throughId, notices) {
        if (!alive) return usage.write(rows, tallies, throughId, notices);
        const b = ++batch;
        const sent = new Deferred();
        waiting.set(b, sent);
        send({ batch: b, cells: usageCells(rows), tallies, throughId, notices });
        return sent;
      },
      waitNow() {
        const deadline = performance.now() + WAIT_NOW_MS;
        while (waiting.size > 0) {
          const seen = Atomics.load(sentCount, 0);
          const m = receiveMessageOnPort(answers);
          if (m) {
            answered(m.message as Answer);
            continue;
          }
          const left = deadline - performance.now();
          if (left <= 0) return;
          Atomics.wait(sentCount, 0, seen, left);
        }
      },
    },
    async stop() {
      if (!alive) return;
      clearInterval(timer);
      if (lines.length > 0) sendLines();
      alive = false;
      worker.postMessage('stop');
      const stuck = setTimeout(() => void worker.terminate(), STOP_MS);
      await exited;
      clearTimeout(stuck);
      // Lines logged while it wrote its last ones waited: written now, after them.
      log.moveStdout(undefined);
      if (lines.length > 0) stdout(lines);
      lines = '';
      shareWrites(undefined);
      answers.close();
    },
  };
}

function spawn(workerData: WorkerData): Worker | undefined {
  const options = { workerData, transferList: [workerData.answers], resourceLimits: { maxYoungGenerationSizeMb: YOUNG_MB } };
  const here = import.meta.url as string | undefined; // undefined in the single executable's CommonJS bundle
  if (here === undefined) return undefined;
  if (here.endsWith('.js')) {
    const entry = new URL('./usage-worker.js', here);
    return existsSync(fileURLToPath(entry)) ? new Worker(entry, options) : undefined;
  }
  // From source (tsx, vitest): the worker loads the writer through tsx, which workers do not inherit.
  let tsx: string;
  try {
    tsx = import.meta.resolve('tsx/esm/api');
  } catch {
    return undefined;
  }
  const entry = new URL('./usage-worker.ts', here).href;
  const code = `import(${JSON.stringify(tsx)}).then(({ tsImport }) => tsImport(${JSON.stringify(entry)}, ${JSON.stringify(here)}))`;
  return new Worker(code, { ...options, eval: true });
}
