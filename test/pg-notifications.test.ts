// Notifications with three gateways on one PostgreSQL (`node dist/server.js` processes): every node
// decides alerts from its own view and delivers the shared outbox, yet an account spent down
// across all of them fires balance.low and balance.depleted once, and each event reaches the
// receiver once, signed, whichever node sent it.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migratePg } from '../src/pg/migrate.ts';
import { createPool, type Pool } from '../src/pg/pool.ts';
import { startUpstream, tempDir, type Upstream } from './helpers.ts';
import { startReceiver, type Receiver } from './notify-receivers.ts';
import { books, freshDatabase, OPEN_LIMITS, pgAccount, statusOf } from './postgres.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { until } from './until.ts';

const PRICE = 1_000;
const LOW = 40 * PRICE;
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('notifications with three gateways on one PostgreSQL', { timeout: 30_000 }, () => {
  let pool: Pool;
  let up: Upstream;
  let receiver: Receiver;
  let nodes: ServerProcess[] = [];

  beforeAll(async () => {
    const url = await freshDatabase(inject('postgresUrl'));
    pool = await createPool(url, 4);
    await migratePg(pool);
    up = await startUpstream();
    // Slower than the deliverers' polls (500 ms): another node would see each delivery still due.
    receiver = await startReceiver(() => new Promise((r) => setTimeout(() => r(200), 1_500)));
    const config = join(tempDir(), 'tollgate.config.json');
    writeFileSync(config, JSON.stringify({
      routes: [{ path: '/api/', upstream: up.url, priceMicros: PRICE }],
      plans: { default: { limits: OPEN_LIMITS, burst: 1_000_000, monthlyQuota: 0, overage: 'credits', alerts: { lowBalanceMicros: LOW } } },
      notifications: { webhooks: [{ url: receiver.url, secret: SECRET }] },
    }));
    nodes = await Promise.all([1, 2, 3].map(() => spawnServer({ DATABASE_URL: url, TOLLGATE_CONFIG: config }, 20_000)));
  }, 60_000);
  afterAll(async () => {
    for (const n of nodes) n.child.kill('SIGKILL');
    await up?.close();
    await receiver?.close();
    await pool?.end();
  });

  const events = async (id: string) => (await pool.query<{ type: string; eventId: string }>(
    'SELECT type, event_id AS "eventId" FROM notifications WHERE account_id = $1 ORDER BY id', [id])).rows;

  it('an account spent down through all three nodes fires balance.low and balance.depleted once; each event is delivered once', async () => {
    const { id, key } = await pgAccount(pool, 100 * PRICE);
    const statuses: number[] = [];
    // Rounds of one request per node, until each has been refused twice.
    for (let round = 0; statuses.filter((s) => s === 402).length < 6; round++) {
      statuses.push(...await Promise.all(nodes.map((n) => statusOf(n.url, key))));
      if (round > 200) throw new Error(`never refused: ${statuses.length} requests`);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(100);
    expect(statuses.filter((s) => s !== 200 && s !== 402)).toEqual([]);

    // A node sees what the others spent within a second: balance.low may come after balance.depleted.
    await until(async () => (await events(id)).some((e) => e.type === 'balance.low'), 5_000, 'balance.low');
    const fired = await events(id);
    expect(fired.map((e) => e.type).sort()).toEqual(['balance.depleted', 'balance.low', 'credits.added']);
    const delivered = async () => (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM notification_deliveries d
      JOIN notifications n ON n.id = d.notification_id WHERE n.account_id = $1 AND d.status = 'delivered'`, [id])).rows[0].n;
    await until(async () => (await delivered()) === fired.length, 10_000, 'every event delivered');

    // Three deliverers, each event sent once: the claims keep the others off a delivery in flight.
    const hooks = receiver.hooks.filter((h) => h.json.data.accountId === id);
    expect(hooks.map((h) => h.json.id).sort()).toEqual(fired.map((e) => e.eventId).sort());
    const wh = new Webhook(SECRET);
    for (const h of hooks) expect(wh.verify(h.body, h.headers as Record<string, string>)).toEqual(h.json);
    expect(hooks.find((h) => h.json.type === 'balance.low')!.json.data).toMatchObject({ thresholdMicros: LOW });
    const { rows } = await pool.query<{ status: string; attempts: number }>(`SELECT d.status, d.attempts FROM notification_deliveries d
      JOIN notifications n ON n.id = d.notification_id WHERE n.account_id = $1`, [id]);
    expect(rows).toEqual(fired.map(() => ({ status: 'delivered', attempts: 1 })));
    const b = await books(pool, id);
    expect(b.balance).toBe(b.ledger);
    expect(b.charged).toBe(100 * PRICE);
  });
});
