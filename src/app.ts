// The composition root: config → storage → the gateway's memory → billing → the HTTP server.
// main.ts, `tollgate serve` and the tests all build the gateway here, so tests run what
// production runs.
import type Stripe from 'stripe';
import { createBilling, type Billing } from './billing/billing.ts';
import type { Config } from './config.ts';
import { openDb } from './db/open.ts';
import { createSqliteStorage } from './db/sqlite-storage.ts';
import { createLogger, type Logger } from './log.ts';
import { Deliverer, type Timers } from './notify/deliverer.ts';
import { createGateway, type Gateway } from './server.ts';
import { GatewayState } from './state/state.ts';
import type { Storage } from './storage/ports.ts';

export interface AppOverrides {
  /** Milliseconds since the epoch; tests pass a fake clock. */
  now?: () => number;
  log?: Logger;
  /** Another backend (the default: the SQLite file at config.databasePath). */
  storage?: Storage;
  /** A Stripe client (tests point one at a local fake). */
  stripe?: Stripe;
  /** How the notifications' deliverer keeps time (tests drive it with Deliverer.tick). */
  notify?: { pollMs?: number; timers?: Timers };
}

export interface App {
  config: Config;
  storage: Storage;
  state: GatewayState;
  billing: Billing | undefined;
  /** Sends the outbox's events; undefined without notifications in the config. */
  deliverer: Deliverer | undefined;
  gateway: Gateway;
  /** Resolves with the port bound. */
  listen(port: number, host: string): Promise<number>;
  /** Drains the server, writes what is queued, returns the leases, closes the database. */
  close(): Promise<void>;
}

export async function createApp(config: Config, overrides: AppOverrides = {}): Promise<App> {
  const now = overrides.now ?? Date.now;
  const log = overrides.log ?? createLogger(config.logLevel);
  // The gateway's connection never waits for another process's write lock (see db/open.ts).
  const storage = overrides.storage ?? createSqliteStorage(openDb(config.databasePath, { waitMs: 0 }), { now });
  const state = new GatewayState(storage, config, log, now);
  await state.start();
  const billing = createBilling({ config, storage, log, now, stripe: overrides.stripe });
  const gateway = createGateway({ config, state, log, billing, now });
  const notifications = config.notifications;
  const deliverer = notifications && new Deliverer({ outbox: storage.outbox, config: { ...config, notifications }, log, now, ...overrides.notify });
  deliverer?.start();
  return {
    config, storage, state, billing, deliverer, gateway,
    listen: (port, host) => gateway.listen(port, host),
    async close() {
      billing?.reporter.stop();
      await gateway.close();
      await state.stop();
      await deliverer?.stop();
      await storage.close();
    },
  };
}
