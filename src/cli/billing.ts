// tollgate billing status|sync and tollgate webhooks list|replay: the Stripe side of an account
// and of the webhook log. billing works on the database the server uses (the SQLite file, or
// PostgreSQL with DATABASE_URL); webhooks also through the admin API (--url).
import type { Command } from 'commander';
import { MAX_LIMIT } from '../admin/input.ts';
import { createBilling } from '../billing/billing.ts';
import { NotFoundError } from '../db/admin.ts';
import { createLogger } from '../log.ts';
import { formatMicros } from '../money.ts';
import { HELD_MICROS } from '../pg/pg-leases.ts';
import { createPgBilling } from '../pg/pg-billing.ts';
import type { Pool } from '../pg/pool.ts';
import type { BillingStorage, MaybePromise } from '../storage/ports.ts';
import type { Cli, CommonOptions } from './context.ts';
import { EXIT, FailedError } from './errors.ts';
import { fields, iso, nextPage, table } from './output.ts';
import { limitArg } from './parse.ts';

interface ListOptions extends CommonOptions { failed?: boolean; limit: number; after?: string }

const DEFAULT_LIMIT = 50;

/** The billing side of the database the server uses. */
interface BillingSide {
  storage: BillingStorage;
  /** What the customer has: the balance and what gateways' leases of it hold unspent. */
  balance(accountId: string): MaybePromise<number>;
}

const heldMicros = async (pool: Pool, accountId: string) =>
  (await pool.query<{ micros: number }>(`SELECT ${HELD_MICROS} AS micros FROM accounts a WHERE a.id = $1`, [accountId])).rows[0]?.micros ?? 0;

/** PostgreSQL when DATABASE_URL is set and no --db is given (as withOps decides), else the file. */
function withBilling<T>(cli: Cli, opts: CommonOptions, command: string, fn: (side: BillingSide) => T | Promise<T>): Promise<T> {
  cli.fileOnly(opts, command);
  const url = opts.db === undefined ? cli.config().databaseUrl : undefined;
  if (url) {
    return cli.withPostgres(url, (pool) => {
      // Changes recorded as no node's: every gateway hears of them from the changes table.
      const { billing, events, alone } = createPgBilling(pool);
      return fn({ storage: { billing, events, alone }, balance: (id) => heldMicros(pool, id) });
    });
  }
  return cli.withStorage(opts, (storage) => fn({ storage, balance: (id) => storage.ledger.balance(id) }));
}

export function billingCommand(group: Command, cli: Cli): void {
  group.command('status').description('an account\'s Stripe customer, subscription, plan, period and standing').argument('<id>', 'account id')
    .action((id: string, opts: CommonOptions) => withBilling(cli, opts, 'billing status', async ({ storage, balance }) => {
      const found = await storage.billing.account(id);
      if (!found) throw new NotFoundError(`account ${id}`);
      const a = { ...found, balanceMicros: await balance(id) };
      const doc = {
        id: a.id, plan: a.plan, status: a.status, statusReason: a.statusReason,
        stripeCustomerId: a.stripeCustomerId, subscriptionId: a.subscriptionId, subscriptionStatus: a.subscriptionStatus,
        pastDueSince: iso(a.pastDueSince), periodStart: iso(a.periodStart), periodEnd: iso(a.periodEnd),
        balanceMicros: a.balanceMicros, balance: formatMicros(a.balanceMicros), debtMicros: a.debtMicros, debt: formatMicros(a.debtMicros),
      };
      cli.emit(opts, doc, () => fields([
        ['account', a.id], ['plan', a.plan], ['standing', a.status + (a.statusReason ? ` (${a.statusReason})` : '')],
        ['customer', a.stripeCustomerId ?? '-'], ['subscription', a.subscriptionId ? `${a.subscriptionId} (${a.subscriptionStatus})` : '-'],
        ['period', a.periodStart ? `${iso(a.periodStart)} → ${iso(a.periodEnd)}` : 'calendar month'],
        ['past due since', iso(a.pastDueSince) ?? '-'], ['balance', `$${formatMicros(a.balanceMicros)}`], ['debt', `$${formatMicros(a.debtMicros)}`],
      ]));
    }));

  group.command('sync').description('report pending metered overage to Stripe now and print what was sent')
    .action((opts: CommonOptions) => withBilling(cli, opts, 'billing sync', async ({ storage }) => {
      const billing = await createBilling({ config: cli.config(), storage, log: createLogger('silent') });
      if (!billing) throw new FailedError('Stripe is not configured: set STRIPE_SECRET_KEY');
      // On PostgreSQL one node at a time reports (an advisory lock): while a gateway does, this reports nothing.
      const results = await billing.reporter.runOnce();
      const pending = await storage.billing.pendingMeterEvents();
      cli.emit(opts, { reported: results, pending: pending.map((p) => ({ id: p.identifier, accountId: p.accountId, eventName: p.eventName, value: p.value, intervalStart: iso(p.intervalStart) })) }, () => [
        ...table(['IDENTIFIER', 'METER', 'VALUE', 'RESULT'], results.map((r) => [r.identifier, r.eventName, r.value, r.ok ? 'reported' : `failed: ${r.error}`]), 'nothing was due'),
        '',
        `${pending.length} interval(s) still pending`,
      ]);
      if (results.some((r) => !r.ok)) cli.exitCode = EXIT.failed;
    }));
}

export function webhooksCommand(group: Command, cli: Cli): void {
  group.command('list').description(`received webhook events, newest first, ${DEFAULT_LIMIT} at a time`)
    .option('--failed', 'only events whose handling failed')
    .option('--limit <n>', `how many (at most ${MAX_LIMIT})`, limitArg, DEFAULT_LIMIT)
    .option('--after <event-id>', 'the page after this event (the "next" of the previous page)')
    .action(async (opts: ListOptions) => {
      const { failed, limit, after } = opts;
      const page = await cli.withOps(opts, (ops) => ops.webhookEvents({ failed, limit, after }));
      cli.emit(opts, page, () => [
        ...table(['ID', 'TYPE', 'STATUS', 'ATTEMPTS', 'RECEIVED', 'NOTE'],
          page.data.map((e) => [e.id, e.type, e.status, e.attempts, e.receivedAt, e.note ?? '']), 'no events'),
        ...nextPage(page.next, 'webhooks list', { failed, limit: limit === DEFAULT_LIMIT ? undefined : limit }),
      ]);
    });

  group.command('replay').description('apply a recorded event again (no effect if it was applied already)').argument('<event-id>', 'evt_…')
    .action(async (id: string, opts: CommonOptions) => {
      const replay = await cli.withOps(opts, (ops) => ops.replayWebhook(id));
      cli.emit(opts, replay, () => [`${replay.id} ${replay.type}: ${replay.outcome}`]);
      if (replay.outcome === 'failed') cli.exitCode = EXIT.failed;
    });
}
