// One gateway in this process, on either backend, with what the tests that run on both read and
// seed: the SQLite file (startGateway), or a fresh database on the throwaway PostgreSQL cluster
// (DATABASE_URL), or an existing one of either (a restart). Every method asks both databases the
// same question; the suites that run on both use describe.each(BACKENDS).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { createApp, type App, type AppOverrides } from '../src/app.ts';
import type { BillingStore } from '../src/billing/billing-store.ts';
import { loadConfig, type Config } from '../src/config.ts';
import type { PgStorage } from '../src/pg/pg-storage.ts';
import { pagesBackend } from '../src/ui/backends.ts';
import { pgOperations } from '../src/pg/pg-operations.ts';
import { LocalOperations, type Operations } from '../src/admin/operations.ts';
import { createPool } from '../src/pg/pool.ts';
import type { UsageDoc } from '../src/admin/shapes.ts';
import type { Admin } from '../src/db/admin.ts';
import { createLogger, type Logger } from '../src/log.ts';
import type { EventLog } from '../src/storage/ports.ts';
import type { MaybeAsync } from '../src/storage/steps.ts';
import { ledgerCheck, openAdmin, seedAccount, startGateway, tempDir, type TestGateway } from './helpers.ts';
import { freshDatabase } from './postgres.ts';
import { until as poll } from './until.ts';

export type Backend = 'sqlite' | 'postgresql';
export const BACKENDS: { backend: Backend }[] = [{ backend: 'sqlite' }, { backend: 'postgresql' }];

export interface WebhookRecord { status: string; note: string | null; attempts: number }

export interface LedgerRow { kind: string; amountMicros: number; balanceAfterMicros: number; reference: string | null }

/** A usage row as SQLite keeps it (PostgreSQL's booleans read as 0 and 1). */
export interface UsageRow {
  request_id: string; account_id: string; route: string; path: string; status: number; price_micros: number; billable: number;
  model: string | null; input_tokens: number | null; cached_tokens: number | null; cache_write_tokens: number | null;
  output_tokens: number | null; estimated: number;
}

/** A usage row with what the gateway measured of the exchange. */
export interface FullUsageRow extends UsageRow { key_id: string; method: string; request_bytes: number; response_bytes: number; latency_us: number }

/** Another process on the database (the CLI, another tool): the gateway hears of its changes as it hears of another process's. */
export interface Remote {
  ops: Operations;
  /** Money taken by another tool: from the durable balance only (what the gateways' leases hold is theirs); false when it cannot pay. */
  debit(id: string, micros: number, kind: string, reference: string): Promise<boolean>;
  /** The rows of a query both databases read alike (no parameters). */
  select<T>(sql: string): Promise<T[]>;
  /**
   * Writes `count` rows of a request to /api/ by the account's key, at `from`, `from` + 1 … ms,
   * counted in the account's daily rollup of that day (which its own requests made), in one statement.
   */
  addUsage(accountId: string, keyId: string, from: number, count: number): Promise<void>;
  /** Writes `count` usage rows of 1 000 other accounts (acct_other0 …), in one statement, as a busy week would leave. */
  fillUsage(count: number): Promise<void>;
  close(): Promise<void>;
}

export interface BackendGateway {
  backend: Backend;
  url: string;
  /** The database: the SQLite file's path, or PostgreSQL's URL (BackendGatewayOptions.database of a restart). */
  database: string;
  config: Config;
  app: App;
  events: EventLog;
  billing: MaybeAsync<BillingStore>;
  /** How the CLI is pointed at this database: its arguments and environment. */
  cli: { args: string[]; env: Record<string, string> };
  /** Runs a statement that returns no rows (no parameters). */
  run(sql: string): Promise<void>;
  /** Another process on the same database (close it when done). */
  remote(): Promise<Remote>;
  /** An account on `plan` with one key, granted `micros` (none: 0), with `email` (default: a new one). */
  seed(plan: string, micros?: number, email?: string): Promise<{ id: string; key: string; keyId: string }>;
  /** The account's ledger, oldest first. */
  ledger(id: string): Promise<LedgerRow[]>;
  /** The request's usage row, once written (undefined before). */
  usageRow(requestId: string): Promise<UsageRow | undefined>;
  /** What the customer has: the balance and what leases hold unreserved, as the gateway knows it. */
  balance(id: string): Promise<number>;
  /** Every usage row written, then what the account's rows charged (those that cost something), in order. */
  charges(id: string): Promise<number[]>;
  /** Every usage row written, then the account's rows, oldest first. */
  rows(id: string): Promise<FullUsageRow[]>;
  /** Quota units counted for the account's period: the gateway's count, else the database's. */
  quotaUsed(id: string, period: string): Promise<number>;
  /** The account's usage in a quota period, as the operator reads it (Operations.usage). */
  usage(id: string, period: string): Promise<UsageDoc>;
  /**
   * Lets `ms` pass on the clock the rate limits refill by, once the test's clock has moved on as
   * much: on SQLite that is the gateway's clock (nothing to wait for); on PostgreSQL the
   * database's, which no node's clock moves (pg/pg-rate-buckets.ts), so real time passes.
   */
  rateClock(ms: number): Promise<void>;
  /** Writes everything and ends the leases not in use: their remainder is back in the balance. */
  returnLeases(): Promise<void>;
  /** The rows of a query both databases read alike (no parameters). */
  select<T>(sql: string): Promise<T[]>;
  /** Writes every queued usage row and counter now. */
  written(): Promise<void>;
  recorded(eventId: string): Promise<WebhookRecord | undefined>;
  eventsCount(): Promise<number>;
  failedEvents(): Promise<string[]>;
  /** The stored balance and the sum of its ledger: equal, always. */
  books(id: string): Promise<{ balance: number; ledgerSum: number }>;
  /** Money moved outside Stripe (requests spent it, an operator took it): false when the balance cannot pay. */
  debit(id: string, micros: number, kind: string, reference: string): Promise<boolean>;
  grant(id: string, micros: number, reason: string): Promise<void>;
  creditPurchases(id: string): Promise<number>;
  /** Every usage row written, then the account's quota counts. */
  quotaRows(id: string): Promise<{ period: string; used: number }[]>;
  /** What the admin API does on this gateway: the operator's operations, with this node's memory; the gateway has heard of each change when one returns. */
  operations(): Operations;
  close(): Promise<void>;
}

export interface BackendGatewayOptions {
  file: unknown;
  env: Record<string, string>;
  now?: () => number;
  /** An existing database (BackendGateway.database): a restart. Default: a new one. */
  database?: string;
  notify?: AppOverrides['notify'];
  /** The gateway's logger (default: one for LOG_LEVEL, silent unless `env` says otherwise). */
  log?: Logger;
}

export async function startBackendGateway(backend: Backend, o: BackendGatewayOptions): Promise<BackendGateway> {
  return backend === 'sqlite' ? sqliteBackend(await startGateway({ ...o, dbPath: o.database }), o.now) : onPostgres(o);
}

/** A gateway on the SQLite file, as the tests on both backends see one. */
export function sqliteBackend(gw: TestGateway, now: () => number = Date.now): BackendGateway {
  const q = (sql: string) => gw.db.prepare(sql);
  const operations = (admin: Admin) => new LocalOperations({ admin, config: () => gw.config, now, log: createLogger('silent') });
  return {
    backend: 'sqlite', url: gw.url, database: gw.dbPath, config: gw.config, app: gw.app, events: gw.storage.events, billing: gw.billingStore,
    cli: { args: ['--db', gw.dbPath], env: {} },
    run: async (sql) => void q(sql).run(),
    remote: async () => {
      const cli = openAdmin(gw.dbPath, now);
      return {
        ops: operations(cli.admin),
        debit: async (id, micros, kind, reference) => cli.storage.ledger.money.debit(id, micros, kind, reference),
        select: async <T>(sql: string) => cli.storage.db.prepare(sql).all() as T[],
        // With the counters as the gateway leaves them: every row counted (counters.through_id).
        addUsage: async (accountId, keyId, from, count) => void cli.storage.db.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${count - 1})
          INSERT INTO usage (id, ts, request_id, account_id, key_id, route, method, path, status, request_bytes, response_bytes, latency_us, price_micros, billable)
          SELECT (SELECT max(id) FROM usage) + i + 1, ${from} + i, 'added' || i, '${accountId}', '${keyId}', '/api/', 'GET', '/api/old', 200, 0, 11, 100, 0, 1 FROM n;
          UPDATE counters SET value = (SELECT max(id) FROM usage);
          UPDATE usage_daily SET requests = requests + ${count}, through_id = (SELECT max(id) FROM usage) WHERE account_id = '${accountId}';`),
        fillUsage: async (count) => void cli.storage.db.prepare(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
          INSERT INTO usage (id, ts, request_id, account_id, route, method, path, status, request_bytes, response_bytes, latency_us, price_micros, billable)
          SELECT (SELECT coalesce(max(id), 0) FROM usage) + i, 0, 'r' || i, 'acct_other' || (i % 1000), '/api/', 'GET', '/api/x', 200, 0, 11, 100, 0, 1 FROM n`).run(count),
        close: async () => cli.close(),
      };
    },
    seed: async (plan, micros = 0, email) => {
      const { account, key, keyId } = seedAccount(gw.admin, plan, email);
      if (micros > 0) gw.admin.grantCredits(account.id, micros, 'test');
      return { id: account.id, key, keyId };
    },
    ledger: async (id) => gw.admin.ledger(id),
    usageRow: async (requestId) => {
      gw.flush();
      return q('SELECT * FROM usage WHERE request_id = ?').get(requestId) as UsageRow | undefined;
    },
    balance: async (id) => gw.balance(id),
    charges: async (id) => gw.charges(id),
    rows: async (id) => {
      gw.flush();
      return q('SELECT * FROM usage WHERE account_id = ? ORDER BY id').all(id) as FullUsageRow[];
    },
    quotaUsed: async (id, period) => gw.quotaUsed(id, period),
    usage: async (id, month) => operations(gw.admin).usage(id, { month }),
    rateClock: async () => {},
    returnLeases: () => gw.returnLeases(),
    select: async <T>(sql: string) => q(sql).all() as T[],
    written: async () => gw.flush(),
    recorded: async (id) => q('SELECT status, note, attempts FROM webhook_events WHERE id = ?').get(id) as WebhookRecord | undefined,
    eventsCount: async () => q('SELECT count(*) FROM webhook_events').pluck().get() as number,
    failedEvents: async () => gw.admin.webhookEvents({ failed: true, limit: 500 }).data.map((e) => e.id),
    books: async (id) => ledgerCheck(gw.db, id),
    debit: async (id, micros, kind, reference) => gw.storage.ledger.money.debit(id, micros, kind, reference),
    grant: async (id, micros, reason) => void gw.admin.grantCredits(id, micros, reason),
    creditPurchases: async (id) => q('SELECT count(*) FROM credit_purchases WHERE account_id = ?').pluck().get(id) as number,
    quotaRows: async (id) => {
      gw.flush();
      return q('SELECT period, used FROM quota_usage WHERE account_id = ?').all(id) as { period: string; used: number }[];
    },
    operations: () => operations(gw.admin),
    close: () => gw.close(),
  };
}

/** PostgreSQL's usage columns as SQLite's read: booleans as 0 and 1. */
const USAGE_COLS = `request_id, account_id, route, path, status, price_micros, billable::int AS billable, model,
  input_tokens, cached_tokens, cache_write_tokens, output_tokens, estimated::int AS estimated`;

/** Takes $2 from the durable balance of account $1 with its ledger row ($3 kind, $4 reference): no row when it cannot pay. */
const DEBIT = `WITH a AS (UPDATE accounts SET balance_micros = balance_micros - $2
    WHERE id = $1 AND balance_micros >= $2 RETURNING balance_micros AS after)
  INSERT INTO ledger (account_id, amount_micros, balance_after_micros, kind, reference, created_at)
  SELECT $1, -$2::bigint, after, $3, $4, 0 FROM a RETURNING id`;

async function onPostgres(o: BackendGatewayOptions): Promise<BackendGateway> {
  const url = o.database ?? await freshDatabase(inject('postgresUrl'));
  const config = join(tempDir(), 'tollgate.config.json');
  writeFileSync(config, JSON.stringify(o.file));
  const app = await createApp(loadConfig({ LOG_LEVEL: 'silent', ...o.env, DATABASE_URL: url, TOLLGATE_CONFIG: config }), { now: o.now, notify: o.notify, log: o.log });
  const port = await app.listen(0, '127.0.0.1');
  const storage = app.storage as PgStorage;
  const { pool } = storage;
  const now = o.now ?? Date.now;
  const ops = pgOperations(pool, { config: () => app.config, now, actor: 'test' });
  const rows = async <T>(sql: string, ...values: unknown[]) => (await pool.query(sql, values)).rows as T[];
  return {
    backend: 'postgresql', url: `http://127.0.0.1:${port}`, database: url, config: app.config, app, events: storage.events, billing: storage.billing,
    cli: { args: [], env: { DATABASE_URL: url } },
    run: async (sql) => void await pool.query(sql),
    remote: async () => {
      const other = await createPool(url, 2);
      return {
        ops: pgOperations(other, { config: () => app.config, now, actor: 'cli' }),
        debit: async (id, micros, kind, reference) => (await other.query(DEBIT, [id, micros, kind, reference])).rowCount === 1,
        select: async <T>(sql: string) => (await other.query(sql)).rows as T[],
        // As another node's rows (under a node id of their own), counted as a group commit counts them.
        addUsage: async (accountId, keyId, from, count) => void await other.query(`WITH added AS (
            INSERT INTO usage (node, id, ts, request_id, account_id, key_id, route, method, path, status, request_bytes, response_bytes,
              latency_us, price_micros, billable)
            SELECT 'added', i + 1, $3::bigint + i, 'added' || i, $1, $2, '/api/', 'GET', '/api/old', 200, 0, 11, 100, 0, true
            FROM generate_series(0, $4::bigint - 1) AS i RETURNING 1)
          UPDATE usage_daily SET requests = requests + (SELECT count(*) FROM added) WHERE account_id = $1`, [accountId, keyId, from, count]),
        fillUsage: async (count) => void await other.query(`INSERT INTO usage (node, id, ts, request_id, account_id, route, method, path, status,
            request_bytes, response_bytes, latency_us, price_micros, billable)
          SELECT 'filler', i, 0, 'r' || i, 'acct_other' || (i % 1000), '/api/', 'GET', '/api/x', 200, 0, 11, 100, 0, true
          FROM generate_series(1, $1::bigint) AS i`, [count]),
        close: () => other.end(),
      };
    },
    seed: async (plan, micros = 0, email = `a${Math.random().toString(36).slice(2)}@example.com`) => {
      const account = await ops.createAccount({ email, plan });
      if (micros > 0) await ops.grantCredits(account.id, { amountMicros: micros, reason: 'test' });
      const { id: keyId, key } = await ops.createKey({ accountId: account.id });
      return { id: account.id, key, keyId };
    },
    ledger: (id) => rows<LedgerRow>(`SELECT kind, amount_micros AS "amountMicros", balance_after_micros AS "balanceAfterMicros", reference
      FROM ledger WHERE account_id = $1 ORDER BY id`, id),
    usageRow: async (requestId) => {
      await app.state.recorder.drain();
      return (await rows<UsageRow>(`SELECT ${USAGE_COLS} FROM usage WHERE request_id = $1`, requestId))[0];
    },
    balance: async (id) => app.state.balance(id),
    charges: async (id) => {
      await app.state.recorder.drain();
      return (await rows<{ micros: number }>('SELECT price_micros AS micros FROM usage WHERE account_id = $1 AND price_micros > 0 ORDER BY id', id)).map((r) => r.micros);
    },
    rows: async (id) => {
      await app.state.recorder.drain();
      return rows<FullUsageRow>(`SELECT ${USAGE_COLS}, key_id, method, request_bytes, response_bytes, latency_us FROM usage
        WHERE account_id = $1 ORDER BY id`, id);
    },
    quotaUsed: async (id, period) => app.state.live.quotaUsed(id, period)
      ?? (await rows<{ used: number }>('SELECT used FROM quota_usage WHERE account_id = $1 AND period = $2', id, period))[0]?.used ?? 0,
    usage: async (id, month) => {
      await app.state.recorder.drain();
      return ops.usage(id, { month });
    },
    async rateClock(ms) {
      const dbNow = async () => (await rows<{ at: number }>('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS at'))[0].at;
      const until = await dbNow() + ms;
      await poll(async () => await dbNow() >= until, ms + 5_000, `${ms} ms on the database's clock`);
    },
    async returnLeases() {
      await app.state.recorder.drain();
      for (const s of app.state.accounts.all()) if (s.wallet && s.wallet.reserved === 0) await app.state.wallets.close(s.wallet);
    },
    select: (sql) => rows(sql),
    async written() {
      if (!(await app.state.recorder.drain())) throw new Error('the database would not take the queued rows');
    },
    recorded: async (id) => (await rows<WebhookRecord>('SELECT status, note, attempts FROM webhook_events WHERE id = $1', id))[0],
    eventsCount: async () => (await rows<{ n: number }>('SELECT count(*)::int AS n FROM webhook_events'))[0].n,
    failedEvents: async () => (await rows<{ id: string }>("SELECT id FROM webhook_events WHERE status = 'failed'")).map((r) => r.id),
    books: async (id) => (await rows<{ balance: number; ledgerSum: number }>(`SELECT balance_micros AS balance,
      (SELECT coalesce(sum(amount_micros), 0) FROM ledger WHERE account_id = a.id)::bigint AS "ledgerSum" FROM accounts a WHERE id = $1`, id))[0],
    // What another tool would do: the durable balance only, with its ledger row.
    debit: async (id, micros, kind, reference) => (await rows(DEBIT, id, micros, kind, reference)).length === 1,
    grant: async (id, micros, reason) => void await ops.grantCredits(id, { amountMicros: micros, reason }),
    creditPurchases: async (id) => (await rows<{ n: number }>('SELECT count(*)::int AS n FROM credit_purchases WHERE account_id = $1', id))[0].n,
    quotaRows: async (id) => {
      await app.state.recorder.drain();
      return rows('SELECT period, used FROM quota_usage WHERE account_id = $1', id);
    },
    // As the admin API builds them (ui/backends.ts): this node's memory, heard and written first.
    operations: () => pagesBackend(app.state, { config: app.config, now, log: createLogger('silent') })!.admin.operations({ by: 'test', requestId: null }),
    close: () => app.close(),
  };
}
