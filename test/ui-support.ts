// Driving Debian's Chromium (/usr/bin/chromium) with playwright-core for the page tests: one
// browser per test file. Chromium resolves no host name but 127.0.0.1, so nothing leaves the
// machine; every request for another host is recorded (a redirect to Stripe is seen, and fails
// there), and screenshots go to test-results/.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';
import type { Operations } from '../src/admin/operations.ts';
import type { Db } from '../src/db/open.ts';
import { createLogger } from '../src/log.ts';
import type { PgStorage } from '../src/pg/pg-storage.ts';
import type { Storage } from '../src/storage/ports.ts';
import { pagesBackend } from '../src/ui/backends.ts';
import type { BackendGateway } from './backend-gateway.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const RESULTS = join(import.meta.dirname, '..', 'test-results');

export function launch(): Promise<Browser> {
  // Root (CI containers) cannot use Chromium's sandbox.
  const args = ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])];
  return chromium.launch({ executablePath: CHROMIUM, args });
}

export interface Tab {
  context: BrowserContext;
  page: Page;
  /** URLs the page tried to load outside 127.0.0.1 (none resolves). */
  outside: string[];
}

export async function newTab(browser: Browser): Promise<Tab> {
  const context = await browser.newContext();
  const outside: string[] = [];
  context.on('request', (r) => {
    if (new URL(r.url()).hostname !== '127.0.0.1') outside.push(r.url());
  });
  const page = await context.newPage();
  return { context, page, outside };
}

/** Clicks a button whose form is answered with a redirect off the machine; resolves with that URL. */
export async function clickToOutside(page: Page, selector: string, host: RegExp): Promise<URL> {
  const [failed] = await Promise.all([page.waitForEvent('requestfailed', (r) => host.test(new URL(r.url()).hostname)), page.click(selector)]);
  // Chromium then shows its error page: wait for it, so the next navigation is not cut short by it.
  await page.waitForURL(/^chrome-error:/);
  return new URL(failed.url());
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(RESULTS, { recursive: true });
  await page.screenshot({ path: join(RESULTS, `${name}.png`), fullPage: true });
}

/** The bars of a chart as drawn: day and value of each <rect>, and that the tallest has height. */
export async function chartPoints(page: Page, id: string): Promise<{ day: string; value: number }[]> {
  const bars = page.locator(`svg#${id} rect.bar`);
  const points = await bars.evaluateAll((rects) => rects.map((r) => ({
    day: r.getAttribute('data-day')!, value: Number(r.getAttribute('data-value')), height: (r as unknown as { getBBox(): { height: number } }).getBBox().height,
  })));
  const max = Math.max(0, ...points.map((p) => p.value));
  for (const p of points) {
    if (p.value === max && max > 0) expect(p.height).toBeGreaterThan(100);
    if (p.value === 0) expect(p.height).toBe(0);
  }
  return points.map(({ day, value }) => ({ day, value }));
}

export const today = (now = Date.now()) => new Date(now).toISOString().slice(0, 10);

// ---- The page suites on both backends (test/backend-gateway.ts) ---------------------------

/**
 * The operations the gateway's own pages use (ui/backends.ts), acting as 'test' in the audit log:
 * what a test seeds and changes, on either backend.
 */
export function operator(gw: BackendGateway, now: () => number = Date.now): Operations {
  return pagesBackend(gw.app.state, { config: gw.config, now, log: createLogger('silent') })!.admin.operations({ by: 'test', requestId: null });
}

export interface Customer { id: string; key: string; keyId: string }

let customers = 0;

/** An account (on `plan`, else the default plan; with `email`) and one key. */
export async function seedCustomer(ops: Operations, plan?: string, email = `c${++customers}-${Date.now().toString(36)}@example.com`): Promise<Customer> {
  const account = await ops.createAccount({ email, plan });
  const { id: keyId, key } = await ops.createKey({ accountId: account.id });
  return { id: account.id, key, keyId };
}

/** The rows of a statement both databases read alike, with `?` parameters (none for a write). */
export async function rows<T>(gw: BackendGateway, sql: string, ...params: unknown[]): Promise<T[]> {
  const storage = gw.app.storage;
  if (gw.backend === 'sqlite') {
    const statement = (storage as Storage & { db: Db }).db.prepare(sql);
    if (statement.reader) return statement.all(...params) as T[];
    statement.run(...params);
    return [];
  }
  let n = 0;
  return (await (storage as PgStorage).pool.query(sql.replace(/\?/g, () => `$${++n}`), params)).rows as T[];
}

/** The first column of the first row. */
export async function value<T>(gw: BackendGateway, sql: string, ...params: unknown[]): Promise<T> {
  const [row] = await rows<Record<string, T>>(gw, sql, ...params);
  return row && Object.values(row)[0];
}

/** Every usage row and counter queued in the gateway's memory, written. */
export async function written(gw: BackendGateway): Promise<void> {
  if (gw.backend === 'sqlite') expect(gw.app.state.recorder.flush()).toBe(true);
  else expect(await gw.app.state.recorder.drain()).toBe(true);
}
