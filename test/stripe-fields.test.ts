// Unit tests of where each field is read from, on the real fixtures: legacy (2020-03-02) events
// keep the subscription's period and the invoice's subscription at the top level; basil and later
// put them on the subscription's items and under invoice.parent.subscription_details.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  centsToMicros, idOf, invoicePeriod, invoiceSubscription, isBasilOrLater, metadata, subscriptionPeriod, subscriptionPrice,
} from '../src/billing/stripe-fields.ts';
import { CURRENT_PRICE, fixture, FIXTURES, LEGACY_PRICE } from './fake-stripe.ts';

type Obj = Record<string, unknown>;
const eventObject = (name: string) => fixture<{ api_version: string; data: { object: Obj } }>(name);
const items = (sub: Obj) => (sub.items as { data: Obj[] }).data;

describe('the fixtures', () => {
  it('every fixture a test names is a file in test/fixtures/stripe, inside the repository', () => {
    const tests = fileURLToPath(new URL('.', import.meta.url));
    expect(FIXTURES).toBe(join(tests, 'fixtures', 'stripe'));
    const named = new Set(readdirSync(tests).filter((f) => f.endsWith('.ts')).flatMap((f) =>
      [...readFileSync(join(tests, f), 'utf8').matchAll(/'((?:openapi-fixtures3|sync-engine|pay)\.[\w.-]+\.json)'/g)].map((m) => m[1])));
    expect(named.size).toBeGreaterThan(15);
    for (const name of named) expect(existsSync(join(FIXTURES, name)), name).toBe(true);
  });
});

describe('isBasilOrLater', () => {
  it('tells the versions that moved the fields from those that did not', () => {
    expect(isBasilOrLater('2020-03-02')).toBe(false);
    expect(isBasilOrLater('2025-02-24.acacia')).toBe(false);
    expect(isBasilOrLater('2025-03-31.basil')).toBe(true);
    expect(isBasilOrLater('2026-07-29.dahlia')).toBe(true);
    expect(isBasilOrLater('2026-10-28.endive')).toBe(true);
    expect(isBasilOrLater(null)).toBe(false);
    expect(isBasilOrLater(undefined)).toBe(false);
  });
});

describe('subscriptionPeriod', () => {
  it('reads the top-level period of a legacy (2020-03-02) subscription event, in milliseconds', () => {
    const e = eventObject('sync-engine.customer.subscription.created.json');
    expect(e.api_version).toBe('2020-03-02');
    expect(subscriptionPeriod(e.data.object, e.api_version)).toEqual({ start: 1623148918_000, end: 1625740918_000 });
  });

  it('reads the period from the first item of a current-shape subscription (no top-level period)', () => {
    const sub = fixture('openapi-fixtures3.subscription.json');
    expect(sub.current_period_start).toBeUndefined();
    // The generator's placeholders have end < start: such a period is refused rather than used.
    expect(subscriptionPeriod(sub, '2026-10-28.endive')).toBeUndefined();
    Object.assign(items(sub)[0], { current_period_start: 1_793_000_000, current_period_end: 1_795_592_000 });
    expect(subscriptionPeriod(sub, '2026-10-28.endive')).toEqual({ start: 1_793_000_000_000, end: 1_795_592_000_000 });
    // An unknown version (null) still finds it: the other place is the fallback.
    expect(subscriptionPeriod(sub, null)).toEqual({ start: 1_793_000_000_000, end: 1_795_592_000_000 });
  });

  it('prefers the place the event\'s version puts the period when both are present', () => {
    const sub = eventObject('sync-engine.customer.subscription.updated.json').data.object;
    Object.assign(items(sub)[0], { current_period_start: 1_700_000_000, current_period_end: 1_702_592_000 });
    expect(subscriptionPeriod(sub, '2020-03-02')).toEqual({ start: 1618980344_000, end: 1621572344_000 });
    expect(subscriptionPeriod(sub, '2025-03-31.basil')).toEqual({ start: 1_700_000_000_000, end: 1_702_592_000_000 });
  });

  it('has no period when neither place holds a valid one', () => {
    expect(subscriptionPeriod({ id: 'sub_1' }, '2025-03-31.basil')).toBeUndefined();
    expect(subscriptionPeriod({ current_period_start: '1', current_period_end: '2' }, '2020-03-02')).toBeUndefined();
  });
});

describe('subscriptionPrice', () => {
  it('reads the first item\'s price in both shapes', () => {
    expect(subscriptionPrice(eventObject('sync-engine.customer.subscription.created.json').data.object)).toBe(LEGACY_PRICE);
    expect(subscriptionPrice(fixture('openapi-fixtures3.subscription.json'))).toBe(CURRENT_PRICE);
  });

  it('falls back to the legacy top-level plan', () => {
    const sub = eventObject('sync-engine.customer.subscription.deleted.json').data.object;
    delete sub.items;
    expect(subscriptionPrice(sub)).toBe(LEGACY_PRICE);
    expect(subscriptionPrice({})).toBeUndefined();
  });
});

describe('invoiceSubscription and invoicePeriod', () => {
  it('legacy invoice.paid: subscription at the top level, period from the first line', () => {
    const e = eventObject('sync-engine.invoice.paid.json');
    expect(invoiceSubscription(e.data.object, e.api_version)).toBe('sub_JsuPyCPhXWfZar');
    expect(invoicePeriod(e.data.object)).toEqual({ start: 1642645280_000, end: 1645323680_000 });
  });

  it('basil invoice.payment_failed: subscription under parent.subscription_details', () => {
    const inv = fixture<{ object: Obj }>('pay.invoice.payment_failed.data.json').object;
    expect(inv.subscription).toBeUndefined();
    expect(invoiceSubscription(inv, '2025-03-31.basil')).toBe('sub_1234');
    // An endpoint pinned to an old version that still gets this shape: the fallback finds it.
    expect(invoiceSubscription(inv, '2020-03-02')).toBe('sub_1234');
    expect(invoicePeriod(inv)).toEqual({ start: 1745433906_000, end: 1776969906_000 });
  });

  it('an invoice of no subscription has none; a zero-length line period is no period', () => {
    const manual = fixture('pay.invoice.object.json');
    expect(manual.parent).toBeNull();
    expect(invoiceSubscription(manual, '2025-03-31.basil')).toBeUndefined();
    const current = fixture('openapi-fixtures3.invoice.json');
    expect(invoicePeriod(current)).toBeUndefined(); // start === end in the generated fixture
  });

  it('prefers the version\'s place when an invoice carries both', () => {
    const inv = { subscription: 'sub_legacy', parent: { subscription_details: { subscription: 'sub_basil' } } };
    expect(invoiceSubscription(inv, '2020-03-02')).toBe('sub_legacy');
    expect(invoiceSubscription(inv, '2025-03-31.basil')).toBe('sub_basil');
  });
});

describe('small readers', () => {
  it('centsToMicros: whole non-negative cents only', () => {
    expect(centsToMicros(2500)).toBe(25_000_000);
    expect(centsToMicros(0)).toBe(0);
    expect(centsToMicros(-1)).toBeUndefined();
    expect(centsToMicros(12.5)).toBeUndefined();
    expect(centsToMicros('2500')).toBeUndefined();
    expect(centsToMicros(null)).toBeUndefined();
  });

  it('idOf reads an id or an expanded object', () => {
    expect(idOf('cus_1')).toBe('cus_1');
    expect(idOf({ id: 'cus_2', object: 'customer' })).toBe('cus_2');
    expect(idOf(null)).toBeUndefined();
    expect(idOf('')).toBeUndefined();
  });

  it('metadata is an object even when absent', () => {
    expect(metadata({ metadata: { account_id: 'acct_1' } })).toEqual({ account_id: 'acct_1' });
    expect(metadata({ metadata: null })).toEqual({});
    expect(metadata({})).toEqual({});
  });
});
