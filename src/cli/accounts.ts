// tollgate accounts create | list | show | set-plan | suspend | reactivate
import type { Command } from 'commander';
import { MAX_LIMIT } from '../admin/input.ts';
import type { AccountStatus } from '../storage/records.ts';
import type { Cli, CommonOptions } from './context.ts';
import { accountFields, keyRows, nextPage, table } from './output.ts';
import { emailArg, limitArg, statusArg } from './parse.ts';

const DEFAULT_LIMIT = 50;

interface CreateOptions extends CommonOptions { email: string; name?: string; plan?: string }
interface ListOptions extends CommonOptions { limit: number; after?: string; plan?: string; status?: AccountStatus; email?: string }

export function accountsCommand(group: Command, cli: Cli): void {
  group.command('create').description('create an account')
    .requiredOption('--email <email>', 'contact email, unique per account ignoring case', emailArg)
    .option('--name <name>', 'display name')
    .option('--plan <plan>', 'plan from the config (default: the config\'s defaultPlan)')
    .action(async (opts: CreateOptions) => {
      // An email taken, in any case, is refused (exit 1), naming the account that has it.
      const account = await cli.withOps(opts, (ops) => ops.createAccount({ email: opts.email, name: opts.name, plan: opts.plan }));
      cli.emit(opts, account, () => [`Created account ${account.id}`, ...accountFields(account)]);
    });

  group.command('list').description(`list accounts, oldest first, ${DEFAULT_LIMIT} at a time`)
    .option('--limit <n>', `how many (at most ${MAX_LIMIT})`, limitArg, DEFAULT_LIMIT)
    .option('--after <account-id>', 'the page after this account (the "next" of the previous page)')
    .option('--plan <plan>', 'only accounts on this plan')
    .option('--status <status>', 'only active or suspended accounts', statusArg)
    .option('--email <email>', 'the account with this email (ignoring case)')
    .action(async (opts: ListOptions) => {
      const { limit, after, plan, status, email } = opts;
      const page = await cli.withOps(opts, (ops) => ops.listAccounts({ limit, after, plan, status, email }));
      cli.emit(opts, page, () => [
        ...table(['ID', 'EMAIL', 'NAME', 'PLAN', 'STATUS', 'BALANCE'],
          page.data.map((a) => [a.id, a.email, a.name, a.plan, a.status, a.balance]), 'no accounts'),
        ...nextPage(page.next, 'accounts list', { limit: limit === DEFAULT_LIMIT ? undefined : limit, plan, status, email }),
      ]);
    });

  group.command('show').description('show an account and its keys').argument('<id>', 'account id')
    .action(async (id: string, opts: CommonOptions) => {
      const { account, keys } = await cli.withOps(opts, async (ops) => ({
        account: await ops.account(id), keys: await ops.listKeys({ account: id, limit: MAX_LIMIT }),
      }));
      cli.emit(opts, { ...account, keys: keys.data }, () => [
        ...accountFields(account), '', ...keyRows(keys.data), ...nextPage(keys.next, 'keys list', { account: id }),
      ]);
    });

  group.command('set-plan').description('move an account to another plan')
    .argument('<id>', 'account id').argument('<plan>', 'plan from the config')
    .action(async (id: string, plan: string, opts: CommonOptions) => {
      const account = await cli.withOps(opts, (ops) => ops.updateAccount(id, { plan }));
      cli.emit(opts, account, () => [`Account ${account.id} is now on plan ${account.plan}`]);
    });

  const standing = (name: string, status: AccountStatus, description: string, done: string) =>
    group.command(name).description(description).argument('<id>', 'account id')
      .action(async (id: string, opts: CommonOptions) => {
        const account = await cli.withOps(opts, (ops) => ops.updateAccount(id, { status }));
        cli.emit(opts, account, () => [`Account ${account.id} is ${done}`]);
      });
  standing('suspend', 'suspended', 'suspend an account by hand (its requests get 402; a paid invoice does not lift it)', 'suspended');
  standing('reactivate', 'active', 'put a suspended account back in good standing, whoever suspended it', 'active again');
}
