// Boot: config → database (migrated) → server → listen; a clean stop on SIGTERM and SIGINT.
import type { Server } from 'node:http';
import { ConfigError, demoRoute, loadConfig, type Config } from './config.ts';
import { lockDatabase } from './db/gateway-lock.ts';
import { openDb } from './db/open.ts';
import { createBilling } from './billing/billing.ts';
import { createSqliteBillingStore } from './db/sqlite-billing-store.ts';
import { createSqliteStore } from './db/sqlite-store.ts';
import { startEchoUpstream } from './demo-echo.ts';
import { createLogger } from './log.ts';
import { createGateway } from './server.ts';

export async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`tollgate: ${err.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  const log = createLogger(config.logLevel);
  // Before anything reads or writes the file: a second gateway on it must change nothing.
  const lock = lockDatabase(config.databasePath);
  const db = openDb(config.databasePath);
  const store = createSqliteStore(db, {
    onFlushError: (err) => log.error('writing usage failed; retrying', { error: err.message }),
  });

  let demo: Server | undefined;
  if (config.demo) {
    const echo = await startEchoUpstream();
    demo = echo.server;
    config = { ...config, routes: [demoRoute(echo.url, config.upstreamTimeoutMs)] };
  }

  const released = store.releaseReservations();
  if (released > 0) log.warn('gave back AI reservations left by a previous run that stopped mid-request', { released });
  const billing = createBilling({ config, store, billing: createSqliteBillingStore(db), log });
  billing?.reporter.start();
  const gateway = createGateway({ config, store, log, billing });
  const port = await gateway.listen(config.port, config.host);
  log.info('listening', {
    url: `http://${config.host}:${port}`,
    database: config.databasePath,
    routes: config.routes.map((r) => `${r.path} → ${r.upstream.href}`),
    plans: Object.keys(config.plans),
    source: config.source,
    billing: billing ? 'stripe' : 'off',
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    billing?.reporter.stop();
    await gateway.close();
    demo?.close();
    store.close();
    lock.release();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
