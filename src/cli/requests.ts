// tollgate requests list ACCOUNT_ID | show REQUEST_ID: an account's latest requests, and the one
// a customer quotes by its X-Request-Id (looked for among the latest million rows, or around
// --around TIME).
import type { Command } from 'commander';
import type { Cli, CommonOptions } from './context.ts';
import { fields, table } from './output.ts';
import { limitArg } from './parse.ts';

interface ListOptions extends CommonOptions { limit: number }
interface ShowOptions extends CommonOptions { around?: string }

export function requestsCommand(group: Command, cli: Cli): void {
  group.command('list').description('an account\'s latest requests, newest first').argument('<account-id>', 'account id')
    .option('--limit <n>', 'how many', limitArg, 20)
    .action(async (id: string, opts: ListOptions) => {
      const recent = await cli.withOps(opts, (ops) => ops.recentRequests(id, opts.limit));
      cli.emit(opts, recent, () => table(['TIME', 'REQUEST ID', 'METHOD', 'PATH', 'STATUS', 'COST', 'MODEL'],
        recent.requests.map((r) => [r.time, r.requestId, r.method, r.path, r.status, r.cost, r.model]), 'no requests'));
    });

  group.command('show').description('one request by its id (X-Request-Id)').argument('<request-id>', 'the gateway\'s request id')
    .option('--around <time>', 'about when it was made (ISO 8601): look there rather than among the latest requests')
    .action(async (id: string, opts: ShowOptions) => {
      const r = await cli.withOps(opts, (ops) => ops.findRequest(id, opts.around));
      cli.emit(opts, r, () => fields([
        ['request', r.requestId], ['time', r.time], ['account', r.accountId], ['key', r.keyId], ['route', r.route],
        ['request line', `${r.method} ${r.path}`], ['status', r.status], ['latency', `${(r.latencyUs / 1000).toFixed(1)} ms`],
        ['bytes', `${r.requestBytes} in, ${r.responseBytes} out`], ['cost', `$${r.cost}${r.billable ? '' : ' (not billable)'}`],
        ['model', r.model], ['tokens', r.model === null ? null : `${r.inputTokens ?? 0} in, ${r.outputTokens ?? 0} out${r.estimated ? ' (estimated)' : ''}`],
      ]));
    });
}
