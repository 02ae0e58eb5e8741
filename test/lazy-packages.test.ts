// The packages of optional features are loaded only when the feature is configured: Stripe's
// client, PostgreSQL's and Redis's drivers and nodemailer together held about 15 MB of heap and
// 25 MB of resident memory in a gateway that used none of them.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { spawnServer } from './server-process.ts';

const REGISTER = fileURLToPath(new URL('./fixtures/loaded-packages/register.mjs', import.meta.url));
const OPTIONAL = ['stripe', 'pg', 'redis', 'nodemailer'];

/** The packages `node dist/server.js` loaded by the time it was ready, with `env`. */
async function packagesLoaded(env: Record<string, string>): Promise<Set<string>> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-packages-'));
  const file = join(dir, 'loaded.txt');
  const server = await spawnServer({ DATABASE_PATH: join(dir, 'tollgate.db'), NODE_OPTIONS: `--import ${REGISTER}`, LOADED_PACKAGES: file, ...env });
  server.child.kill('SIGTERM');
  await server.exited;
  return new Set(existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
}

describe('optional packages', () => {
  it('a gateway on SQLite without Stripe, Redis or email loads none of their packages', async () => {
    const loaded = await packagesLoaded({});
    // What it does load shows the recording works.
    expect(loaded).toContain('better-sqlite3');
    expect(loaded).toContain('undici');
    expect(OPTIONAL.filter((p) => loaded.has(p))).toEqual([]);
  });

  it('with STRIPE_SECRET_KEY set, Stripe\'s client is loaded at startup', async () => {
    const loaded = await packagesLoaded({
      STRIPE_SECRET_KEY: 'sk_test_lazy', STRIPE_WEBHOOK_SECRET: 'whsec_lazy', CHECKOUT_SUCCESS_URL: 'http://127.0.0.1/ok',
      CHECKOUT_CANCEL_URL: 'http://127.0.0.1/cancel', PORTAL_RETURN_URL: 'http://127.0.0.1/back',
    });
    expect(loaded).toContain('stripe');
    expect(['pg', 'redis', 'nodemailer'].filter((p) => loaded.has(p))).toEqual([]);
  });
});
