// tollgate notifications list | resend | set-alerts | secret: the deliveries of balance, quota and
// billing events (src/notify/), an account's own low-balance threshold, and a new signing secret.
// A running gateway sends what is resent here within a second.
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { DeliveryDoc } from '../admin/shapes.ts';
import { parseDollars } from '../money.ts';
import type { Cli, CommonOptions } from './context.ts';
import { table } from './output.ts';
import { countArg } from './parse.ts';

interface ListOptions extends CommonOptions { failed?: boolean; account?: string; limit: number; after?: string }
interface AlertOptions extends CommonOptions { lowBalance: number | 'plan' }

const DEFAULT_LIMIT = 50;

/** Dollars, or "plan": the plan's threshold again (commander keeps no null). */
const thresholdArg = (text: string): number | 'plan' => {
  if (text === 'plan') return text;
  try {
    return parseDollars(text);
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}, or "plan"`);
  }
};

const last = (d: DeliveryDoc): string => (d.lastError ?? (d.lastStatus === null ? '-' : String(d.lastStatus)));

export function notificationsCommand(group: Command, cli: Cli): void {
  group.command('list').description('deliveries of events to webhooks and email, newest first')
    .option('--failed', 'only those given up after a day of retries')
    .option('--account <id>', 'only this account\'s')
    .option('--limit <n>', 'how many', countArg, DEFAULT_LIMIT)
    .option('--after <delivery-id>', 'only older ones (the "next" of the previous page)')
    .action((opts: ListOptions) => cli.withOps(opts, async (ops) => {
      const page = await ops.deliveries({ failed: opts.failed === true, account: opts.account, limit: opts.limit, after: opts.after });
      cli.emit(opts, page, () => [
        ...table(
          ['ID', 'TYPE', 'ACCOUNT', 'TO', 'STATUS', 'ATTEMPTS', 'LAST', 'EVENT', 'CREATED'],
          page.data.map((d) => [d.id, d.type, d.accountId, `${d.channel} ${d.target}`, d.status, d.attempts, last(d), d.eventId, d.createdAt]),
          opts.failed ? 'no failed deliveries' : 'no deliveries',
        ),
        ...(page.next === null ? [] : [`more: --after ${page.next}`]),
      ]);
    }));

  group.command('resend').description('send a delivery again (same event id), with a fresh day of retries')
    .argument('<delivery-id>', 'from tollgate notifications list', countArg)
    .action((id: number, opts: CommonOptions) => cli.withOps(opts, async (ops) => {
      const d = await ops.resendDelivery(id);
      cli.emit(opts, d, () => [`Delivery ${d.id} (${d.type} ${d.eventId} to ${d.channel} ${d.target}) is queued again`]);
    }));

  group.command('set-alerts').description('an account\'s own low-balance threshold for balance.low')
    .argument('<account-id>', 'account id')
    .requiredOption('--low-balance <dollars>', 'e.g. 5.00; 0: never; "plan": the plan\'s again', thresholdArg)
    .action((id: string, opts: AlertOptions) => cli.withOps(opts, async (ops) => {
      const r = await ops.setAlerts(id, { lowBalanceMicros: opts.lowBalance === 'plan' ? null : opts.lowBalance });
      const micros = r.lowBalanceMicros;
      cli.emit(opts, r, () => [
        micros === null ? `${id}: balance.low follows its plan's threshold` : micros === 0 ? `${id}: no balance.low` : `${id}: balance.low below $${r.lowBalance}`,
      ]);
    }));

  group.command('secret').description('print a new Standard Webhooks signing secret for notifications.webhooks[].secret')
    .action((opts: CommonOptions) => {
      const secret = `whsec_${randomBytes(32).toString('base64')}`;
      cli.emit(opts, { secret }, () => [secret]);
    });
}
