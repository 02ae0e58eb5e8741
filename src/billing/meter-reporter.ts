// Reports metered overage to Stripe from the meter_outbox table: one billing meter event per
// account, meter and interval, with the summed value. Only intervals that ended at least one
// interval length ago are reported, so late counts (a long request given back) are in.
// The identifier makes a retry harmless; failures back off exponentially, up to an hour.
import type Stripe from 'stripe';
import type { StripeConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { MaybeAsync } from '../storage/steps.ts';
import type { BillingStore, OutboxRow } from './billing-store.ts';

const MAX_BACKOFF_MS = 3_600_000;

export interface ReportResult {
  identifier: string;
  accountId: string;
  eventName: string;
  value: number;
  ok: boolean;
  error?: string;
}

export interface MeterReporterDeps {
  billing: MaybeAsync<BillingStore>;
  /**
   * Runs a report alone among the gateways sharing the database (PostgreSQL: an advisory lock);
   * undefined when another one is reporting. Without it, this process is the only reporter.
   */
  alone?: <T>(report: () => Promise<T>) => Promise<T | undefined>;
  stripe: Stripe;
  stripeConfig: StripeConfig;
  log: Logger;
  now?: () => number;
}

export class MeterReporter {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReportResult[]> | undefined;
  private readonly now: () => number;

  constructor(private readonly deps: MeterReporterDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Reports in the background, never on the request path. */
  start(everyMs = Math.min(this.deps.stripeConfig.meterIntervalMs, 10_000)): void {
    this.timer ??= setInterval(() => void this.runOnce().catch((err: Error) => this.deps.log.error('meter reporting failed', { error: err.message })), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reports every due interval once; concurrent calls share one run (another gateway's reports nothing here). */
  runOnce(): Promise<ReportResult[]> {
    const { alone } = this.deps;
    this.running ??= (alone ? alone(() => this.report()).then((r) => r ?? []) : this.report()).finally(() => (this.running = undefined));
    return this.running;
  }

  private async report(): Promise<ReportResult[]> {
    const { billing, stripeConfig } = this.deps;
    const now = this.now();
    // Due: intervals that ended at least one interval length ago (start + 2 × length ≤ now).
    const dueBefore = now - 2 * stripeConfig.meterIntervalMs + 1;
    const results: ReportResult[] = [];
    for (const row of await billing.dueMeterEvents(dueBefore, now)) results.push(await this.send(row, now));
    return results;
  }

  private async send(row: OutboxRow, now: number): Promise<ReportResult> {
    const { billing, stripe, stripeConfig, log } = this.deps;
    const result: ReportResult = { identifier: row.identifier, accountId: row.accountId, eventName: row.eventName, value: row.value, ok: false };
    try {
      if (!row.stripeCustomerId) throw new Error('the account has no Stripe customer yet');
      await stripe.billing.meterEvents.create({
        event_name: row.eventName,
        identifier: row.identifier,
        // The interval's last second: the usage belongs to it.
        timestamp: Math.floor((row.intervalStart + stripeConfig.meterIntervalMs) / 1000) - 1,
        payload: { stripe_customer_id: row.stripeCustomerId, value: String(row.value) },
      });
      await billing.markReported(row.id);
      result.ok = true;
    } catch (err) {
      // A report that reached Stripe before a crash comes back as a duplicate identifier: done.
      if ((err as { code?: string }).code === 'resource_already_exists') {
        await billing.markReported(row.id);
        result.ok = true;
        return result;
      }
      result.error = (err as Error).message;
      const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(row.attempts, 20));
      await billing.markReportFailed(row.id, result.error, now + backoff);
      log.warn('meter event not reported; will retry', { identifier: row.identifier, attempts: row.attempts + 1, error: result.error });
    }
    return result;
  }
}
