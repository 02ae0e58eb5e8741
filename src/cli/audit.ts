// tollgate audit [--account ID] [--limit N] [--after CURSOR]: administrative changes, newest first,
// with who made them (an admin token's fingerprint, or the CLI) and the admin API request's id.
import type { Command } from 'commander';
import type { Cli, CommonOptions } from './context.ts';
import { nextPage, table } from './output.ts';
import { limitArg } from './parse.ts';

interface AuditOptions extends CommonOptions { account?: string; limit: number; after?: string }

const DEFAULT_LIMIT = 50;

export function auditCommand(program: Command, cli: Cli): void {
  program.command('audit').description('administrative changes, newest first: when, what, by whom')
    .option('--account <id>', 'only this account\'s')
    .option('--limit <n>', 'how many', limitArg, DEFAULT_LIMIT)
    .option('--after <cursor>', 'the page after this one (the "next" of the previous page)')
    .action(async (opts: AuditOptions) => {
      const { account, limit, after } = opts;
      const page = await cli.withOps(opts, (ops) => ops.audit({ account, limit, after }));
      cli.emit(opts, page, () => [
        ...table(['ID', 'TIME', 'BY', 'ACTION', 'TARGET', 'CHANGE'],
          page.data.map((e) => [e.id, e.at, e.actor, e.action, e.target, JSON.stringify(e.change)]), 'no changes recorded'),
        ...nextPage(page.next, 'audit', { account, limit: limit === DEFAULT_LIMIT ? undefined : limit }),
      ]);
    });
}
