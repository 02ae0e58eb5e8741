// A gateway node in a process of its own, for the tests that kill or pause it: it joins, takes a
// lease of ACCOUNT (LEASE_MICROS), then says on stdout what happens to it, one JSON line each.
// Usage: node --import tsx test/pg-node-child.ts, with DATABASE_URL, NODE_ID, TTL_MS, ACCOUNT, LEASE_MICROS.
import { startNode } from '../src/pg/node-life.ts';
import { createPgLeases } from '../src/pg/pg-leases.ts';
import { createPool } from '../src/pg/pool.ts';

const env = (name: string) => process.env[name] ?? (() => { throw new Error(`${name} is required`); })();
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const pool = await createPool(env('DATABASE_URL'), 2);
const id = env('NODE_ID');
await startNode(pool, id, {
  ttlMs: Number(env('TTL_MS')),
  onFenced: (reaped) => say({ fenced: reaped ? 'reaped' : 'late' }),
  onError: (msg) => say({ error: msg }),
});
const grant = await createPgLeases(pool, id).lease(env('ACCOUNT'), undefined, 1, Number(env('LEASE_MICROS')));
say({ leased: grant.micros });
// The timers are unref'd, as in a gateway; this one keeps the process alive until it is killed.
setInterval(() => undefined, 60_000);
