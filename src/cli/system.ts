// tollgate migrate | serve: the two commands that may create the database file.
import type { Command } from 'commander';
import { migrate } from '../db/migrate.ts';
import { migratePg } from '../pg/migrate.ts';
import { createPool } from '../pg/pool.ts';
import { openDb } from '../db/open.ts';
import { main } from '../main.ts';
import type { Cli, CommonOptions } from './context.ts';

export function systemCommands(program: Command, cli: Cli): void {
  program.command('migrate').description('create the database or apply its pending migrations')
    .action(async (opts: CommonOptions) => {
      cli.fileOnly(opts, 'migrate');
      const url = opts.db === undefined ? cli.config().databaseUrl : undefined;
      if (url) {
        const where = `postgres://${new URL(url).host}${new URL(url).pathname}`; // no password in the output
        const pool = await createPool(url, 1);
        const applied = await migratePg(pool).finally(() => pool.end());
        return cli.emit(opts, { database: where, applied }, () =>
          applied.length === 0 ? [`${where}: the schema is up to date`] : applied.map((m) => `${where}: applied ${m}`));
      }
      const database = cli.database(opts, { create: true });
      const db = openDb(database, { migrateNow: false });
      let applied: string[];
      try {
        applied = migrate(db);
      } finally {
        db.close();
      }
      cli.emit(opts, { database, applied }, () =>
        applied.length === 0 ? [`${database}: the schema is up to date`] : applied.map((m) => `${database}: applied ${m}`));
    });

  program.command('serve').description('run the gateway (logs are JSON lines on stdout either way)')
    .action(async (opts: CommonOptions) => {
      cli.fileOnly(opts, 'serve');
      // main() reads its settings through loadConfig(), the one reader of the environment, and
      // checks all of them, as the gateway needs; this is how --db reaches it.
      if (opts.db !== undefined) process.env.DATABASE_PATH = opts.db;
      await main();
    });
}
