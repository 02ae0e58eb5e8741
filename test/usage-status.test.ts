// A usage row says what the client received. An AI answer held for its usage report and cut by
// the provider reaches the client as 502: its row says 502 and nothing is charged. On the SQLite
// file and on PostgreSQL.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customer, expectBalanced, PLANS, TEST_PRICES, usageRow } from './fake-providers.ts';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { bearer } from './helpers.ts';

describe.each(BACKENDS)('the usage row of a request the client got an error for on $backend', ({ backend }) => {
  let provider: Server;
  let gw: BackendGateway;
  beforeAll(async () => {
    // Says 200 and a JSON body of 400 bytes, sends half of it and hangs up.
    provider = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '400' });
        res.write('{"id":"chatcmpl-1","object":"chat.completion","model":"test-gpt","choices":[');
        setImmediate(() => res.destroy());
      });
    });
    await new Promise<void>((r) => provider.listen(0, '127.0.0.1', r));
    const { port } = provider.address() as AddressInfo;
    gw = await startBackendGateway(backend, {
      env: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1` },
      file: { prices: TEST_PRICES, plans: PLANS, defaultPlan: 'pro' },
    });
  });
  afterAll(async () => {
    await gw.close();
    provider.close();
  });

  it('says 502, not the 200 the provider began with, and charges nothing', async () => {
    const { account, key } = await customer(gw, 'pro', 1_000_000);
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...bearer(key), 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'test-gpt', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(502);
    const row = await usageRow(gw, res.headers.get('x-request-id')!);
    expect(row.status).toBe(502);
    expect(row.price_micros).toBe(0);
    expect(row.billable).toBe(0);
    expect(await expectBalanced(gw, account.id)).toBe(1_000_000);
  });
});
