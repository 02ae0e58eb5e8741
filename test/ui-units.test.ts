// The pages' pure parts: escaping, the SVG chart, signed sessions and their CSRF tokens, the
// per-address throttle.
import { describe, expect, it } from 'vitest';
import { barChart } from '../src/ui/chart.ts';
import { html } from '../src/ui/html.ts';
import { deriveKey, SessionSigner } from '../src/ui/session.ts';
import { Throttle } from '../src/ui/throttle.ts';

describe('html', () => {
  it('escapes every interpolated value, in text and attributes, but not html it made itself', () => {
    const evil = `"><script>alert('x')</script>&`;
    expect(html`<a title="${evil}">${evil}</a>`.text).toBe('<a title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</a>');
    expect(html`<p>${html`<b>${'<i>'}</b>`}${[1, null, undefined, false, 'a']}</p>`.text).toBe('<p><b>&lt;i&gt;</b>1a</p>');
  });
});

describe('barChart', () => {
  it('draws one bar per day, its height in proportion to the largest, with the value in data attributes and tooltips', () => {
    const svg = barChart('c', 'Requests', [{ day: '2026-11-01', value: 0 }, { day: '2026-11-02', value: 5 }, { day: '2026-11-03', value: 10 }], (v) => `${v} req`).text;
    const bars = [...svg.matchAll(/<rect class="bar" data-day="([\d-]+)" data-value="(\d+)" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"><title>([^<]+)<\/title>/g)];
    expect(bars.map((b) => [b[1], Number(b[2]), Number(b[3]), b[4]])).toEqual([
      ['2026-11-01', 0, 0, '2026-11-01: 0 req'], ['2026-11-02', 5, 68, '2026-11-02: 5 req'], ['2026-11-03', 10, 136, '2026-11-03: 10 req'],
    ]);
    expect(barChart('e', 'Empty', []).text).not.toContain('<rect');
  });
});

describe('SessionSigner', () => {
  const signer = new SessionSigner(deriveKey('secret', 'test'), 'portal', 1000);

  it('verifies its own cookie until it expires', () => {
    const { cookie, session } = signer.issue('key_1', 5000);
    expect(signer.verify(cookie, 5999)).toEqual(session);
    expect(signer.verify(cookie, 6000)).toBeUndefined();
  });

  it('refuses a changed body or MAC, another key, another kind and garbage', () => {
    const { cookie } = signer.issue('key_1', 0);
    const [body, mac] = cookie.split('.');
    const changed = Buffer.from(Buffer.from(body, 'base64url').toString().replace('key_1', 'key_2')).toString('base64url');
    expect(signer.verify(`${changed}.${mac}`, 1)).toBeUndefined();
    expect(signer.verify(`${body}.${mac.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))}`, 1)).toBeUndefined();
    expect(new SessionSigner(deriveKey('other', 'test'), 'portal', 1000).verify(cookie, 1)).toBeUndefined();
    const consoleCookie = new SessionSigner(deriveKey('secret', 'test'), 'console', 1000).issue('x', 0).cookie;
    expect(signer.verify(consoleCookie, 1)).toBeUndefined();
    for (const junk of [undefined, '', '.', 'abc', `${body}.`, '.abc']) expect(signer.verify(junk, 1)).toBeUndefined();
  });

  it('binds the CSRF token to the session', () => {
    const a = signer.issue('key_1', 0).session;
    const b = signer.issue('key_1', 0).session;
    expect(signer.checkCsrf(a, signer.csrf(a))).toBe(true);
    expect(signer.checkCsrf(a, signer.csrf(b))).toBe(false);
    expect(signer.checkCsrf(a, null)).toBe(false);
    expect(signer.checkCsrf(a, '')).toBe(false);
  });
});

describe('Throttle', () => {
  it('allows `limit` attempts per address in a sliding window and says how long until the next', () => {
    const t = new Throttle(2, 1000);
    expect([t.take('a', 0), t.take('a', 100), t.take('a', 200), t.take('b', 200)]).toEqual([0, 0, 800, 0]);
    expect(t.take('a', 1000)).toBe(0);
    expect(t.take('a', 1050)).toBe(50);
  });
});
