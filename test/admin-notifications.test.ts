// Notification deliveries and an account's alert threshold through the admin API (and the CLI
// with --url, which calls it): a real webhook receiver that refuses, the list newest first in
// pages and filtered, a resend that the receiver then takes (audited), and the threshold the
// running gateway hears from its next request. Every answer is checked against the OpenAPI
// document by the admin client.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertsDoc, AuditDoc, DeliveryDoc, Page } from '../src/admin/shapes.ts';
import { ADMIN_TOKEN, problem, startAdminGateway, type AdminGateway } from './admin-client.ts';
import { parsed, runCli } from './cli-run.ts';
import { bearer, fetchText, seedAccount, startUpstream, type Upstream } from './helpers.ts';
import { deliver, startReceiver, type Receiver } from './notify-receivers.ts';

describe('admin API: notifications', () => {
  let up: Upstream;
  let receiver: Receiver;
  let gw: AdminGateway;
  beforeAll(async () => {
    up = await startUpstream();
    receiver = await startReceiver(() => 500);
    gw = await startAdminGateway({
      file: {
        routes: [{ path: '/api/', upstream: up.url, priceMicros: 1_000 }],
        plans: { free: { limits: { perSecond: 1000 }, monthlyQuota: 1, overage: 'credits', alerts: { lowBalanceMicros: 1_000_000 } } },
        notifications: { webhooks: [{ url: receiver.url, secret: `whsec_${randomBytes(32).toString('base64')}` }] },
      },
      notify: { pollMs: 3_600_000 },
    });
  });
  afterAll(async () => {
    await gw.close();
    await receiver.close();
    await up.close();
  });

  const customer = () => seedAccount(gw.admin, 'free', `n-${randomBytes(4).toString('hex')}@example.com`);

  it('lists deliveries newest first, in pages, by account and failed; a resend is taken once and audited', async () => {
    const a = customer();
    gw.admin.grantCredits(a.account.id, 2_000_000, 'first');
    gw.admin.grantCredits(a.account.id, 3_000_000, 'second');
    await deliver(gw);
    const all = (await gw.api.get<Page<DeliveryDoc>>(`/admin/v1/notifications?account=${a.account.id}`)).body;
    expect(all.data.map((d) => [d.type, d.status, d.attempts, d.lastStatus])).toEqual([
      ['credits.added', 'pending', 1, 500], ['credits.added', 'pending', 1, 500],
    ]);
    expect(all.data[0].id).toBeGreaterThan(all.data[1].id);
    const first = (await gw.api.get<Page<DeliveryDoc>>(`/admin/v1/notifications?account=${a.account.id}&limit=1`)).body;
    expect(first).toEqual({ data: [all.data[0]], next: String(all.data[0].id) });
    expect((await gw.api.get<Page<DeliveryDoc>>(`/admin/v1/notifications?account=${a.account.id}&limit=1&after=${first.next}`)).body)
      .toEqual({ data: [all.data[1]], next: null });
    expect((await gw.api.get<Page<DeliveryDoc>>(`/admin/v1/notifications?account=${a.account.id}&failed=true`)).body.data).toEqual([]);

    // Given up (a day of 500s): listed as failed; a resend gives it a fresh day and the receiver takes it.
    const hook = all.data[1];
    gw.db.prepare(`UPDATE notification_deliveries SET status = 'failed', next_attempt_at = NULL WHERE id = ?`).run(hook.id);
    expect((await gw.api.get<Page<DeliveryDoc>>('/admin/v1/notifications?failed=true')).body.data.map((d) => d.id)).toContain(hook.id);
    receiver.answer = () => 200;
    const resent = (await gw.api.post<DeliveryDoc>(`/admin/v1/notifications/${hook.id}/resend`)).body;
    expect(resent).toMatchObject({ id: hook.id, eventId: hook.eventId, status: 'pending' });
    await deliver(gw);
    expect(receiver.accepted().filter((h) => h.json.id === hook.eventId)).toHaveLength(1);
    await deliver(gw);
    expect(receiver.accepted().filter((h) => h.json.id === hook.eventId)).toHaveLength(1);
    const audit = (await gw.api.get<Page<AuditDoc>>(`/admin/v1/audit?account=${a.account.id}`)).body.data;
    expect(audit[0]).toMatchObject({ action: 'notification.resend', target: String(hook.id), change: { eventId: hook.eventId, channel: 'webhook' } });

    // The CLI with --url answers the same page.
    const env = { TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN };
    const viaCli = parsed<Page<DeliveryDoc>>(await runCli(['notifications', 'list', '--account', a.account.id, '--url', gw.adminUrl, '--json'], env));
    expect(viaCli).toEqual((await gw.api.get<Page<DeliveryDoc>>(`/admin/v1/notifications?account=${a.account.id}`)).body);
  });

  it('refuses what it cannot do, naming why, and changes nothing', async () => {
    const a = customer();
    expect(problem(await gw.api.get('/admin/v1/notifications?account=acct_nobody'), 404, 'not-found').detail).toMatch(/acct_nobody/);
    expect(problem(await gw.api.get('/admin/v1/notifications?failed=maybe'), 422, 'invalid-input').detail).toMatch(/failed: one of true, false/);
    expect(problem(await gw.api.get('/admin/v1/notifications?after=abc'), 422, 'invalid-input').detail).toMatch(/after: not a delivery cursor/);
    expect(problem(await gw.api.get('/admin/v1/notifications?status=failed'), 422, 'invalid-input').detail).toMatch(/unknown query parameter "status"/);
    expect(problem(await gw.api.post('/admin/v1/notifications/999999/resend'), 404, 'not-found').detail).toMatch(/delivery 999999/);
    expect(problem(await gw.api.post('/admin/v1/notifications/x1/resend'), 422, 'invalid-input').detail).toMatch(/not a delivery id/);
    const alerts = `/admin/v1/accounts/${a.account.id}/alerts`;
    expect(problem(await gw.api.patch(alerts, { lowBalanceMicros: -1 }), 422, 'invalid-input').detail).toMatch(/lowBalanceMicros/);
    expect(problem(await gw.api.patch(alerts, { lowBalanceMicros: '5' }), 422, 'invalid-input').detail).toMatch(/lowBalanceMicros/);
    expect(problem(await gw.api.patch(alerts, {}), 422, 'invalid-input').detail).toMatch(/lowBalanceMicros: required/);
    expect(problem(await gw.api.patch(alerts, { lowBalanceMicros: 1, other: 1 }), 422, 'invalid-input').detail).toMatch(/unknown field "other"/);
    expect(problem(await gw.api.patch('/admin/v1/accounts/acct_nobody/alerts', { lowBalanceMicros: 1 }), 404, 'not-found').detail).toMatch(/acct_nobody/);
    expect((await gw.api.get<AlertsDoc>(alerts)).body).toEqual({ id: a.account.id, lowBalanceMicros: null, lowBalance: null });
  });

  it('an account\'s own threshold is used by the running gateway from its next request; null goes back to the plan\'s', async () => {
    const a = customer();
    gw.admin.grantCredits(a.account.id, 10_000_000, 'start');
    const alerts = `/admin/v1/accounts/${a.account.id}/alerts`;
    expect((await gw.api.patch<AlertsDoc>(alerts, { lowBalanceMicros: 9_999_500 })).body).toEqual({ id: a.account.id, lowBalanceMicros: 9_999_500, lowBalance: '9.9995' });
    expect((await gw.api.get<AlertsDoc>(alerts)).body.lowBalanceMicros).toBe(9_999_500);
    const lows = () => gw.db.prepare(`SELECT count(*) FROM notifications WHERE account_id = ? AND type = 'balance.low'`).pluck().get(a.account.id) as number;
    // One request in the quota, then $0.001 a request from $10: the plan's $1 is far away, the account's $9.9995 the first paid one.
    const get = async () => expect((await fetchText(`${gw.url}/api/x`, { headers: bearer(a.key) })).status).toBe(200);
    await get();
    gw.flush();
    expect(lows()).toBe(0);
    await get();
    gw.flush();
    expect(lows()).toBe(1);
    expect((await gw.api.patch<AlertsDoc>(alerts, { lowBalanceMicros: null })).body.lowBalanceMicros).toBeNull();
    const audit = (await gw.api.get<Page<AuditDoc>>(`/admin/v1/audit?account=${a.account.id}`)).body.data;
    expect(audit.filter((e) => e.action === 'account.alerts').map((e) => e.change)).toEqual([
      { lowBalanceMicros: { from: 9_999_500, to: null } }, { lowBalanceMicros: { from: null, to: 9_999_500 } },
    ]);
  });
});
