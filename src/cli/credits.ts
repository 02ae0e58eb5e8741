// tollgate credits grant | show. Amounts are dollars on the command line and integer micro-dollars
// everywhere else; every change of a balance is a ledger row (Admin → Store.credit).
import type { Command } from 'commander';
import { formatMicros } from '../money.ts';
import { common, withAdmin, type CommonOptions } from './context.ts';
import { UsageError } from './errors.ts';
import { accountJson, emit, fields, iso, ledgerJson, table } from './output.ts';
import { amountArg } from './parse.ts';

const DEFAULT_REASON = 'manual grant';

interface GrantOptions extends CommonOptions { reason: string }

export function creditsCommand(group: Command): void {
  common(group.command('grant').description('add prepaid credits to an account')
    .argument('<id>', 'account id')
    .argument('<amount>', 'dollars, e.g. 12.50 (at most 6 decimals)', amountArg))
    .option('--reason <text>', 'recorded on the ledger row', DEFAULT_REASON)
    .action((id: string, micros: number, opts: GrantOptions) => {
      const account = withAdmin(opts, (admin) => {
        const before = admin.account(id);
        // Balances are read back as JS numbers: past 2^53 micros they would stop being exact.
        if (before.balanceMicros > Number.MAX_SAFE_INTEGER - micros) {
          throw new UsageError(`granting ${formatMicros(micros)} would take the balance past ${formatMicros(Number.MAX_SAFE_INTEGER)}`);
        }
        return admin.grantCredits(id, micros, opts.reason);
      });
      emit(opts, { ...accountJson(account), grantedMicros: micros, granted: formatMicros(micros), reason: opts.reason },
        () => [`Granted $${formatMicros(micros)} to ${account.id}: the balance is now $${formatMicros(account.balanceMicros)}`]);
    });

  common(group.command('show').description('show an account\'s balance and ledger').argument('<id>', 'account id'))
    .action((id: string, opts: CommonOptions) => {
      const { account, ledger } = withAdmin(opts, (admin) => ({ account: admin.account(id), ledger: admin.ledger(id) }));
      emit(opts, { id: account.id, balanceMicros: account.balanceMicros, balance: formatMicros(account.balanceMicros), ledger: ledger.map(ledgerJson) },
        () => [
          ...fields([['account', account.id], ['balance', `$${formatMicros(account.balanceMicros)}`]]),
          '',
          ...table(['ID', 'TIME', 'KIND', 'AMOUNT', 'BALANCE', 'REFERENCE'],
            ledger.map((e) => [e.id, iso(e.createdAt), e.kind, formatMicros(e.amountMicros), formatMicros(e.balanceAfterMicros), e.reference]),
            'no ledger entries'),
        ]);
    });
}
