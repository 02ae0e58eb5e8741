// tollgate usage ID [--month YYYY-MM]: an account's quota and traffic in the period the gateway
// counts it against now (the subscription's billing period while one runs, else the calendar month,
// UTC; pipeline/admit.ts decides), or in the calendar month asked for.
import type { Command } from 'commander';
import { monthRange } from '../db/admin.ts';
import { formatMicros } from '../money.ts';
import { MonthlyPeriods, quotaPeriod, subscriptionPeriodKey } from '../state/periods.ts';
import type { Cli, CommonOptions } from './context.ts';
import { fields, iso, table } from './output.ts';
import { monthArg } from './parse.ts';

interface UsageOptions extends CommonOptions { month?: string }

export function usageCommand(program: Command, cli: Cli): void {
  program.command('usage').description('an account\'s quota and requests in its current quota period, or in a calendar month')
    .argument('<id>', 'account id')
    .option('--month <YYYY-MM>', 'a calendar month (UTC) instead of the current quota period', monthArg)
    .action((id: string, opts: UsageOptions) => {
      const { account, period, subscription, start, end, usage } = cli.withAdmin(opts, (admin) => {
        const account = admin.accountRecord(id);
        const period = opts.month ?? quotaPeriod(account, Date.now(), new MonthlyPeriods());
        const subscription = account.periodStart !== null && period === subscriptionPeriodKey(account.periodStart);
        // A subscription's period takes every request from its start until the next period arrives.
        const range = subscription ? { from: account.periodStart!, to: Infinity } : monthRange(period);
        const end = subscription ? account.periodEnd : range.to;
        return { account, period, subscription, start: range.from, end, usage: admin.usage(id, period, range) };
      });
      const { plans, defaultPlan } = cli.config();
      // As the gateway does: a plan missing from the config falls back to the default plan.
      const monthlyQuota = (plans[account.plan] ?? plans[defaultPlan])?.monthlyQuota ?? null;
      const doc = {
        id: account.id, period, periodStart: iso(start), periodEnd: iso(end), plan: account.plan, monthlyQuota,
        quotaUsed: usage.quotaUsed, requests: usage.requests, billable: usage.billable,
        chargedMicros: usage.chargedMicros, charged: formatMicros(usage.chargedMicros), byStatus: usage.byStatus,
      };
      const described = subscription ? `subscription period from ${iso(start)}, renews ${iso(end) ?? '-'}` : `${period} (calendar month, UTC)`;
      cli.emit(opts, doc, () => [
        ...fields([
          ['account', account.id], ['period', described], ['plan', account.plan],
          ['quota', `${usage.quotaUsed} of ${monthlyQuota ?? 'unlimited'}`],
          ['requests', usage.requests], ['billable', usage.billable], ['charged', `$${formatMicros(usage.chargedMicros)}`],
        ]),
        '',
        ...table(['STATUS', 'REQUESTS'], Object.entries(usage.byStatus).map(([s, n]) => [s, n]), 'no requests'),
      ]);
    });
}
