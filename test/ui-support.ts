// Driving Debian's Chromium (/usr/bin/chromium) with playwright-core for the page tests: one
// browser per test file; every request that would leave 127.0.0.1 is stopped and recorded (a
// redirect to Stripe is seen, never followed), and screenshots go to test-results/.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const RESULTS = join(import.meta.dirname, '..', 'test-results');

export function launch(): Promise<Browser> {
  // Root (CI containers) cannot use Chromium's sandbox.
  return chromium.launch({ executablePath: CHROMIUM, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
}

export interface Tab {
  context: BrowserContext;
  page: Page;
  /** URLs the page tried to load outside 127.0.0.1 (stopped). */
  outside: string[];
}

export async function newTab(browser: Browser): Promise<Tab> {
  const context = await browser.newContext();
  const outside: string[] = [];
  await context.route((url) => url.hostname !== '127.0.0.1', (route) => {
    outside.push(route.request().url());
    return route.fulfill({ status: 200, contentType: 'text/html', body: '<title>outside</title>' });
  });
  const page = await context.newPage();
  return { context, page, outside };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(RESULTS, { recursive: true });
  await page.screenshot({ path: join(RESULTS, `${name}.png`), fullPage: true });
}

/** The bars of a chart as drawn: day and value of each <rect>, and that the tallest has height. */
export async function chartPoints(page: Page, id: string): Promise<{ day: string; value: number }[]> {
  const bars = page.locator(`svg#${id} rect.bar`);
  const points = await bars.evaluateAll((rects) => rects.map((r) => ({
    day: r.getAttribute('data-day')!, value: Number(r.getAttribute('data-value')), height: (r as SVGRectElement).getBBox().height,
  })));
  const max = Math.max(0, ...points.map((p) => p.value));
  for (const p of points) {
    if (p.value === max && max > 0) expect(p.height).toBeGreaterThan(100);
    if (p.value === 0) expect(p.height).toBe(0);
  }
  return points.map(({ day, value }) => ({ day, value }));
}

export const today = (now = Date.now()) => new Date(now).toISOString().slice(0, 10);
