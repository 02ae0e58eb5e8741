// tollgate accounts create | list | show | set-plan
import type { Command } from 'commander';
import { formatMicros } from '../money.ts';
import { cliConfig, common, withAdmin, type CommonOptions } from './context.ts';
import { FailedError } from './errors.ts';
import { accountFields, accountJson, emit, keyJson, keyRows, table } from './output.ts';
import { emailArg, knownPlan } from './parse.ts';

interface CreateOptions extends CommonOptions { email: string; name?: string; plan?: string }

export function accountsCommand(group: Command): void {
  common(group.command('create').description('create an account'))
    .requiredOption('--email <email>', 'contact email, unique per account', emailArg)
    .option('--name <name>', 'display name')
    .option('--plan <plan>', 'plan from the config (default: the config\'s defaultPlan)')
    .action((opts: CreateOptions) => {
      const plan = knownPlan(opts.plan ?? cliConfig().defaultPlan);
      const account = withAdmin(opts, (admin) => {
        try {
          return admin.createAccount({ email: opts.email, name: opts.name, plan });
        } catch (err) {
          if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
            throw new FailedError(`an account with email ${opts.email} already exists`);
          }
          throw err;
        }
      });
      emit(opts, accountJson(account), () => [`Created account ${account.id}`, ...accountFields(account)]);
    });

  common(group.command('list').description('list accounts'))
    .action((opts: CommonOptions) => {
      const accounts = withAdmin(opts, (admin) => admin.listAccounts());
      emit(opts, accounts.map(accountJson), () => table(
        ['ID', 'EMAIL', 'NAME', 'PLAN', 'STATUS', 'BALANCE'],
        accounts.map((a) => [a.id, a.email, a.name, a.plan, a.status, formatMicros(a.balanceMicros)]),
        'no accounts',
      ));
    });

  common(group.command('show').description('show an account and its keys').argument('<id>', 'account id'))
    .action((id: string, opts: CommonOptions) => {
      const now = Date.now();
      const { account, keys } = withAdmin(opts, (admin) => ({ account: admin.account(id), keys: admin.listKeys(id) }));
      emit(opts, { ...accountJson(account), keys: keys.map((k) => keyJson(k, now)) },
        () => [...accountFields(account), '', ...keyRows(keys, now)]);
    });

  common(group.command('set-plan').description('move an account to another plan')
    .argument('<id>', 'account id').argument('<plan>', 'plan from the config'))
    .action((id: string, plan: string, opts: CommonOptions) => {
      knownPlan(plan);
      const account = withAdmin(opts, (admin) => admin.setPlan(id, plan));
      emit(opts, accountJson(account), () => [`Account ${account.id} is now on plan ${account.plan}`]);
    });
}
