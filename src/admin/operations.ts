// The operator's actions as one interface, done two ways: LocalOperations, with Admin on the
// database file (the CLI on the file, and the admin API inside the gateway), and
// RemoteOperations (src/cli/remote.ts), through a running gateway's admin API. Both give the
// documents of shapes.ts, so a command prints the same either way.
import type { Config } from '../config.ts';
import { InvalidInputError, monthRange, NotFoundError, type AccountChange, type Admin, type Page, type Replay } from '../db/admin.ts';
import type { Logger } from '../log.ts';
import { formatMicros } from '../money.ts';
import { MonthlyPeriods, quotaPeriod, subscriptionPeriodKey } from '../state/periods.ts';
import type { MaybePromise } from '../storage/ports.ts';
import type { AccountStatus } from '../storage/records.ts';
import { configDoc, type ConfigDoc } from './config.ts';
import {
  accountDoc, alertsDoc, auditDoc, dayDoc, deliveryDoc, eventDoc, iso, keyDoc, ledgerEntryDoc, recentDoc, requestDoc,
  type AccountDoc, type AlertsDoc, type AuditDoc, type DayDoc, type DeductDoc, type DeliveryDoc, type EventDoc, type GrantDoc, type KeyDoc, type LedgerDoc,
  type NewKeyDoc, type RecentDoc, type RequestDoc, type UsageDoc,
} from './shapes.ts';

export interface AccountListQuery { limit: number; after?: string; plan?: string; status?: AccountStatus; email?: string }
export interface KeyListQuery { account?: string; limit: number; after?: string }
export interface EventListQuery { failed?: boolean; limit: number; after?: string }
export interface AuditQuery { account?: string; limit: number; after?: string }
export interface DeliveryListQuery { failed?: boolean; account?: string; limit: number; after?: string }
export interface CreditsInput { amountMicros: number; reason: string }
export interface UsageDaysDoc { id: string; from: string; to: string; days: DayDoc[] }
export interface RecentRequestsDoc { id: string; requests: RecentDoc[] }

export interface Operations {
  createAccount(input: { email: string; name?: string | null; plan?: string }): MaybePromise<AccountDoc>;
  listAccounts(query: AccountListQuery): MaybePromise<Page<AccountDoc>>;
  account(id: string): MaybePromise<AccountDoc>;
  updateAccount(id: string, change: AccountChange): MaybePromise<AccountDoc>;
  createKey(input: { accountId: string; name?: string | null; expiresAt?: string | null }): MaybePromise<NewKeyDoc>;
  listKeys(query: KeyListQuery): MaybePromise<Page<KeyDoc>>;
  key(id: string): MaybePromise<KeyDoc>;
  revokeKey(id: string): MaybePromise<KeyDoc>;
  rotateKey(id: string, graceSeconds: number): MaybePromise<{ old: KeyDoc; new: NewKeyDoc }>;
  grantCredits(accountId: string, input: CreditsInput): MaybePromise<GrantDoc>;
  deductCredits(accountId: string, input: CreditsInput): MaybePromise<DeductDoc>;
  ledger(accountId: string, query: { limit: number; before?: number }): MaybePromise<LedgerDoc>;
  /** The quota period the gateway counts the account against now, or a calendar month. */
  usage(accountId: string, query: { month?: string }): MaybePromise<UsageDoc>;
  /** `from` and `to` are UTC days, "2026-11-03", both included (default: the last 30 days, today included). */
  usageByDay(accountId: string, query: { from?: string; to?: string }): MaybePromise<UsageDaysDoc>;
  recentRequests(accountId: string, limit: number): MaybePromise<RecentRequestsDoc>;
  /** `around`: an ISO time near the request's, to look there rather than among the latest rows. */
  findRequest(requestId: string, around?: string): MaybePromise<RequestDoc>;
  webhookEvents(query: EventListQuery): MaybePromise<Page<EventDoc>>;
  replayWebhook(id: string): MaybePromise<Replay>;
  audit(query: AuditQuery): MaybePromise<Page<AuditDoc>>;
  /** Deliveries of notifications (src/notify/), newest first. */
  deliveries(query: DeliveryListQuery): MaybePromise<Page<DeliveryDoc>>;
  resendDelivery(id: number): MaybePromise<DeliveryDoc>;
  alerts(accountId: string): MaybePromise<AlertsDoc>;
  /** `lowBalanceMicros`: the account's own balance.low threshold (0: never; null: its plan's). */
  setAlerts(accountId: string, change: { lowBalanceMicros: number | null }): MaybePromise<AlertsDoc>;
  config(): MaybePromise<ConfigDoc>;
}

export interface LocalDeps {
  /** Bound to who acts (Admin.as): the audit log names it. */
  admin: Admin;
  /** Read when an action needs it (plans, prices), so commands that do not need it work without one. */
  config: () => Config;
  now: () => number;
  log: Logger;
}

const DAY_MS = 86_400_000;
/** A per-day series without dates: the last 30 days, today included. */
const DEFAULT_DAYS = 30;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** An ISO 8601 time of an operation's input, in ms (pg-usage-operations.ts reads the same). */
export function time(text: string, name: string): number {
  const t = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}(T|$)/.test(text) || Number.isNaN(t)) throw new InvalidInputError(`${name}: not an ISO 8601 time: "${text}"`);
  return t;
}

/** A UTC day, YYYY-MM-DD, in ms. */
export function day(text: string, name: string): number {
  if (!DAY.test(text) || Number.isNaN(Date.parse(text))) throw new InvalidInputError(`${name}: not a day (YYYY-MM-DD): "${text}"`);
  return Date.parse(text);
}

/** The plan if the config declares it; otherwise an InvalidInputError naming the plans there are. */
/** A deliveries page's `after`: the id of the last delivery of the page before. */
export function deliveryCursor(after: string | undefined): number | undefined {
  if (after !== undefined && !/^\d+$/.test(after)) throw new InvalidInputError(`after: not a delivery cursor: "${after}" (pass the "next" of the previous page)`);
  return after === undefined ? undefined : Number(after);
}

export function knownPlan({ plans }: Config, name: string): string {
  if (!Object.hasOwn(plans, name)) throw new InvalidInputError(`unknown plan "${name}" (plans: ${Object.keys(plans).join(', ')})`);
  return name;
}

/** Synchronous but for the webhook replay: the admin API runs an action in its Idempotency-Key's transaction. */
export class LocalOperations implements Operations {
  private readonly admin: Admin;

  constructor(private readonly deps: LocalDeps) {
    this.admin = deps.admin;
  }

  createAccount({ email, name, plan }: { email: string; name?: string | null; plan?: string }): AccountDoc {
    const config = this.deps.config();
    return accountDoc(this.admin.createAccount({ email, name, plan: knownPlan(config, plan ?? config.defaultPlan) }));
  }

  listAccounts(query: AccountListQuery): Page<AccountDoc> {
    const { data, next } = this.admin.accountsPage(query);
    return { data: data.map(accountDoc), next };
  }

  account(id: string): AccountDoc {
    return accountDoc(this.admin.account(id));
  }

  updateAccount(id: string, change: AccountChange): AccountDoc {
    if (change.plan !== undefined) knownPlan(this.deps.config(), change.plan);
    return accountDoc(this.admin.updateAccount(id, change));
  }

  createKey({ accountId, name, expiresAt }: { accountId: string; name?: string | null; expiresAt?: string | null }): NewKeyDoc {
    const expires = expiresAt == null ? null : time(expiresAt, 'expiresAt');
    if (expires !== null && expires <= this.deps.now()) throw new InvalidInputError('expiresAt: a key cannot expire in the past');
    const created = this.admin.createKey({ accountId, name, expiresAt: expires });
    return { ...keyDoc(created, this.deps.now()), key: created.key };
  }

  listKeys({ account, limit, after }: KeyListQuery): Page<KeyDoc> {
    if (account !== undefined) this.admin.account(account);
    const { data, next } = this.admin.keysPage(account, { limit, after });
    const now = this.deps.now();
    return { data: data.map((k) => keyDoc(k, now)), next };
  }

  key(id: string): KeyDoc {
    return keyDoc(this.admin.key(id), this.deps.now());
  }

  revokeKey(id: string): KeyDoc {
    // The state is taken after the write: a key revoked this instant reads as revoked.
    return keyDoc(this.admin.revokeKey(id), this.deps.now());
  }

  rotateKey(id: string, graceSeconds: number): { old: KeyDoc; new: NewKeyDoc } {
    const rotated = this.admin.rotateKey(id, graceSeconds * 1000);
    const now = this.deps.now();
    return { old: keyDoc(rotated.old, now), new: { ...keyDoc(rotated.new, now), key: rotated.new.key } };
  }

  grantCredits(accountId: string, { amountMicros, reason }: CreditsInput): GrantDoc {
    const account = this.admin.grantCredits(accountId, amountMicros, reason);
    return { ...accountDoc(account), grantedMicros: amountMicros, granted: formatMicros(amountMicros), reason };
  }

  deductCredits(accountId: string, { amountMicros, reason }: CreditsInput): DeductDoc {
    const account = this.admin.deductCredits(accountId, amountMicros, reason);
    return { ...accountDoc(account), deductedMicros: amountMicros, deducted: formatMicros(amountMicros), reason };
  }

  ledger(accountId: string, { limit, before }: { limit: number; before?: number }): LedgerDoc {
    const account = this.admin.account(accountId);
    const { entries, nextBefore } = this.admin.ledgerPage(accountId, { limit, before });
    return { id: account.id, balanceMicros: account.balanceMicros, balance: formatMicros(account.balanceMicros), ledger: entries.map(ledgerEntryDoc), nextBefore };
  }

  usage(accountId: string, { month }: { month?: string }): UsageDoc {
    const account = this.admin.accountRecord(accountId);
    const period = month ?? quotaPeriod(account, this.deps.now(), new MonthlyPeriods());
    const subscription = account.periodStart !== null && period === subscriptionPeriodKey(account.periodStart);
    // A subscription's period takes every request from its start until the next period arrives.
    const range = subscription ? { from: account.periodStart!, to: Infinity } : monthRange(period);
    const usage = this.admin.usage(accountId, period, range);
    const { plans, defaultPlan } = this.deps.config();
    // As the gateway does: a plan missing from the config falls back to the default plan.
    const monthlyQuota = (plans[account.plan] ?? plans[defaultPlan])?.monthlyQuota ?? null;
    return {
      id: account.id, period, periodStart: iso(range.from)!, periodEnd: iso(subscription ? account.periodEnd : range.to), plan: account.plan, monthlyQuota,
      quotaUsed: usage.quotaUsed, requests: usage.requests, billable: usage.billable,
      chargedMicros: usage.chargedMicros, charged: formatMicros(usage.chargedMicros), byStatus: usage.byStatus,
    };
  }

  usageByDay(accountId: string, query: { from?: string; to?: string }): UsageDaysDoc {
    const to = query.to === undefined ? this.deps.now() - (this.deps.now() % DAY_MS) : day(query.to, 'to');
    const from = query.from === undefined ? to - (DEFAULT_DAYS - 1) * DAY_MS : day(query.from, 'from');
    if (to < from) throw new InvalidInputError('to: before from');
    const days = this.admin.usageByDay(accountId, from, to + DAY_MS).map(dayDoc);
    return { id: accountId, from: iso(from)!.slice(0, 10), to: iso(to)!.slice(0, 10), days };
  }

  recentRequests(accountId: string, limit: number): RecentRequestsDoc {
    return { id: accountId, requests: this.admin.recentRequests(accountId, limit).map(recentDoc) };
  }

  findRequest(requestId: string, around?: string): RequestDoc {
    const search = this.admin.findRequest(requestId, around === undefined ? undefined : time(around, 'around'));
    if (search.found) return requestDoc(search.found);
    const where = search.from === null ? 'no requests are stored there' : `it looked from ${iso(search.from)} to ${iso(search.to)}`;
    throw new NotFoundError(`request ${requestId}`, `${where}; give the time of the request (around) to look elsewhere`);
  }

  webhookEvents(query: EventListQuery): Page<EventDoc> {
    const { data, next } = this.admin.webhookEvents(query);
    return { data: data.map(eventDoc), next };
  }

  replayWebhook(id: string): Promise<Replay> {
    return this.admin.replayWebhook(id, { config: this.deps.config(), log: this.deps.log });
  }

  audit({ account, limit, after }: AuditQuery): Page<AuditDoc> {
    let cursor: number | undefined;
    if (after !== undefined) {
      cursor = Number(after);
      if (!/^\d+$/.test(after)) throw new InvalidInputError(`after: not an audit cursor: "${after}" (pass the "next" of the previous page)`);
    }
    if (account !== undefined) this.admin.account(account);
    const { data, next } = this.admin.auditLog({ accountId: account, limit, after: cursor });
    return { data: data.map(auditDoc), next };
  }

  deliveries({ failed, account, limit, after }: DeliveryListQuery): Page<DeliveryDoc> {
    const { data, next } = this.admin.deliveries({ failed, accountId: account, limit, after: deliveryCursor(after) });
    return { data: data.map(deliveryDoc), next };
  }

  resendDelivery(id: number): DeliveryDoc {
    return deliveryDoc(this.admin.resendDelivery(id));
  }

  alerts(accountId: string): AlertsDoc {
    return alertsDoc(accountId, this.admin.lowBalanceAlert(accountId));
  }

  setAlerts(accountId: string, { lowBalanceMicros }: { lowBalanceMicros: number | null }): AlertsDoc {
    return alertsDoc(accountId, this.admin.setLowBalanceAlert(accountId, lowBalanceMicros));
  }

  config(): ConfigDoc {
    return configDoc(this.deps.config());
  }
}
