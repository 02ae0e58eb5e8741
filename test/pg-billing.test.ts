// Stripe billing with three gateways on one PostgreSQL (`node dist/server.js` with DATABASE_URL
// and the Stripe settings, against the local fake of Stripe's API): a webhook replayed ten times
// across the nodes at once is applied once, its credits are spent by every node, a refund takes
// back what the nodes hold, a plan bought reaches every node, and the metered overage of all
// nodes is reported to Stripe by one node at a time, each interval once.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migratePg } from '../src/pg/migrate.ts';
import { createPool, type Pool } from '../src/pg/pool.ts';
import { billingEnv, billingFile, paidCheckout, postWebhook, startFakeStripe, stripeEvent, type FakeStripe } from './fake-stripe.ts';
import { startUpstream, type Upstream } from './helpers.ts';
import { books as booksOf, freshDatabase, pgAccount, statusOf } from './postgres.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { until } from './until.ts';

const PRICE = 1_000; // billingFile's price of /api/
const INTERVAL_S = 1;

describe('Stripe billing with three gateways on one PostgreSQL', () => {
  let url: string;
  let pool: Pool;
  let up: Upstream;
  let stripe: FakeStripe;
  let nodes: ServerProcess[] = [];

  beforeAll(async () => {
    url = await freshDatabase(inject('postgresUrl'));
    pool = await createPool(url, 4);
    await migratePg(pool);
    up = await startUpstream();
    stripe = await startFakeStripe();
    const config = join(mkdtempSync(join(tmpdir(), 'tollgate-config-')), 'tollgate.config.json');
    writeFileSync(config, JSON.stringify(billingFile(up.url)));
    // Meter intervals of a second: each node's reporter looks every second.
    const env = { ...billingEnv(stripe, { METER_INTERVAL_SECONDS: String(INTERVAL_S) }), DATABASE_URL: url, TOLLGATE_CONFIG: config };
    nodes = await Promise.all([1, 2, 3].map(() => spawnServer(env, 20_000)));
  }, 60_000);
  afterAll(async () => {
    for (const n of nodes) n.child.kill('SIGKILL');
    await up?.close();
    await stripe?.close();
    await pool?.end();
  });

  const account = (plan = 'free') => pgAccount(pool, 0, plan);

  const call = (node: ServerProcess, key: string) => statusOf(node.url, key);

  const ledger = async (id: string) => (await pool.query<{ kind: string; micros: number }>(
    `SELECT kind, amount_micros AS micros FROM ledger WHERE account_id = $1 AND kind NOT IN ('lease', 'lease_return', 'grant') ORDER BY id`, [id])).rows;

  const books = (id: string) => booksOf(pool, id);

  /** The same signed bytes posted `times` times at once, spread over the nodes; their outcomes. */
  async function replay(event: Record<string, unknown>, times: number): Promise<string[]> {
    const payload = JSON.stringify(event);
    const replies = await Promise.all(Array.from({ length: times }, (_, i) => postWebhook(nodes[i % nodes.length].url, payload)));
    expect(replies.map((r) => r.status), nodes.map((n) => n.output()).join('\n')).toEqual(replies.map(() => 200));
    return replies.map((r) => String(r.body.outcome)).sort();
  }

  const duplicates = (n: number) => Array.from({ length: n }, () => 'duplicate');

  it('a paid checkout\'s event replayed ×10 across the nodes at once is credited once, and every node spends the credits', async () => {
    const a = await account();
    const session = await paidCheckout(stripe, nodes[0].url, a.key, { cents: 2500, paymentIntent: 'pi_pg_once' });
    const event = stripeEvent('checkout.session.completed', session);
    expect(await replay(event, 10)).toEqual(['applied', ...duplicates(9)]);
    expect(await ledger(a.id)).toEqual([{ kind: 'purchase', micros: 25_000_000 }]);
    const { rows: [recorded] } = await pool.query('SELECT status, attempts FROM webhook_events WHERE id = $1', [event.id]);
    expect(recorded).toEqual({ status: 'applied', attempts: 1 });
    // The free plan's 5 quota units go first; then credits, on whichever node the request reaches.
    for (const n of nodes) await until(async () => (await call(n, a.key)) === 200, 1_000, 'the credits to be seen');
    const statuses = await Promise.all(Array.from({ length: 30 }, (_, i) => call(nodes[i % 3], a.key)));
    expect(statuses).toEqual(statuses.map(() => 200));
    await until(async () => (await books(a.id)).charged > 0, 5_000, 'the rows to be written');
    const b = await books(a.id);
    expect(b.balance).toBe(b.ledger);
    expect(b.balance + b.held + b.charged).toBe(25_000_000);
  });

  it('a refund replayed ×5 across the nodes is debited once: what the balance and the reached node hold, the rest as debt', async () => {
    const a = await account();
    const session = await paidCheckout(stripe, nodes[1].url, a.key, { cents: 1000, paymentIntent: 'pi_pg_refund' });
    expect(await replay(stripeEvent('checkout.session.completed', session), 3)).toEqual(['applied', ...duplicates(2)]);
    for (const n of nodes) await until(async () => (await call(n, a.key)) === 200, 1_000, 'the credits to be seen');
    await Promise.all(Array.from({ length: 20 }, (_, i) => call(nodes[i % 3], a.key)));
    const charge = { id: 'ch_pg_refund', object: 'charge', payment_intent: 'pi_pg_refund', amount: 1000, amount_refunded: 1000, currency: 'usd' };
    expect(await replay(stripeEvent('charge.refunded', charge), 5)).toEqual(['applied', ...duplicates(4)]);
    const entries = await ledger(a.id);
    expect(entries.map((e) => e.kind)).toEqual(['purchase', 'refund']);
    // The whole $10 is owed back: the refund took what the balance and the reached node's lease
    // held; what other nodes' leases hold and the requests spent is debt, paid by the next top-up.
    const b = await books(a.id);
    expect(-entries[1].micros + b.debt).toBe(10_000_000);
    expect(b.balance).toBe(b.ledger);
    expect(b.balance).toBe(0);
  });

  it('a subscription bought through one node gives every node the plan, applied once across them', async () => {
    const a = await account();
    const customer = `cus_pg_${a.id}`;
    await pool.query('UPDATE accounts SET stripe_customer_id = $2 WHERE id = $1', [a.id, customer]);
    // No credits: the free plan's 5 units a month, across all nodes, then 402.
    const before = await Promise.all(Array.from({ length: 15 }, (_, i) => call(nodes[i % 3], a.key)));
    expect(before.filter((s) => s === 200)).toHaveLength(5);
    const sub = {
      id: `sub_pg_${a.id}`, object: 'subscription', customer, status: 'active', metadata: { account_id: a.id },
      items: { object: 'list', data: [{ id: 'si_1', price: { id: 'price_pro' }, current_period_start: 1_790_000_000, current_period_end: 1_792_600_000 }] },
    };
    expect(await replay(stripeEvent('customer.subscription.created', sub), 6)).toEqual(['applied', ...duplicates(5)]);
    const { rows: [row] } = await pool.query('SELECT plan, subscription_status AS status FROM accounts WHERE id = $1', [a.id]);
    expect(row).toEqual({ plan: 'pro', status: 'active' });
    // Pro has 1000 units a month, and every node knows within a second.
    for (const n of nodes) await until(async () => (await call(n, a.key)) === 200, 1_000, 'the plan to be seen');
  });

  it('metered overage from every node is reported to Stripe once per interval, by one node at a time', { timeout: 30_000 }, async () => {
    const a = await account('metered');
    await pool.query('UPDATE accounts SET stripe_customer_id = $2 WHERE id = $1', [a.id, `cus_pg_meter_${a.id}`]);
    // A report outlasts a reporter's tick: without the lock, another node would send the same intervals.
    stripe.slow('/v1/billing/meter_events', 1_500);
    const statuses: number[] = [];
    // Over three seconds: several one-second intervals, each with requests from every node.
    const end = Date.now() + 3_000;
    while (Date.now() < end) statuses.push(...await Promise.all(nodes.map((n) => call(n, a.key))));
    expect(statuses).toEqual(statuses.map(() => 200));
    const reported = () => stripe.callsTo('/v1/billing/meter_events').filter((c) => String((c.params.payload as Record<string, unknown>).stripe_customer_id) === `cus_pg_meter_${a.id}`);
    const pending = async () => Number((await pool.query(`SELECT count(*) AS n FROM meter_outbox WHERE account_id = $1 AND status = 'pending'`, [a.id])).rows[0].n);
    await until(async () => (await pool.query(`SELECT 1 FROM meter_outbox WHERE account_id = $1`, [a.id])).rowCount! > 0 && await pending() === 0, 15_000, 'every interval to be reported');
    const calls = reported();
    const ids = calls.map((c) => String(c.params.identifier));
    expect(ids.length - new Set(ids).size).toBe(0); // no interval sent twice
    expect(ids.length).toBeGreaterThanOrEqual(2);
    const sent = calls.reduce((sum, c) => sum + Number((c.params.payload as Record<string, unknown>).value), 0);
    const { rows: [q] } = await pool.query<{ used: number }>('SELECT coalesce(sum(used), 0)::int AS used FROM quota_usage WHERE account_id = $1', [a.id]);
    // Every request is a quota unit or an overage unit reported to Stripe, never both, never neither.
    expect(q.used + sent).toBe(statuses.length);
    expect(q.used).toBeLessThanOrEqual(3);
  });
});
