// The gateway under test: the built dist/server.js in its own process, with a temp database that
// holds one account and key, and a config whose plan never refuses under the bench's load.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Admin } from '../../src/db/admin.ts';
import { openDb } from '../../src/db/open.ts';
import { createSqliteStore } from '../../src/db/sqlite-store.ts';
import { freePort, spawnTracked, stop, withTimeout } from './processes.ts';

const PLAN = 'bench';
// All three windows and the quota counter run, as in production; none of them ever says no.
const CONFIG_PLANS = {
  [PLAN]: {
    limits: { perSecond: 10_000_000, perMinute: 600_000_000, perDay: 1_000_000_000 },
    burst: 10_000_000,
    monthlyQuota: null,
    overage: 'block',
  },
};

export interface RunningGateway {
  url: string;
  key: string;
  pid: number | undefined;
  /** SIGTERM (the gateway drains and flushes), then the exit code. */
  stop(): Promise<number | null>;
  /** Rows in the usage table; read after stop(). */
  usageRows(): number;
  output(): string;
}

export interface GatewayOptions {
  dir: string;
  upstreamUrl: string;
  /** The bundle to run: dist/server.js, or another build to compare against. */
  entry: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
}

export async function startGateway({ dir, upstreamUrl, entry, nodeFlags = [] }: GatewayOptions): Promise<RunningGateway> {
  const configPath = join(dir, 'tollgate.config.json');
  const databasePath = join(dir, 'tollgate.db');
  writeFileSync(configPath, JSON.stringify({
    routes: [{ path: '/', upstream: upstreamUrl, priceMicros: 1000 }],
    plans: CONFIG_PLANS,
    defaultPlan: PLAN,
  }, null, 2));
  const key = seed(databasePath);

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const { child, output } = spawnTracked(process.execPath, [...nodeFlags, entry], {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_PATH: databasePath,
    TOLLGATE_CONFIG: configPath,
    LOG_LEVEL: 'warn',
  });
  await withTimeout('gateway /_tollgate/ready', untilReady(url, child)).catch((err: Error) => {
    throw new Error(`${err.message}\n--- gateway output ---\n${output()}`);
  });

  return {
    url,
    key,
    pid: child.pid,
    stop: () => stop(child),
    usageRows() {
      const db = openDb(databasePath, { migrateNow: false });
      try {
        return db.prepare('SELECT count(*) FROM usage').pluck().get() as number;
      } finally {
        db.close();
      }
    },
    output,
  };
}

/** One account on the bench plan and one key for it, written before the gateway opens the file. */
function seed(databasePath: string): string {
  const db = openDb(databasePath);
  const store = createSqliteStore(db);
  try {
    const admin = new Admin(db, store);
    const account = admin.createAccount({ email: 'bench@example.com', name: 'bench', plan: PLAN });
    return admin.createKey({ accountId: account.id, name: 'bench' }).key;
  } finally {
    store.close();
  }
}

async function untilReady(url: string, child: ChildProcess): Promise<void> {
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`gateway exited before it was ready (${child.signalCode ?? child.exitCode})`);
    }
    try {
      const res = await fetch(`${url}/_tollgate/ready`);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
