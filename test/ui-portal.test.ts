// The customer portal in a real headless Chromium, on the SQLite file and on PostgreSQL: sign in
// with an API key, the dashboard (balance, quota and its reset, usage per day, tokens per model,
// recent requests), keys created (shown once) and revoked, and the Buy credits / Manage billing
// buttons going to Stripe.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operations } from '../src/admin/operations.ts';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { billingEnv, billingFile, postWebhook, startFakeStripe, stripeEvent, type FakeStripe } from './fake-stripe.ts';
import { bearer, startUpstream, type Upstream } from './helpers.ts';
import { chartPoints, clickToOutside, launch, newTab, operator, rows, screenshot, seedCustomer, today, written, type Customer, type Tab } from './ui-support.ts';

const DAY_MS = 86_400_000;
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

describe.each(BACKENDS)('customer portal in Chromium on $backend', { timeout: 20_000 }, ({ backend }) => {
  let gw: BackendGateway;
  let ops: Operations;
  let tab: Tab;
  let customer: Customer;

  beforeAll(async () => {
    gw = await startBackendGateway(backend, { env: billingEnv(stripe), file: billingFile(up.url) });
    ops = operator(gw);
    tab = await newTab(browser);
    customer = await seedCustomer(ops, 'free', 'portal@example.com');
    await ops.grantCredits(customer.id, { amountMicros: 3_000_000, reason: 'welcome' });
    for (let i = 0; i < 6; i++) expect((await fetch(`${gw.url}/api/x`, { headers: bearer(customer.key) })).status).toBe(200);
    // On PostgreSQL the pages read what the nodes wrote (SQLite's also what this gateway queued).
    await written(gw);
    // Yesterday's AI usage, as the rollups hold it (two models).
    const yesterday = Date.now() - (Date.now() % DAY_MS) - DAY_MS;
    const rollup = (model: string, requests: number, charged: number, input: number, cached: number, output: number) => rows(gw, `INSERT INTO usage_daily
      (account_id, day, route, model, status, requests, billable, charged_micros, input_tokens, cached_tokens, cache_write_tokens, output_tokens${
        backend === 'sqlite' ? ', through_id' : ''}) VALUES (?, ?, '/v1/', ?, 200, ?, ?, ?, ?, ?, 0, ?${backend === 'sqlite' ? ', 0' : ''})`,
    customer.id, yesterday, model, requests, requests, charged, input, cached, output);
    await rollup('gpt-5', 3, 4500, 1200, 200, 800);
    await rollup('claude-sonnet-4-5', 1, 900, 300, 0, 50);
  });

  afterAll(async () => {
    await tab?.context.close();
    await gw?.close();
  });

  it('refuses a wrong key; with the customer\u2019s key shows balance, quota and reset, usage charts, tokens per model and recent requests', async () => {
    const { page } = tab;
    await page.goto(`${gw.url}/_tollgate/portal`);
    await page.fill('input[name=key]', 'tg_not_a_real_key_at_all');
    const [refused] = await Promise.all([page.waitForNavigation(), page.click('#sign-in button')]);
    expect(refused!.status()).toBe(401);
    expect(await page.textContent('.error')).toMatch(/not valid/);

    await page.fill('input[name=key]', customer.key);
    await Promise.all([page.waitForNavigation(), page.click('#sign-in button')]);
    expect(await page.textContent('h1')).toBe('Your account');
    expect(await page.content()).not.toContain(customer.key);
    const [cookie] = await tab.context.cookies();
    expect(cookie).toMatchObject({ name: 'tg_portal', httpOnly: true, sameSite: 'Strict', path: '/_tollgate/portal' });

    // 5 requests in the free plan's quota, 1 past it paid from the credits at $0.001.
    expect(await page.textContent('#balance')).toBe('$2.999');
    expect(await page.textContent('#quota')).toBe('5 of 5');
    const now = new Date();
    expect(await page.textContent('#resets')).toBe(`${new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString().slice(0, 10)} 00:00:00 UTC`);
    const requests = await chartPoints(page, 'chart-requests');
    expect(requests).toHaveLength(30);
    expect(requests.at(-1)).toEqual({ day: today(), value: 6 });
    expect(requests.at(-2)).toEqual({ day: today(Date.now() - DAY_MS), value: 4 });
    const cost = await chartPoints(page, 'chart-cost');
    expect(cost.at(-1)).toEqual({ day: today(), value: 1000 });
    expect(cost.at(-2)).toEqual({ day: today(Date.now() - DAY_MS), value: 5400 });
    const models = await page.locator('#models tbody tr').allTextContents();
    expect(models).toEqual(['gpt-531200200800', 'claude-sonnet-4-51300050']);
    expect(await page.locator('#recent tbody tr').count()).toBe(6);
    expect(await page.textContent('#recent tbody tr:first-child')).toContain('/api/x');
    await screenshot(page, `${backend}-portal-dashboard`);
  });

  it('creates a key, shown once, that works; revokes it; only this account\u2019s keys are listed', async () => {
    const other = await seedCustomer(ops, 'free', 'other@example.com');
    const { page } = tab;
    await page.goto(`${gw.url}/_tollgate/portal`);
    expect(await page.locator('#keys tbody tr').count()).toBe(1);
    expect(await page.content()).not.toContain(other.keyId);
    await page.fill('input[name=name]', 'laptop');
    await Promise.all([page.waitForNavigation(), page.click('#create-key')]);
    const key = (await page.textContent('#new-key'))!.trim();
    expect((await fetch(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
    await page.goto(`${gw.url}/_tollgate/portal`);
    expect(await page.content()).not.toContain(key);
    const row = page.locator('#keys tbody tr', { hasText: 'laptop' });
    await Promise.all([page.waitForNavigation(), row.locator('button.revoke').click()]);
    expect(await page.textContent('.notice')).toBe('The key was revoked.');
    expect(await page.locator('#keys tbody tr', { hasText: 'laptop' }).textContent()).toContain('revoked');
    expect((await fetch(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(401);
    const audited = await rows<{ action: string }>(gw, 'SELECT action FROM audit_log WHERE actor = ? ORDER BY id', `portal:${customer.keyId}`);
    expect(audited.map((r) => r.action)).toEqual(['key.create', 'key.revoke']);
  });

  it('Buy credits goes to a Stripe Checkout session for this account; once paid the balance shows it; Manage billing goes to the Stripe portal', async () => {
    const { page } = tab;
    await page.goto(`${gw.url}/_tollgate/portal`);
    await page.selectOption('select[name=amount]', '25.00');
    const checkout = await clickToOutside(page, '#buy-credits', /^checkout\.stripe\.com$/);
    const sessionId = checkout.pathname.split('/').at(-1)!;
    expect(stripe.sessions.get(sessionId)).toMatchObject({ client_reference_id: customer.id, amount_total: 2500, mode: 'payment' });
    expect((await postWebhook(gw.url, stripeEvent('checkout.session.completed', stripe.completed(sessionId)))).status).toBe(200);
    await page.goto(`${gw.url}/_tollgate/portal`);
    // $2.999 + $25, less the one request the key of the test before made past the quota.
    expect(await page.textContent('#balance')).toBe('$27.998');

    await clickToOutside(page, '#manage-billing', /^billing\.stripe\.com$/);
    expect(stripe.callsTo('/v1/billing_portal/sessions').at(-1)!.params.customer).toBe((await gw.billing.account(customer.id))!.stripeCustomerId);
    expect(tab.outside.map((u) => new URL(u).hostname)).toEqual(['checkout.stripe.com', 'billing.stripe.com']);
  });

  it('the session ends with its key: revoked from elsewhere, the next page asks to sign in again', async () => {
    const { page } = tab;
    await ops.revokeKey(customer.keyId);
    await page.goto(`${gw.url}/_tollgate/portal`);
    expect(await page.locator('#sign-in').count()).toBe(1);
    await screenshot(page, `${backend}-portal-sign-in`);
  });
});
