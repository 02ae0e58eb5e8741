// A second `node dist/server.js` on a database in use refuses to start before it touches any
// data: it once gave back the running gateway's in-flight AI reservations, which the running
// gateway then settled again, creating money. Start-up failures are one line, not a stack trace.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb } from '../src/db/open.ts';
import { PLANS, startFakeProviders, TEST_PRICES, waitFor, type FakeProviders } from './fake-providers.ts';
import { ledgerCheck, openAdmin, tempDir } from './helpers.ts';
import { SERVER_JS, spawnServer, type ServerProcess } from './server-process.ts';

/** Runs dist/server.js to its exit; what it printed on stderr. */
function runToExit(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SERVER_JS], { env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.once('exit', (code) => resolve({ code, stderr }));
  });
}

describe('one gateway per database file', () => {
  let fake: FakeProviders;
  const children: ServerProcess[] = [];
  afterAll(async () => {
    for (const c of children) c.child.kill('SIGKILL');
    await fake?.close();
  });

  it('a second gateway on the file exits naming it, and the running one\'s reservation stays held', async () => {
    fake = await startFakeProviders();
    fake.behave('test-gpt', { hold: true });
    const dir = tempDir();
    const dbPath = join(dir, 'tollgate.db');
    const configPath = join(dir, 'tollgate.config.json');
    writeFileSync(configPath, JSON.stringify({ prices: TEST_PRICES, plans: PLANS, defaultPlan: 'pro' }));
    const seed = openAdmin(dbPath);
    const { admin } = seed;
    const account = admin.createAccount({ email: 'held@example.com', plan: 'pro' });
    const { key } = admin.createKey({ accountId: account.id });
    admin.grantCredits(account.id, 10_000_000, 'test');
    seed.close();

    const env = {
      DATABASE_PATH: dbPath, TOLLGATE_CONFIG: configPath,
      OPENAI_API_KEY: fake.openaiKey, OPENAI_BASE_URL: `${fake.url}/v1`,
    };
    const first = await spawnServer(env);
    children.push(first);
    const answered = fetch(`${first.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'test-gpt', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }),
    });
    await waitFor(() => (fake.held() === 1 ? true : undefined), 5_000);
    const balance = () => {
      const db = openDb(dbPath, { migrateNow: false });
      try {
        return ledgerCheck(db, account.id);
      } finally {
        db.close();
      }
    };
    const held = balance();
    expect(held.balance).toBeLessThan(10_000_000); // the reservation is out of the balance

    // Same file, same port: it must stop at the file, before it could fail at the port.
    const second = await runToExit({ ...env, HOST: '127.0.0.1', PORT: String(first.port) });
    expect(balance()).toEqual(held);
    expect(second.code).toBe(1);
    expect(second.stderr.trim().split('\n')).toHaveLength(1);
    expect(second.stderr).toContain(`another gateway is running on ${dbPath}`);

    fake.release();
    expect((await answered).status).toBe(200);
    first.child.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });
    const after = balance();
    expect(after.balance).toBe(after.ledgerSum);
    expect(after.balance).toBeLessThan(10_000_000);
    expect(after.balance).toBeGreaterThan(held.balance);

    // The lock went with the process: the file serves again.
    const again = await spawnServer(env);
    children.push(again);
    again.child.kill('SIGTERM');
    expect((await again.exited).code).toBe(0);
  }, 20_000);

  it('a port in use is one line on stderr, not a stack trace', async () => {
    const first = await spawnServer({ DATABASE_PATH: join(tempDir(), 'a.db') });
    children.push(first);
    const second = await runToExit({ DATABASE_PATH: join(tempDir(), 'b.db'), HOST: '127.0.0.1', PORT: String(first.port) });
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(`tollgate: cannot listen on 127.0.0.1:${first.port}: the port is in use by another program; stop it or set PORT\n`);
  });
});
