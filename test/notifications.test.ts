// Notifications end to end: a real gateway spends, refuses and counts; the outbox is delivered to
// a real webhook receiver and a real SMTP server, signed per Standard Webhooks (checked with the
// standardwebhooks package). The deliverer's loop is driven by hand (Deliverer.tick) with a long
// poll, so nothing waits on a timer, and a fake clock stands in for the hours of backoff.
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, fakeClock, fetchText, openAdmin, seedAccount, startGateway, startUpstream, tempDir, type TestGateway, type Upstream } from './helpers.ts';
import { deliver, startReceiver, startSmtp, type Hook, type Receiver, type Smtp } from './notify-receivers.ts';
import { until } from './until.ts';
import { join } from 'node:path';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import type { DeliveryRecord } from '../src/storage/ports.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const PRICE = 1_000;
const LOW = 2_500;
const OPS = 'ops@example.com';
const MANUAL = { pollMs: 3_600_000 };

function config(receiver: Receiver, smtp: Smtp, upstream: string) {
  const limits = { perSecond: 100_000 };
  return {
    routes: [{ path: '/api/', upstream, priceMicros: PRICE }],
    plans: {
      prepaid: { limits, burst: 100_000, monthlyQuota: 0, overage: 'credits', alerts: { lowBalanceMicros: LOW } },
      quota: { limits, burst: 100_000, monthlyQuota: 10, overage: 'block', alerts: { quotaPercent: [80, 100] } },
    },
    defaultPlan: 'prepaid',
    notifications: {
      webhooks: [{ url: receiver.url, secret: SECRET }],
      email: { smtp: smtp.url, from: 'Tollgate <billing@example.com>', to: [OPS], customers: true },
      publicUrl: 'https://api.example.com',
    },
  };
}

const of = (hooks: Hook[], accountId: string, type?: string) =>
  hooks.filter((h) => h.json.data.accountId === accountId && (type === undefined || h.json.type === type));
const types = (hooks: Hook[]) => hooks.map((h) => h.json.type);
/** The account's deliveries, newest first (the SQLite outbox answers at once). */
const deliveries = (gw: TestGateway, accountId: string, failed = false) =>
  gw.storage.outbox.list({ failed, limit: 100, accountId }) as DeliveryRecord[];
const webhookOf = (gw: TestGateway, accountId: string) => deliveries(gw, accountId).find((d) => d.channel === 'webhook')!;
const rows = (gw: TestGateway, accountId: string) => {
  gw.flush();
  return gw.db.prepare('SELECT type FROM notifications WHERE account_id = ? ORDER BY id').pluck().all(accountId) as string[];
};

describe.each(BACKENDS)('balance alerts, signed, on $backend', ({ backend }) => {
  let up: Upstream;
  let receiver: Receiver;
  let smtp: Smtp;
  let gw: BackendGateway;
  beforeAll(async () => {
    up = await startUpstream();
    receiver = await startReceiver();
    smtp = await startSmtp();
    gw = await startBackendGateway(backend, { file: config(receiver, smtp, up.url), env: {}, notify: MANUAL });
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
    await receiver.close();
    await smtp.close();
  });

  const get = (key: string) => fetchText(`${gw.url}/api/x`, { headers: bearer(key) });
  /** The account's events, oldest first, once the queued ones are written. */
  const events = async (id: string) => {
    await gw.app.state.recorder.drain();
    return (await gw.select<{ type: string }>(`SELECT type FROM notifications WHERE account_id = '${id}' ORDER BY id`)).map((r) => r.type);
  };
  const send = async () => {
    await gw.app.state.recorder.drain();
    await gw.app.deliverer!.tick();
  };
  /**
   * As the admin API grants: the gateway has heard of it when it returns, and balance.low is armed
   * again once it has read the balance (on PostgreSQL a query later) and written so.
   */
  const grant = async (id: string, micros: number) => {
    await gw.operations().grantCredits(id, { amountMicros: micros, reason: 'top-up' });
    await until(async () => {
      await gw.app.state.recorder.drain();
      return Boolean((await gw.select<{ armed: unknown }>(`SELECT low_armed AS armed FROM account_alerts WHERE account_id = '${id}'`))[0]?.armed);
    }, 2_000, 'balance.low armed again');
  };

  it('spending down fires balance.low once and balance.depleted once; a top-up re-arms both', async () => {
    const { id, key } = await gw.seed('prepaid', 5 * PRICE);
    const statuses = [];
    for (let i = 0; i < 7; i++) statuses.push((await get(key)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 402, 402]);
    await send();
    expect(types(of(receiver.hooks, id))).toEqual(['credits.added', 'balance.low', 'balance.depleted']);
    const low = of(receiver.hooks, id, 'balance.low')[0].json;
    // Fired by the third request: 2,000 left, below 2,500.
    expect(low.data).toEqual({ accountId: id, balanceMicros: 2_000, balance: '0.002', thresholdMicros: LOW, threshold: '0.0025' });
    expect(of(receiver.hooks, id, 'balance.depleted')[0].json.data).toMatchObject({ balanceMicros: 0, requiredMicros: PRICE });

    // A top-up re-arms them: spent down again, each fires once more.
    await grant(id, 5 * PRICE);
    for (let i = 0; i < 7; i++) statuses.push((await get(key)).status);
    expect(statuses.slice(7)).toEqual([200, 200, 200, 200, 200, 402, 402]);
    await send();
    expect(types(of(receiver.hooks, id))).toEqual(['credits.added', 'balance.low', 'balance.depleted', 'credits.added', 'balance.low', 'balance.depleted']);
    expect(await events(id)).toEqual(types(of(receiver.hooks, id)));
  });

  it('every webhook verifies with the standardwebhooks package: webhook-id is the event id; a changed body does not', async () => {
    const { id, key } = await gw.seed('prepaid', 3 * PRICE);
    for (let i = 0; i < 3; i++) await get(key);
    await send();
    const hooks = of(receiver.hooks, id);
    expect(types(hooks)).toEqual(['credits.added', 'balance.low']);
    const wh = new Webhook(SECRET);
    for (const h of hooks) {
      expect(wh.verify(h.body, h.headers as Record<string, string>)).toEqual(h.json);
      expect(h.headers['webhook-id']).toBe(h.json.id);
      expect(h.json.id).toMatch(/^evt_[0-9a-f]{32}$/);
      expect(Date.parse(h.json.timestamp)).toBeGreaterThan(Date.now() - 60_000);
      expect(h.headers['content-type']).toBe('application/json');
      expect(() => wh.verify(h.body.replace(id, 'acct_other'), h.headers as Record<string, string>)).toThrow(/signature/i);
      expect(() => new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(h.body, h.headers as Record<string, string>)).toThrow();
    }
    expect(hooks[0].json.data).toMatchObject({ accountId: id, kind: 'grant', amountMicros: 3 * PRICE, amount: '0.003', balanceMicros: 3 * PRICE });
  });

  it('emails the operator and the account, in plain text that says what to do', async () => {
    const email = `mailme-${Date.now()}-${backend}@example.com`;
    const { id, key } = await gw.seed('prepaid', 3 * PRICE);
    await gw.operations().updateAccount(id, { email });
    for (let i = 0; i < 4; i++) await get(key);
    await send();
    const mails = smtp.mails.filter((m) => m.text.includes(id) || m.to.includes(email));
    const low = mails.filter((m) => m.subject.startsWith('[Tollgate] Balance low'));
    expect(low.map((m) => m.to)).toEqual([[OPS], [email]]);
    const [ops, customer] = low;
    expect(ops.subject).toBe(`[Tollgate] Balance low: $0.002 left on ${id}`);
    expect(ops.text).toContain(`The prepaid balance of account ${id} is $0.002, below the alert threshold of $0.0025.`);
    expect(ops.text).toContain(`tollgate credits grant ${id}`);
    expect(customer.text).toContain('The prepaid balance of your account is $0.002');
    expect(customer.text).not.toContain('tollgate credits grant');
    expect(customer.from).toBe('billing@example.com');
    // One Message-ID per event: a resend is the same message to a mail client.
    const eventId = of(receiver.hooks, id, 'balance.low')[0].json.id;
    expect(ops.messageId).toBe(`<${eventId}@example.com>`);
    expect(mails.filter((m) => m.subject.startsWith('[Tollgate] Out of credits')).map((m) => m.to)).toEqual([[OPS], [email]]);
  });

  it('20 requests at once across the threshold fire balance.low once', async () => {
    const { id, key } = await gw.seed('prepaid', 20 * PRICE + 500);
    const statuses = await Promise.all(Array.from({ length: 20 }, () => get(key).then((r) => r.status)));
    expect(statuses).toEqual(Array(20).fill(200));
    expect(await events(id)).toEqual(['credits.added', 'balance.low']);
    await send();
    expect(of(receiver.hooks, id, 'balance.low')).toHaveLength(1);
    expect(of(receiver.hooks, id, 'balance.low')[0].json.data.balanceMicros).toBeLessThan(LOW);
  });

  it('money taken outside a request (a deduction) fires balance.low from the change feed; a grant re-arms it', async () => {
    const { id, key } = await gw.seed('prepaid', 10 * PRICE);
    expect((await get(key)).status).toBe(200); // in memory, its lease holding the 9,000 left
    await gw.operations().deductCredits(id, { amountMicros: 7 * PRICE, reason: 'refund' });
    await until(async () => (await events(id)).includes('balance.low'), 2_000, 'balance.low from the deduction');
    await grant(id, 5 * PRICE);
    expect((await get(key)).status).toBe(200); // 6,000 left
    for (let i = 0; i < 4; i++) await get(key); // 2,000 left: below again
    expect(await events(id)).toEqual(['credits.added', 'balance.low', 'credits.added', 'balance.low']);
    await send();
    expect(of(receiver.hooks, id, 'balance.low').map((h) => h.json.data.balanceMicros)).toEqual([2 * PRICE, 2 * PRICE]);
  });

  it('an account\'s own threshold, set by the operator, replaces its plan\'s', async () => {
    const { id, key } = await gw.seed('prepaid', 10 * PRICE);
    expect((await get(key)).status).toBe(200); // in memory with the plan's threshold
    await gw.operations().setAlerts(id, { lowBalanceMicros: 8_500 });
    await get(key); // 8,000 left: below the account's own 8,500
    expect(await events(id)).toEqual(['credits.added', 'balance.low']);
    await gw.operations().setAlerts(id, { lowBalanceMicros: 0 });
    for (let i = 0; i < 9; i++) await get(key);
    expect(await events(id)).toEqual(['credits.added', 'balance.low', 'balance.depleted']);
  });
});

describe('quota thresholds and retries, on a fake clock', () => {
  const clock = fakeClock('2026-05-10T12:00:00.000Z');
  let up: Upstream;
  let receiver: Receiver;
  let smtp: Smtp;
  let gw: TestGateway;
  const dbPath = join(tempDir(), 'tollgate.db');
  beforeAll(async () => {
    up = await startUpstream();
    receiver = await startReceiver();
    smtp = await startSmtp();
    gw = await startGateway({ file: config(receiver, smtp, up.url), now: clock.now, dbPath, notify: MANUAL });
  });
  afterAll(async () => {
    await gw.close();
    await up.close();
    await receiver.close();
    await smtp.close();
  });

  const get = (key: string) => fetchText(`${gw.url}/api/x`, { headers: bearer(key) });

  it('80 % and 100 % of the quota fire once each per period, also across a restart', async () => {
    const { account, key } = seedAccount(gw.admin, 'quota');
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await get(key)).status);
    expect(statuses).toEqual([...Array(10).fill(200), 402, 402]);
    await deliver(gw);
    const fired = of(receiver.hooks, account.id, 'quota.threshold').map((h) => h.json.data);
    expect(fired).toEqual([
      { accountId: account.id, plan: 'quota', percent: 80, used: 8, limit: 10, period: '2026-05', periodEnd: '2026-06-01T00:00:00.000Z', overage: 'block' },
      { accountId: account.id, plan: 'quota', percent: 100, used: 10, limit: 10, period: '2026-05', periodEnd: '2026-06-01T00:00:00.000Z', overage: 'block' },
    ]);

    // A restart remembers what fired.
    await gw.close();
    gw = await startGateway({ file: config(receiver, smtp, up.url), now: clock.now, dbPath, notify: MANUAL });
    expect((await get(key)).status).toBe(402);
    expect(rows(gw, account.id)).toEqual(['quota.threshold', 'quota.threshold']);

    // A new period re-arms them.
    clock.set('2026-06-02T08:00:00.000Z');
    for (let i = 0; i < 8; i++) expect((await get(key)).status).toBe(200);
    await deliver(gw);
    expect(of(receiver.hooks, account.id, 'quota.threshold').map((h) => [h.json.data.period, h.json.data.percent])).toEqual([
      ['2026-05', 80], ['2026-05', 100], ['2026-06', 80],
    ]);
  });

  it('a receiver that answers 500 three times, then 200, gets the event once more and then never again', async () => {
    const { account } = seedAccount(gw.admin, 'prepaid');
    let calls = 0;
    receiver.answer = (_n, hook) => (hook.json.data.accountId === account.id && ++calls <= 3 ? 500 : 200);
    gw.admin.grantCredits(account.id, 5 * PRICE, 'test');
    const attempts = () => of(receiver.hooks, account.id);
    const waits: number[] = [];
    await deliver(gw);
    expect(attempts()).toHaveLength(1);
    for (let attempt = 2; attempt <= 4; attempt++) {
      waits.push(webhookOf(gw, account.id).nextAttemptAt! - clock.now());
      // Not before it is due.
      clock.advance(waits[waits.length - 1] - 1);
      await deliver(gw);
      expect(attempts()).toHaveLength(attempt - 1);
      clock.advance(1);
      await deliver(gw);
      expect(attempts()).toHaveLength(attempt);
    }
    // Each wait twice the time the delivery has been failing: 10 s, then 20 s (at 10 s), 60 s (at 30 s).
    expect(waits).toEqual([10_000, 20_000, 60_000]);
    const ids = new Set(attempts().map((h) => h.headers['webhook-id']));
    expect(ids.size).toBe(1);
    expect(receiver.accepted().filter((h) => h.json.data.accountId === account.id)).toHaveLength(1);
    const stamps = attempts().map((h) => Number(h.headers['webhook-timestamp']));
    expect(stamps).toEqual([...stamps].sort((a, b) => a - b));

    // Delivered: never again, however long the clock runs.
    for (let i = 0; i < 3; i++) {
      clock.advance(48 * 3_600_000);
      await deliver(gw);
    }
    expect(attempts()).toHaveLength(4);
    expect(webhookOf(gw, account.id)).toMatchObject({ status: 'delivered', attempts: 4, lastStatus: 200, lastError: null, type: 'credits.added' });
    receiver.answer = () => 200;
  });

  it('a receiver that never takes it is retried for a day, then given up, listed, and can be resent', async () => {
    const { account } = seedAccount(gw.admin, 'prepaid');
    receiver.answer = (_n, hook) => (hook.json.data.accountId === account.id ? 503 : 200);
    gw.admin.grantCredits(account.id, PRICE, 'test');
    const start = clock.now();
    await deliver(gw);
    const webhook = () => webhookOf(gw, account.id);
    while (webhook().status === 'pending') {
      clock.set(webhook().nextAttemptAt!);
      await deliver(gw);
    }
    const attempts = of(receiver.hooks, account.id);
    expect(webhook()).toMatchObject({ status: 'failed', lastStatus: 503, lastError: 'HTTP 503', nextAttemptAt: null });
    // The last attempt came a day or more after the first failure, the waits growing to at most 6 h.
    expect(clock.now() - start).toBeGreaterThanOrEqual(24 * 3_600_000);
    expect(clock.now() - start).toBeLessThan(31 * 3_600_000);
    expect(attempts.length).toBeGreaterThanOrEqual(10);
    expect(attempts.length).toBeLessThanOrEqual(14);
    expect(deliveries(gw, account.id, true).map((d) => d.id)).toEqual([webhook().id]);

    // Resent by hand: once the receiver is back, it is delivered, with the same id.
    receiver.answer = () => 200;
    gw.storage.outbox.resend(webhook().id, clock.now());
    await deliver(gw);
    expect(webhook()).toMatchObject({ status: 'delivered', lastStatus: 200 });
    expect(new Set(of(receiver.hooks, account.id).map((h) => h.json.id)).size).toBe(1);
    expect(receiver.accepted().filter((h) => h.json.data.accountId === account.id)).toHaveLength(1);
  });

  it('key.expiring seven days before a key expires, once per expiry', async () => {
    const { account } = seedAccount(gw.admin, 'prepaid');
    const expiresAt = clock.now() + 3 * 86_400_000;
    const soon = gw.admin.createKey({ accountId: account.id, name: 'ci', expiresAt });
    gw.admin.createKey({ accountId: account.id, expiresAt: clock.now() + 30 * 86_400_000 }); // not yet
    clock.advance(11 * 60_000); // keys are looked for every 10 minutes
    await deliver(gw);
    clock.advance(11 * 60_000);
    await deliver(gw);
    const told = of(receiver.hooks, account.id, 'key.expiring');
    expect(told.map((h) => h.json.data)).toEqual([{
      accountId: account.id, keyId: soon.id, keyName: 'ci', keyPrefix: soon.prefix, expiresAt: new Date(expiresAt).toISOString(),
    }]);
    // A new expiry is a new crossing.
    gw.db.prepare('UPDATE api_keys SET expires_at = ? WHERE id = ?').run(expiresAt + 86_400_000, soon.id);
    clock.advance(11 * 60_000);
    await deliver(gw);
    expect(of(receiver.hooks, account.id, 'key.expiring')).toHaveLength(2);
  });
});

describe('alert state across restarts', () => {
  it('a top-up while no gateway runs (the CLI) re-arms balance.low and balance.depleted', async () => {
    const up = await startUpstream();
    const receiver = await startReceiver();
    const smtp = await startSmtp();
    const file = config(receiver, smtp, up.url);
    let gw = await startGateway({ file, notify: MANUAL });
    const { dbPath } = gw;
    const get = (key: string) => fetchText(`${gw.url}/api/x`, { headers: bearer(key) }).then((r) => r.status);
    try {
      const { account, key } = seedAccount(gw.admin, 'prepaid');
      gw.admin.grantCredits(account.id, 3 * PRICE, 'test');
      for (let i = 0; i < 4; i++) await get(key);
      expect(rows(gw, account.id)).toEqual(['credits.added', 'balance.low', 'balance.depleted']);
      await gw.close();

      const cli = openAdmin(dbPath);
      cli.admin.grantCredits(account.id, 3 * PRICE, 'top-up');
      cli.close();

      gw = await startGateway({ file, dbPath, notify: MANUAL });
      expect(await Promise.all([get(key), get(key), get(key), get(key)])).toEqual([200, 200, 200, 402]);
      expect(rows(gw, account.id)).toEqual(['credits.added', 'balance.low', 'balance.depleted', 'credits.added', 'balance.low', 'balance.depleted']);
    } finally {
      await gw.close();
      await up.close();
      await receiver.close();
      await smtp.close();
    }
  });
});
