// The config file's "notifications" block and the plans' "alerts": what is accepted, and every
// problem named by its field so the gateway refuses to start with one message.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { destinations } from '../src/notify/deliverer.ts';
import { eventBody } from '../src/notify/events.ts';
import { tempDir } from './helpers.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const ROUTES = [{ path: '/api/', upstream: 'http://127.0.0.1:9' }];

function load(file: Record<string, unknown>) {
  const path = join(tempDir(), 'tollgate.config.json');
  writeFileSync(path, JSON.stringify({ routes: ROUTES, ...file }));
  return loadConfig({ TOLLGATE_CONFIG: path, DATABASE_PATH: ':memory:' });
}

function problems(file: Record<string, unknown>): string[] {
  try {
    load(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('the config was accepted');
}

describe('notifications config', () => {
  it('takes webhooks, email and per-plan alerts; a plan without "alerts" warns at 80 and 100 % of its quota only', () => {
    const config = load({
      plans: { paid: { alerts: { lowBalanceMicros: 1_000_000, quotaPercent: [50, 90, 100] } }, free: {} },
      notifications: {
        webhooks: [{ url: 'https://ops.example.com/tollgate?source=gw', secret: SECRET, events: ['balance.low', 'quota.threshold'] }],
        email: { smtp: 'smtp://user:pass@mail.example.com:587', from: 'Billing <billing@example.com>', to: 'ops@example.com', customers: true },
        publicUrl: 'https://api.example.com',
      },
    });
    const n = config.notifications!;
    expect(n.webhooks.map((w) => [w.url.href, w.events])).toEqual([['https://ops.example.com/tollgate?source=gw', ['balance.low', 'quota.threshold']]]);
    expect(n.email).toMatchObject({ from: 'Billing <billing@example.com>', to: ['ops@example.com'], customers: true, events: undefined });
    expect(n.email!.smtp.username).toBe('user');
    expect(config.plans.paid.alerts).toEqual({ lowBalanceMicros: 1_000_000, quotaPercent: [50, 90, 100] });
    expect(config.plans.free.alerts).toBeUndefined();
    expect(load({}).notifications).toBeUndefined();

    // Where an event goes: the webhook takes only its types; the operator and the account get mail.
    const event = { id: 'evt_1', type: 'credits.added' as const, accountId: 'acct_1', createdAt: 0, data: {} };
    expect(destinations(n, event, 'c@example.com')).toEqual([
      { channel: 'email', target: 'ops@example.com' }, { channel: 'email', target: 'c@example.com' },
    ]);
    expect(destinations(n, { ...event, type: 'balance.low' }, null).map((d) => d.channel)).toEqual(['webhook', 'email']);
  });

  it('names every problem', () => {
    expect(problems({
      plans: { ok: {}, p: { alerts: { lowBalanceMicros: -1, quotaPercent: [100, 80], extra: 1 } } },
      notifications: {
        webhooks: [
          { url: 'ftp://x', secret: 'whsec_short' },
          { url: 'https://a.example.com', secret: SECRET, events: ['balance.lo'] },
          { url: 'https://b.example.com', secret: SECRET },
          { url: 'https://b.example.com', secret: SECRET },
        ],
        email: { smtp: 'http://mail', from: 'nobody', customers: 'yes' },
        publicUrl: 'api.example.com',
        other: true,
      },
    })).toEqual([
      'plans.p.alerts.extra: unknown field (allowed: lowBalanceMicros, quotaPercent)',
      'plans.p.alerts.lowBalanceMicros: expected an integer ≥ 0, got -1',
      'plans.p.alerts.quotaPercent: expected ascending whole percentages from 1 to 100, such as [80, 100] ([]: none)',
      'notifications.other: unknown field (allowed: webhooks, email, publicUrl)',
      'notifications.webhooks[0].url: expected an http(s) URL, got "ftp://x"',
      'notifications.webhooks[0].secret: expected a Standard Webhooks secret, "whsec_" and the base64 of 24 to 64 random bytes (tollgate notifications secret prints a new one)',
      'notifications.webhooks[1].events: expected a non-empty array of balance.low, balance.depleted, quota.threshold, credits.added, payment.failed, subscription.changed, key.expiring',
      'notifications.webhooks[3].url: https://b.example.com/ is listed twice',
      'notifications.email.smtp: expected smtp://user:pass@host:587 or smtps://user:pass@host:465',
      'notifications.email.from: expected an email address',
      'notifications.email.customers: expected true or false',
      'notifications.email: mails nobody: set "to" (the operator\'s addresses) or "customers": true',
      'notifications.publicUrl: expected an http(s) URL, got "api.example.com"',
    ]);
    expect(problems({ notifications: {} })).toEqual(['notifications: declare "webhooks", "email" or both']);
  });

  it('a webhook body: type, id, timestamp, and data with each …Micros figure in dollars beside it', () => {
    const body = JSON.parse(eventBody({
      id: 'evt_0123', type: 'balance.low', accountId: 'acct_1', createdAt: Date.parse('2026-05-01T10:00:00Z'),
      data: { accountId: 'acct_1', balanceMicros: 800_000, thresholdMicros: 1_000_000 },
    })) as unknown;
    expect(body).toEqual({
      type: 'balance.low', id: 'evt_0123', timestamp: '2026-05-01T10:00:00.000Z',
      data: { accountId: 'acct_1', balanceMicros: 800_000, balance: '0.80', thresholdMicros: 1_000_000, threshold: '1.00' },
    });
  });
});
