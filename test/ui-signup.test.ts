// Self-serve signup, on the SQLite file and on PostgreSQL: SIGNUP=open in Chromium (an email gets
// an account on the default plan and its first key, shown once; the email again in another case
// is refused), SIGNUP=checkout in Chromium against the fake Stripe (the key is issued by
// checkout.session.completed, once, and shown once on the success page), the rate limit per
// client address, off by default, and the config checks.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { billingEnv, billingFile, postWebhook, startFakeStripe, stripeEvent, type FakeStripe } from './fake-stripe.ts';
import { bearer, fakeClock, rawRequest, startUpstream, type Upstream } from './helpers.ts';
import { clickToOutside, launch, newTab, rows, screenshot, value } from './ui-support.ts';

let browser: Browser;
let stripe: FakeStripe;
let up: Upstream;

beforeAll(async () => {
  [browser, stripe, up] = await Promise.all([launch(), startFakeStripe(), startUpstream()]);
});

afterAll(async () => {
  await browser?.close();
  await up?.close();
  await stripe?.close();
});

const signup = (gw: BackendGateway, body: Record<string, string>) => rawRequest(`${gw.url}/_tollgate/signup`, {
  method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString(),
});

describe.each(BACKENDS)('signup on $backend', { timeout: 20_000 }, ({ backend }) => {
  describe('SIGNUP=open', () => {
    let gw: BackendGateway;
    beforeAll(async () => {
      gw = await startBackendGateway(backend, { env: { SIGNUP: 'open', UPSTREAM_URL: up.url }, file: {} });
    });
    afterAll(() => gw?.close());

    it('an email gets an account on the default plan and its key, shown once; the same email in another case is refused', async () => {
      const { page } = await newTab(browser);
      await page.goto(`${gw.url}/_tollgate/signup`);
      await page.fill('input[name=email]', 'New.Customer@example.com');
      await Promise.all([page.waitForNavigation(), page.click('#signup button')]);
      const key = (await page.textContent('#new-key'))!.trim();
      await screenshot(page, `${backend}-signup-open-key`);
      expect((await fetch(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
      const account = (await rows<{ id: string; plan: string; status: string }>(gw, "SELECT id, plan, status FROM accounts WHERE email = 'New.Customer@example.com'"))[0];
      expect(account).toMatchObject({ plan: gw.config.defaultPlan, status: 'active' });
      expect(await rows(gw, 'SELECT actor, action FROM audit_log WHERE account_id = ? ORDER BY id', account.id)).toEqual([
        { actor: 'signup', action: 'account.create' }, { actor: 'signup', action: 'key.create' },
      ]);

      await page.goto(`${gw.url}/_tollgate/signup`);
      await page.fill('input[name=email]', 'new.customer@EXAMPLE.com');
      const [again] = await Promise.all([page.waitForNavigation(), page.click('#signup button')]);
      expect(again!.status()).toBe(409);
      expect(await page.textContent('.error')).toMatch(/exists already/);
      expect(await value(gw, 'SELECT count(*) FROM accounts')).toBe(1);
      await page.context().close();
    });

    it('refuses what is not an email address, and creates nothing', async () => {
      for (const email of ['', 'no-at-sign', 'a@b', '<script>@example.com', `${'x'.repeat(250)}@example.com`]) {
        const res = await signup(gw, { email });
        expect(res.status, email).toBe(400);
        expect(res.body).toContain('That is not an email address.');
        expect(res.body).not.toContain('<script>');
      }
      expect(await value(gw, 'SELECT count(*) FROM accounts')).toBe(1);
    });
  });

  describe('signup rate limit', () => {
    it('allows 5 signups an hour per client address; the 6th gets 429 with Retry-After; an hour later one more is allowed', async () => {
      const clock = fakeClock(Date.now());
      const gw = await startBackendGateway(backend, { env: { SIGNUP: 'open', UPSTREAM_URL: up.url }, file: {}, now: clock.now });
      try {
        for (let i = 0; i < 5; i++) expect((await signup(gw, { email: `r${i}@example.com` })).status).toBe(200);
        const refused = await signup(gw, { email: 'r5@example.com' });
        expect(refused.status).toBe(429);
        expect(Number(refused.headers['retry-after'])).toBeGreaterThan(3500);
        expect(await value(gw, "SELECT count(*) FROM accounts WHERE email = 'r5@example.com'")).toBe(0);
        clock.advance(3600_000);
        expect((await signup(gw, { email: 'r5@example.com' })).status).toBe(200);
      } finally {
        await gw.close();
      }
    });
  });

  describe('SIGNUP=checkout', () => {
    let gw: BackendGateway;
    beforeAll(async () => {
      gw = await startBackendGateway(backend, { env: { ...billingEnv(stripe), SIGNUP: 'checkout' }, file: billingFile(up.url) });
    });
    afterAll(() => gw?.close());

    it('the customer pays through Checkout; checkout.session.completed issues the key once; the success page shows it once', async () => {
      const tab = await newTab(browser);
      const { page } = tab;
      await page.goto(`${gw.url}/_tollgate/signup`);
      await page.fill('input[name=email]', 'payer@example.com');
      await page.selectOption('select[name=amount]', '10.00');
      const checkout = await clickToOutside(page, '#signup button', /^checkout\.stripe\.com$/);
      const sessionId = checkout.pathname.split('/').at(-1)!;
      const session = stripe.sessions.get(sessionId)!;
      expect(session).toMatchObject({ mode: 'payment', amount_total: 1000, success_url: `${gw.url}/_tollgate/signup/done?session_id={CHECKOUT_SESSION_ID}` });
      const account = (await rows<{ id: string; status: string; reason: string }>(gw, "SELECT id, status, status_reason AS reason FROM accounts WHERE email = 'payer@example.com'"))[0];
      expect(account).toMatchObject({ status: 'suspended', reason: 'signup' });
      expect(await value(gw, 'SELECT count(*) FROM api_keys WHERE account_id = ?', account.id)).toBe(0);

      const done = `${gw.url}/_tollgate/signup/done?session_id=${sessionId}`;
      const early = await page.goto(done);
      expect(early!.status()).toBe(202);
      expect(await page.textContent('#waiting')).toMatch(/not confirmed/);

      const event = stripeEvent('checkout.session.completed', stripe.completed(sessionId));
      expect((await postWebhook(gw.url, event)).status).toBe(200);
      expect((await postWebhook(gw.url, event)).body.outcome).toBe('duplicate');
      expect(await value(gw, 'SELECT count(*) FROM api_keys WHERE account_id = ?', account.id)).toBe(1);
      expect(await value(gw, 'SELECT status FROM accounts WHERE id = ?', account.id)).toBe('active');
      expect(await gw.balance(account.id)).toBe(10_000_000);
      // The key is kept sealed, never in the clear.
      const sealed = await value<string>(gw, 'SELECT sealed FROM signup_claims WHERE session_id = ?', sessionId);
      expect(sealed).toBeTruthy();

      const shown = await page.goto(done);
      expect(shown!.status()).toBe(200);
      const key = (await page.textContent('#new-key'))!.trim();
      expect(sealed).not.toContain(key);
      await screenshot(page, `${backend}-signup-checkout-key`);
      expect((await fetch(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
      expect(await value(gw, 'SELECT sealed FROM signup_claims WHERE session_id = ?', sessionId)).toBeNull();

      const again = await page.goto(done);
      expect(again!.status()).toBe(410);
      expect(await page.content()).not.toContain(key);
      expect((await rawRequest(`${gw.url}/_tollgate/signup/done?session_id=cs_test_nothing`)).status).toBe(404);
      await tab.context.close();
    });

    it('a signup that never paid may start again with its email; an account that exists may not', async () => {
      const first = await signup(gw, { email: 'later@example.com', amount: '10.00' });
      expect(first.status).toBe(303);
      const second = await signup(gw, { email: 'LATER@example.com', amount: '25.00' });
      expect(second.status).toBe(303);
      expect(second.headers.location).not.toBe(first.headers.location);
      expect(await value(gw, "SELECT count(*) FROM accounts WHERE lower(email) = 'later@example.com'")).toBe(1);
      expect((await signup(gw, { email: 'payer@example.com', amount: '10.00' })).status).toBe(409);
      expect((await signup(gw, { email: 'x@example.com', amount: '3.00' })).status).toBe(400);
    });
  });

  describe('signup settings', () => {
    it('is off by default: the pages answer 404', async () => {
      const gw = await startBackendGateway(backend, { env: { UPSTREAM_URL: up.url }, file: {} });
      try {
        expect((await rawRequest(`${gw.url}/_tollgate/signup`)).status).toBe(404);
        expect((await signup(gw, { email: 'a@example.com' })).status).toBe(404);
        expect(await value(gw, 'SELECT count(*) FROM accounts')).toBe(0);
      } finally {
        await gw.close();
      }
    });
  });
});

describe('signup settings', () => {
  it('SIGNUP takes off, open or checkout; checkout needs Stripe', () => {
    expect(loadConfig({ DATABASE_PATH: ':memory:' }).signup).toBe('off');
    expect(loadConfig({ DATABASE_PATH: ':memory:', SIGNUP: 'open' }).signup).toBe('open');
    expect(() => loadConfig({ DATABASE_PATH: ':memory:', SIGNUP: 'yes' })).toThrow(/SIGNUP: expected one of off, open, checkout, got "yes"/);
    expect(() => loadConfig({ DATABASE_PATH: ':memory:', SIGNUP: 'checkout' })).toThrow(ConfigError);
    expect(() => loadConfig({ DATABASE_PATH: ':memory:', SIGNUP: 'checkout' })).toThrow(/"checkout" needs Stripe/);
  });
});
