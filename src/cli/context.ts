// What every command shares: the --db and --json options, the config (read once, on demand, so a
// command that needs neither plans nor the default path never trips over it) and an open store.
import type { Command } from 'commander';
import { loadConfig, type Config } from '../config.ts';
import { Admin } from '../db/admin.ts';
import { openDb } from '../db/open.ts';
import { createSqliteStore } from '../db/sqlite-store.ts';
import type { OutputOptions } from './output.ts';

export interface CommonOptions extends OutputOptions { db?: string }

/** Adds --db and --json to a command that does something (not to the groups). */
export function common(cmd: Command): Command {
  return cmd
    .option('--db <path>', 'SQLite file (default: DATABASE_PATH, else ./data/tollgate.db)')
    .option('--json', 'print one JSON document on stdout');
}

let config: Config | undefined;

export function cliConfig(): Config {
  return (config ??= loadConfig());
}

export function dbPath(opts: CommonOptions): string {
  return opts.db ?? cliConfig().databasePath;
}

/** Opens the database (applying pending migrations), runs `fn`, and closes it whatever happens. */
export function withAdmin<T>(opts: CommonOptions, fn: (admin: Admin) => T): T {
  const db = openDb(dbPath(opts));
  const store = createSqliteStore(db);
  try {
    return fn(new Admin(db, store));
  } finally {
    store.close();
  }
}
