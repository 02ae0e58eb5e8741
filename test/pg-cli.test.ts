// The CLI on PostgreSQL (DATABASE_URL): migrate, then accounts, keys and credits, each with its
// audit row; a gateway on the same database serves the key at once and refuses it within a second
// of its revocation. What the CLI cannot do there yet it says, and changes nothing.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPool, type Pool } from '../src/pg/pool.ts';
import { expectFailure, parsed, runCli } from './cli-run.ts';
import { bearer, startUpstream, tempDir, type Upstream } from './helpers.ts';
import { freshDatabase } from './postgres.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { until } from './until.ts';

describe('the CLI on PostgreSQL', () => {
  let env: Record<string, string>;
  let pool: Pool;
  let up: Upstream;
  let gateway: ServerProcess | undefined;

  beforeAll(async () => {
    const url = await freshDatabase(inject('postgresUrl'));
    pool = createPool(url, 2);
    up = await startUpstream();
    const config = join(tempDir(), 'tollgate.config.json');
    writeFileSync(config, JSON.stringify({
      routes: [{ path: '/api/', upstream: up.url, priceMicros: 1_000 }],
      plans: { paid: { limits: { perSecond: 1_000 }, monthlyQuota: 0, overage: 'credits' } },
      defaultPlan: 'paid',
    }));
    env = { DATABASE_URL: url, TOLLGATE_CONFIG: config };
  });
  afterAll(async () => {
    gateway?.child.kill('SIGKILL');
    await up?.close();
    await pool?.end();
  });

  it('migrates, issues an account, a key and credits, and a gateway on the database serves them', async () => {
    const migrated = parsed<{ applied: string[] }>(await runCli(['migrate', '--json'], env));
    expect(migrated.applied.length).toBeGreaterThanOrEqual(7);
    expect(parsed<{ applied: string[] }>(await runCli(['migrate', '--json'], env)).applied).toEqual([]);

    const account = parsed<{ id: string; balanceMicros: number }>(await runCli(['accounts', 'create', '--email', 'pg@example.com', '--json'], env));
    expectFailure(await runCli(['accounts', 'create', '--email', 'PG@example.com', '--json'], env), 1, /exists/);
    const key = parsed<{ id: string; key: string }>(await runCli(['keys', 'create', '--account', account.id, '--json'], env));
    const granted = parsed<{ balanceMicros: number }>(await runCli(['credits', 'grant', account.id, '2.50', '--json'], env));
    expect(granted.balanceMicros).toBe(2_500_000);

    gateway = await spawnServer(env, 20_000);
    const res = await fetch(`${gateway.url}/api/x`, { headers: bearer(key.key) });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const show = async () => parsed<{ balanceMicros: number; keys: { id: string; state: string }[] }>(await runCli(['accounts', 'show', account.id, '--json'], env));
    // The balance and what the gateway's lease holds unspent, once the request's row is written
    // (the next commit: a connection's row is durable before its next request, not its response).
    await until(async () => (await show()).balanceMicros === 2_500_000 - 1_000, 5_000, 'the charge to be written');
    expect((await show()).keys.map((k) => k.state)).toEqual(['active']);

    parsed(await runCli(['keys', 'revoke', key.id, '--json'], env));
    const revoked = performance.now();
    await until(async () => (await fetch(`${gateway!.url}/api/x`, { headers: bearer(key.key) }).then(async (r) => (await r.arrayBuffer(), r.status))) === 401,
      1_000, 'the gateway to refuse the revoked key');
    expect(performance.now() - revoked).toBeLessThan(1_000);

    const ledger = parsed<{ ledger: { kind: string; amountMicros: number }[] }>(await runCli(['credits', 'show', account.id, '--json'], env));
    expect(ledger.ledger.map((e) => e.kind)).toEqual(['lease', 'grant']);
    const { rows } = await pool.query('SELECT action, actor FROM audit_log ORDER BY id');
    expect(rows).toEqual([
      { action: 'account.create', actor: 'cli' }, { action: 'key.create', actor: 'cli' },
      { action: 'credits.grant', actor: 'cli' }, { action: 'key.revoke', actor: 'cli' },
    ]);
  }, 60_000);

  it('says what it cannot do on PostgreSQL yet, and changes nothing', async () => {
    const before = (await pool.query('SELECT count(*)::int AS n FROM audit_log')).rows[0].n;
    expectFailure(await runCli(['accounts', 'list', '--json'], env), 1, /does not work on PostgreSQL/);
    expectFailure(await runCli(['backup', join(tempDir(), 'copy.db')], env), 1, /SQLite file only/);
    expect((await pool.query('SELECT count(*)::int AS n FROM audit_log')).rows[0].n).toBe(before);
  });
});
