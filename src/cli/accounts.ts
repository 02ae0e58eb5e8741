// tollgate accounts create | list | show | set-plan
import type { Command } from 'commander';
import { formatMicros } from '../money.ts';
import type { Cli, CommonOptions } from './context.ts';
import { accountFields, accountJson, keyJson, keyRows, table } from './output.ts';
import { emailArg, knownPlan } from './parse.ts';

interface CreateOptions extends CommonOptions { email: string; name?: string; plan?: string }

export function accountsCommand(group: Command, cli: Cli): void {
  group.command('create').description('create an account')
    .requiredOption('--email <email>', 'contact email, unique per account ignoring case', emailArg)
    .option('--name <name>', 'display name')
    .option('--plan <plan>', 'plan from the config (default: the config\'s defaultPlan)')
    .action((opts: CreateOptions) => {
      const config = cli.config();
      const plan = knownPlan(config, opts.plan ?? config.defaultPlan);
      // An email taken, in any case, is refused by Admin (exit 1), naming the account that has it.
      const account = cli.withAdmin(opts, (admin) => admin.createAccount({ email: opts.email, name: opts.name, plan }));
      cli.emit(opts, accountJson(account), () => [`Created account ${account.id}`, ...accountFields(account)]);
    });

  group.command('list').description('list accounts')
    .action((opts: CommonOptions) => {
      const accounts = cli.withAdmin(opts, (admin) => admin.listAccounts());
      cli.emit(opts, accounts.map(accountJson), () => table(
        ['ID', 'EMAIL', 'NAME', 'PLAN', 'STATUS', 'BALANCE'],
        accounts.map((a) => [a.id, a.email, a.name, a.plan, a.status, formatMicros(a.balanceMicros)]),
        'no accounts',
      ));
    });

  group.command('show').description('show an account and its keys').argument('<id>', 'account id')
    .action((id: string, opts: CommonOptions) => {
      const now = Date.now();
      const { account, keys } = cli.withAdmin(opts, (admin) => ({ account: admin.account(id), keys: admin.listKeys(id) }));
      cli.emit(opts, { ...accountJson(account), keys: keys.map((k) => keyJson(k, now)) },
        () => [...accountFields(account), '', ...keyRows(keys, now)]);
    });

  group.command('set-plan').description('move an account to another plan')
    .argument('<id>', 'account id').argument('<plan>', 'plan from the config')
    .action((id: string, plan: string, opts: CommonOptions) => {
      knownPlan(cli.config(), plan);
      const account = cli.withAdmin(opts, (admin) => admin.setPlan(id, plan));
      cli.emit(opts, accountJson(account), () => [`Account ${account.id} is now on plan ${account.plan}`]);
    });
}
