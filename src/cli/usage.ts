// tollgate usage ID [--month YYYY-MM]: one calendar month (UTC) of an account's traffic.
import type { Command } from 'commander';
import { formatMicros } from '../money.ts';
import { cliConfig, common, withAdmin, type CommonOptions } from './context.ts';
import { emit, fields, table } from './output.ts';
import { currentMonth, monthArg } from './parse.ts';

interface UsageOptions extends CommonOptions { month?: string }

export function usageCommand(program: Command): void {
  common(program.command('usage').description('an account\'s usage for one calendar month (UTC)').argument('<id>', 'account id'))
    .option('--month <YYYY-MM>', 'the month (default: the current one)', monthArg)
    .action((id: string, opts: UsageOptions) => {
      const period = opts.month ?? currentMonth(Date.now());
      const { account, usage } = withAdmin(opts, (admin) => ({ account: admin.account(id), usage: admin.usage(id, period) }));
      const { plans, defaultPlan } = cliConfig();
      // As the gateway does: a plan missing from the config falls back to the default plan.
      const monthlyQuota = (plans[account.plan] ?? plans[defaultPlan])?.monthlyQuota ?? null;
      const doc = {
        id: account.id, period, plan: account.plan, monthlyQuota, quotaUsed: usage.quotaUsed,
        requests: usage.requests, billable: usage.billable,
        chargedMicros: usage.chargedMicros, charged: formatMicros(usage.chargedMicros), byStatus: usage.byStatus,
      };
      emit(opts, doc, () => [
        ...fields([
          ['account', account.id], ['month', period], ['plan', account.plan],
          ['quota', `${usage.quotaUsed} of ${monthlyQuota ?? 'unlimited'}`],
          ['requests', usage.requests], ['billable', usage.billable], ['charged', `$${formatMicros(usage.chargedMicros)}`],
        ]),
        '',
        ...table(['STATUS', 'REQUESTS'], Object.entries(usage.byStatus).map(([s, n]) => [s, n]), 'no requests'),
      ]);
    });
}
