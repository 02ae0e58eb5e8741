// The operator console in a real headless Chromium, on the SQLite file and on PostgreSQL: sign in
// with an admin token, every page (overview, accounts, an account, webhooks, configuration), and
// every action through the forms — create, rotate and revoke a key, grant and deduct credits,
// change plan, suspend and reactivate, replay a failed webhook — each audited under the console's
// name; and a change the CLI makes from outside shows on the next page.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operations } from '../src/admin/operations.ts';
import { fingerprint } from '../src/admin/auth.ts';
import { ADMIN_TOKEN, startAdminBackend } from './admin-client.ts';
import { BACKENDS, type BackendGateway } from './backend-gateway.ts';
import { parsed, runCli } from './cli-run.ts';
import { billingEnv, billingFile, fixture, paidCheckout, postWebhook, startFakeStripe, stripeEvent, type FakeStripe } from './fake-stripe.ts';
import { bearer, startUpstream, type Upstream } from './helpers.ts';
import { chartPoints, launch, newTab, operator, rows, screenshot, seedCustomer, today, value, written, type Tab } from './ui-support.ts';

let browser: Browser;
let stripe: FakeStripe;
let up: Upstream;
const CONSOLE_ACTOR = `console:${fingerprint(ADMIN_TOKEN)}`;

beforeAll(async () => {
  [browser, stripe, up] = await Promise.all([launch(), startFakeStripe(), startUpstream()]);
});

afterAll(async () => {
  await browser?.close();
  await up?.close();
  await stripe?.close();
});

describe.each(BACKENDS)('operator console in Chromium on $backend', { timeout: 20_000 }, ({ backend }) => {
  let gw: BackendGateway & { adminUrl: string };
  let ops: Operations;
  let tab: Tab;

  beforeAll(async () => {
    gw = await startAdminBackend(backend, { env: billingEnv(stripe), file: billingFile(up.url) });
    ops = operator(gw);
    tab = await newTab(browser);
  });

  afterAll(async () => {
    await tab?.context.close();
    await gw?.close();
  });

  const audit = (action: string) => rows<{ actor: string; target: string; change: string }>(gw, 'SELECT actor, target, change FROM audit_log WHERE action = ? ORDER BY id', action);

  it('a wrong token is refused with a clear message; the right one opens the overview; the token is in no page or URL', async () => {
    const { page } = tab;
    await page.goto(gw.adminUrl + '/');
    expect(new URL(page.url()).pathname).toBe('/sign-in');
    await page.fill('input[name=token]', 'not-the-admin-token-at-all');
    const refused = await Promise.all([page.waitForNavigation(), page.click('#sign-in button')]);
    expect(refused[0]!.status()).toBe(401);
    await expect.poll(() => page.textContent('.error')).toMatch(/not an admin token/);
    await page.fill('input[name=token]', ADMIN_TOKEN);
    await Promise.all([page.waitForNavigation(), page.click('#sign-in button')]);
    expect(new URL(page.url()).pathname).toBe('/');
    expect(await page.textContent('h1')).toBe('Overview');
    expect(await page.content()).not.toContain(ADMIN_TOKEN);
    expect(page.url()).not.toContain(ADMIN_TOKEN);
    const [cookie] = await tab.context.cookies();
    expect(cookie).toMatchObject({ name: 'tg_console', httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(cookie.value).not.toContain(ADMIN_TOKEN);
  });

  it('the overview charts today\u2019s requests, charges and Stripe revenue as the data says; top accounts and failed webhooks are listed', async () => {
    const a = await seedCustomer(ops, 'free', 'top@example.com');
    await ops.grantCredits(a.id, { amountMicros: 5_000_000, reason: 'start' });
    for (let i = 0; i < 7; i++) expect((await fetch(`${gw.url}/api/x`, { headers: bearer(a.key) })).status).toBe(200);
    // A paid $25 checkout and a paid $49 subscription invoice (sent twice, counted once): Stripe revenue.
    const session = await paidCheckout(stripe, gw.url, a.key, { cents: 2500 });
    expect((await postWebhook(gw.url, stripeEvent('checkout.session.completed', session))).status).toBe(200);
    await gw.billing.linkCustomer(a.id, 'cus_overview');
    const paid = { ...fixture<{ object: Record<string, unknown> }>('pay.invoice.payment_failed.data.json').object,
      id: 'in_overview', customer: 'cus_overview', status: 'paid', paid: true, amount_paid: 4900, status_transitions: { paid_at: Math.floor(Date.now() / 1000) } };
    for (let i = 0; i < 2; i++) expect((await postWebhook(gw.url, stripeEvent('invoice.paid', paid, { apiVersion: '2025-03-31.basil' }))).status).toBe(200);
    // A failed one: a top-up past the largest balance the schema allows violates its CHECK.
    const whale = await seedCustomer(ops, 'free', 'whale@example.com');
    await ops.grantCredits(whale.id, { amountMicros: Number.MAX_SAFE_INTEGER - 10_000_000, reason: 'whale' });
    const failed = stripeEvent('checkout.session.completed', await paidCheckout(stripe, gw.url, whale.key, { cents: 2500 }));
    expect((await postWebhook(gw.url, failed)).status).toBe(500);
    await written(gw);

    const { page } = tab;
    await page.goto(gw.adminUrl + '/');
    const requests = await chartPoints(page, 'chart-requests');
    expect(requests).toHaveLength(30);
    expect(requests.at(-1)).toEqual({ day: today(), value: 7 });
    expect(requests.slice(0, -1).every((p) => p.value === 0)).toBe(true);
    // 5 of the 7 within the free plan's quota; the 2 past it are charged $0.001 each.
    expect((await chartPoints(page, 'chart-charged')).at(-1)).toEqual({ day: today(), value: 2000 });
    expect((await chartPoints(page, 'chart-revenue')).at(-1)).toEqual({ day: today(), value: 74_000_000 });
    expect(await page.textContent('#total-revenue')).toBe('$74.00');
    expect(await page.textContent('#top-accounts tbody tr:first-child')).toContain(a.id);
    expect(await page.textContent('#failed-webhooks')).toContain(failed.id as string);
    expect(await page.locator('svg#chart-requests rect.bar title').last().textContent()).toBe(`${today()}: 7`);
    await screenshot(page, `${backend}-console-overview`);
  });

  it('accounts: search by email finds the account; the list pages; the account page shows plan, balance, ledger, keys, usage and recent requests', async () => {
    for (let i = 0; i < 26; i++) await seedCustomer(ops, 'free', `bulk${i}@example.com`);
    const { page } = tab;
    await page.goto(gw.adminUrl + '/');
    await Promise.all([page.waitForNavigation(), page.click('nav a[href="/accounts"]')]);
    expect(await page.locator('#accounts tbody tr').count()).toBe(25);
    await Promise.all([page.waitForNavigation(), page.click('#next-page')]);
    expect(await page.locator('#accounts tbody tr').count()).toBeGreaterThan(0);
    await page.fill('input[name=q]', 'TOP@example.com');
    await Promise.all([page.waitForNavigation(), page.click('#account-search button')]);
    expect(await page.locator('#accounts tbody tr').count()).toBe(1);
    await Promise.all([page.waitForNavigation(), page.click('#accounts tbody a')]);
    expect(await page.textContent('h1')).toMatch(/^Account acct_/);
    expect(await page.textContent('#plan')).toBe('free');
    expect(await page.textContent('#balance')).toBe('$29.998');
    expect((await chartPoints(page, 'chart-requests')).at(-1)).toEqual({ day: today(), value: 7 });
    expect((await chartPoints(page, 'chart-cost')).at(-1)).toEqual({ day: today(), value: 2000 });
    expect(await page.locator('#recent tbody tr').count()).toBe(7);
    expect(await page.textContent('#ledger')).toContain('purchase');
    expect(await page.locator('#keys tbody tr').count()).toBe(1);
    await screenshot(page, `${backend}-console-account`);
  });

  it('creates a key (shown once), rotates and revokes keys, grants and deducts credits, changes plan, suspends and reactivates: all audited', async () => {
    const account = await seedCustomer(ops, 'free', 'acts@example.com');
    const { page } = tab;
    const accountUrl = `${gw.adminUrl}/accounts/${account.id}`;
    await page.goto(accountUrl);

    await page.fill('input[name=name]', 'from the console');
    await Promise.all([page.waitForNavigation(), page.click('#create-key')]);
    const key = (await page.textContent('#new-key'))!.trim();
    expect(key).toMatch(/^tg_/);
    expect((await fetch(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
    await page.goto(accountUrl);
    expect(await page.content()).not.toContain(key);
    expect(await page.locator('#keys tbody tr').count()).toBe(2);

    // Rotate the new key: a fresh one is shown once, the old one gets an expiry.
    await Promise.all([page.waitForNavigation(), page.locator('#keys tbody tr').last().locator('button.rotate').click()]);
    const rotated = (await page.textContent('#new-key'))!.trim();
    expect(rotated).not.toBe(key);
    expect((await fetch(`${gw.url}/api/x`, { headers: bearer(rotated) })).status).toBe(200);
    await page.goto(accountUrl);

    // Revoke the first key of the list.
    const firstId = await page.locator('#keys tbody tr').first().getAttribute('data-key');
    await Promise.all([page.waitForNavigation(), page.locator('#keys tbody tr').first().locator('button.revoke').click()]);
    expect(await page.textContent('.notice')).toBe('The key was revoked.');
    expect(await page.textContent(`#keys tr[data-key="${firstId}"]`)).toContain('revoked');

    await page.selectOption('select[name=direction]', 'grant');
    await page.fill('input[name=amount]', '12.50');
    await page.fill('input[name=reason]', 'goodwill');
    await Promise.all([page.waitForNavigation(), page.click('#move-credits')]);
    expect(await page.textContent('#balance')).toBe('$12.50');
    await page.selectOption('select[name=direction]', 'deduct');
    await page.fill('input[name=amount]', '2.50');
    await page.fill('input[name=reason]', 'correction');
    await Promise.all([page.waitForNavigation(), page.click('#move-credits')]);
    expect(await page.textContent('#balance')).toBe('$10.00');
    expect(await gw.balance(account.id)).toBe(10_000_000);
    // More than the balance: refused, nothing taken.
    await page.selectOption('select[name=direction]', 'deduct');
    await page.fill('input[name=amount]', '99.00');
    await page.fill('input[name=reason]', 'too much');
    const [tooMuch] = await Promise.all([page.waitForNavigation(), page.click('#move-credits')]);
    expect(tooMuch!.status()).toBe(409);
    expect(await page.textContent('.error')).toMatch(/cannot pay/);
    expect(await gw.balance(account.id)).toBe(10_000_000);
    await page.goto(accountUrl);

    await page.selectOption('select[name=plan]', 'pro');
    await Promise.all([page.waitForNavigation(), page.click('#change-plan')]);
    expect(await page.textContent('#plan')).toBe('pro');

    await Promise.all([page.waitForNavigation(), page.click('#suspend')]);
    expect(await page.textContent('#status')).toMatch(/^suspended/);
    expect((await fetch(`${gw.url}/api/x`, { headers: bearer(rotated) })).status).toBe(402);
    await Promise.all([page.waitForNavigation(), page.click('#reactivate')]);
    expect(await page.textContent('#status')).toBe('active');
    expect((await fetch(`${gw.url}/api/x`, { headers: bearer(rotated) })).status).toBe(200);
    await screenshot(page, `${backend}-console-actions`);

    const mine = async (action: string) => (await audit(action)).filter((e) => e.actor === CONSOLE_ACTOR && (e.target === account.id || JSON.parse(e.change) !== null));
    expect((await mine('key.create')).length).toBeGreaterThanOrEqual(1);
    expect(await mine('key.rotate')).toHaveLength(1);
    expect(await mine('key.revoke')).toHaveLength(1);
    expect((await audit('credits.grant')).filter((e) => e.actor === CONSOLE_ACTOR).map((e) => JSON.parse(e.change).reason)).toEqual(['goodwill']);
    expect((await audit('credits.deduct')).filter((e) => e.actor === CONSOLE_ACTOR).map((e) => JSON.parse(e.change).reason)).toEqual(['correction']);
    expect((await audit('account.update')).filter((e) => e.actor === CONSOLE_ACTOR && e.target === account.id)).toHaveLength(3);
  });

  it('webhooks: the failed event is listed with a Replay button; replaying it after the cause is gone applies it once', async () => {
    const { page } = tab;
    await page.goto(gw.adminUrl + '/');
    await Promise.all([page.waitForNavigation(), page.click('nav a[href="/webhooks"]')]);
    await Promise.all([page.waitForNavigation(), page.click('#only-failed')]);
    const row = page.locator('#events tbody tr').first();
    const eventId = (await row.getAttribute('data-event'))!;
    expect(await row.textContent()).toContain('failed');
    const whale = await value<string>(gw, "SELECT id FROM accounts WHERE email = 'whale@example.com'");
    // Still failing: the replay says so.
    await Promise.all([page.waitForNavigation(), row.locator('button.replay').click()]);
    expect(await page.textContent('.notice')).toBe('Replayed: failed.');
    expect(await gw.debit(whale, 1_000_000_000, 'operator', 'make room')).toBe(true);
    const before = await gw.balance(whale);
    await page.goto(gw.adminUrl + '/webhooks?failed=1');
    await Promise.all([page.waitForNavigation(), page.locator(`#events tr[data-event="${eventId}"] button.replay`).click()]);
    expect(await page.textContent('.notice')).toBe('Replayed: applied.');
    expect(await gw.balance(whale)).toBe(before + 25_000_000);
    const applied = page.locator(`#events tr[data-event="${eventId}"]`);
    expect(await applied.locator('.status-applied').textContent()).toBe('applied');
    expect(await applied.locator('button.replay').count()).toBe(0);
    expect((await audit('webhook.replay')).filter((e) => e.actor === CONSOLE_ACTOR && e.target === eventId).map((e) => JSON.parse(e.change).outcome)).toEqual(['failed', 'applied']);
    await page.goto(gw.adminUrl + '/webhooks');
    await screenshot(page, `${backend}-console-webhooks`);
  });

  it('a change the CLI makes from another process (on the same file or database) shows on the next page, audited as the CLI\u2019s', async () => {
    const account = await seedCustomer(ops, 'free', 'outside@example.com');
    const { page } = tab;
    await page.goto(`${gw.adminUrl}/accounts/${account.id}`);
    expect(await page.textContent('#balance')).toBe('$0.00');
    const database: Record<string, string> = backend === 'sqlite' ? { DATABASE_PATH: gw.config.databasePath } : { DATABASE_URL: gw.config.databaseUrl! };
    const env = { ...database, TOLLGATE_CONFIG: gw.config.source };
    parsed(await runCli(['credits', 'grant', account.id, '7.25', '--json'], env));
    parsed(await runCli(['accounts', 'set-plan', account.id, 'pro', '--json'], env));
    await page.goto(`${gw.adminUrl}/accounts/${account.id}`);
    expect(await page.textContent('#balance')).toBe('$7.25');
    expect(await page.textContent('#plan')).toBe('pro');
    expect(await page.textContent('#ledger')).toContain('grant');
    await page.goto(`${gw.adminUrl}/accounts?plan=pro`);
    expect(await page.textContent('#accounts')).toContain(account.id);
    expect((await audit('credits.grant')).filter((e) => e.target === account.id).map((e) => e.actor)).toEqual(['cli']);
  });

  it('configuration shows routes, plans and prices read-only; sign out ends the session', async () => {
    const { page } = tab;
    await page.goto(gw.adminUrl + '/');
    await Promise.all([page.waitForNavigation(), page.click('nav a[href="/config"]')]);
    expect(await page.textContent('#routes')).toContain('/api/');
    expect(await page.locator('#plans tbody tr').count()).toBe(Object.keys(billingFile(up.url).plans as object).length);
    expect(await page.locator('#prices tbody tr').count()).toBeGreaterThan(0);
    expect(await page.locator('main form').count()).toBe(0);
    await screenshot(page, `${backend}-console-config`);
    await Promise.all([page.waitForNavigation(), page.click('#sign-out')]);
    expect(new URL(page.url()).pathname).toBe('/sign-in');
    await page.goto(gw.adminUrl + '/accounts');
    expect(new URL(page.url()).pathname).toBe('/sign-in');
    expect(tab.outside).toEqual([]);
  });
});
