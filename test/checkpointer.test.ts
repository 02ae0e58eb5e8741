// WAL checkpoints run in a worker thread, not inside a group commit: the gateway's connection
// never checkpoints, yet what it writes reaches the database file itself (not only the WAL).
import Database from 'better-sqlite3';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bearer, seedAccount, startGateway, startUpstream, tempDir, type TestGateway, type Upstream } from './helpers.ts';
import { until } from './until.ts';

describe('WAL checkpoints', () => {
  let up: Upstream;
  let gw: TestGateway;
  afterAll(async () => {
    await gw?.close();
    await up?.close();
  });

  it('copy committed rows into the database file from a worker, the gateway connection checkpointing nothing', async () => {
    up = await startUpstream();
    gw = await startGateway({ file: { routes: [{ path: '/api/', upstream: up.url, priceMicros: 0 }] } });
    expect(gw.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const { key } = seedAccount(gw.admin);
    for (let i = 0; i < 20; i++) expect((await fetch(`${gw.url}/api/x`, { headers: bearer(key) })).status).toBe(200);
    gw.flush();

    // The database file alone, without its WAL: only a checkpoint puts rows there.
    const rowsInFile = () => {
      const copy = join(tempDir(), 'file-only.db');
      copyFileSync(gw.dbPath, copy);
      const db = new Database(copy, { readonly: true });
      try {
        return db.prepare('SELECT count(*) FROM usage').pluck().get() as number;
      } catch {
        return 0; // copied mid-write: read it again
      } finally {
        db.close();
      }
    };
    await until(() => rowsInFile() === 20, 3_000, 'the 20 rows in the database file');
  });
});
