// tollgate billing status|sync and tollgate webhooks list|replay: the Stripe side of an account
// and of the webhook log, from the same SQLite file the server uses.
import type { Command } from 'commander';
import { createBilling } from '../billing/billing.ts';
import type { StripeEvent } from '../billing/stripe-events.ts';
import { apply } from '../billing/webhooks.ts';
import { openDb } from '../db/open.ts';
import { createSqliteStorage, type SqliteStorage } from '../db/sqlite-storage.ts';
import { NotFoundError } from '../db/admin.ts';
import { createLogger } from '../log.ts';
import { formatMicros } from '../money.ts';
import type { Cli, CommonOptions } from './context.ts';
import { EXIT, FailedError } from './errors.ts';
import { fields, iso, table } from './output.ts';

interface ReplayOptions extends CommonOptions { failed?: boolean }

async function withBilling<T>(cli: Cli, opts: CommonOptions, fn: (storage: SqliteStorage) => T | Promise<T>): Promise<T> {
  const storage = createSqliteStorage(openDb(cli.database(opts)));
  try {
    return await fn(storage);
  } finally {
    storage.close();
  }
}

export function billingCommand(group: Command, cli: Cli): void {
  group.command('status').description('an account\'s Stripe customer, subscription, plan, period and standing').argument('<id>', 'account id')
    .action((id: string, opts: CommonOptions) => withBilling(cli, opts, (storage) => {
      const found = storage.billing.account(id);
      if (!found) throw new NotFoundError(`account ${id}`);
      // What the customer has: the balance and what a gateway's lease of it holds unspent.
      const a = { ...found, balanceMicros: storage.ledger.balance(id) as number };
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
    .action((opts: CommonOptions) => withBilling(cli, opts, async (storage) => {
      const config = cli.config();
      const billingStore = storage.billing;
      const billing = createBilling({ config, storage, log: createLogger('silent') });
      if (!billing) throw new FailedError('Stripe is not configured: set STRIPE_SECRET_KEY');
      const results = await billing.reporter.runOnce();
      const pending = billingStore.pendingMeterEvents();
      cli.emit(opts, { reported: results, pending: pending.map((p) => ({ id: p.identifier, accountId: p.accountId, eventName: p.eventName, value: p.value, intervalStart: iso(p.intervalStart) })) }, () => [
        ...table(['IDENTIFIER', 'METER', 'VALUE', 'RESULT'], results.map((r) => [r.identifier, r.eventName, r.value, r.ok ? 'reported' : `failed: ${r.error}`]), 'nothing was due'),
        '',
        `${pending.length} interval(s) still pending`,
      ]);
      if (results.some((r) => !r.ok)) cli.exitCode = EXIT.failed;
    }));
}

export function webhooksCommand(group: Command, cli: Cli): void {
  group.command('list').description('received webhook events, newest first')
    .option('--failed', 'only events whose handling failed')
    .action((opts: ReplayOptions) => withBilling(cli, opts, (storage) => {
      const events = storage.billing.webhookEvents(opts.failed === true);
      cli.emit(opts, events.map((e) => ({ ...e, receivedAt: iso(e.receivedAt), appliedAt: iso(e.appliedAt) })), () =>
        table(['ID', 'TYPE', 'STATUS', 'ATTEMPTS', 'RECEIVED', 'NOTE'],
          events.map((e) => [e.id, e.type, e.status, e.attempts, iso(e.receivedAt)!, e.note ?? '']), 'no events'));
    }));

  group.command('replay').description('apply a recorded event again (no effect if it was applied already)').argument('<event-id>', 'evt_…')
    .action((id: string, opts: CommonOptions) => withBilling(cli, opts, async (storage) => {
      const payload = storage.billing.webhookPayload(id);
      if (payload === undefined) throw new NotFoundError(`event ${id}`);
      const event = JSON.parse(payload) as StripeEvent;
      const reply = await apply({ source: 'stripe', id, type: event.type, payload }, event, { config: cli.config(), events: storage.events, log: createLogger('silent') });
      const outcome = (reply.body.outcome as string | undefined) ?? 'failed';
      cli.emit(opts, { id, type: event.type, outcome }, () => [`${id} ${event.type}: ${outcome}`]);
      if (reply.status !== 200) cli.exitCode = EXIT.failed;
    }));
}
