// tollgate credits grant | deduct | show. Amounts are dollars on the command line and integer
// micro-dollars everywhere else; every change of a balance is a ledger row.
import type { Command } from 'commander';
import type { Cli, CommonOptions } from './context.ts';
import { fields, table } from './output.ts';
import { amountArg, countArg } from './parse.ts';

const DEFAULT_REASON = 'manual grant';
const DEFAULT_LIMIT = 20;

interface GrantOptions extends CommonOptions { reason: string }
interface ShowOptions extends CommonOptions { limit: number; before?: number }

export function creditsCommand(group: Command, cli: Cli): void {
  group.command('grant').description('add prepaid credits to an account')
    .argument('<id>', 'account id')
    .argument('<amount>', 'dollars, e.g. 12.50 (at most 6 decimals)', amountArg)
    .option('--reason <text>', 'recorded on the ledger row', DEFAULT_REASON)
    .action(async (id: string, micros: number, opts: GrantOptions) => {
      const granted = await cli.withOps(opts, (ops) => ops.grantCredits(id, { amountMicros: micros, reason: opts.reason }));
      cli.emit(opts, granted, () => [`Granted $${granted.granted} to ${granted.id}: the balance is now $${granted.balance}`]);
    });

  group.command('deduct').description('take credits back from an account (never below zero: refused, exit 1, if it cannot pay it all)')
    .argument('<id>', 'account id')
    .argument('<amount>', 'dollars, e.g. 2.50 (at most 6 decimals)', amountArg)
    .requiredOption('--reason <text>', 'why: recorded on the ledger row and in the audit log')
    .action(async (id: string, micros: number, opts: GrantOptions) => {
      const deducted = await cli.withOps(opts, (ops) => ops.deductCredits(id, { amountMicros: micros, reason: opts.reason }));
      cli.emit(opts, deducted, () => [`Deducted $${deducted.deducted} from ${deducted.id}: the balance is now $${deducted.balance}`]);
    });

  group.command('show').description('show an account\'s balance and its latest ledger entries, newest first').argument('<id>', 'account id')
    .option('--limit <n>', 'how many entries', countArg, DEFAULT_LIMIT)
    .option('--before <entry-id>', 'only entries older than this one (the next page)', countArg)
    .action(async (id: string, opts: ShowOptions) => {
      const shown = await cli.withOps(opts, (ops) => ops.ledger(id, { limit: opts.limit, before: opts.before }));
      cli.emit(opts, shown, () => [
        ...fields([['account', shown.id], ['balance', `$${shown.balance}`]]),
        '',
        ...table(['ID', 'TIME', 'KIND', 'AMOUNT', 'BALANCE', 'REFERENCE'],
          shown.ledger.map((e) => [e.id, e.createdAt, e.kind, e.amount, e.balanceAfter, e.reference]), 'no ledger entries'),
        ...(shown.nextBefore === null ? [] : ['', `older entries: tollgate credits show ${shown.id} --before ${shown.nextBefore}`]),
      ]);
    });
}
