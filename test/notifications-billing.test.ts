// Stripe's events as notifications: a paid checkout is credits.added, a failed invoice
// payment.failed (once while the account stays suspended for it), a subscription's new plan or
// status subscription.changed, each written in the transaction of the event's effect. Emails to
// the customer say how to pay. The CLI lists, resends and sets an account's own threshold.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryDoc, Page } from '../src/admin/shapes.ts';
import { parsed, runCli } from './cli-run.ts';
import { billingEnv, billingFile, fixture, paidCheckout, postWebhook, startFakeStripe, stripeEvent, type FakeStripe } from './fake-stripe.ts';
import { bearer, fetchText, seedAccount, startGateway, startUpstream, type TestGateway, type Upstream } from './helpers.ts';
import { deliver, startReceiver, startSmtp, type Hook, type Receiver, type Smtp } from './notify-receivers.ts';
import { until } from './until.ts';

type Obj = Record<string, unknown>;
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

let stripe: FakeStripe;
let up: Upstream;
let receiver: Receiver;
let smtp: Smtp;
let gw: TestGateway;

beforeAll(async () => {
  stripe = await startFakeStripe();
  up = await startUpstream();
  receiver = await startReceiver();
  smtp = await startSmtp();
  const file = billingFile(up.url) as { plans: Record<string, Obj> };
  file.plans.free.alerts = { lowBalanceMicros: 5_000_000 };
  gw = await startGateway({
    env: billingEnv(stripe),
    file: { ...file, notifications: { webhooks: [{ url: receiver.url, secret: SECRET }], email: { smtp: smtp.url, from: 'billing@example.com', customers: true }, publicUrl: 'https://api.example.com/' } },
    notify: { pollMs: 3_600_000 },
  });
});

afterAll(async () => {
  await gw.close();
  await up.close();
  await receiver.close();
  await smtp.close();
  await stripe.close();
});

const of = (accountId: string, type: string): Hook[] => receiver.hooks.filter((h) => h.json.data.accountId === accountId && h.json.type === type);
const send = (type: string, object: Obj) => postWebhook(gw.url, stripeEvent(type, object));

function customer(plan = 'free') {
  const seeded = seedAccount(gw.admin, plan, `cust-${randomBytes(4).toString('hex')}@example.com`);
  const cus = `cus_${randomBytes(6).toString('hex')}`;
  gw.billingStore.linkCustomer(seeded.account.id, cus);
  return { ...seeded, id: seeded.account.id, customer: cus };
}

function failedInvoice(c: { customer: string }, id: string): Obj {
  return { ...fixture<{ object: Obj }>('pay.invoice.payment_failed.data.json').object, id, customer: c.customer, status: 'open', paid: false };
}

describe('Stripe-caused notifications', () => {
  it('a paid checkout adds credits: credits.added with the purchase, and the customer is told the balance', async () => {
    const c = customer();
    const session = await paidCheckout(stripe, gw.url, c.key, { cents: 2500, paymentIntent: `pi_${randomBytes(6).toString('hex')}` });
    expect((await send('checkout.session.completed', session)).body.outcome).toBe('applied');
    await deliver(gw);
    expect(of(c.id, 'credits.added').map((h) => h.json.data)).toEqual([{
      accountId: c.id, kind: 'purchase', reference: session.id, amountMicros: 25_000_000, amount: '25.00', balanceMicros: 25_000_000, balance: '25.00',
    }]);
    const mail = smtp.mails.find((m) => m.to.includes(c.account.email) && m.subject.includes('Credits added'))!;
    expect(mail.text).toContain('$25.00 bought with Stripe Checkout were added to your account; the balance is now $25.00.');
  });

  it('a failed invoice payment suspends the account: payment.failed once, its email says how to pay', async () => {
    const c = customer();
    expect((await send('invoice.payment_failed', failedInvoice(c, `in_${randomBytes(6).toString('hex')}`))).body.outcome).toBe('applied');
    // Stripe's next failed attempt, on the account still suspended for it: nothing new.
    expect((await send('invoice.payment_failed', failedInvoice(c, `in_${randomBytes(6).toString('hex')}`))).body.outcome).toBe('applied');
    await deliver(gw);
    const failed = of(c.id, 'payment.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].json.data).toMatchObject({ accountId: c.id, amountDueMicros: 249_000_000, amountDue: '249.00', attemptCount: 1, suspended: true, hostedInvoiceUrl: 'https://invoice.stripe.com/' });
    const mail = smtp.mails.find((m) => m.to.includes(c.account.email) && m.subject.includes('Payment failed'))!;
    expect(mail.subject).toBe('[Tollgate] Payment failed: the account is suspended');
    expect(mail.text).toContain('GET https://api.example.com/_tollgate/billing/portal with your API key returns its link');
    expect(mail.text).toContain('Or pay the invoice: https://invoice.stripe.com/');
  });

  it('a subscription that changes the plan: subscription.changed with both plans', async () => {
    const c = customer();
    const sub = fixture('openapi-fixtures3.subscription.json');
    const item = (sub.items as { data: Obj[] }).data[0];
    const now = Math.floor(Date.now() / 1000);
    Object.assign(item, { current_period_start: now - 86_400, current_period_end: now + 29 * 86_400 });
    (item.price as Obj).id = 'price_pro';
    const object = { ...sub, id: `sub_${randomBytes(6).toString('hex')}`, customer: c.customer, status: 'active', metadata: { account_id: c.id } };
    expect((await send('customer.subscription.created', object)).body.outcome).toBe('applied');
    await deliver(gw);
    expect(of(c.id, 'subscription.changed').map((h) => h.json.data)).toEqual([{
      accountId: c.id, subscriptionId: object.id, status: 'active', previousStatus: null, plan: 'pro', previousPlan: 'free',
      periodEnd: new Date((now + 29 * 86_400) * 1000).toISOString(),
    }]);
  });

  it('balance.low to a customer of a Stripe gateway says how to buy credits with Checkout', async () => {
    const c = customer();
    gw.admin.grantCredits(c.id, 5_000_000, 'test'); // at the threshold: armed
    // Five requests inside the plan's quota, the sixth paid from credits.
    for (let i = 0; i < 6; i++) expect((await fetchText(`${gw.url}/api/x`, { headers: bearer(c.key) })).status).toBe(200);
    await deliver(gw);
    expect(of(c.id, 'balance.low')).toHaveLength(1);
    const mail = smtp.mails.find((m) => m.to.includes(c.account.email) && m.subject.includes('Balance low'))!;
    expect(mail.text).toContain('Buy credits with Stripe Checkout: POST https://api.example.com/_tollgate/billing/checkout with your API key');
    expect(mail.text).toContain('{"type":"credits","amount":"10.00"}');
    expect(mail.text).toContain('Amounts: 10.00, 25.00, 50.00.');
  });
});

describe('tollgate notifications', () => {
  const cli = (...args: string[]) => runCli([...args, '--db', gw.dbPath, '--json']);

  it('list [--failed], resend, and set-alerts from another process, heard by the gateway', async () => {
    const c = customer();
    receiver.answer = (_n, h) => (h.json.data.accountId === c.id ? 500 : 200);
    gw.admin.grantCredits(c.id, 20_000_000, 'test');
    await deliver(gw);
    const all = parsed<Page<DeliveryDoc>>(await cli('notifications', 'list', '--account', c.id)).data;
    expect(all.map((d) => [d.type, d.channel, d.status, d.attempts])).toEqual([
      ['credits.added', 'email', 'delivered', 1],
      ['credits.added', 'webhook', 'pending', 1],
    ]);
    const hook = all.find((d) => d.channel === 'webhook')!;
    expect(hook).toMatchObject({ target: receiver.url, lastStatus: 500, lastError: 'HTTP 500', accountId: c.id });
    expect(hook.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(parsed<Page<DeliveryDoc>>(await cli('notifications', 'list', '--failed', '--account', c.id))).toEqual({ data: [], next: null });

    // Given up by hand: resend puts it back with a fresh day; the receiver takes it.
    gw.db.prepare(`UPDATE notification_deliveries SET status = 'failed', next_attempt_at = NULL WHERE id = ?`).run(hook.id);
    expect(parsed<Page<DeliveryDoc>>(await cli('notifications', 'list', '--failed', '--account', c.id)).data.map((d) => d.id)).toEqual([hook.id]);
    receiver.answer = () => 200;
    expect(parsed<{ status: string }>(await cli('notifications', 'resend', String(hook.id))).status).toBe('pending');
    await deliver(gw);
    expect(of(c.id, 'credits.added').map((h) => h.json.id)).toEqual([hook.eventId, hook.eventId]);
    expect(parsed<Page<DeliveryDoc>>(await cli('notifications', 'list', '--account', c.id)).data.map((d) => d.status)).toEqual(['delivered', 'delivered']);

    // The account's own threshold, from the CLI: the gateway hears it and the next request crosses it.
    expect(parsed(await cli('notifications', 'set-alerts', c.id, '--low-balance', '19.9995'))).toEqual({ id: c.id, lowBalanceMicros: 19_999_500, lowBalance: '19.9995' });
    const get = () => fetchText(`${gw.url}/api/x`, { headers: bearer(c.key) }).then((r) => r.status);
    // In memory with the plan's threshold ($5) first; the change arrives within 200 ms.
    expect(await get()).toBe(200);
    await until(async () => {
      await get();
      gw.flush();
      return (gw.db.prepare(`SELECT count(*) FROM notifications WHERE account_id = ? AND type = 'balance.low'`).pluck().get(c.id) as number) === 1;
    }, 5_000, 'balance.low under the account\'s own threshold');
    expect(parsed(await cli('notifications', 'set-alerts', c.id, '--low-balance', 'plan'))).toMatchObject({ lowBalanceMicros: null });
    const r = await runCli(['notifications', 'set-alerts', c.id, '--low-balance', '-1', '--db', gw.dbPath]);
    expect(r.status).toBe(2);
  });

  it('secret prints a new signing secret the config accepts', async () => {
    const { secret } = parsed<{ secret: string }>(await runCli(['notifications', 'secret', '--json']));
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(secret).not.toBe(parsed<{ secret: string }>(await runCli(['notifications', 'secret', '--json'])).secret);
  });
});
