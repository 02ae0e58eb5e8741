// The pages with two gateways on one PostgreSQL: whichever node a browser's next request reaches
// behind a load balancer, the page is the same. A portal session opened on one node is good on the
// other (its cookie is signed with the database's secret); a signup paid through a webhook that
// reached one node is shown, once, by whichever serves the success page; the console of one node
// shows what the other's console did.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { ADMIN_TOKEN, startAdminBackend } from './admin-client.ts';
import type { BackendGateway } from './backend-gateway.ts';
import { billingEnv, billingFile, postWebhook, startFakeStripe, stripeEvent, type FakeStripe } from './fake-stripe.ts';
import { rawRequest, startUpstream, type RawResponse, type Upstream } from './helpers.ts';
import { operator, seedCustomer } from './ui-support.ts';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const post = (url: string, fields: Record<string, string>, cookie?: string) =>
  rawRequest(url, { method: 'POST', headers: { ...FORM, ...(cookie && { cookie }) }, body: new URLSearchParams(fields).toString() });
const cookieOf = (res: RawResponse) => String(res.headers['set-cookie']?.[0] ?? '').split(';', 1)[0];
const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)![1];

describe('the pages with two gateways on one PostgreSQL', () => {
  let stripe: FakeStripe;
  let up: Upstream;
  let a: BackendGateway & { adminUrl: string };
  let b: App;
  let bUrl: string;
  let bAdminUrl: string;

  beforeAll(async () => {
    [stripe, up] = await Promise.all([startFakeStripe(), startUpstream()]);
    const env = { ...billingEnv(stripe), SIGNUP: 'checkout' };
    a = await startAdminBackend('postgresql', { env, file: billingFile(up.url) });
    b = await createApp(loadConfig({ LOG_LEVEL: 'silent', ...env, ADMIN_TOKEN, DATABASE_URL: a.config.databaseUrl!, TOLLGATE_CONFIG: a.config.source }));
    bUrl = `http://127.0.0.1:${await b.listen(0, '127.0.0.1')}`;
    bAdminUrl = `http://127.0.0.1:${await b.admin!.listen(0, '127.0.0.1')}`;
  });

  afterAll(async () => {
    await b?.close();
    await a?.close();
    await up?.close();
    await stripe?.close();
  });

  it('a portal session opened on one node is good on the other', async () => {
    const customer = await seedCustomer(operator(a), 'free', 'nodes@example.com');
    const signedIn = await post(`${a.url}/_tollgate/portal/sign-in`, { key: customer.key });
    expect(signedIn.status).toBe(303);
    const page = await rawRequest(`${bUrl}/_tollgate/portal`, { headers: { cookie: cookieOf(signedIn) } });
    expect(page.status).toBe(200);
    expect(page.body).toContain('Your account');
    expect(page.body).toContain(customer.keyId);
  });

  it('a signup started on one node, paid through a webhook to the other, shows its key once on either', async () => {
    const started = await post(`${a.url}/_tollgate/signup`, { email: 'two-nodes@example.com', amount: '10.00' });
    expect(started.status).toBe(303);
    const sessionId = new URL(started.headers.location!).pathname.split('/').at(-1)!;
    expect((await rawRequest(`${bUrl}/_tollgate/signup/done?session_id=${sessionId}`)).status).toBe(202);
    expect((await postWebhook(bUrl, stripeEvent('checkout.session.completed', stripe.completed(sessionId)))).status).toBe(200);
    const shown = await rawRequest(`${a.url}/_tollgate/signup/done?session_id=${sessionId}`);
    expect(shown.status).toBe(200);
    const key = /id="new-key">([^<]+)</.exec(shown.body)![1];
    expect((await rawRequest(`${bUrl}/api/x`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    const again = await rawRequest(`${bUrl}/_tollgate/signup/done?session_id=${sessionId}`);
    expect(again.status).toBe(410);
    expect(again.body).not.toContain(key);
  });

  it('the console of one node shows at once what the console of the other did', async () => {
    const customer = await seedCustomer(operator(a), 'free', 'console-nodes@example.com');
    const signIn = async (adminUrl: string) => {
      const cookie = cookieOf(await post(`${adminUrl}/sign-in`, { token: ADMIN_TOKEN }));
      return { cookie, csrf: csrfOf((await rawRequest(`${adminUrl}/accounts`, { headers: { cookie } })).body) };
    };
    const onB = await signIn(bAdminUrl);
    expect((await post(`${bAdminUrl}/accounts/${customer.id}/credits`, { csrf: onB.csrf, direction: 'grant', amount: '4.00', reason: 'from b' }, onB.cookie)).status).toBe(303);
    expect((await post(`${bAdminUrl}/accounts/${customer.id}/plan`, { csrf: onB.csrf, plan: 'pro' }, onB.cookie)).status).toBe(303);
    const onA = await signIn(a.adminUrl);
    const page = await rawRequest(`${a.adminUrl}/accounts/${customer.id}`, { headers: { cookie: onA.cookie } });
    expect(page.body).toMatch(/id="balance">\$4\.00</);
    expect(page.body).toMatch(/id="plan">pro</);
    expect(page.body).toContain('from b');
  });
});
