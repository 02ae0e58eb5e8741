// The gateway under test, as a black box: `node dist/server.js` (or BENCH_SERVER) in its own
// process, on a temp database seeded before it starts, with a config file written here. It is
// driven over HTTP only and its file is read after it stopped, so the bench measures whatever
// the build is, storage design included.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readBooks, type Books } from './books.ts';
import { freePort, spawnTracked, stop, withTimeout } from './processes.ts';
import { seed } from './seed.ts';

export const PLAN = 'bench';
/**
 * Every request is paid from prepaid credits (no quota to use up first), and the rate-limit
 * windows run as in production but never say no.
 */
export const PAID_PLAN = {
  limits: { perSecond: 10_000_000, perMinute: 600_000_000, perDay: 1_000_000_000 },
  burst: 10_000_000,
  monthlyQuota: 0,
  overage: 'credits',
};
/**
 * Per account ($10,000): more than a long run spends at the bench's prices (a few million
 * requests at 100 µ$), while the sum over 100,000 accounts stays below 2^53, exact in JavaScript.
 */
export const CREDITS_MICROS = 10_000_000_000;

/**
 * Notifications configured (a webhook to a port where nothing listens, low-balance and quota
 * alerts on the plan): what they cost the request path when nothing crosses a threshold.
 * BENCH_NOTIFICATIONS=1 gives them to every gateway; the features case to one of its own.
 */
const NOTIFICATIONS = {
  plan: { alerts: { lowBalanceMicros: 1_000_000, quotaPercent: [80, 100] } },
  file: { notifications: { webhooks: [{ url: 'http://127.0.0.1:9/tollgate', secret: `whsec_${randomBytes(32).toString('base64')}` }] } },
};

export interface GatewayOptions {
  name: string;
  /** A directory of its own: config, database, keys file. */
  dir: string;
  entry: string;
  /** The config file's content; `plans` and `defaultPlan` are added. */
  config: Record<string, unknown>;
  /** Accounts seeded, one key each, each granted CREDITS_MICROS. */
  accounts: number;
  env?: Record<string, string>;
  nodeFlags?: string[];
  /** Default: BENCH_NOTIFICATIONS=1. */
  notifications?: boolean;
}

export interface Gateway {
  name: string;
  url: string;
  pid: number | undefined;
  /** Every account's key, one a line. */
  keysFile: string;
  firstKey: string;
  grantedMicros: number;
  /** SIGTERM and wait; throws unless it exits 0. */
  stop(): Promise<void>;
  /** Read after stop(). */
  books(): Books;
  databasePath: string;
}

export async function startGateway(o: GatewayOptions): Promise<Gateway> {
  mkdirSync(o.dir, { recursive: true });
  const configPath = join(o.dir, 'tollgate.config.json');
  const databasePath = join(o.dir, 'tollgate.db');
  const notify = (o.notifications ?? process.env.BENCH_NOTIFICATIONS === '1') ? NOTIFICATIONS : undefined;
  writeFileSync(configPath, JSON.stringify({
    ...o.config, ...notify?.file, plans: { [PLAN]: { ...PAID_PLAN, ...notify?.plan } }, defaultPlan: PLAN,
  }, null, 2));
  if (notify) console.log(`  ${o.name}: notifications configured`);
  const { keysFile, firstKey } = seed({
    entry: o.entry, databasePath, keysFile: join(o.dir, 'keys.txt'), plan: PLAN, accounts: o.accounts, creditsMicros: CREDITS_MICROS,
  });

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const { child, output } = spawnTracked(process.execPath, [...(o.nodeFlags ?? []), o.entry], {
    PORT: String(port), HOST: '127.0.0.1', DATABASE_PATH: databasePath, TOLLGATE_CONFIG: configPath, LOG_LEVEL: 'warn', ...o.env,
  });
  await withTimeout(`${o.name} /_tollgate/ready`, untilReady(url, () => child.exitCode ?? child.signalCode)).catch((err: Error) => {
    throw new Error(`${err.message}\n--- ${o.name} output ---\n${output()}`);
  });
  return {
    name: o.name,
    url,
    pid: child.pid,
    keysFile,
    firstKey,
    grantedMicros: o.accounts * CREDITS_MICROS,
    async stop() {
      const code = await stop(child);
      if (code !== 0) throw new Error(`${o.name} exited with ${code} on SIGTERM\n--- output ---\n${output()}`);
    },
    books: () => readBooks(databasePath),
    databasePath,
  };
}

/** Polls /_tollgate/ready until it answers 200; throws once `exited` says the process is gone. */
export async function untilReady(url: string, exited: () => number | string | null): Promise<void> {
  for (;;) {
    if (exited() !== null) throw new Error(`exited before it was ready (${exited()})`);
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
