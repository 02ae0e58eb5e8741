// The billing commands of the built CLI (dist/cli.js), run as child processes against the file a
// running gateway serves: billing status, billing sync, webhooks list [--failed], webhooks replay.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { bearer, fakeClock, fetchText, seedAccount, startGateway, startUpstream, type TestGateway, type Upstream } from './helpers.ts';
import { billingEnv, billingFile, paidCheckout, postWebhook, startFakeStripe, stripeEvent, type FakeStripe } from './fake-stripe.ts';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
// Every test starts node child processes (~0.2 s each, more on a loaded machine).
const SLOW = { timeout: 30_000 };
const INTERVAL = 60_000;
// The gateway's clock runs an hour behind, so what it counts is due for the CLI's real clock.
const T0 = Math.floor((Date.now() - 3_600_000) / INTERVAL) * INTERVAL;

interface Run { status: number; stdout: string; stderr: string }

let stripe: FakeStripe;
let upstream: Upstream;
let gw: TestGateway;
let env: Record<string, string>;
const clock = fakeClock(T0);

beforeAll(async () => {
  stripe = await startFakeStripe();
  upstream = await startUpstream();
  gw = await startGateway({ env: billingEnv(stripe), file: billingFile(upstream.url), now: clock.now });
  // The CLI reads the same settings and config file as the gateway.
  env = { ...billingEnv(stripe), TOLLGATE_CONFIG: join(dirname(gw.dbPath), 'tollgate.config.json'), DATABASE_PATH: gw.dbPath, LOG_LEVEL: 'silent' };
});

afterAll(async () => {
  await gw.close();
  await upstream.close();
  await stripe.close();
});

/** Runs the CLI without blocking the event loop: the gateway and the fake Stripe keep serving. */
function cli(...args: string[]): Promise<Run> {
  const childEnv = { ...process.env };
  for (const name of ['DATABASE_PATH', 'TOLLGATE_CONFIG', 'UPSTREAM_URL', 'PORT', 'HOST']) delete childEnv[name];
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: dirname(gw.dbPath), env: { ...childEnv, ...env }, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

function json<T>(r: Run, status = 0): T {
  expect(r.stderr).toBe('');
  expect(r.status).toBe(status);
  return JSON.parse(r.stdout) as T;
}

function customerAccount(plan = 'free') {
  const seeded = seedAccount(gw.admin, plan);
  const customer = `cus_cli_${seeded.account.id.slice(-8)}`;
  gw.billingStore.linkCustomer(seeded.account.id, customer);
  return { id: seeded.account.id, key: seeded.key, customer };
}

const paidSession = (a: { key: string }, cents: number) => paidCheckout(stripe, gw.url, a.key, { cents });

interface EventRow { id: string; type: string; status: string; note: string | null; attempts: number; receivedAt: string; appliedAt: string | null }

describe('tollgate webhooks list and replay', SLOW, () => {
  // Shared by the next two tests: an event that failed, and its account.
  let id = '';
  let a: ReturnType<typeof customerAccount>;
  let event: Record<string, unknown>;

  it('an event whose handling failed answers 500 and is listed by webhooks list --failed', async () => {
    a = customerAccount();
    // One top-up away from the largest balance the schema allows: crediting $25 violates its CHECK.
    gw.admin.grantCredits(a.id, Number.MAX_SAFE_INTEGER - 10_000_000, 'whale');
    event = stripeEvent('checkout.session.completed', await paidSession(a, 2500), { created: Math.floor(T0 / 1000) });
    id = event.id as string;
    expect((await postWebhook(gw.url, event)).status).toBe(500);
    const ignored = await postWebhook(gw.url, stripeEvent('customer.created', { id: a.customer, object: 'customer' }));
    expect(ignored.status).toBe(200);

    const failed = json<{ data: EventRow[] }>(await cli('webhooks', 'list', '--failed', '--json')).data;
    expect(failed.map((e) => e.id)).toEqual([id]);
    expect(failed[0]).toMatchObject({ type: 'checkout.session.completed', status: 'failed', attempts: 1, appliedAt: null });
    expect(failed[0].note).toMatch(/CHECK constraint/);
    const all = json<{ data: EventRow[] }>(await cli('webhooks', 'list', '--json')).data;
    expect(all.map((e) => [e.id, e.status])).toEqual(expect.arrayContaining([[id, 'failed'], [ignored.body.id, 'ignored']]));
    const human = await cli('webhooks', 'list', '--failed');
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^ID\\s+TYPE\\s+STATUS.*\\n${id}\\s+checkout\\.session\\.completed\\s+failed\\s+1`, 'm'));
  });

  it('webhooks replay reports the event while it still fails, applies it once it can, and a second replay changes nothing', async () => {
    expect(id).not.toBe('');

    // Still failing: reported, exit 1, nothing changed.
    const stillFailing = await cli('webhooks', 'replay', id, '--json');
    expect(stillFailing.status).toBe(1);
    expect(JSON.parse(stillFailing.stdout)).toEqual({ id, type: 'checkout.session.completed', outcome: 'failed' });
    expect(gw.billingStore.account(a.id)!.balanceMicros).toBe(Number.MAX_SAFE_INTEGER - 10_000_000);

    // The operator makes room; the replay now applies it, once.
    expect(gw.storage.ledger.money.debit(a.id, 1_000_000_000, 'operator', 'make room')).toBe(true);
    const applied = json<{ outcome: string }>(await cli('webhooks', 'replay', id, '--json'));
    expect(applied).toEqual({ id, type: 'checkout.session.completed', outcome: 'applied' });
    const balance = Number.MAX_SAFE_INTEGER - 10_000_000 - 1_000_000_000 + 25_000_000;
    expect(gw.billingStore.account(a.id)!.balanceMicros).toBe(balance);
    expect(json<{ data: EventRow[] }>(await cli('webhooks', 'list', '--failed', '--json')).data).toEqual([]);

    const again = json<{ outcome: string }>(await cli('webhooks', 'replay', id, '--json'));
    expect(again.outcome).toBe('duplicate');
    expect(gw.billingStore.account(a.id)!.balanceMicros).toBe(balance);
    // Stripe's own retry arriving afterwards is a duplicate too.
    expect((await postWebhook(gw.url, event)).body.outcome).toBe('duplicate');
    expect(gw.admin.ledger(a.id).filter((e) => e.kind === 'purchase')).toHaveLength(1);
  });

  it('replaying an applied event has no effect; an unknown event id fails with exit 1', async () => {
    const a = customerAccount();
    const event = stripeEvent('checkout.session.completed', await paidSession(a, 1000));
    expect((await postWebhook(gw.url, event)).body.outcome).toBe('applied');
    const human = await cli('webhooks', 'replay', event.id as string);
    expect(human).toMatchObject({ status: 0, stdout: `${String(event.id)} checkout.session.completed: duplicate\n` });
    expect(gw.billingStore.account(a.id)!.balanceMicros).toBe(10_000_000);

    const missing = await cli('webhooks', 'replay', 'evt_never_seen', '--json');
    expect(missing.status).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toMatch(/^tollgate: .*evt_never_seen.*\n$/);
  });

  it('an event ignored for a price no plan had is applied by webhooks replay once the config names that price', async () => {
    const a = customerAccount();
    const sub = {
      id: 'sub_cli_price', object: 'subscription', customer: a.customer, status: 'active', metadata: { account_id: a.id },
      items: { object: 'list', data: [{ id: 'si_2', object: 'subscription_item', price: { id: 'price_team_2027', object: 'price' } }] },
    };
    const event = stripeEvent('customer.subscription.created', sub, { created: Math.floor(T0 / 1000) });
    expect((await postWebhook(gw.url, event)).body.outcome).toBe('ignored');
    const id = event.id as string;
    expect(json<{ outcome: string }>(await cli('webhooks', 'replay', id, '--json')).outcome).toBe('ignored');

    const file = billingFile(upstream.url) as { plans: Record<string, Record<string, unknown>> };
    file.plans.team.stripePrice = 'price_team_2027';
    const fixed = join(dirname(gw.dbPath), 'fixed.config.json');
    writeFileSync(fixed, JSON.stringify(file));
    const saved = env;
    env = { ...env, TOLLGATE_CONFIG: fixed };
    try {
      expect(json<{ outcome: string }>(await cli('webhooks', 'replay', id, '--json'))).toEqual({ id, type: 'customer.subscription.created', outcome: 'applied' });
      expect(gw.billingStore.account(a.id)).toMatchObject({ plan: 'team', subscriptionId: 'sub_cli_price' });
      expect(json<{ outcome: string }>(await cli('webhooks', 'replay', id, '--json')).outcome).toBe('duplicate');
    } finally {
      env = saved;
    }
  });

  it('a replayed subscription event takes effect in the running gateway', async () => {
    const a = customerAccount();
    const sub = {
      id: 'sub_cli_1', object: 'subscription', customer: a.customer, status: 'active', metadata: { account_id: a.id },
      items: { object: 'list', data: [{ id: 'si_1', object: 'subscription_item', price: { id: 'price_pro', object: 'price' }, current_period_start: 1, current_period_end: 2 }] },
    };
    // Recorded as failed, as a transient failure (SQLITE_BUSY past busy_timeout) would leave it.
    const event = stripeEvent('customer.subscription.created', sub, { created: Math.floor(T0 / 1000) });
    gw.storage.events.recordFailure({ source: 'stripe', id: event.id as string, type: 'customer.subscription.created', payload: JSON.stringify(event) }, 'database is locked');
    expect(json<{ data: EventRow[] }>(await cli('webhooks', 'list', '--failed', '--json')).data.map((e) => e.id)).toContain(event.id);
    expect(json<{ outcome: string }>(await cli('webhooks', 'replay', event.id as string, '--json')).outcome).toBe('applied');
    expect(gw.billingStore.account(a.id)!.plan).toBe('pro');
    // The running gateway notices the other process's change (PRAGMA data_version, every 200 ms).
    await vi.waitFor(async () => {
      const usage = JSON.parse((await fetchText(`${gw.url}/_tollgate/usage`, { headers: bearer(a.key) })).body) as { plan: string };
      expect(usage.plan).toBe('pro');
    }, { timeout: 2000, interval: 25 });
  });
});

describe('tollgate billing status', SLOW, () => {
  it('prints the account\'s customer, subscription, plan, period, standing, balance and debt (--json)', async () => {
    const a = customerAccount();
    const start = Date.parse('2026-11-01T00:00:00Z');
    const end = Date.parse('2026-12-01T00:00:00Z');
    gw.billingStore.setSubscription(a.id, { subscriptionId: 'sub_status', status: 'past_due', plan: 'pro', eventAt: T0, pastDueSince: T0, periodStart: start, periodEnd: end });
    gw.billingStore.addDebt(a.id, 1_500_000);
    gw.billingStore.setStanding(a.id, 'suspended', 'payment_failed');
    const doc = json<Record<string, unknown>>(await cli('billing', 'status', a.id, '--json'));
    expect(doc).toEqual({
      id: a.id, plan: 'pro', status: 'suspended', statusReason: 'payment_failed',
      stripeCustomerId: a.customer, subscriptionId: 'sub_status', subscriptionStatus: 'past_due',
      pastDueSince: new Date(T0).toISOString(), periodStart: '2026-11-01T00:00:00.000Z', periodEnd: '2026-12-01T00:00:00.000Z',
      balanceMicros: 0, balance: '0.00', debtMicros: 1_500_000, debt: '1.50',
    });
    const human = await cli('billing', 'status', a.id);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/standing:\s+suspended \(payment_failed\)/);
    expect(human.stdout).toMatch(/subscription:\s+sub_status \(past_due\)/);

    const missing = await cli('billing', 'status', 'acct_nope', '--json');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/acct_nope/);
  });
});

interface SyncDoc {
  reported: { identifier: string; accountId: string; eventName: string; value: number; ok: boolean; error?: string }[];
  pending: { id: string; accountId: string; eventName: string; value: number; intervalStart: string }[];
}

describe('tollgate billing sync', SLOW, () => {
  it('reports due overage to Stripe and prints what it did; failing, it exits 1 and keeps the interval pending', async () => {
    const over = async (key: string, n: number) => {
      for (let i = 0; i < n; i++) expect((await fetchText(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
      gw.flush();
    };
    const a = customerAccount('metered');
    await over(a.key, 6); // quota 3: 3 of overage
    const ok = json<SyncDoc>(await cli('billing', 'sync', '--json'));
    const mine = ok.reported.filter((r) => r.accountId === a.id);
    expect(mine).toEqual([{ identifier: expect.stringMatching(/^tg_[\w-]{40}$/), accountId: a.id, eventName: 'api_requests', value: 3, ok: true }]);
    expect(ok.pending.filter((p) => p.accountId === a.id)).toEqual([]);
    const sent = stripe.callsTo('/v1/billing/meter_events').filter((c) => c.params.identifier === mine[0].identifier);
    expect(sent).toHaveLength(1);
    expect(sent[0].params.payload).toEqual({ stripe_customer_id: a.customer, value: '3' });

    const nothing = await cli('billing', 'sync');
    expect(nothing.status).toBe(0);
    expect(nothing.stdout).toMatch(/nothing was due/);
    expect(nothing.stdout).toMatch(/\d+ interval\(s\) still pending/);

    const b = customerAccount('metered');
    await over(b.key, 5);
    stripe.fail('/v1/billing/meter_events', { times: 1, status: 500, shouldRetry: false, message: 'meter events are down' });
    const failing = await cli('billing', 'sync', '--json');
    expect(failing.status).toBe(1);
    const doc = JSON.parse(failing.stdout) as SyncDoc;
    const theirs = doc.reported.filter((r) => r.accountId === b.id);
    expect(theirs).toEqual([expect.objectContaining({ value: 2, ok: false, error: expect.stringMatching(/meter events are down/) })]);
    expect(doc.pending.filter((p) => p.accountId === b.id)).toEqual([
      { id: theirs[0].identifier, accountId: b.id, eventName: 'api_requests', value: 2, intervalStart: new Date(T0).toISOString() },
    ]);
  });

  it('without Stripe settings it says so and exits 1', async () => {
    const saved = env;
    const plain = join(dirname(gw.dbPath), 'plain.config.json');
    writeFileSync(plain, JSON.stringify({ plans: { free: { monthlyQuota: 10 } } }));
    env = { TOLLGATE_CONFIG: plain, DATABASE_PATH: gw.dbPath };
    try {
      const r = await cli('billing', 'sync', '--json');
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe('tollgate: Stripe is not configured: set STRIPE_SECRET_KEY\n');
    } finally {
      env = saved;
    }
  });
});
