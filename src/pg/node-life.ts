// A gateway's life as a node of a PostgreSQL database: it joins, beats every third of the TTL,
// ends the leases of nodes silent past the TTL, and leaves. Its own leases are safe to spend only
// while the survivors cannot have taken it for dead: until TTL − MARGIN after the start of its
// last heartbeat that succeeded (the start: PostgreSQL may have written it any time after). Past
// that, or once a heartbeat finds the node reaped, `spendable()` is false and `onFenced` is told:
// the gateway must stop spending its leases. Reaped, it forgets them, and the node joins again
// with none.
//
// A node reaps others only after a TTL of its own heartbeats without a gap: when the database
// comes back from a pause (or this node from a partition), every heartbeat in it is stale, and
// the nodes must have a TTL to beat again before any takes another for dead.
import { createPgNodes } from './pg-nodes.ts';
import type { Pool } from './pool.ts';

/** What a heartbeat may take on the wire, and what a clock may drift, before a lease is unsafe. */
const MARGIN_FRACTION = 1 / 3;

export interface NodeLife {
  readonly id: string;
  /** False once survivors may have ended this node's leases (see the top of the file). */
  spendable(): boolean;
  /** Leaves: the timers stop and the node's row goes (return its leases first). */
  stop(): Promise<void>;
}

export interface NodeLifeOptions {
  ttlMs: number;
  /** The node was taken for dead (`reaped`: its leases are gone), or its deadline passed. */
  onFenced: (reaped: boolean) => void;
  onError: (msg: string, err: Error) => void;
}

export async function startNode(pool: Pool, id: string, o: NodeLifeOptions): Promise<NodeLife> {
  const nodes = createPgNodes(pool, id);
  const beatMs = Math.max(1, Math.floor(o.ttlMs / 3));
  const safeMs = o.ttlMs * (1 - MARGIN_FRACTION);
  let safeUntil = 0;
  /** Since when this node's heartbeats have answered without a gap (see the top of the file), and the last answer. */
  let beatingSince = performance.now();
  let lastBeat = beatingSince;
  /** Told of its deadline already: said once until a heartbeat succeeds again. */
  let late = false;
  /** A heartbeat in flight (a database that stalls gets one at a time, not a queue of them). */
  let inFlight = false;

  async function beat(): Promise<void> {
    if (inFlight) return;
    inFlight = true;
    const started = performance.now();
    try {
      if (!(await nodes.heartbeat())) {
        o.onFenced(true);
        await nodes.join();
      }
      // Twice the interval since the last one answered: the database (or the way to it) stalled.
      const done = performance.now();
      if (done - lastBeat > 2 * beatMs) beatingSince = done;
      lastBeat = done;
      safeUntil = started + safeMs;
      late = false;
    } catch (err) {
      o.onError('a heartbeat failed; retrying', err as Error);
    } finally {
      inFlight = false;
    }
  }

  const started = performance.now();
  await nodes.join();
  safeUntil = started + safeMs;
  const beating = setInterval(() => {
    if (!late && performance.now() > safeUntil) {
      late = true;
      o.onFenced(false);
    }
    void beat();
  }, beatMs);
  beating.unref();
  const reaping = setInterval(() => {
    if (performance.now() - beatingSince < o.ttlMs || performance.now() > safeUntil) return;
    nodes.reapDead(o.ttlMs).catch((err: Error) => o.onError('ending dead nodes\' leases failed; retrying', err));
  }, beatMs);
  reaping.unref();

  return {
    id,
    spendable: () => performance.now() <= safeUntil,
    async stop() {
      clearInterval(beating);
      clearInterval(reaping);
      await nodes.leave();
    },
  };
}
