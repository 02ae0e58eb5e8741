// tollgate billing status|sync and tollgate webhooks list|replay: the Stripe side of an account
// and of the webhook log, from the same SQLite file the server uses.
import type { Command } from 'commander';
import { createBilling } from '../billing/billing.ts';
import type { BillingStore } from '../billing/billing-store.ts';
import type { StripeEvent } from '../billing/stripe-events.ts';
import { apply } from '../billing/webhooks.ts';
import type { Store } from '../db/store.ts';
import { openDb } from '../db/open.ts';
import { createSqliteBillingStore } from '../db/sqlite-billing-store.ts';
import { createSqliteStore } from '../db/sqlite-store.ts';
import { NotFoundError } from '../db/admin.ts';
import { createLogger } from '../log.ts';
import { formatMicros } from '../money.ts';
import type { Cli, CommonOptions } from './context.ts';
import { EXIT, FailedError } from './errors.ts';
import { fields, iso, table } from './output.ts';

interface ReplayOptions extends CommonOptions { failed?: boolean }

async function withBilling<T>(cli: Cli, opts: CommonOptions, fn: (store: Store, billing: BillingStore) => T | Promise<T>): Promise<T> {
  const db = openDb(cli.database(opts));
  const store = createSqliteStore(db);
  try {
    return await fn(store, createSqliteBillingStore(db));
  } finally {
    store.close();
  }
}

export function billingCommand(group: Command, cli: Cli): void {
  group.command('status').description('an account\'s Stripe customer, subscription, plan, period and standing').argument('<id>', 'account id')
    .action((id: string, opts: CommonOptions) => withBilling(cli, opts, (_store, billing) => {
      const a = billing.account(id);
      if (!a) throw new NotFoundError(`account ${id}`);
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
    .action((opts: CommonOptions) => withBilling(cli, opts, async (store, billingStore) => {
      const config = cli.config();
      const billing = createBilling({ config, store, billing: billingStore, log: createLogger('silent') });
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
    .action((opts: ReplayOptions) => withBilling(cli, opts, (_store, billing) => {
      const events = billing.webhookEvents(opts.failed === true);
      cli.emit(opts, events.map((e) => ({ ...e, receivedAt: iso(e.receivedAt), appliedAt: iso(e.appliedAt) })), () =>
        table(['ID', 'TYPE', 'STATUS', 'ATTEMPTS', 'RECEIVED', 'NOTE'],
          events.map((e) => [e.id, e.type, e.status, e.attempts, iso(e.receivedAt)!, e.note ?? '']), 'no events'));
    }));

  group.command('replay').description('apply a recorded event again (no effect if it was applied already)').argument('<event-id>', 'evt_…')
    .action((id: string, opts: CommonOptions) => withBilling(cli, opts, (store, billing) => {
      const payload = billing.webhookPayload(id);
      if (payload === undefined) throw new NotFoundError(`event ${id}`);
      const event = JSON.parse(payload) as StripeEvent;
      const reply = apply({ source: 'stripe', id, type: event.type, payload }, event, { config: cli.config(), store, billing, log: createLogger('silent') });
      const outcome = (reply.body.outcome as string | undefined) ?? 'failed';
      cli.emit(opts, { id, type: event.type, outcome }, () => [`${id} ${event.type}: ${outcome}`]);
      if (reply.status !== 200) cli.exitCode = EXIT.failed;
    }));
}
