// The gateway under test: the built dist/server.js in its own process, with a temp database that
// holds one account and key, and a config whose plan never refuses under the bench's load. With
// `ai`, the ready-made OpenAI routes point at the bench upstream, the bench model has a price and
// the account holds credits enough for every reservation of the run.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Admin } from '../../src/db/admin.ts';
import { openDb } from '../../src/db/open.ts';
import { createSqliteStorage } from '../../src/db/sqlite-storage.ts';
import { MODEL, MODEL_PRICE } from './chat-stream.ts';
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
  /** Rows in the usage table, of one route or all; read after stop(). */
  usageRows(route?: string): number;
  /** What an AI route's rows cost the account; read after stop(). */
  aiUsage(route: string): AiUsage;
  output(): string;
}

export interface AiUsage {
  /** Rows grouped by what they recorded. */
  groups: { status: number; estimated: boolean; outputTokens: number | null; priceMicros: number; rows: number }[];
  grantedMicros: number;
  balanceMicros: number;
}

export interface GatewayOptions {
  dir: string;
  upstreamUrl: string;
  /** The bundle to run: dist/server.js, or another build to compare against. */
  entry: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
  /** Enables the OpenAI routes (OPENAI_BASE_URL = upstreamUrl/v1) and grants the account credits. */
  ai?: { creditsMicros: number };
}

export async function startGateway({ dir, upstreamUrl, entry, nodeFlags = [], ai }: GatewayOptions): Promise<RunningGateway> {
  const configPath = join(dir, 'tollgate.config.json');
  const databasePath = join(dir, 'tollgate.db');
  writeFileSync(configPath, JSON.stringify({
    routes: [{ path: '/', upstream: upstreamUrl, priceMicros: 1000 }],
    plans: CONFIG_PLANS,
    defaultPlan: PLAN,
    ...(ai ? { prices: { [MODEL]: MODEL_PRICE } } : {}),
  }, null, 2));
  const { key, accountId } = seed(databasePath, ai?.creditsMicros ?? 0);

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const { child, output } = spawnTracked(process.execPath, [...nodeFlags, entry], {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_PATH: databasePath,
    TOLLGATE_CONFIG: configPath,
    LOG_LEVEL: 'warn',
    ...(ai ? { OPENAI_API_KEY: 'sk-bench', OPENAI_BASE_URL: `${upstreamUrl}/v1` } : {}),
  });
  await withTimeout('gateway /_tollgate/ready', untilReady(url, child)).catch((err: Error) => {
    throw new Error(`${err.message}\n--- gateway output ---\n${output()}`);
  });

  return {
    url,
    key,
    pid: child.pid,
    stop: () => stop(child),
    usageRows(route) {
      const db = openDb(databasePath, { migrateNow: false });
      try {
        return (route === undefined
          ? db.prepare('SELECT count(*) FROM usage').pluck().get()
          : db.prepare('SELECT count(*) FROM usage WHERE route = ?').pluck().get(route)) as number;
      } finally {
        db.close();
      }
    },
    aiUsage(route) {
      const db = openDb(databasePath, { migrateNow: false });
      try {
        const groups = db.prepare(`SELECT status, estimated, output_tokens AS outputTokens, price_micros AS priceMicros,
          count(*) AS rows FROM usage WHERE route = ? GROUP BY 1, 2, 3, 4 ORDER BY rows DESC`).all(route) as AiUsage['groups'];
        const balanceMicros = db.prepare('SELECT balance_micros FROM accounts WHERE id = ?').pluck().get(accountId) as number;
        return {
          groups: groups.map((g) => ({ ...g, estimated: Boolean(g.estimated) })),
          grantedMicros: ai?.creditsMicros ?? 0,
          balanceMicros,
        };
      } finally {
        db.close();
      }
    },
    output,
  };
}

/** One account on the bench plan and one key for it, written before the gateway opens the file. */
function seed(databasePath: string, creditsMicros: number): { key: string; accountId: string } {
  const store = createSqliteStorage(openDb(databasePath));
  try {
    const admin = new Admin(store);
    const account = admin.createAccount({ email: 'bench@example.com', name: 'bench', plan: PLAN });
    if (creditsMicros > 0) admin.grantCredits(account.id, creditsMicros, 'bench');
    return { key: admin.createKey({ accountId: account.id, name: 'bench' }).key, accountId: account.id };
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
