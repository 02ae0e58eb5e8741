// The console's and the portal's refusals over plain HTTP, on the SQLite file and on PostgreSQL: wrong tokens and keys, expired and
// tampered sessions, forged, missing or foreign CSRF tokens, cross-origin POSTs, another
// customer's key id; the security headers of every page; cookies marked Secure behind TLS; and the
// admin API as it was for every path that is not the console's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operations } from '../src/admin/operations.ts';
import { SessionSigner } from '../src/ui/session.ts';
import { ADMIN_TOKEN, OTHER_TOKEN, startAdminBackend } from './admin-client.ts';
import { BACKENDS, type BackendGateway } from './backend-gateway.ts';
import { bearer, checkProblem, fakeClock, rawRequest, startUpstream, type RawResponse, type Upstream } from './helpers.ts';
import { operator, seedCustomer, value } from './ui-support.ts';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const clock = fakeClock(Date.now());
let up: Upstream;

beforeAll(async () => {
  up = await startUpstream();
});

afterAll(async () => {
  await up?.close();
});

const cookieOf = (res: RawResponse) => String(res.headers['set-cookie']?.[0] ?? '').split(';', 1)[0];
const post = (url: string, cookie: string | undefined, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  rawRequest(url, { method: 'POST', headers: { ...FORM, ...(cookie && { cookie }), ...headers }, body: new URLSearchParams(fields).toString() });
const get = (url: string, cookie?: string, headers: Record<string, string> = {}) => rawRequest(url, { headers: { ...(cookie && { cookie }), ...headers } });
/** The CSRF token in a page's forms. */
const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)![1];

describe.each(BACKENDS)('on $backend', ({ backend }) => {
  let gw: BackendGateway & { adminUrl: string };
  let ops: Operations;

  beforeAll(async () => {
    gw = await startAdminBackend(backend, { env: { UPSTREAM_URL: up.url, TRUST_PROXY: 'loopback' }, file: {}, now: clock.now });
    ops = operator(gw, clock.now);
  });

  afterAll(async () => {
    await gw?.close();
  });

  async function consoleSession(token = ADMIN_TOKEN): Promise<{ cookie: string; csrf: string }> {
    const res = await post(`${gw.adminUrl}/sign-in`, undefined, { token });
    expect(res.status).toBe(303);
    const cookie = cookieOf(res);
    return { cookie, csrf: csrfOf((await get(`${gw.adminUrl}/accounts`, cookie)).body) };
  }

  async function portalSession(key: string): Promise<{ cookie: string; csrf: string }> {
    const res = await post(`${gw.url}/_tollgate/portal/sign-in`, undefined, { key });
    expect(res.status).toBe(303);
    const cookie = cookieOf(res);
    return { cookie, csrf: csrfOf((await get(`${gw.url}/_tollgate/portal`, cookie)).body) };
  }

  describe('console refusals', () => {
    it('a wrong token gets 401 and no cookie; the token is never echoed', async () => {
      const res = await post(`${gw.adminUrl}/sign-in`, undefined, { token: `${ADMIN_TOKEN}x` });
      expect(res.status).toBe(401);
      expect(res.headers['set-cookie']).toBeUndefined();
      expect(res.body).toContain('not an admin token');
      expect(res.body).not.toContain(ADMIN_TOKEN);
    });

    it('signs in with either token of a rotation; the cookie is HttpOnly, SameSite=Strict, not Secure over plain HTTP, Secure behind a TLS proxy', async () => {
      const plain = await post(`${gw.adminUrl}/sign-in`, undefined, { token: OTHER_TOKEN });
      expect(plain.headers['set-cookie']![0]).toMatch(/^tg_console=[^;]+; Path=\/; Max-Age=43200; HttpOnly; SameSite=Strict$/);
      // The tests' client is on loopback, which TRUST_PROXY trusts here: its X-Forwarded-Proto is believed.
      const tls = await post(`${gw.adminUrl}/sign-in`, undefined, { token: ADMIN_TOKEN }, { 'x-forwarded-proto': 'https' });
      expect(tls.headers['set-cookie']![0]).toMatch(/; HttpOnly; SameSite=Strict; Secure$/);
    });

    it('a session expires after 12 hours: pages send to sign-in, a POST is refused', async () => {
      const { cookie, csrf } = await consoleSession();
      const account = await seedCustomer(ops);
      clock.advance(12 * 3600_000 + 1);
      try {
        const page = await get(`${gw.adminUrl}/accounts`, cookie);
        expect(page.status).toBe(303);
        expect(page.headers.location).toBe('/sign-in');
        const res = await post(`${gw.adminUrl}/accounts/${account.id}/credits`, cookie, { csrf, direction: 'grant', amount: '5.00', reason: 'x' });
        expect(res.status).toBe(401);
        expect(await gw.balance(account.id)).toBe(0);
      } finally {
        clock.advance(-(12 * 3600_000 + 1));
      }
    });

    it('a tampered cookie, one signed with another key, and a portal cookie are no console session', async () => {
      const { cookie } = await consoleSession();
      const [name, value] = cookie.split('=');
      const [body, mac] = value.split('.');
      const claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
      const longer = Buffer.from(JSON.stringify({ ...claims, exp: Date.now() + 1e12 })).toString('base64url');
      const foreign = new SessionSigner(Buffer.alloc(32, 7), 'console', 3600_000).issue(claims.subject as string, clock.now()).cookie;
      for (const forged of [`${name}=${longer}.${mac}`, `${name}=${body}.${mac.slice(0, -2)}${mac.endsWith('xx') ? 'yy' : 'xx'}`, `${name}=${foreign}`, `${name}=garbage`, `${name}=${body}`]) {
        const res = await get(`${gw.adminUrl}/`, forged);
        expect(res.status, forged).toBe(303);
        expect(res.headers.location).toBe('/sign-in');
      }
      const account = await seedCustomer(ops);
      const portal = await portalSession(account.key);
      expect((await get(`${gw.adminUrl}/accounts/${account.id}`, portal.cookie.replace('tg_portal', 'tg_console'))).status).toBe(303);
    });

    it('a forged, missing or other session\u2019s CSRF token and a cross-origin POST are refused with 403, and change nothing', async () => {
      const { cookie, csrf } = await consoleSession();
      const other = await consoleSession();
      const account = await seedCustomer(ops);
      const url = `${gw.adminUrl}/accounts/${account.id}/credits`;
      const fields = { direction: 'grant', amount: '5.00', reason: 'csrf test' };
      const refusals = [
        await post(url, cookie, { ...fields, csrf: `${csrf[0] === 'A' ? 'B' : 'A'}${csrf.slice(1)}` }),
        await post(url, cookie, { ...fields, csrf: '' }),
        await post(url, cookie, fields),
        await post(url, cookie, { ...fields, csrf: other.csrf }),
        await post(url, cookie, { ...fields, csrf }, { origin: 'http://evil.example' }),
        await post(url, cookie, { ...fields, csrf }, { origin: 'null' }),
        await post(url, cookie, { ...fields, csrf }, { 'sec-fetch-site': 'cross-site' }),
        await post(url, cookie, { ...fields, csrf }, { 'sec-fetch-site': 'same-site' }),
      ];
      expect(refusals.map((r) => r.status)).toEqual(Array(refusals.length).fill(403));
      expect(await gw.balance(account.id)).toBe(0);
      expect(await value(gw, "SELECT count(*) FROM audit_log WHERE action = 'credits.grant' AND account_id = ?", account.id)).toBe(0);
      // The same form with its token from this origin works.
      const ok = await post(url, cookie, { ...fields, csrf }, { origin: gw.adminUrl, 'sec-fetch-site': 'same-origin' });
      expect(ok.status).toBe(303);
      expect(await gw.balance(account.id)).toBe(5_000_000);
    });

    it('the sign-in form is rate-limited per client address: the 11th attempt in a minute gets 429 with Retry-After', async () => {
      clock.advance(120_000);
      const statuses: number[] = [];
      for (let i = 0; i < 11; i++) statuses.push((await post(`${gw.adminUrl}/sign-in`, undefined, { token: 'wrong-wrong-wrong-wrong' })).status);
      expect(statuses).toEqual([...Array(10).fill(401), 429]);
      const last = await post(`${gw.adminUrl}/sign-in`, undefined, { token: ADMIN_TOKEN });
      expect(last.status).toBe(429);
      expect(Number(last.headers['retry-after'])).toBeGreaterThan(0);
      clock.advance(61_000);
      expect((await post(`${gw.adminUrl}/sign-in`, undefined, { token: ADMIN_TOKEN })).status).toBe(303);
    });

    it('data is escaped: an account name or email with markup shows as text', async () => {
      const { cookie } = await consoleSession();
      const account = await ops.createAccount({ email: 'x"><script>alert(1)</script>@example.com', name: '<img src=x onerror=alert(1)>', plan: 'default' });
      const page = await get(`${gw.adminUrl}/accounts/${account.id}`, cookie);
      expect(page.status).toBe(200);
      expect(page.body).not.toContain('<script>alert(1)');
      expect(page.body).toContain('x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@example.com');
      expect((await get(`${gw.adminUrl}/accounts/acct_nothing`, cookie)).status).toBe(404);
    });

    it('every page carries a strict CSP, nosniff, no-referrer and no-store; the stylesheet is cached for a year', async () => {
      const { cookie } = await consoleSession();
      const account = await seedCustomer(ops);
      const portal = await portalSession(account.key);
      const pages = [
        await get(`${gw.adminUrl}/sign-in`), await get(`${gw.adminUrl}/`, cookie), await get(`${gw.adminUrl}/accounts/${account.id}`, cookie),
        await get(`${gw.adminUrl}/webhooks`, cookie), await get(`${gw.adminUrl}/config`, cookie), await get(`${gw.url}/_tollgate/portal`),
        await get(`${gw.url}/_tollgate/portal`, portal.cookie),
      ];
      for (const p of pages) {
        expect(p.status).toBe(200);
        expect(p.headers['content-security-policy']).toMatch(/^default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'[^;]*; frame-ancestors 'none'; base-uri 'none'$/);
        expect(p.headers).toMatchObject({ 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store', 'content-type': 'text/html; charset=utf-8' });
        // Nothing to fetch elsewhere, no script.
        expect(p.body).not.toMatch(/<script|https?:\/\/(?!127\.0\.0\.1)[a-z]/i);
      }
      const href = /href="(\/assets\/style-[0-9a-f]{12}\.css)"/.exec(pages[0].body)![1];
      const css = await get(gw.adminUrl + href);
      expect(css.status).toBe(200);
      expect(css.headers).toMatchObject({ 'content-type': 'text/css; charset=utf-8', 'cache-control': 'public, max-age=31536000, immutable' });
      expect((await get(`${gw.url}/_tollgate${href}`)).body).toBe(css.body);
      expect((await get(`${gw.adminUrl}/assets/style-000000000000.css`)).status).toBe(404);
    });

    it('the admin API is unchanged beside the console: any other path without a token is its 401', async () => {
      checkProblem(await get(`${gw.adminUrl}/nothing-here`), 401, 'admin-unauthorized');
      checkProblem(await get(`${gw.adminUrl}/admin/v1/accounts`), 401, 'admin-unauthorized');
      expect((await rawRequest(`${gw.adminUrl}/admin/v1/accounts`, { headers: bearer(ADMIN_TOKEN) })).status).toBe(200);
      // The console's session is not an admin API credential.
      const { cookie } = await consoleSession();
      checkProblem(await get(`${gw.adminUrl}/admin/v1/accounts`, cookie), 401, 'admin-unauthorized');
    });
  });

  describe('portal refusals', () => {
    it('a wrong, revoked or expired key gets 401 and no cookie', async () => {
      const { id, keyId, key } = await seedCustomer(ops);
      const expiring = await ops.createKey({ accountId: id, expiresAt: new Date(clock.now() + 1000).toISOString() });
      clock.advance(2000);
      await ops.revokeKey(keyId);
      for (const k of ['tg_wrong', key, expiring.key, '']) {
        const res = await post(`${gw.url}/_tollgate/portal/sign-in`, undefined, { key: k });
        expect(res.status).toBe(401);
        expect(res.headers['set-cookie']).toBeUndefined();
      }
    });

    it('signs in behind a trusted TLS proxy with a Secure cookie scoped to the portal', async () => {
      const { key } = await seedCustomer(ops);
      const plain = await post(`${gw.url}/_tollgate/portal/sign-in`, undefined, { key });
      expect(plain.headers['set-cookie']![0]).toMatch(/^tg_portal=[^;]+; Path=\/_tollgate\/portal; Max-Age=1800; HttpOnly; SameSite=Strict$/);
      const tls = await post(`${gw.url}/_tollgate/portal/sign-in`, undefined, { key }, { 'x-forwarded-proto': 'https' });
      expect(tls.headers['set-cookie']![0]).toMatch(/; SameSite=Strict; Secure$/);
    });

    it('another customer\u2019s key id in a URL is 404, as a key that does not exist; nothing is revoked', async () => {
      const mine = await seedCustomer(ops);
      const theirs = await seedCustomer(ops);
      const { cookie, csrf } = await portalSession(mine.key);
      for (const id of [theirs.keyId, 'key_nothing']) {
        const res = await post(`${gw.url}/_tollgate/portal/keys/${id}/revoke`, cookie, { csrf });
        expect(res.status).toBe(404);
        expect(res.body).not.toContain(theirs.id);
      }
      expect((await ops.key(theirs.keyId)).revokedAt).toBeNull();
      expect((await rawRequest(`${gw.url}/api/x`, { headers: bearer(theirs.key) })).status).toBe(200);
      // Account ids are not taken from the URL at all: the session says whose page it is.
      const page = await get(`${gw.url}/_tollgate/portal?account=${theirs.id}`, cookie);
      expect(page.body).not.toContain(theirs.keyId);
      expect((await get(`${gw.url}/_tollgate/portal/accounts/${theirs.id}`, cookie)).status).toBe(404);
    });

    it('without Stripe there are no billing buttons, and their forms answer 404', async () => {
      const { cookie, csrf } = await portalSession((await seedCustomer(ops)).key);
      const page = await get(`${gw.url}/_tollgate/portal`, cookie);
      expect(page.body).not.toContain('buy-credits');
      expect(page.body).not.toContain('manage-billing');
      expect((await post(`${gw.url}/_tollgate/portal/buy`, cookie, { csrf, amount: '10.00' })).status).toBe(404);
      expect((await post(`${gw.url}/_tollgate/portal/billing`, cookie, { csrf })).status).toBe(404);
    });

    it('a session ends after 30 minutes; a tampered one is none; CSRF and origin are checked on every POST', async () => {
      const account = await seedCustomer(ops);
      const { cookie, csrf } = await portalSession(account.key);
      const keys = () => value(gw, 'SELECT count(*) FROM api_keys WHERE account_id = ?', account.id);
      const url = `${gw.url}/_tollgate/portal/keys`;
      const refused = [
        await post(url, cookie, { csrf: 'forged' }), await post(url, cookie, {}),
        await post(url, cookie, { csrf }, { origin: 'https://evil.example' }), await post(url, cookie, { csrf }, { 'sec-fetch-site': 'cross-site' }),
      ];
      expect(refused.map((r) => r.status)).toEqual([403, 403, 403, 403]);
      const [name, signed] = cookie.split('=');
      const tampered = `${name}=${signed.replace(/^./, (c) => (c === 'e' ? 'f' : 'e'))}`;
      expect((await post(url, tampered, { csrf })).status).toBe(401);
      expect(await keys()).toBe(1);
      expect((await post(url, cookie, { csrf })).status).toBe(200);
      expect(await keys()).toBe(2);
      clock.advance(30 * 60_000 + 1);
      expect((await post(url, cookie, { csrf })).status).toBe(401);
      const page = await get(`${gw.url}/_tollgate/portal`, cookie);
      expect(page.body).toContain('id="sign-in"');
      expect(await keys()).toBe(2);
    });
  });
});
