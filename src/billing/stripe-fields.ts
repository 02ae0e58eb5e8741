// Where a Stripe event keeps the fields billing needs, by API version. 2025-03-31.basil moved the
// subscription's billing period onto its items and the invoice's subscription under
// parent.subscription_details; older versions keep them at the top level. Each reader looks where
// the event's version puts the field first and falls back to the other place, so an endpoint
// pinned to an old version keeps working. Times come back in milliseconds.

import { isRecord } from '../json.ts';

type Obj = Record<string, unknown>;

const BASIL = '2025-03-31';

/** True for API versions from basil on ("2025-03-31.basil", "2026-10-28.endive"); null means unknown. */
export function isBasilOrLater(apiVersion: string | null | undefined): boolean {
  return typeof apiVersion === 'string' && apiVersion.slice(0, 10) >= BASIL;
}

export function obj(v: unknown): Obj | undefined {
  return isRecord(v) ? v : undefined;
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function int(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
}

/** An id field that may be expanded into an object ({ id: … }). */
export function idOf(v: unknown): string | undefined {
  return str(v) ?? str(obj(v)?.id);
}

const seconds = (v: unknown): number | undefined => {
  const s = int(v);
  return s === undefined ? undefined : s * 1000;
};

function firstItem(sub: Obj): Obj | undefined {
  const data = obj(sub.items)?.data;
  return Array.isArray(data) ? obj(data[0]) : undefined;
}

export function subscriptionPeriod(sub: Obj, apiVersion: string | null): { start: number; end: number } | undefined {
  const item = firstItem(sub) ?? {};
  const places = isBasilOrLater(apiVersion) ? [item, sub] : [sub, item];
  for (const p of places) {
    const start = seconds(p.current_period_start);
    const end = seconds(p.current_period_end);
    if (start !== undefined && end !== undefined && end > start) return { start, end };
  }
  return undefined;
}

/** The price of the subscription's first item (legacy events also carry it as `plan`). */
export function subscriptionPrice(sub: Obj): string | undefined {
  return idOf(obj(firstItem(sub)?.price)) ?? idOf(obj(sub.plan));
}

export function invoiceSubscription(inv: Obj, apiVersion: string | null): string | undefined {
  const basil = idOf(obj(obj(inv.parent)?.subscription_details)?.subscription);
  const legacy = idOf(inv.subscription);
  return isBasilOrLater(apiVersion) ? basil ?? legacy : legacy ?? basil;
}

/** The period the invoice's first line bills (a subscription invoice: the new billing period). */
export function invoicePeriod(inv: Obj): { start: number; end: number } | undefined {
  const data = obj(inv.lines)?.data;
  const period = Array.isArray(data) ? obj(obj(data[0])?.period) : undefined;
  const start = seconds(period?.start);
  const end = seconds(period?.end);
  return start !== undefined && end !== undefined && end > start ? { start, end } : undefined;
}

/** Stripe amounts are in the currency's smallest unit; USD cents → micro-dollars. */
export function centsToMicros(v: unknown): number | undefined {
  const cents = int(v);
  return cents === undefined || cents < 0 ? undefined : cents * 10_000;
}

export function metadata(o: Obj): Obj {
  return obj(o.metadata) ?? {};
}
