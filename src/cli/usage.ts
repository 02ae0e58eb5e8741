// tollgate usage ID [--month YYYY-MM] [--daily]: an account's quota and traffic in the period the
// gateway counts it against now (the subscription's billing period while one runs, else the
// calendar month, UTC), or in the calendar month asked for; --daily adds its last 30 days, one line each.
import type { Command } from 'commander';
import type { Cli, CommonOptions } from './context.ts';
import { fields, table } from './output.ts';
import { monthArg } from './parse.ts';

interface UsageOptions extends CommonOptions { month?: string; daily?: boolean }

export function usageCommand(program: Command, cli: Cli): void {
  program.command('usage').description('an account\'s quota and requests in its current quota period, or in a calendar month')
    .argument('<id>', 'account id')
    .option('--month <YYYY-MM>', 'a calendar month (UTC) instead of the current quota period', monthArg)
    .option('--daily', 'with the requests of each of the last 30 days (UTC)')
    .action(async (id: string, opts: UsageOptions) => {
      const { usage, daily } = await cli.withOps(opts, async (ops) => ({
        usage: await ops.usage(id, { month: opts.month }),
        daily: opts.daily ? await ops.usageByDay(id, {}) : undefined,
      }));
      const described = usage.period.startsWith('sub:')
        ? `subscription period from ${usage.periodStart}, renews ${usage.periodEnd ?? '-'}`
        : `${usage.period} (calendar month, UTC)`;
      cli.emit(opts, daily ? { ...usage, daily: daily.days } : usage, () => [
        ...fields([
          ['account', usage.id], ['period', described], ['plan', usage.plan],
          ['quota', `${usage.quotaUsed} of ${usage.monthlyQuota ?? 'unlimited'}`],
          ['requests', usage.requests], ['billable', usage.billable], ['charged', `$${usage.charged}`],
        ]),
        '',
        ...table(['STATUS', 'REQUESTS'], Object.entries(usage.byStatus).map(([s, n]) => [s, n]), 'no requests'),
        ...(daily ? ['', ...table(['DAY', 'REQUESTS', 'BILLABLE', 'CHARGED'], daily.days.map((d) => [d.day, d.requests, d.billable, d.charged]), '')] : []),
      ]);
    });
}
