// Boot: config → the database's lock → the app (storage, memory, server) → listen; a clean stop
// on SIGTERM and SIGINT.
import type { Server } from 'node:http';
import { createApp } from './app.ts';
import { ConfigError, demoRoute, loadConfig, type Config } from './config.ts';
import { lockDatabase } from './db/gateway-lock.ts';
import { startEchoUpstream } from './demo-echo.ts';
import { createLogger } from './log.ts';

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

  let demo: Server | undefined;
  if (config.demo) {
    const echo = await startEchoUpstream();
    demo = echo.server;
    config = { ...config, routes: [demoRoute(echo.url, config.upstreamTimeoutMs)] };
  }

  const app = await createApp(config, { log });
  app.billing?.reporter.start();
  const port = await app.listen(config.port, config.host);
  if (app.admin && config.admin) {
    const adminPort = await app.admin.listen(config.admin.port, config.admin.host);
    log.info('admin API listening', { url: `http://${config.admin.host}:${adminPort}/admin/v1/`, tokens: config.admin.tokens.length });
  }
  log.info('listening', {
    url: `http://${config.host}:${port}`,
    database: config.databasePath,
    routes: config.routes.map((r) => `${r.path} → ${r.upstreams.map((u) => u.href).join(', ')}`),
    plans: Object.keys(config.plans),
    source: config.source,
    billing: app.billing ? 'stripe' : 'off',
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    await app.close();
    demo?.close();
    lock.release();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
