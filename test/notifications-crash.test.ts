// The outbox survives kill -9: a gateway (dist/server.js) killed right after a request crossed the
// low-balance threshold delivers balance.low after its restart, once, and fires it no second time.
// Meanwhile a receiver that never answers delays no request.
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bearer, openAdmin, startUpstream, tempDir, type Upstream } from './helpers.ts';
import { startReceiver, type Receiver } from './notify-receivers.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { until } from './until.ts';

const PRICE = 1_000;
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('notifications and kill -9', () => {
  let up: Upstream | undefined;
  let receiver: Receiver | undefined;
  const children: ServerProcess[] = [];
  afterAll(async () => {
    for (const s of children) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await up?.close();
    await receiver?.close();
  });

  it('an event decided just before a kill -9 is delivered after the restart, once; a silent receiver delays nothing', async () => {
    up = await startUpstream();
    // Takes every delivery and never answers, until the restart.
    receiver = await startReceiver(() => 'hang');
    const dir = tempDir();
    const dbPath = join(dir, 'tollgate.db');
    const configPath = join(dir, 'tollgate.config.json');
    writeFileSync(configPath, JSON.stringify({
      routes: [{ path: '/api/', upstream: up.url, priceMicros: PRICE }],
      plans: { prepaid: { limits: { perSecond: 10_000 }, burst: 10_000, monthlyQuota: 0, overage: 'credits', alerts: { lowBalanceMicros: 25 * PRICE } } },
      notifications: { webhooks: [{ url: receiver.url, secret: SECRET, events: ['balance.low'] }] },
    }));
    const seed = openAdmin(dbPath);
    const account = seed.admin.createAccount({ email: 'crash@example.com', plan: 'prepaid' });
    const { key } = seed.admin.createKey({ accountId: account.id });
    seed.admin.grantCredits(account.id, 50 * PRICE, 'test');
    seed.close();
    const env = { DATABASE_PATH: dbPath, TOLLGATE_CONFIG: configPath };
    const get = (url: string) => fetch(`${url}/api/x`, { headers: bearer(key) }).then(async (r) => (await r.arrayBuffer(), r.status));
    const file = new Database(dbPath, { readonly: true });
    const lowEvents = () => file.prepare(`SELECT count(*) FROM notifications WHERE account_id = ? AND type = 'balance.low'`).pluck().get(account.id) as number;

    const first = await spawnServer(env);
    children.push(first);
    // 26 requests: the 26th leaves 24,000, below 25,000.
    for (let i = 0; i < 26; i++) expect(await get(first.url)).toBe(200);
    await until(() => lowEvents() === 1, 5_000, 'balance.low in the file');
    // The receiver holds the delivery; requests are answered all the same.
    await until(() => receiver!.hanging() === 1, 5_000, 'the delivery held by the receiver');
    expect(await Promise.all(Array.from({ length: 10 }, () => get(first.url)))).toEqual(Array(10).fill(200));
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');

    receiver.answer = () => 200;
    const again = await spawnServer(env);
    children.push(again);
    await until(() => receiver!.accepted().length === 1, 10_000, 'balance.low delivered after the restart');
    const [hook] = receiver.accepted();
    expect(hook.json).toMatchObject({ type: 'balance.low', data: { accountId: account.id, balanceMicros: 24 * PRICE, thresholdMicros: 25 * PRICE } });
    // The one held before the kill had the same id: a receiver that took it then drops this one.
    expect(new Set(receiver.hooks.map((h) => h.json.id))).toEqual(new Set([hook.json.id]));
    await until(() => file.prepare(`SELECT status FROM notification_deliveries`).pluck().get() === 'delivered', 5_000, 'the delivery recorded');

    // Still below the threshold after the restart: nothing fires again.
    for (let i = 0; i < 5; i++) expect(await get(again.url)).toBe(200);
    again.child.kill('SIGTERM');
    expect(await again.exited).toEqual({ code: 0, signal: null });
    expect(lowEvents()).toBe(1);
    expect(receiver.accepted()).toHaveLength(1);
    file.close();
  }, 40_000);
});
