// The composition root: config → storage → the gateway's memory → billing → the HTTP server, and
// the admin API's listener beside it when ADMIN_TOKEN is set.
// main.ts, `tollgate serve` and the tests all build the gateway here, so tests run what
// production runs.
import type Stripe from 'stripe';
import type { ExtraRoute } from './admin/http.ts';
import { metricsRoute } from './admin/metrics.ts';
import { createAdminServer, type AdminListener } from './admin/server.ts';
import { createBilling, type Billing } from './billing/billing.ts';
import type { Config } from './config.ts';
import { startCheckpointer } from './db/checkpointer.ts';
import { openDb, type Db } from './db/open.ts';
import { createSqliteStorage } from './db/sqlite-storage.ts';
import { startUsageThread } from './db/usage-thread.ts';
import { createLogger, type Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { Deliverer, type Timers } from './notify/deliverer.ts';
import { createGateway, type Gateway } from './server.ts';
import { GatewayState } from './state/state.ts';
import { createPgStorage } from './pg/pg-storage.ts';
import type { BillingStorage, CoreStorage, NotifyStorage, Storage } from './storage/ports.ts';
import { pagesBackend } from './ui/backends.ts';
import { Console } from './ui/console/console.ts';

export interface AppOverrides {
  /** Milliseconds since the epoch; tests pass a fake clock. */
  now?: () => number;
  log?: Logger;
  /** Another backend (the default: PostgreSQL at config.databaseUrl, else the SQLite file at config.databasePath). */
  storage?: CoreStorage;
  /** A Stripe client (tests point one at a local fake). */
  stripe?: Stripe;
  /** More endpoints on the admin listener, each with its OpenAPI operation (GET /metrics). */
  adminRoutes?: readonly ExtraRoute[];
  /** How the notifications' deliverer keeps time (tests drive it with Deliverer.tick). */
  notify?: { pollMs?: number; timers?: Timers };
}

export interface App {
  config: Config;
  storage: CoreStorage;
  state: GatewayState;
  billing: Billing | undefined;
  /** Sends the outbox's events; undefined without notifications in the config. */
  deliverer: Deliverer | undefined;
  gateway: Gateway;
  /** Its Prometheus metrics, served as GET /metrics on the admin listener (src/admin/metrics.ts). */
  metrics: Metrics;
  /** The admin API's listener (src/admin/): undefined without ADMIN_TOKEN. */
  admin: AdminListener | undefined;
  /** Resolves with the port bound. */
  listen(port: number, host: string): Promise<number>;
  /** Closes the admin listener, drains the server, writes what is queued, returns the leases, closes the database. */
  close(): Promise<void>;
}

export async function createApp(config: Config, overrides: AppOverrides = {}): Promise<App> {
  const now = overrides.now ?? Date.now;
  const log = overrides.log ?? createLogger(config.logLevel);
  const opened = overrides.storage ?? await openStorage(config, log, now);
  // SQLite's group commits in a thread of their own, where one can load the writer.
  const thread = onSqlite(opened) && !opened.db.memory ? startUsageThread(opened.db, opened.usage, log) : undefined;
  const storage = thread ? { ...opened, usage: thread.usage } : opened;
  const metrics = new Metrics(config.routes.map((r) => r.path), Object.keys(config.prices));
  const state = new GatewayState(storage, config, log, now, metrics);
  await state.start();
  const billing = hasBilling(storage)
    ? await createBilling({ config, storage, log, now, stripe: overrides.stripe, onWebhookEvent: (type, outcome) => metrics.webhookEvent(type, outcome) })
    : undefined;
  const gateway = createGateway({ config, state, log, metrics, billing, now });
  const notifications = config.notifications;
  const deliverer = notifications && hasOutbox(storage)
    ? new Deliverer({ outbox: storage.outbox, config: { ...config, notifications }, log, now, ...overrides.notify })
    : undefined;
  deliverer?.start();
  let admin: AdminListener | undefined;
  if (config.admin) {
    const adminConfig = { ...config, admin: config.admin };
    const extra = [metricsRoute(metrics), ...(overrides.adminRoutes ?? [])];
    const pages = pagesBackend(state, { config, now, log });
    // The operator console's pages (src/ui/console/) share the listener: they sign in with a token.
    admin = pages && createAdminServer({
      config: adminConfig, backend: pages.admin, log, extra,
      console: new Console({ config: adminConfig, operations: pages.admin.operations, store: pages.store, log, now }),
    });
  }
  // Last, once nothing can fail: a worker started earlier would outlive a failed start.
  const checkpointer = onSqlite(storage) && !storage.db.memory
    ? startCheckpointer(storage.db, (msg, err) => log.warn(msg, { error: err.message }))
    : undefined;
  return {
    config, storage, state, billing, deliverer, gateway, metrics, admin,
    listen: (port, host) => gateway.listen(port, host),
    async close() {
      await admin?.close();
      billing?.reporter.stop();
      await gateway.close();
      await state.stop();
      await thread?.stop();
      await deliverer?.stop();
      await checkpointer?.stop();
      await storage.close();
    },
  };
}

function onSqlite(storage: CoreStorage): storage is Storage & { db: Db } {
  return 'db' in storage;
}

function hasOutbox(storage: CoreStorage): storage is CoreStorage & NotifyStorage {
  return 'outbox' in storage;
}

function hasBilling(storage: CoreStorage): storage is CoreStorage & BillingStorage {
  return 'events' in storage;
}

function openStorage(config: Config, log: Logger, now: () => number): CoreStorage | Promise<CoreStorage> {
  if (config.databaseUrl) {
    return createPgStorage(config.databaseUrl, {
      ttlMs: config.nodeTtlMs, redisUrl: config.redisUrl, now, onError: (msg, err) => log.error(msg, { error: err.message }),
    });
  }
  // The gateway's connection never waits for another process's write lock (see db/open.ts).
  return createSqliteStorage(openDb(config.databasePath, { waitMs: 0 }), { now });
}
