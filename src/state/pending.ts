// One account's counts not written yet, kept compact: with 100 000 accounts in memory, each of
// them dirty for the counter delay, a map per counter and an object per group cost more than the
// account itself (and every object is one more for the garbage collector to walk). The usual case
// — one day, route, model and status, one lease, one quota period — lives in plain fields; anything
// beyond it goes to a small array. A Tally (the port's shape) is built only when it is written.
import type { DayTotals, Tally } from '../storage/ports.ts';
import type { UsageRecord } from '../storage/records.ts';

const DAY_MS = 86_400_000;

export class Pending {
  firstId: number;
  throughId: number;
  // The current day group.
  day = -1;
  route = '';
  model = '';
  status = 0;
  requests = 0;
  billable = 0;
  chargedMicros = 0;
  inputTokens = 0;
  cachedTokens = 0;
  cacheWriteTokens = 0;
  outputTokens = 0;
  /** Day groups other than the current one. */
  otherDays: DayTotals[] | undefined = undefined;
  leaseId = 0;
  spentMicros = 0;
  otherSpent: { leaseId: number; micros: number }[] | undefined = undefined;
  quotaPeriod: string | undefined = undefined;
  quotaUnits = 0;
  otherQuota: { period: string; units: number }[] | undefined = undefined;
  overage: { meter: string; intervalStart: number; units: number }[] | undefined = undefined;

  constructor(firstId: number) {
    this.firstId = firstId;
    this.throughId = firstId;
  }

  add(r: UsageRecord): void {
    this.throughId = r.id;
    const day = r.ts - (r.ts % DAY_MS);
    const model = r.ai?.model ?? '';
    if (day !== this.day || r.status !== this.status || r.route !== this.route || model !== this.model) this.switchDay(day, r.route, model, r.status);
    this.requests++;
    if (r.billable) this.billable++;
    this.chargedMicros += r.priceMicros;
    const ai = r.ai;
    if (ai) {
      this.inputTokens += ai.inputTokens;
      this.cachedTokens += ai.cachedTokens;
      this.cacheWriteTokens += ai.cacheWriteTokens;
      this.outputTokens += ai.outputTokens;
    }
    if (r.quotaPeriod !== undefined) this.addQuota(r.quotaPeriod, 1);
    if (r.leaseId !== undefined && r.priceMicros > 0) this.addSpent(r.leaseId, r.priceMicros);
    if (r.overageMeter !== undefined) this.addOverage(r.overageMeter, r.overageInterval!, 1);
  }

  /** Adds a later Pending of the same account (after a commit that failed). */
  merge(b: Pending): void {
    this.throughId = b.throughId;
    for (const d of b.days()) {
      this.switchDay(d.day, d.route, d.model, d.status);
      this.requests += d.requests;
      this.billable += d.billable;
      this.chargedMicros += d.chargedMicros;
      this.inputTokens += d.inputTokens;
      this.cachedTokens += d.cachedTokens;
      this.cacheWriteTokens += d.cacheWriteTokens;
      this.outputTokens += d.outputTokens;
    }
    if (b.quotaPeriod !== undefined) this.addQuota(b.quotaPeriod, b.quotaUnits);
    for (const q of b.otherQuota ?? []) this.addQuota(q.period, q.units);
    if (b.spentMicros > 0) this.addSpent(b.leaseId, b.spentMicros);
    for (const s of b.otherSpent ?? []) this.addSpent(s.leaseId, s.micros);
    for (const o of b.overage ?? []) this.addOverage(o.meter, o.intervalStart, o.units);
  }

  /** Every day group, the current one included. */
  days(): DayTotals[] {
    const out = this.otherDays ? [...this.otherDays] : [];
    if (this.day >= 0) out.push(this.current());
    return out;
  }

  toTally(accountId: string): Tally {
    const spent = this.otherSpent ? [...this.otherSpent] : [];
    if (this.spentMicros > 0) spent.push({ leaseId: this.leaseId, micros: this.spentMicros });
    const quota = this.otherQuota ? [...this.otherQuota] : [];
    if (this.quotaPeriod !== undefined) quota.push({ period: this.quotaPeriod, units: this.quotaUnits });
    return { accountId, firstId: this.firstId, throughId: this.throughId, quota, spent, overage: this.overage, days: this.days() };
  }

  private current(): DayTotals {
    return {
      day: this.day, route: this.route, model: this.model, status: this.status, requests: this.requests, billable: this.billable,
      chargedMicros: this.chargedMicros, inputTokens: this.inputTokens, cachedTokens: this.cachedTokens,
      cacheWriteTokens: this.cacheWriteTokens, outputTokens: this.outputTokens,
    };
  }

  /** Makes (day, route, model, status) the current group, parking the current one with the others. */
  private switchDay(day: number, route: string, model: string, status: number): void {
    if (day === this.day && route === this.route && model === this.model && status === this.status) return;
    const others = (this.otherDays ??= []);
    if (this.day >= 0) others.push(this.current());
    const i = others.findIndex((d) => d.day === day && d.route === route && d.model === model && d.status === status);
    const d = i >= 0 ? others.splice(i, 1)[0] : undefined;
    this.day = day;
    this.route = route;
    this.model = model;
    this.status = status;
    this.requests = d?.requests ?? 0;
    this.billable = d?.billable ?? 0;
    this.chargedMicros = d?.chargedMicros ?? 0;
    this.inputTokens = d?.inputTokens ?? 0;
    this.cachedTokens = d?.cachedTokens ?? 0;
    this.cacheWriteTokens = d?.cacheWriteTokens ?? 0;
    this.outputTokens = d?.outputTokens ?? 0;
    if (others.length === 0) this.otherDays = undefined;
  }

  private addQuota(period: string, units: number): void {
    if (this.quotaPeriod === undefined || this.quotaPeriod === period) {
      this.quotaPeriod = period;
      this.quotaUnits += units;
      return;
    }
    const q = (this.otherQuota ??= []).find((x) => x.period === period);
    if (q) q.units += units;
    else this.otherQuota.push({ period, units });
  }

  private addSpent(leaseId: number, micros: number): void {
    if (this.spentMicros === 0 || this.leaseId === leaseId) {
      this.leaseId = leaseId;
      this.spentMicros += micros;
      return;
    }
    const s = (this.otherSpent ??= []).find((x) => x.leaseId === leaseId);
    if (s) s.micros += micros;
    else this.otherSpent.push({ leaseId, micros });
  }

  private addOverage(meter: string, intervalStart: number, units: number): void {
    const o = (this.overage ??= []).find((x) => x.meter === meter && x.intervalStart === intervalStart);
    if (o) o.units += units;
    else this.overage.push({ meter, intervalStart, units });
  }
}
