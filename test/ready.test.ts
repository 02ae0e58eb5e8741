// /_tollgate/ready answers 200 only while the database the gateway opened is the one on disk.
import { unlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers.ts';

describe('readiness', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  it('turns 503 when the database file is deleted under the running gateway', async () => {
    expect((await fetch(`${gw.url}/_tollgate/ready`)).status).toBe(200);
    unlinkSync(gw.dbPath);
    const res = await fetch(`${gw.url}/_tollgate/ready`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'not ready' });
    expect((await fetch(`${gw.url}/_tollgate/health`)).status).toBe(200);
  });
});
