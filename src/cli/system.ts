// tollgate migrate | serve
import type { Command } from 'commander';
import { migrate } from '../db/migrate.ts';
import { openDb } from '../db/open.ts';
import { main } from '../main.ts';
import { common, dbPath, type CommonOptions } from './context.ts';
import { emit } from './output.ts';

export function systemCommands(program: Command): void {
  common(program.command('migrate').description('apply pending database migrations'))
    .action((opts: CommonOptions) => {
      const database = dbPath(opts);
      const db = openDb(database, { migrateNow: false });
      let applied: string[];
      try {
        applied = migrate(db);
      } finally {
        db.close();
      }
      emit(opts, { database, applied }, () =>
        applied.length === 0 ? [`${database}: the schema is up to date`] : applied.map((m) => `${database}: applied ${m}`));
    });

  common(program.command('serve').description('run the gateway (logs are JSON lines on stdout either way)'))
    .action(async (opts: CommonOptions) => {
      // main() reads its settings through loadConfig(), the one reader of the environment; this
      // is how --db reaches it.
      if (opts.db !== undefined) process.env.DATABASE_PATH = opts.db;
      await main();
    });
}
