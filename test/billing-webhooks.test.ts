// POST /_tollgate/webhooks/stripe end to end: signed events built from the real Stripe payloads in
// test/fixtures/stripe, each effect checked on the account, the ledger and the requests
// the account can then make; exactly-once, out of order, API versions, and every refusal.
// The whole file runs twice: on the SQLite file, and on PostgreSQL (test/backend-gateway.ts).
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { receiveStripeWebhook } from '../src/billing/webhooks.ts';
import { createLogger } from '../src/log.ts';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { bearer, fakeClock, fetchText, startUpstream, type Upstream } from './helpers.ts';
import {
  billingEnv, billingFile, fixture, fixtureText, OLD_WEBHOOK_SECRET, paidCheckout, postWebhook, signature,
  startFakeStripe, stripeEvent, WEBHOOK_SECRET, type FakeStripe,
} from './fake-stripe.ts';

type Obj = Record<string, unknown>;
const HOUR = 3_600_000;
const T0 = Date.parse('2026-11-10T00:00:00Z');
const s = (ms: number) => Math.floor(ms / 1000);

let stripe: FakeStripe;
let upstream: Upstream;
/** The gateway of the backend whose tests run now (each runs the whole file). */
let gw: BackendGateway;
const clock = fakeClock(T0);

beforeAll(async () => {
  stripe = await startFakeStripe();
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream.close();
  await stripe.close();
});

let seq = 0;
const uid = (prefix: string) => `${prefix}_t${Date.now().toString(36)}${++seq}`;

/** An account with a key, linked to a Stripe customer (as its first checkout would have). */
async function customerAccount(plan = 'free', customer = uid('cus'), g = gw) {
  const seeded = await g.seed(plan);
  await g.billing.linkCustomer(seeded.id, customer);
  return { ...seeded, customer };
}

const account = async (id: string, g = gw) => (await g.billing.account(id))!;
/** The account's ledger as [kind, micros, reference], without the leases' moves. */
const ledger = async (id: string) => (await gw.ledger(id)).filter((e) => !e.kind.startsWith('lease')).map((e) => [e.kind, e.amountMicros, e.reference]);
const recorded = (id: string) => gw.recorded(id);
const request = (key: string, path = '/api/x') => fetchText(`${gw.url}${path}`, { headers: bearer(key) });

async function balanced(id: string): Promise<void> {
  const { balance, ledgerSum } = await gw.books(id);
  expect(balance).toBe(ledgerSum);
  expect(balance).toBeGreaterThanOrEqual(0);
}

// ---- Stripe objects, from the fixtures' shapes --------------------------------------------

/** A credits checkout the gateway created (and recorded), as Stripe sends it once paid. */
const checkout = (a: { key: string }, o: { cents?: number; paid?: boolean; pi?: string } = {}, g = gw) =>
  paidCheckout(stripe, g.url, a.key, { cents: o.cents, paid: o.paid, paymentIntent: o.pi ?? uid('pi') });

/** A paid payment-mode session of the customer that the gateway did not create (a Payment Link). */
function foreignSession(a: { customer: string }, cents: number): Obj {
  return {
    ...fixture('openapi-fixtures3.checkout.session.json'),
    id: uid('cs_live'), mode: 'payment', status: 'complete', payment_status: 'paid', amount_total: cents, amount_subtotal: cents,
    currency: 'usd', customer: a.customer, client_reference_id: null, metadata: {}, payment_link: uid('plink'), payment_intent: uid('pi'),
  };
}

function subscription(a: { id: string; customer: string }, o: { id?: string; status: string; price: string; start?: number; end?: number }): Obj {
  const sub = fixture('openapi-fixtures3.subscription.json');
  const item = (sub.items as { data: Obj[] }).data[0];
  // The generator's placeholder period runs backwards (see the README): use a real one.
  Object.assign(item, { current_period_start: s(o.start ?? T0 - 5 * 86_400_000), current_period_end: s(o.end ?? T0 + 25 * 86_400_000) });
  (item.price as Obj).id = o.price;
  // One subscription per account unless told: a deletion is final for its id.
  return { ...sub, id: o.id ?? `sub_of_${a.id}`, customer: a.customer, status: o.status, metadata: { account_id: a.id } };
}

/** A basil invoice (pay.invoice.payment_failed's shape) for the account's subscription. */
function invoice(a: { customer: string }, o: { id?: string; status: 'paid' | 'open'; sub?: string; start?: number; end?: number }): Obj {
  const inv = fixture<{ object: Obj }>('pay.invoice.payment_failed.data.json').object;
  const subscriptionId = o.sub ?? 'sub_1234';
  (inv.parent as { subscription_details: Obj }).subscription_details.subscription = subscriptionId;
  const line = (inv.lines as { data: Obj[] }).data[0];
  if (o.start !== undefined) line.period = { start: s(o.start), end: s(o.end!) };
  return { ...inv, id: o.id ?? uid('in'), customer: a.customer, status: o.status, paid: o.status === 'paid' };
}

function charge(o: { pi: string; cents: number; refunded: number }): Obj {
  return { ...fixture('openapi-fixtures3.charge.json'), id: `ch_of_${o.pi}`, payment_intent: o.pi, amount: o.cents, amount_captured: o.cents, amount_refunded: o.refunded, refunded: o.refunded === o.cents };
}

function dispute(o: { id: string; pi: string; cents: number; status: string }): Obj {
  return { ...fixture('openapi-fixtures3.dispute.json'), id: o.id, payment_intent: o.pi, charge: `ch_of_${o.pi}`, amount: o.cents, status: o.status };
}

const BASIL = { apiVersion: '2025-03-31.basil' };

async function send(type: string, object: Obj, init: Parameters<typeof stripeEvent>[2] = {}) {
  const event = stripeEvent(type, object, { created: s(clock.now()), ...init });
  const res = await postWebhook(gw.url, event);
  return { ...res, eventId: event.id as string };
}

async function buy(a: { key: string }, cents = 2500, pi = uid('pi')) {
  const sess = await checkout(a, { cents, pi });
  const res = await send('checkout.session.completed', sess);
  expect(res.status).toBe(200);
  expect(res.body.outcome).toBe('applied');
  return { session: sess, pi };
}

describe.each(BACKENDS)('on $backend', ({ backend }) => {
  beforeAll(async () => {
    gw = await startBackendGateway(backend, { env: billingEnv(stripe), file: billingFile(upstream.url), now: clock.now });
  }, 30_000);
  afterAll(() => gw?.close());

  // ---- Signatures and bodies ----------------------------------------------------------------

  describe('refused before anything happens', () => {
    const eventsCount = () => gw.eventsCount();

    async function refused(payload: string | Buffer, opts: Parameters<typeof postWebhook>[2], detail: RegExp) {
      const a = await customerAccount();
      const before = await eventsCount();
      const res = await postWebhook(gw.url, payload, opts);
      expect(res.status).toBe(400);
      expect(res.contentType).toBe('application/problem+json');
      expect(res.body.status).toBe(400);
      expect(String(res.body.detail)).toMatch(detail);
      expect(await eventsCount()).toBe(before);
      expect((await account(a.id)).balanceMicros).toBe(0);
      return a;
    }

    const paidEvent = async () => {
      const a = await customerAccount();
      return { a, text: JSON.stringify(stripeEvent('checkout.session.completed', await checkout(a))) };
    };

    it('a bad signature (body changed after signing) → 400 and no credits', async () => {
      const { a, text } = await paidEvent();
      const header = signature(text);
      await refused(text.replace('"amount_total":2500', '"amount_total":9900'), { header }, /Stripe-Signature/);
      expect((await account(a.id)).balanceMicros).toBe(0);
    });

    it('signed with a secret that is not configured → 400', async () => {
      const { text } = await paidEvent();
      await refused(text, { secret: 'whsec_someone_else' }, /Stripe-Signature/);
    });

    it('a timestamp older than the 300 s tolerance → 400; one just inside it is accepted', async () => {
      const { a, text } = await paidEvent();
      await refused(text, { timestamp: s(Date.now()) - 301 }, /tolerance/);
      const ok = await postWebhook(gw.url, text, { timestamp: s(Date.now()) - 280 });
      expect(ok.status).toBe(200);
      expect((await account(a.id)).balanceMicros).toBe(25_000_000);
    });

    it('no Stripe-Signature header, or a malformed one → 400', async () => {
      const { text } = await paidEvent();
      await refused(text, { header: null }, /Missing Stripe-Signature/);
      await refused(text, { header: 'not a signature' }, /Stripe-Signature/);
      await refused(text, { header: `t=${s(Date.now())},v1=${'0'.repeat(64)}` }, /Stripe-Signature/);
    });

    it('a body over 1 MiB → 400, even correctly signed', async () => {
      const a = await customerAccount();
      const sess = await checkout(a);
      sess.metadata = { account_id: a.id, padding: 'x'.repeat(1024 * 1024) };
      const text = JSON.stringify(stripeEvent('checkout.session.completed', sess));
      expect(Buffer.byteLength(text)).toBeGreaterThan(1024 * 1024);
      const before = await eventsCount();
      const res = await postWebhook(gw.url, text);
      expect(res.status).toBe(400);
      expect(String(res.body.detail)).toMatch(/1048576 bytes/);
      expect(await eventsCount()).toBe(before);
      expect((await account(a.id)).balanceMicros).toBe(0);
    });

    it('invalid JSON with a valid signature → 400; valid JSON that is no event → 400', async () => {
      await refused('{"id":"evt_1","type":', {}, /not valid JSON/);
      await refused('{"id":"evt_2","type":"checkout.session.completed"}', {}, /not a Stripe event/);
      await refused('[]', {}, /not a Stripe event/);
    });

    it('secret rotation: with two secrets configured, a payload signed with either is accepted', async () => {
      for (const secret of [WEBHOOK_SECRET, OLD_WEBHOOK_SECRET]) {
        const a = await customerAccount();
        const res = await postWebhook(gw.url, stripeEvent('checkout.session.completed', await checkout(a)), { secret });
        expect(res.status).toBe(200);
        expect((await account(a.id)).balanceMicros).toBe(25_000_000);
      }
    });
  });

  // ---- Credits ------------------------------------------------------------------------------

  describe('checkout events credit the account', () => {
    it('checkout.session.completed, payment mode, paid → credits with a ledger row referencing the session', async () => {
      const a = await customerAccount();
      const { session: sess } = await buy(a, 2500);
      expect((await account(a.id)).balanceMicros).toBe(25_000_000);
      expect(await ledger(a.id)).toEqual([['purchase', 25_000_000, sess.id]]);
      await balanced(a.id);
    });

    it('unpaid waits (recorded as ignored); async_payment_succeeded credits it once', async () => {
      const a = await customerAccount();
      const sess = await checkout(a, { paid: false, cents: 1000 });
      const first = await send('checkout.session.completed', sess);
      expect(first.status).toBe(200);
      expect(first.body.outcome).toBe('ignored');
      expect((await recorded(first.eventId))?.note).toMatch(/async_payment_succeeded/);
      expect((await account(a.id)).balanceMicros).toBe(0);

      const settled = { ...sess, payment_status: 'paid', status: 'complete' };
      const second = await send('checkout.session.async_payment_succeeded', settled);
      expect(second.body.outcome).toBe('applied');
      expect((await account(a.id)).balanceMicros).toBe(10_000_000);
      // Another event for the same session (a different event id) grants nothing more.
      const third = await send('checkout.session.async_payment_succeeded', settled);
      expect(third.status).toBe(200);
      expect(third.body.outcome).toBe('ignored');
      expect((await account(a.id)).balanceMicros).toBe(10_000_000);
      expect(await ledger(a.id)).toEqual([['purchase', 10_000_000, sess.id]]);
      await balanced(a.id);
    });

    it('the same signed event sent 10 times at once → all 200, credited once', async () => {
      const a = await customerAccount();
      const text = JSON.stringify(stripeEvent('checkout.session.completed', await checkout(a, { cents: 5000 }), { created: s(clock.now()) }));
      const header = signature(text);
      const replies = await Promise.all(Array.from({ length: 10 }, () => postWebhook(gw.url, text, { header })));
      expect(replies.map((r) => r.status)).toEqual(Array(10).fill(200));
      expect(replies.filter((r) => r.body.outcome === 'applied')).toHaveLength(1);
      expect(replies.filter((r) => r.body.outcome === 'duplicate')).toHaveLength(9);
      expect((await account(a.id)).balanceMicros).toBe(50_000_000);
      expect(await ledger(a.id)).toHaveLength(1);
      await balanced(a.id);
    });

    it('a session in another currency is recorded as ignored with a note, and credits nothing', async () => {
      const a = await customerAccount();
      const res = await send('checkout.session.completed', { ...(await checkout(a)), currency: 'eur' });
      expect(res.body.outcome).toBe('ignored');
      expect((await recorded(res.eventId))?.note).toMatch(/usd.*eur/);
      expect((await account(a.id)).balanceMicros).toBe(0);
    });
  });

  describe('only sessions the gateway created for credits buy credits', () => {
    it('a paid Checkout of a linked customer that the gateway did not create (a $499 Payment Link) credits nothing, with a note', async () => {
      const a = await customerAccount();
      const res = await send('checkout.session.completed', foreignSession(a, 49_900));
      expect(res.status).toBe(200);
      expect(res.body.outcome).toBe('ignored');
      expect((await recorded(res.eventId))?.note).toMatch(/not created by this gateway/);
      expect((await account(a.id)).balanceMicros).toBe(0);
      expect(await ledger(a.id)).toEqual([]);
    });

    it('metadata and client_reference_id naming the account are not proof: a session without the gateway\'s record credits nothing', async () => {
      const a = await customerAccount();
      const forged = { ...foreignSession(a, 2500), client_reference_id: a.id, metadata: { account_id: a.id, kind: 'credits', amount_micros: '25000000' } };
      const res = await send('checkout.session.completed', forged);
      expect(res.body.outcome).toBe('ignored');
      expect((await account(a.id)).balanceMicros).toBe(0);
    });

    it('a recorded session credits the account it was created for, whatever account its metadata names', async () => {
      const a = await customerAccount();
      const b = await customerAccount();
      const sess = await checkout(a, { cents: 1000 });
      const res = await send('checkout.session.completed', { ...sess, client_reference_id: b.id, metadata: { account_id: b.id }, customer: b.customer });
      expect(res.body.outcome).toBe('applied');
      expect((await account(a.id)).balanceMicros).toBe(10_000_000);
      expect((await account(b.id)).balanceMicros).toBe(0);
    });

    it('a recorded session paid for another amount than the gateway set is refused with a note', async () => {
      const a = await customerAccount();
      const sess = await checkout(a, { cents: 2500 });
      for (const cents of [2600, 2400]) {
        const res = await send('checkout.session.completed', { ...sess, amount_total: cents });
        expect(res.body.outcome).toBe('ignored');
        expect((await recorded(res.eventId))?.note).toMatch(new RegExp(`created for 25\\.00 usd.*${cents} usd`));
      }
      expect((await account(a.id)).balanceMicros).toBe(0);
      // The session as Stripe really sends it is still credited, once.
      expect((await send('checkout.session.completed', sess)).body.outcome).toBe('applied');
      expect(await ledger(a.id)).toEqual([['purchase', 25_000_000, sess.id]]);
    });
  });

  // ---- Refunds and disputes -----------------------------------------------------------------

  describe('refunds', () => {
    it('charge.refunded debits the refunded part; a second partial refund debits only the new part', async () => {
      const a = await customerAccount();
      const { pi } = await buy(a, 2500);
      const r1 = await send('charge.refunded', charge({ pi, cents: 2500, refunded: 1000 }));
      expect(r1.body.outcome).toBe('applied');
      expect((await account(a.id)).balanceMicros).toBe(15_000_000);
      const r2 = await send('charge.refunded', charge({ pi, cents: 2500, refunded: 1500 }));
      expect(r2.body.outcome).toBe('applied');
      expect((await account(a.id)).balanceMicros).toBe(10_000_000);
      // A late copy of the first refund's state (a new event id) takes nothing more.
      const late = await send('charge.refunded', charge({ pi, cents: 2500, refunded: 1000 }));
      expect(late.body.outcome).toBe('ignored');
      expect((await account(a.id)).balanceMicros).toBe(10_000_000);
      expect((await ledger(a.id)).map(([kind, amount]) => [kind, amount])).toEqual([['purchase', 25_000_000], ['refund', -10_000_000], ['refund', -5_000_000]]);
      await balanced(a.id);
    });

    it('a refund larger than the balance leaves 0, never negative; the shortfall is a debt the next top-up pays first', async () => {
      const a = await customerAccount();
      const { pi } = await buy(a, 2500);
      expect(await gw.debit(a.id, 20_000_000, 'request', 'spent-on-requests')).toBe(true);
      const res = await send('charge.refunded', charge({ pi, cents: 2500, refunded: 2500 }));
      expect(res.body.outcome).toBe('applied');
      expect(await account(a.id)).toMatchObject({ balanceMicros: 0, debtMicros: 20_000_000 });
      await balanced(a.id);

      const topUp = await buy(a, 5000);
      expect(await account(a.id)).toMatchObject({ balanceMicros: 30_000_000, debtMicros: 0 });
      expect(await ledger(a.id)).toEqual([
        ['purchase', 25_000_000, expect.any(String)],
        ['request', -20_000_000, 'spent-on-requests'],
        ['refund', -5_000_000, `ch_of_${pi}`],
        ['purchase', 50_000_000, topUp.session.id],
        ['debt_repayment', -20_000_000, topUp.session.id],
      ]);
      await balanced(a.id);
    });

    it('a refund of a charge that bought no credits is recorded as ignored', async () => {
      const res = await send('charge.refunded', charge({ pi: uid('pi'), cents: 900, refunded: 900 }));
      expect(res.status).toBe(200);
      expect(res.body.outcome).toBe('ignored');
      expect((await recorded(res.eventId))?.note).toMatch(/no credit purchase/);
    });
  });

  describe('disputes', () => {
    it('charge.dispute.created freezes the disputed credits and suspends; closed as won gives them back and lifts the suspension', async () => {
      const a = await customerAccount();
      const { pi } = await buy(a, 2500);
      expect((await request(a.key)).status).toBe(200);
      const id = uid('dp');
      const opened = await send('charge.dispute.created', dispute({ id, pi, cents: 1000, status: 'needs_response' }));
      expect(opened.body.outcome).toBe('applied');
      expect(await account(a.id)).toMatchObject({ status: 'suspended', statusReason: 'dispute' });
      expect((await account(a.id)).balanceMicros).toBe(15_000_000); // the request above was inside the free quota
      const refused = await request(a.key);
      expect(refused.status).toBe(402);
      expect(JSON.parse(refused.body).detail).toMatch(/disputed/);

      const closed = await send('charge.dispute.closed', dispute({ id, pi, cents: 1000, status: 'won' }));
      expect(closed.body.outcome).toBe('applied');
      expect(await account(a.id)).toMatchObject({ status: 'active', statusReason: null, balanceMicros: 25_000_000 });
      expect((await request(a.key)).status).toBe(200);
      expect((await ledger(a.id)).map(([kind, amount]) => [kind, amount])).toEqual([
        ['purchase', 25_000_000], ['dispute_hold', -10_000_000], ['dispute_release', 10_000_000],
      ]);
      await balanced(a.id);
    });

    it('closed as lost: the credits stay debited and the suspension is lifted', async () => {
      const a = await customerAccount();
      const { pi } = await buy(a, 2500);
      const id = uid('dp');
      await send('charge.dispute.created', dispute({ id, pi, cents: 2500, status: 'needs_response' }));
      expect(await account(a.id)).toMatchObject({ status: 'suspended', balanceMicros: 0 });
      await send('charge.dispute.closed', dispute({ id, pi, cents: 2500, status: 'lost' }));
      expect(await account(a.id)).toMatchObject({ status: 'active', balanceMicros: 0 });
      expect((await request(a.key)).status).toBe(200);
      expect((await ledger(a.id)).map(([kind, amount]) => [kind, amount])).toEqual([['purchase', 25_000_000], ['dispute_hold', -25_000_000]]);
      await balanced(a.id);
    });

    it('an inquiry closed with a warning takes nothing: the frozen credits come back', async () => {
      const a = await customerAccount();
      const { pi } = await buy(a, 2500);
      const id = uid('dp');
      await send('charge.dispute.created', dispute({ id, pi, cents: 1000, status: 'warning_needs_response' }));
      expect(await account(a.id)).toMatchObject({ status: 'suspended', balanceMicros: 15_000_000 });
      const closed = await send('charge.dispute.closed', dispute({ id, pi, cents: 1000, status: 'warning_closed' }));
      expect(closed.body.outcome).toBe('applied');
      expect(await account(a.id)).toMatchObject({ status: 'active', balanceMicros: 25_000_000, debtMicros: 0 });
      // Closing it again changes nothing.
      const again = await send('charge.dispute.closed', dispute({ id, pi, cents: 1000, status: 'warning_closed' }));
      expect(again.body.outcome).toBe('ignored');
      await balanced(a.id);
    });

    it('lost on credits partly spent: what could not be frozen becomes debt the next top-up pays', async () => {
      const a = await customerAccount();
      const { pi } = await buy(a, 2500);
      await gw.debit(a.id, 20_000_000, 'request', 'spent before the dispute');
      const id = uid('dp');
      await send('charge.dispute.created', dispute({ id, pi, cents: 2500, status: 'needs_response' }));
      expect(await account(a.id)).toMatchObject({ balanceMicros: 0, debtMicros: 0 });
      await send('charge.dispute.closed', dispute({ id, pi, cents: 2500, status: 'lost' }));
      expect(await account(a.id)).toMatchObject({ status: 'active', balanceMicros: 0, debtMicros: 20_000_000 });
      await buy(a, 5000);
      expect(await account(a.id)).toMatchObject({ balanceMicros: 30_000_000, debtMicros: 0 });
      expect((await ledger(a.id)).map(([kind, amount]) => [kind, amount])).toEqual([
        ['purchase', 25_000_000], ['request', -20_000_000], ['dispute_hold', -5_000_000],
        ['purchase', 50_000_000], ['debt_repayment', -20_000_000],
      ]);
      await balanced(a.id);
    });
  });

  // ---- Subscriptions ------------------------------------------------------------------------

  describe('subscriptions', () => {
    it('created active → the plan follows the price, with the subscription and its period; trialing grants it too', async () => {
      const a = await customerAccount();
      const res = await send('customer.subscription.created', subscription(a, { id: 'sub_a1', status: 'active', price: 'price_pro' }));
      expect(res.body.outcome).toBe('applied');
      expect(await account(a.id)).toMatchObject({ plan: 'pro', subscriptionId: 'sub_a1', subscriptionStatus: 'active', periodStart: T0 - 5 * 86_400_000, periodEnd: T0 + 25 * 86_400_000 });

      const b = await customerAccount();
      await send('customer.subscription.created', subscription(b, { id: 'sub_b1', status: 'trialing', price: 'price_team' }));
      expect(await account(b.id)).toMatchObject({ plan: 'team', subscriptionStatus: 'trialing' });
    });

    it('a price that is no plan\'s stripePrice is recorded as ignored, and the plan is unchanged', async () => {
      const a = await customerAccount('pro');
      const res = await send('customer.subscription.created', subscription(a, { status: 'active', price: 'price_unknown' }));
      expect(res.body.outcome).toBe('ignored');
      expect((await recorded(res.eventId))?.note).toMatch(/price_unknown/);
      expect((await account(a.id)).plan).toBe('pro');
    });

    for (const status of ['unpaid', 'incomplete_expired', 'canceled', 'paused']) {
      it(`updated to ${status} → the default plan`, async () => {
        const a = await customerAccount();
        await send('customer.subscription.created', subscription(a, { status: 'active', price: 'price_pro' }));
        expect((await account(a.id)).plan).toBe('pro');
        await send('customer.subscription.updated', subscription(a, { status, price: 'price_pro' }), { created: s(clock.now()) + 60 });
        expect(await account(a.id)).toMatchObject({ plan: 'free', subscriptionId: null, subscriptionStatus: status, periodStart: null, periodEnd: null });
      });
    }

    it('customer.subscription.deleted → the default plan', async () => {
      const a = await customerAccount();
      await send('customer.subscription.created', subscription(a, { status: 'active', price: 'price_team' }));
      await send('customer.subscription.deleted', subscription(a, { status: 'canceled', price: 'price_team' }), { created: s(clock.now()) + 1 });
      expect(await account(a.id)).toMatchObject({ plan: 'free', subscriptionId: null });
    });

    it('a second subscription takes over; ending the first one afterwards leaves the plan of the live one', async () => {
      // A customer on pro buys team through a second checkout, then cancels pro in the portal.
      const a = await customerAccount();
      await send('customer.subscription.created', subscription(a, { id: 'sub_first', status: 'active', price: 'price_pro' }), { created: s(T0) });
      await send('customer.subscription.created', subscription(a, { id: 'sub_second', status: 'active', price: 'price_team' }), { created: s(T0) + 10 });
      expect(await account(a.id)).toMatchObject({ plan: 'team', subscriptionId: 'sub_second' });
      const ended = await send('customer.subscription.deleted', subscription(a, { id: 'sub_first', status: 'canceled', price: 'price_pro' }), { created: s(T0) + 20 });
      expect(ended.status).toBe(200);
      expect(await account(a.id)).toMatchObject({ plan: 'team', subscriptionId: 'sub_second', subscriptionStatus: 'active' });
    });

    it('past_due keeps access during the grace, then 402 until the invoice is paid', async () => {
      clock.set(T0);
      try {
        const a = await customerAccount();
        await send('customer.subscription.created', subscription(a, { status: 'active', price: 'price_pro' }));
        await send('customer.subscription.updated', subscription(a, { status: 'past_due', price: 'price_pro' }), { created: s(T0) + 10 });
        expect(await account(a.id)).toMatchObject({ plan: 'pro', pastDueSince: T0 + 10_000 });
        expect((await request(a.key)).status).toBe(200);
        clock.set(T0 + 71 * HOUR);
        expect((await request(a.key)).status).toBe(200);
        clock.set(T0 + 72 * HOUR + 10_001);
        const refused = await request(a.key);
        expect(refused.status).toBe(402);
        expect(JSON.parse(refused.body)).toMatchObject({ type: 'urn:tollgate:error:payment-past-due' });
        expect(JSON.parse(refused.body).detail).toMatch(/portal/);
        // A later past_due event keeps the original start of the grace.
        await send('customer.subscription.updated', subscription(a, { status: 'past_due', price: 'price_pro' }), { created: s(T0) + 3600 });
        expect((await account(a.id)).pastDueSince).toBe(T0 + 10_000);

        await send('invoice.paid', invoice(a, { status: 'paid', start: T0, end: T0 + 30 * 86_400_000 }), BASIL);
        expect((await account(a.id)).pastDueSince).toBeNull();
        expect((await request(a.key)).status).toBe(200);
      } finally {
        clock.set(T0);
      }
    });

    it('out of order: updated (newer) before created (older) → the newer state wins; the older is recorded as ignored', async () => {
      const a = await customerAccount();
      const newer = await send('customer.subscription.updated', subscription(a, { status: 'active', price: 'price_team' }), { created: s(T0) + 120 });
      expect(newer.body.outcome).toBe('applied');
      const older = await send('customer.subscription.created', subscription(a, { status: 'active', price: 'price_pro' }), { created: s(T0) + 100 });
      expect(older.status).toBe(200);
      expect(older.body.outcome).toBe('ignored');
      expect((await recorded(older.eventId))?.note).toMatch(/older/);
      expect(await account(a.id)).toMatchObject({ plan: 'team', subscriptionEventAt: (s(T0) + 120) * 1000 });
      // An older cancellation of another subscription does not overwrite the newer state.
      await send('customer.subscription.deleted', subscription(a, { id: uid('sub'), status: 'canceled', price: 'price_pro' }), { created: s(T0) + 110 });
      expect((await account(a.id)).plan).toBe('team');
    });
  });

  describe('a deleted subscription stays deleted', () => {
    const T = s(T0) + 500;

    it('a late event from the same second as the deletion does not revive it; it is recorded with a note', async () => {
      const a = await customerAccount();
      const id = uid('sub');
      await send('customer.subscription.created', subscription(a, { id, status: 'active', price: 'price_pro' }), { created: T - 1 });
      const deleted = await send('customer.subscription.deleted', subscription(a, { id, status: 'canceled', price: 'price_pro' }), { created: T });
      expect(deleted.body.outcome).toBe('applied');
      // Cancelling emits an update in the same second; Stripe delivers it after the deletion.
      const late = await send('customer.subscription.updated', subscription(a, { id, status: 'active', price: 'price_pro' }), { created: T });
      expect(late.body.outcome).toBe('ignored');
      expect((await recorded(late.eventId))?.note).toMatch(new RegExp(`subscription ${id} ended .*changes nothing`));
      expect(await account(a.id)).toMatchObject({ plan: 'free', subscriptionId: null, subscriptionStatus: 'canceled' });
    });

    it('so does one stamped later, and a deletion that arrives late still ends it', async () => {
      const a = await customerAccount();
      const id = uid('sub');
      await send('customer.subscription.deleted', subscription(a, { id, status: 'canceled', price: 'price_team' }), { created: T });
      const later = await send('customer.subscription.updated', subscription(a, { id, status: 'past_due', price: 'price_team' }), { created: T + 30 });
      expect(later.body.outcome).toBe('ignored');
      expect(await account(a.id)).toMatchObject({ plan: 'free', subscriptionId: null });

      // Delivered out of order: the update is applied first, then the deletion stamped a second
      // before it (the same instant to Stripe's clock) ends the subscription all the same.
      const b = await customerAccount();
      const other = uid('sub');
      await send('customer.subscription.updated', subscription(b, { id: other, status: 'active', price: 'price_team' }), { created: T + 1 });
      expect((await account(b.id)).plan).toBe('team');
      expect((await send('customer.subscription.deleted', subscription(b, { id: other, status: 'canceled', price: 'price_team' }), { created: T })).body.outcome).toBe('applied');
      expect(await account(b.id)).toMatchObject({ plan: 'free', subscriptionId: null, subscriptionEventAt: (T + 1) * 1000 });
    });

    it('incomplete_expired is final too; a new subscription of the same customer is not affected', async () => {
      const a = await customerAccount();
      const expired = uid('sub');
      await send('customer.subscription.updated', subscription(a, { id: expired, status: 'incomplete_expired', price: 'price_pro' }), { created: T });
      const revived = await send('customer.subscription.updated', subscription(a, { id: expired, status: 'active', price: 'price_pro' }), { created: T });
      expect(revived.body.outcome).toBe('ignored');
      const fresh = await send('customer.subscription.created', subscription(a, { id: uid('sub'), status: 'active', price: 'price_pro' }), { created: T + 1 });
      expect(fresh.body.outcome).toBe('applied');
      expect((await account(a.id)).plan).toBe('pro');
    });

    it('a customer.subscription.created from the same second as an update already applied changes nothing', async () => {
      const a = await customerAccount();
      const id = uid('sub');
      await send('customer.subscription.updated', subscription(a, { id, status: 'active', price: 'price_team' }), { created: T });
      const created = await send('customer.subscription.created', subscription(a, { id, status: 'incomplete', price: 'price_pro' }), { created: T });
      expect(created.body.outcome).toBe('ignored');
      expect(await account(a.id)).toMatchObject({ plan: 'team', subscriptionStatus: 'active' });
    });
  });

  // ---- Invoices -----------------------------------------------------------------------------

  describe('invoices', () => {
    it('invoice.payment_failed → 402 saying how to fix it, until invoice.paid', async () => {
      const a = await customerAccount('pro');
      expect((await request(a.key)).status).toBe(200);
      const failing = invoice(a, { status: 'open' });
      const failed = await send('invoice.payment_failed', failing, BASIL);
      expect(failed.body.outcome).toBe('applied');
      const refused = await request(a.key);
      expect(refused.status).toBe(402);
      const body = JSON.parse(refused.body) as { type: string; detail: string };
      expect(body.type).toBe('urn:tollgate:error:account-suspended');
      expect(body.detail).toMatch(/payment failed/i);
      expect(body.detail).toMatch(/\/_tollgate\/billing\/portal/);
      // The customer fixes the card in the portal; Stripe retries and that invoice is paid.
      await send('invoice.paid', { ...failing, status: 'paid', paid: true }, BASIL);
      expect(await account(a.id)).toMatchObject({ status: 'active', statusReason: null });
      expect((await request(a.key)).status).toBe(200);
    });

    it('an invoice.payment_failed older than the invoice.paid already applied changes nothing', async () => {
      const a = await customerAccount('pro');
      const failedAt = s(clock.now()) - 600;
      await send('invoice.paid', invoice(a, { status: 'paid' }), BASIL);
      const late = await send('invoice.payment_failed', invoice(a, { status: 'open' }), { ...BASIL, created: failedAt });
      expect(late.body.outcome).toBe('ignored');
      expect((await recorded(late.eventId))?.note).toMatch(/older/);
      expect(await account(a.id)).toMatchObject({ status: 'active', statusReason: null });
      expect((await request(a.key)).status).toBe(200);
    });

    it('same second, same invoice: invoice.paid wins in either order (a paid invoice takes no further attempts)', async () => {
      const T = s(T0) + 900;
      const a = await customerAccount('pro');
      const id = uid('in');
      await send('invoice.paid', invoice(a, { id, status: 'paid' }), { ...BASIL, created: T });
      const failed = await send('invoice.payment_failed', invoice(a, { id, status: 'open' }), { ...BASIL, created: T });
      expect(failed.body.outcome).toBe('ignored');
      expect((await recorded(failed.eventId))?.note).toMatch(new RegExp(`invoice ${id} was paid`));
      expect(await account(a.id)).toMatchObject({ status: 'active', statusReason: null });
      // Even stamped later, a failure of an invoice already paid changes nothing.
      expect((await send('invoice.payment_failed', invoice(a, { id, status: 'open' }), { ...BASIL, created: T + 5 })).body.outcome).toBe('ignored');
      expect((await account(a.id)).status).toBe('active');

      const b = await customerAccount('pro');
      const other = uid('in');
      await send('invoice.payment_failed', invoice(b, { id: other, status: 'open' }), { ...BASIL, created: T });
      expect((await account(b.id)).status).toBe('suspended');
      expect((await send('invoice.paid', invoice(b, { id: other, status: 'paid' }), { ...BASIL, created: T })).body.outcome).toBe('applied');
      expect(await account(b.id)).toMatchObject({ status: 'active', statusReason: null });
    });

    it('same second, different invoices: the failure holds in either order; another invoice paid does not undo it', async () => {
      const T = s(T0) + 1000;
      const a = await customerAccount('pro');
      await send('invoice.payment_failed', invoice(a, { status: 'open' }), { ...BASIL, created: T });
      const paid = await send('invoice.paid', invoice(a, { status: 'paid' }), { ...BASIL, created: T });
      expect(paid.body.outcome).toBe('ignored');
      expect((await recorded(paid.eventId))?.note).toMatch(/same second/);
      expect(await account(a.id)).toMatchObject({ status: 'suspended', statusReason: 'payment_failed' });

      const b = await customerAccount('pro');
      await send('invoice.paid', invoice(b, { status: 'paid' }), { ...BASIL, created: T });
      expect((await send('invoice.payment_failed', invoice(b, { status: 'open' }), { ...BASIL, created: T })).body.outcome).toBe('applied');
      expect(await account(b.id)).toMatchObject({ status: 'suspended', statusReason: 'payment_failed' });

      // A paid invoice stamped later restores the standing, as before.
      expect((await send('invoice.paid', invoice(b, { status: 'paid' }), { ...BASIL, created: T + 1 })).body.outcome).toBe('applied');
      expect((await account(b.id)).status).toBe('active');
    });

    it('same second, two paid invoices: both apply (the renewal\'s period is kept)', async () => {
      const T = s(T0) + 1100;
      const a = await customerAccount('pro');
      const start = T0 + 86_400_000;
      await send('invoice.paid', invoice(a, { status: 'paid' }), { ...BASIL, created: T });
      const renewal = await send('invoice.paid', invoice(a, { status: 'paid', start, end: start + 30 * 86_400_000 }), { ...BASIL, created: T });
      expect(renewal.body.outcome).toBe('applied');
      expect(await account(a.id)).toMatchObject({ status: 'active', periodStart: start });
    });

    it('invoice.paid does not lift a dispute\'s suspension', async () => {
      const a = await customerAccount();
      const { pi } = await buy(a);
      await send('charge.dispute.created', dispute({ id: uid('dp'), pi, cents: 100, status: 'needs_response' }));
      await send('invoice.paid', invoice(a, { status: 'paid' }), BASIL);
      expect(await account(a.id)).toMatchObject({ status: 'suspended', statusReason: 'dispute' });
    });

    it('invoice.paid → the quota period is the subscription\'s billing period, not the calendar month', async () => {
      const start = Date.parse('2026-11-07T13:00:00Z');
      const end = Date.parse('2026-12-07T13:00:00Z');
      clock.set(Date.parse('2026-11-20T00:00:00Z'));
      try {
        const a = await customerAccount('pro');
        await send('invoice.paid', invoice(a, { status: 'paid', start, end }), BASIL);
        expect(await account(a.id)).toMatchObject({ periodStart: start, periodEnd: end });
        for (let i = 0; i < 3; i++) expect((await request(a.key)).status).toBe(200);
        const usage = JSON.parse((await request(a.key, '/_tollgate/usage')).body) as { quota: { period: string; used: number } };
        expect(usage.quota).toMatchObject({ period: 'sub:2026-11-07T13:00:00.000Z', used: 3 });
        const rows = await gw.quotaRows(a.id);
        expect(rows).toEqual([{ period: 'sub:2026-11-07T13:00:00.000Z', used: 3 }]);
        // After the period ends and before the renewal arrives, the last period keeps counting: a
        // late invoice gives no fresh quota (a lapsed subscription clears the period).
        clock.set(Date.parse('2026-12-08T00:00:00Z'));
        const later = JSON.parse((await request(a.key, '/_tollgate/usage')).body) as { quota: { period: string; used: number } };
        expect(later.quota).toMatchObject({ period: 'sub:2026-11-07T13:00:00.000Z', used: 3 });
      } finally {
        clock.set(T0);
      }
    });
  });

  // ---- Types and shapes the gateway does not use --------------------------------------------

  describe('events the gateway does not act on', () => {
    it('an unknown event type → 200, recorded as ignored with a note', async () => {
      const raw = fixtureText('openapi-fixtures3.event.json'); // plan.created, api_version null
      const res = await postWebhook(gw.url, raw);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ received: true, id: 'evt_1Pgc76B7WZ01zgkWwyRHS12y', outcome: 'ignored' });
      expect(await recorded('evt_1Pgc76B7WZ01zgkWwyRHS12y')).toMatchObject({ status: 'ignored', note: expect.stringMatching(/plan\.created/) });
    });

    it('an event needing no change is logged once per type and reason, not once per event', async () => {
      const lines: string[] = [];
      const log = createLogger('info', (line) => lines.push(line));
      const deps = { config: gw.config, stripeWebhooks: Stripe.webhooks, events: gw.events, log };
      for (let i = 0; i < 3; i++) {
        const raw = Buffer.from(JSON.stringify(stripeEvent('invoice_payment.paid', fixture('openapi-fixtures3.invoice_payment.json'))));
        expect(await receiveStripeWebhook(raw, signature(raw), deps)).toMatchObject({ status: 200, body: { outcome: 'ignored' } });
      }
      const logged = lines.map((l) => JSON.parse(l) as { msg: string; type: string }).filter((l) => l.type === 'invoice_payment.paid');
      expect(logged).toHaveLength(1);
      expect(logged[0].msg).toMatch(/no change/);
      expect(lines.join('')).not.toContain(WEBHOOK_SECRET);
    });

    it('a handled type for a customer the gateway does not know → 200, recorded as ignored', async () => {
      const res = await send('invoice.payment_failed', invoice({ customer: uid('cus') }, { status: 'open' }), BASIL);
      expect(res.body.outcome).toBe('ignored');
      expect((await recorded(res.eventId))?.note).toMatch(/no account/);
    });
  });

  // ---- Ignored, then fixed ------------------------------------------------------------------

  describe('an event recorded as ignored', () => {
    it('is applied when Stripe resends it after the operator fixed the plan\'s stripePrice; only then is it a duplicate', async () => {
      const a = await customerAccount();
      const text = JSON.stringify(stripeEvent('customer.subscription.created', subscription(a, { id: uid('sub'), status: 'active', price: 'price_pro_2027' }), { created: s(T0) }));
      const first = await postWebhook(gw.url, text);
      expect(first.body.outcome).toBe('ignored');
      expect((await recorded(first.body.id as string))?.note).toMatch(/price_pro_2027/);
      expect((await account(a.id)).plan).toBe('free');

      // The operator sets pro's stripePrice to the new price and restarts; Stripe's resend arrives.
      const fixed = { ...gw.config, plans: { ...gw.config.plans, pro: { ...gw.config.plans.pro, stripePrice: 'price_pro_2027' } } };
      const deps = { config: fixed, stripeWebhooks: Stripe.webhooks, events: gw.events, log: createLogger('silent') };
      const raw = Buffer.from(text);
      expect(await receiveStripeWebhook(raw, signature(raw), deps)).toMatchObject({ status: 200, body: { outcome: 'applied' } });
      expect((await account(a.id)).plan).toBe('pro');
      expect(await recorded(first.body.id as string)).toMatchObject({ status: 'applied', note: null, attempts: 2 });
      expect(await receiveStripeWebhook(raw, signature(raw), deps)).toMatchObject({ status: 200, body: { outcome: 'duplicate' } });
    });

    it('sent again unchanged is ignored again with its note, and changes nothing', async () => {
      const a = await customerAccount();
      const text = JSON.stringify(stripeEvent('checkout.session.completed', await checkout(a, { paid: false })));
      for (let i = 0; i < 2; i++) expect((await postWebhook(gw.url, text)).body.outcome).toBe('ignored');
      expect((await account(a.id)).balanceMicros).toBe(0);
    });
  });

  // ---- Failure, and the retry that succeeds --------------------------------------------------

  describe('an event whose handling fails', () => {
    it('→ 500, nothing changed, kept as failed; Stripe\'s retry applies it once the account can take it', async () => {
      // A balance one top-up away from the largest the schema allows (2^53 - 1 micro-dollars).
      const a = await customerAccount();
      await gw.grant(a.id, Number.MAX_SAFE_INTEGER - 10_000_000, 'whale');
      const before = await ledger(a.id);
      const event = stripeEvent('checkout.session.completed', await checkout(a, { cents: 2500 }), { created: s(T0) });
      const text = JSON.stringify(event);
      const first = await postWebhook(gw.url, text);
      expect(first.status).toBe(500);
      expect(first.contentType).toBe('application/problem+json');
      expect(JSON.stringify(first.body)).not.toMatch(/CHECK|constraint|sqlite/i); // no internals leak
      expect(await ledger(a.id)).toEqual(before);
      expect(await gw.creditPurchases(a.id)).toBe(0);
      expect(await recorded(event.id as string)).toMatchObject({ status: 'failed', attempts: 1 });
      expect((await gw.failedEvents())).toContain(event.id);

      expect((await postWebhook(gw.url, text)).status).toBe(500);
      expect(await recorded(event.id as string)).toMatchObject({ status: 'failed', attempts: 2 });

      expect(await gw.debit(a.id, 1_000_000_000, 'operator', 'make room')).toBe(true);
      const retry = await postWebhook(gw.url, text);
      expect(retry.status).toBe(200);
      expect(retry.body.outcome).toBe('applied');
      expect(await recorded(event.id as string)).toMatchObject({ status: 'applied', attempts: 3 });
      expect((await gw.failedEvents())).not.toContain(event.id);
      expect((await account(a.id)).balanceMicros).toBe(Number.MAX_SAFE_INTEGER - 10_000_000 - 1_000_000_000 + 25_000_000);
      await balanced(a.id);
    });
  });

  // ---- API versions: the fixtures as captured ------------------------------------------------

  describe('API versions: the captured fixtures', () => {
    it('legacy 2020-03-02: a checkout the gateway did not create is ignored with a note; subscription created → plan and top-level period; an older updated is ignored; deleted → default plan, for good', async () => {
      const a = await customerAccount('free', 'cus_IhGfebO16cMIGN');
      const checkout = await postWebhook(gw.url, fixtureText('sync-engine.checkout.session.completed.payment-mode.json'));
      expect(checkout).toMatchObject({ status: 200, body: { outcome: 'ignored' } });
      expect((await recorded('evt_T8nSaZqtPudigUMqnnbY4D4v'))?.note).toMatch(/not created by this gateway/);
      expect((await account(a.id)).balanceMicros).toBe(0);

      const created = await postWebhook(gw.url, fixtureText('sync-engine.customer.subscription.created.json'));
      expect(created.body.outcome).toBe('applied');
      expect(await account(a.id)).toMatchObject({
        plan: 'legacy', subscriptionId: 'sub_JdIzvfy6o5GZRd', subscriptionStatus: 'active',
        periodStart: 1623148918_000, periodEnd: 1625740918_000, subscriptionEventAt: 1623148918_000,
      });

      // This updated event (another subscription of the same customer) was created weeks earlier.
      const updated = await postWebhook(gw.url, fixtureText('sync-engine.customer.subscription.updated.json'));
      expect(updated.body.outcome).toBe('ignored');
      expect((await account(a.id)).subscriptionId).toBe('sub_JdIzvfy6o5GZRd');

      const deleted = await postWebhook(gw.url, fixtureText('sync-engine.customer.subscription.deleted.json'));
      expect(deleted.body.outcome).toBe('applied');
      expect(await account(a.id)).toMatchObject({ plan: 'free', subscriptionId: null, subscriptionStatus: 'canceled', periodStart: null });
      // The captured subscription, still active, in an update from the deletion's second: no revival.
      const captured = fixture<{ created: number; data: { object: Obj } }>('sync-engine.customer.subscription.deleted.json');
      const late = await send('customer.subscription.updated', { ...captured.data.object, status: 'active' }, { created: captured.created, apiVersion: '2020-03-02' });
      expect(late.body.outcome).toBe('ignored');
      expect(await account(a.id)).toMatchObject({ plan: 'free', subscriptionId: null });
    });

    it('legacy invoice.paid: the subscription is read at the top level and its line period becomes the quota period', async () => {
      clock.set(Date.parse('2022-01-25T00:00:00Z'));
      try {
        const a = await customerAccount('legacy', 'cus_JsuO3bmrj0QlAw');
        const res = await postWebhook(gw.url, fixtureText('sync-engine.invoice.paid.json'));
        expect(res.body.outcome).toBe('applied');
        expect(await account(a.id)).toMatchObject({ periodStart: 1642645280_000, periodEnd: 1645323680_000 });
        expect((await request(a.key)).status).toBe(200);
        const usage = JSON.parse((await request(a.key, '/_tollgate/usage')).body) as { quota: { period: string; used: number } };
        expect(usage.quota).toEqual({ period: 'sub:2022-01-20T02:21:20.000Z', used: 1, limit: 2000 });
      } finally {
        clock.set(T0);
      }
    });

    it('legacy charge.refunded debits the credits its payment intent bought', async () => {
      const a = await customerAccount();
      await buy(a, 2500, 'pi_3Kl36gJDPojXS6LN02fQVtKR');
      const res = await postWebhook(gw.url, fixtureText('sync-engine.charge.refunded.json'));
      expect(res.body.outcome).toBe('applied');
      expect((await account(a.id)).balanceMicros).toBe(0);
      expect((await ledger(a.id)).at(-1)).toEqual(['refund', -25_000_000, 'ch_3Kl36gJDPojXS6LN0DCM4A8l']);
      // The captured dispute fixture reuses this event's id: to the gateway it is the same event.
      const dup = await postWebhook(gw.url, fixtureText('sync-engine.charge.dispute.created.json'));
      expect(dup).toMatchObject({ status: 200, body: { outcome: 'duplicate' } });
      await balanced(a.id);
    });

    it('legacy charge.dispute.created freezes what it disputes and suspends', async () => {
      const other = await startBackendGateway(backend, { env: billingEnv(stripe), file: billingFile(upstream.url) });
      try {
        const seeded = await customerAccount('free', uid('cus'), other);
        const purchase = stripeEvent('checkout.session.completed', await checkout(seeded, { cents: 2500, pi: 'pi_1IqtG9JDPojXS6LNOGnYrIqq' }, other));
        expect((await postWebhook(other.url, purchase)).body.outcome).toBe('applied');
        const res = await postWebhook(other.url, fixtureText('sync-engine.charge.dispute.created.json'));
        expect(res.body.outcome).toBe('applied');
        expect(await account(seeded.id, other)).toMatchObject({ balanceMicros: 15_000_000, status: 'suspended', statusReason: 'dispute' });
        expect(await other.billing.dispute('dp_1MLuxQJDPojXS6LNrukJCBBG')).toMatchObject({ frozenMicros: 10_000_000, status: 'warning_needs_response' });
      } finally {
        await other.close();
      }
    });

    it('basil invoice.payment_failed (pay): the subscription under parent is found and the account suspended', async () => {
      const a = await customerAccount('pro', 'cus_1234');
      const event = { id: 'evt_pay_invoice_payment_failed', object: 'event', api_version: '2025-03-31.basil', created: s(T0), type: 'invoice.payment_failed', livemode: false, data: fixture('pay.invoice.payment_failed.data.json') };
      const res = await postWebhook(gw.url, event);
      expect(res.body.outcome).toBe('applied');
      expect(await account(a.id)).toMatchObject({ status: 'suspended', statusReason: 'payment_failed' });
      expect((await request(a.key)).status).toBe(402);
    });

    it('current shape (openapi subscription): the price and the period come from the items', async () => {
      const a = await customerAccount('free', 'cus_QXg1o8vcGmoR32');
      const sub = fixture('openapi-fixtures3.subscription.json');
      // As generated, the item's period runs backwards: the plan still follows, no period is kept.
      const raw = await postWebhook(gw.url, stripeEvent('customer.subscription.created', sub, { created: s(T0) }));
      expect(raw.body.outcome).toBe('applied');
      expect(await account(a.id)).toMatchObject({ plan: 'current', subscriptionId: 'sub_1Pgc6rB7WZ01zgkWNy0Cn5nw', periodStart: null });
      Object.assign((sub.items as { data: Obj[] }).data[0], { current_period_start: 1_793_000_000, current_period_end: 1_795_592_000 });
      const fixed = await postWebhook(gw.url, stripeEvent('customer.subscription.updated', sub, { created: s(T0) + 1 }));
      expect(fixed.body.outcome).toBe('applied');
      expect(await account(a.id)).toMatchObject({ plan: 'current', periodStart: 1_793_000_000_000, periodEnd: 1_795_592_000_000 });
    });

    it('a subscription-mode checkout (pay, about 2022) for an unknown customer is recorded as ignored', async () => {
      const data = fixture<{ object: Obj }>('pay.checkout.session.completed.subscription-mode.data.json');
      const event = { id: 'evt_pay_checkout_sub', object: 'event', api_version: '2022-08-01', created: s(T0), type: 'checkout.session.completed', data };
      const res = await postWebhook(gw.url, event);
      expect(res.body.outcome).toBe('ignored');
      expect((await recorded('evt_pay_checkout_sub'))?.note).toMatch(/no account/);
    });
  });
});
