// tollgate credits grant | show. Amounts are dollars on the command line and integer micro-dollars
// everywhere else; every change of a balance is a ledger row (Admin → Store.credit).
import type { Command } from 'commander';
import { formatMicros } from '../money.ts';
import type { Cli, CommonOptions } from './context.ts';
import { UsageError } from './errors.ts';
import { accountJson, fields, iso, ledgerJson, table } from './output.ts';
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
    .action((id: string, micros: number, opts: GrantOptions) => {
      const account = cli.withAdmin(opts, (admin) => {
        const before = admin.account(id);
        // Balances are read back as JS numbers: past 2^53 micros they would stop being exact.
        if (before.balanceMicros > Number.MAX_SAFE_INTEGER - micros) {
          throw new UsageError(`granting ${formatMicros(micros)} would take the balance past ${formatMicros(Number.MAX_SAFE_INTEGER)}`);
        }
        return admin.grantCredits(id, micros, opts.reason);
      });
      cli.emit(opts, { ...accountJson(account), grantedMicros: micros, granted: formatMicros(micros), reason: opts.reason },
        () => [`Granted $${formatMicros(micros)} to ${account.id}: the balance is now $${formatMicros(account.balanceMicros)}`]);
    });

  group.command('show').description('show an account\'s balance and its latest ledger entries, newest first').argument('<id>', 'account id')
    .option('--limit <n>', 'how many entries', countArg, DEFAULT_LIMIT)
    .option('--before <entry-id>', 'only entries older than this one (the next page)', countArg)
    .action((id: string, opts: ShowOptions) => {
      const { account, page } = cli.withAdmin(opts, (admin) => ({
        account: admin.account(id), page: admin.ledgerPage(id, { limit: opts.limit, before: opts.before }),
      }));
      const { entries, nextBefore } = page;
      cli.emit(opts, {
        id: account.id, balanceMicros: account.balanceMicros, balance: formatMicros(account.balanceMicros),
        ledger: entries.map(ledgerJson), nextBefore,
      }, () => [
        ...fields([['account', account.id], ['balance', `$${formatMicros(account.balanceMicros)}`]]),
        '',
        ...table(['ID', 'TIME', 'KIND', 'AMOUNT', 'BALANCE', 'REFERENCE'],
          entries.map((e) => [e.id, iso(e.createdAt), e.kind, formatMicros(e.amountMicros), formatMicros(e.balanceAfterMicros), e.reference]),
          'no ledger entries'),
        ...(nextBefore === null ? [] : ['', `older entries: tollgate credits show ${account.id} --before ${nextBefore}`]),
      ]);
    });
}
