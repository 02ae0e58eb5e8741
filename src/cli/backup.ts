// tollgate backup FILE: an online copy of the database, checked (see db/backup.ts).
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { backup } from '../db/backup.ts';
import { openDb } from '../db/open.ts';
import type { Cli, CommonOptions } from './context.ts';
import { FailedError } from './errors.ts';

export function backupCommand(program: Command, cli: Cli): void {
  program.command('backup').description('copy the database while the gateway serves, and check the copy')
    .argument('<file>', 'where the copy goes (a new file)')
    .action((file: string, opts: CommonOptions) => {
      cli.fileOnly(opts, 'backup');
      const db = openDb(cli.database(opts), { migrateNow: false });
      let report;
      try {
        report = backup(db, resolve(file));
      } catch (err) {
        throw new FailedError((err as Error).message);
      } finally {
        db.close();
      }
      if (report.integrity !== 'ok' || report.unbalanced > 0) cli.exitCode = 1;
      cli.emit(opts, report, () => [
        `${report.file}: ${report.bytes} bytes, integrity ${report.integrity}, ${report.accounts} accounts` +
        (report.unbalanced > 0 ? `, ${report.unbalanced} NOT balanced` : ', every balance equals its ledger'),
      ]);
    });
}
