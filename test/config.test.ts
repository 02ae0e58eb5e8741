import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BUILTIN_PLAN, ConfigError, loadConfig, type Config } from '../src/config.ts';
import { tempDir } from './helpers.ts';

const SERVER = new URL('../dist/server.js', import.meta.url).pathname;

// Every test runs in an empty working directory, so a tollgate.config.json lying around in the
// checkout cannot change what "no configuration" means.
let dir: string;
let cwd: string;
beforeEach(() => {
  cwd = process.cwd();
  dir = tempDir();
  process.chdir(dir);
});
afterEach(() => process.chdir(cwd));

function file(contents: unknown, name = 'tollgate.config.json'): string {
  const path = join(dir, name);
  writeFileSync(path, typeof contents === 'string' ? contents : JSON.stringify(contents));
  return path;
}

function withFile(contents: unknown, env: Record<string, string> = {}): Config {
  return loadConfig({ TOLLGATE_CONFIG: file(contents), ...env });
}

/** The problems loadConfig() reports; fails the test if it did not throw a ConfigError. */
function problems(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    // The message lists every problem.
    for (const p of e.problems) expect(e.message).toContain(p);
    return e.problems;
  }
  expect.fail('loadConfig accepted an invalid configuration');
}

const UP = 'http://127.0.0.1:9000';
const okRoute = { path: '/api/', upstream: UP };
const okPlan = { limits: { perSecond: 5, perMinute: 60, perDay: 1000 }, burst: 10, monthlyQuota: 1000, overage: 'block' };

describe('loadConfig: defaults', () => {
  it('with nothing configured: port 8080 on 127.0.0.1, ./data/tollgate.db, the built-in plan, demo on', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8080, host: '127.0.0.1', databasePath: './data/tollgate.db', logLevel: 'info',
      demo: true, source: 'demo', defaultPlan: 'default', routes: [],
      upstreamTimeoutMs: 30_000, maxBodyBytes: 10 * 1024 * 1024,
    });
    expect(c.plans).toEqual({ default: BUILTIN_PLAN });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads PORT, HOST, DATABASE_PATH and LOG_LEVEL from the environment', () => {
    const c = loadConfig({ PORT: '0', HOST: '0.0.0.0', DATABASE_PATH: '/tmp/x.db', LOG_LEVEL: 'warn', UPSTREAM_TIMEOUT_MS: '500' });
    expect(c).toMatchObject({ port: 0, host: '0.0.0.0', databasePath: '/tmp/x.db', logLevel: 'warn', upstreamTimeoutMs: 500 });
  });

  it('UPSTREAM_URL becomes one catch-all route with the default flags', () => {
    const c = loadConfig({ UPSTREAM_URL: 'http://127.0.0.1:9000/v1' });
    expect(c.demo).toBe(false);
    expect(c.source).toBe('UPSTREAM_URL');
    expect(c.routes).toHaveLength(1);
    expect(c.routes[0]).toMatchObject({ path: '/', metered: true, auth: true, stripPrefix: false, priceMicros: 0, timeoutMs: 30_000 });
    expect(c.routes[0].upstreams[0].href).toBe('http://127.0.0.1:9000/v1');
  });

  it('picks up ./tollgate.config.json when TOLLGATE_CONFIG is not set', () => {
    file({ routes: [okRoute] });
    const c = loadConfig({});
    expect(c.demo).toBe(false);
    expect(c.source).toBe(join(dir, 'tollgate.config.json'));
    expect(c.routes.map((r) => r.path)).toEqual(['/api/']);
  });
});

describe('loadConfig: a config file', () => {
  it('reads a full valid file', () => {
    const c = withFile({
      routes: [
        { path: '/api/a/', upstream: `${UP}/base/`, priceMicros: 1000, metered: true, auth: true, stripPrefix: true,
          headers: { 'X-Upstream-Key': 'secret' }, timeoutMs: 2000 },
        { path: '/free', upstream: 'https://example.com', metered: false, auth: false },
      ],
      plans: {
        free: okPlan,
        pro: { limits: { perMinute: 600 }, monthlyQuota: 100_000, overage: 'credits' },
        unlimited: { monthlyQuota: null },
      },
      defaultPlan: 'free',
    }, { UPSTREAM_URL: UP });
    expect(c.source).toBe(join(dir, 'tollgate.config.json'));
    expect(c.demo).toBe(false);
    expect(c.defaultPlan).toBe('free');
    expect(c.routes.map((r) => r.path)).toEqual(['/api/a/', '/free', '/']);
    expect(c.routes[0]).toMatchObject({
      priceMicros: 1000, metered: true, auth: true, stripPrefix: true, timeoutMs: 2000,
      headers: { 'x-upstream-key': 'secret' },
    });
    expect(c.routes[0].upstreams[0].href).toBe('http://127.0.0.1:9000/base/');
    expect(c.routes[1]).toMatchObject({ priceMicros: 0, metered: false, auth: false, stripPrefix: false, timeoutMs: 30_000 });
    expect(c.plans.free).toEqual({ name: 'free', byok: false, ...okPlan });
    expect(c.plans.pro).toMatchObject({ name: 'pro', limits: { perMinute: 600 }, monthlyQuota: 100_000, overage: 'credits' });
    expect(c.plans.unlimited).toMatchObject({ limits: {}, monthlyQuota: null, overage: 'block' });
    expect(Object.isFrozen(c.routes[0].headers)).toBe(true);
    expect(Object.isFrozen(c.plans.free.limits)).toBe(true);
  });

  it('a route may name several upstreams; one stays a list of one', () => {
    const c = withFile({ routes: [{ path: '/api/', upstream: [UP, 'http://10.0.0.2:9000/v1'] }, { path: '/one/', upstream: UP }] });
    expect(c.routes[0].upstreams.map((u) => u.href)).toEqual(['http://127.0.0.1:9000/', 'http://10.0.0.2:9000/v1']);
    expect(c.routes[1].upstreams.map((u) => u.href)).toEqual(['http://127.0.0.1:9000/']);
    expect(Object.isFrozen(c.routes[0].upstreams)).toBe(true);
  });

  it('ACCESS_LOG is all by default, and errors or off when set', () => {
    expect(loadConfig({}).accessLog).toBe('all');
    expect(loadConfig({ ACCESS_LOG: 'errors' }).accessLog).toBe('errors');
    expect(loadConfig({ ACCESS_LOG: 'off' }).accessLog).toBe('off');
  });

  it('without plans, the built-in default plan applies to the file\'s routes', () => {
    const c = withFile({ routes: [okRoute] });
    expect(c.plans).toEqual({ default: BUILTIN_PLAN });
    expect(c.defaultPlan).toBe('default');
  });

  it('without defaultPlan, the first declared plan is the default', () => {
    expect(withFile({ routes: [okRoute], plans: { basic: okPlan, pro: okPlan } }).defaultPlan).toBe('basic');
  });
});

describe('loadConfig: refusals name the field', () => {
  const cases: [string, unknown, RegExp][] = [
    ['an unknown top-level key', { routes: [okRoute], rutes: [] }, /^rutes: unknown field/],
    ['an unknown route key', { routes: [{ ...okRoute, upstreem: UP }] }, /^routes\[0\]\.upstreem: unknown field/],
    ['an unknown plan key', { plans: { free: { ...okPlan, quota: 5 } } }, /^plans\.free\.quota: unknown field/],
    ['an unknown limits key', { plans: { free: { ...okPlan, limits: { perHour: 5 } } } }, /^plans\.free\.limits\.perHour: unknown field/],
    ['a URL that does not parse', { routes: [{ ...okRoute, upstream: 'not a url' }] }, /^routes\[0\]\.upstream: not a URL/],
    ['a non-http URL', { routes: [{ ...okRoute, upstream: 'ftp://example.com/' }] }, /^routes\[0\]\.upstream: expected an http\(s\) URL/],
    ['a missing upstream', { routes: [{ path: '/a/' }] }, /^routes\[0\]\.upstream/],
    ['an empty list of upstreams', { routes: [{ ...okRoute, upstream: [] }] }, /^routes\[0\]\.upstream: expected an http\(s\) URL, or a non-empty array/],
    ['a bad URL in a list of upstreams', { routes: [{ ...okRoute, upstream: [UP, 'ftp://x'] }] }, /^routes\[0\]\.upstream\[1\]: expected an http\(s\) URL/],
    ['an upstream named twice', { routes: [{ ...okRoute, upstream: [UP, `${UP}/`] }] }, /^routes\[0\]\.upstream: an upstream is named twice/],
    ['a path without a leading slash', { routes: [{ ...okRoute, path: 'api/' }] }, /^routes\[0\]\.path/],
    ['a negative priceMicros', { routes: [{ ...okRoute, priceMicros: -1 }] }, /^routes\[0\]\.priceMicros: expected an integer ≥ 0/],
    ['a fractional priceMicros', { routes: [{ ...okRoute, priceMicros: 0.5 }] }, /^routes\[0\]\.priceMicros/],
    ['a priceMicros given as a string', { routes: [{ ...okRoute, priceMicros: '1000' }] }, /^routes\[0\]\.priceMicros/],
    ['a non-boolean flag', { routes: [{ ...okRoute, auth: 'no' }] }, /^routes\[0\]\.auth: expected true or false/],
    ['a bad header value', { routes: [{ ...okRoute, headers: { 'x-a': 'b\r\nx-evil: 1' } }] }, /^routes\[0\]\.headers\.x-a/],
    ['a negative limit', { plans: { free: { ...okPlan, limits: { perSecond: -5 } } } }, /^plans\.free\.limits\.perSecond: expected an integer ≥ 1/],
    ['a zero limit', { plans: { free: { ...okPlan, limits: { perMinute: 0 } } } }, /^plans\.free\.limits\.perMinute: expected an integer ≥ 1/],
    ['a zero burst', { plans: { free: { ...okPlan, burst: 0 } } }, /^plans\.free\.burst/],
    ['a negative monthlyQuota', { plans: { free: { ...okPlan, monthlyQuota: -1 } } }, /^plans\.free\.monthlyQuota/],
    ['a bad overage policy', { plans: { free: { ...okPlan, overage: 'invoice' } } }, /^plans\.free\.overage: expected one of block, credits/],
    ['a defaultPlan naming no plan', { plans: { free: okPlan }, defaultPlan: 'gold' }, /^defaultPlan: no plan named "gold"/],
    ['a defaultPlan with the built-in plan only', { defaultPlan: 'gold' }, /^defaultPlan: no plan named "gold"/],
    ['a duplicate route path', { routes: [okRoute, { ...okRoute, upstream: 'http://127.0.0.1:9001' }] }, /^routes: path "\/api\/" is declared twice/],
    ['a route under /_tollgate/', { routes: [{ ...okRoute, path: '/_tollgate/' }] }, /^routes\[0\]\.path: \/_tollgate\/ belongs to the gateway/],
    ['a route at /_tollgate', { routes: [{ ...okRoute, path: '/_tollgate' }] }, /^routes\[0\]\.path: \/_tollgate\/ belongs to the gateway/],
    ['routes that are not an array', { routes: {} }, /^routes: expected an array/],
    ['a file that is not an object', [], /^config file: expected a JSON object/],
  ];

  it.each(cases)('refuses %s', (_what, contents, expected) => {
    const got = problems(() => withFile(contents));
    expect(got.some((p) => expected.test(p)), `${JSON.stringify(got)} should match ${expected}`).toBe(true);
  });

  it('refuses a file that is not JSON, naming the file', () => {
    const path = file('{ "routes": [ }');
    const got = problems(() => loadConfig({ TOLLGATE_CONFIG: path }));
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(/not valid JSON/);
    expect(got[0]).toContain(path);
  });

  it('says where a JSON error is as line and column, not a character offset', () => {
    const path = file('{\n  "routes": [],\n  "plans": { "free": {} },\n}\n');
    const got = problems(() => loadConfig({ TOLLGATE_CONFIG: path }));
    expect(got[0]).toMatch(/not valid JSON: line 4, column 1: /);
    expect(got[0]).not.toMatch(/position/);
  });

  it('refuses a TOLLGATE_CONFIG that points to a missing file', () => {
    const missing = join(dir, 'nope.json');
    expect(problems(() => loadConfig({ TOLLGATE_CONFIG: missing }))).toEqual([`TOLLGATE_CONFIG: file not found: ${missing}`]);
  });

  it.each([
    ['PORT', 'abc'], ['PORT', '70000'], ['PORT', '-1'], ['PORT', '80.5'],
    ['UPSTREAM_TIMEOUT_MS', '0'], ['MAX_BODY_BYTES', '10MB'], ['LOG_LEVEL', 'verbose'], ['ACCESS_LOG', 'some'],
  ])('refuses %s=%s', (name, value) => {
    const got = problems(() => loadConfig({ [name]: value }));
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(new RegExp(`^${name}: .*"${value}"`));
  });

  it('refuses a bad UPSTREAM_URL', () => {
    expect(problems(() => loadConfig({ UPSTREAM_URL: 'localhost:9000' }))[0]).toMatch(/^UPSTREAM_URL: /);
    expect(problems(() => loadConfig({ UPSTREAM_URL: 'nope' }))[0]).toMatch(/^UPSTREAM_URL: /);
  });

  it('lists every problem at once, from the environment and the file', () => {
    const got = problems(() => withFile({
      routes: [
        { path: '/a/', upstream: 'ftp://x', priceMicros: -5, colour: 'red' },
        { path: '/_tollgate/x', upstream: UP },
      ],
      plans: { free: { limits: { perSecond: 0 }, overage: 'maybe' } },
      defaultPlan: 'gold',
      extra: true,
    }, { PORT: 'abc', LOG_LEVEL: 'loud' }));
    const expected = [
      /^PORT: /, /^LOG_LEVEL: /, /^extra: unknown field/, /^routes\[0\]\.colour: unknown field/,
      /^routes\[0\]\.upstream: expected an http\(s\) URL/, /^routes\[0\]\.priceMicros/, /^routes\[1\]\.path/,
      /^plans\.free\.limits\.perSecond/, /^plans\.free\.overage/, /^defaultPlan: no plan named "gold"/,
    ];
    for (const re of expected) expect(got.some((p) => re.test(p)), `${JSON.stringify(got)} should match ${re}`).toBe(true);
  });
});

describe('node dist/server.js with a bad configuration', () => {
  it('exits non-zero with one message on stderr listing the problems and no stack trace', async () => {
    expect(existsSync(SERVER), 'dist/server.js is missing: run `npm run build` (npm test does)').toBe(true);
    const config = file({
      routes: [{ path: '/api/', upstream: 'ftp://x', priceMicros: -1 }],
      plans: { free: { overage: 'maybe' } },
    }, 'bad.json');
    const child = spawn(process.execPath, [SERVER], {
      cwd: dir,
      env: { PATH: process.env.PATH, TOLLGATE_CONFIG: config, DATABASE_PATH: join(dir, 'db', 'tollgate.db'), PORT: '0', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));

    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(stderr.match(/invalid configuration/g)).toHaveLength(1);
    expect(stderr).toMatch(/^tollgate: invalid configuration/);
    expect(stderr).toContain('routes[0].upstream');
    expect(stderr).toContain('routes[0].priceMicros');
    expect(stderr).toContain('plans.free.overage');
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stderr).not.toMatch(/ConfigError|\.ts:\d+|\.js:\d+/);
    expect(stdout).toBe('');
    // It stopped before touching the database.
    expect(existsSync(join(dir, 'db'))).toBe(false);
  });
});
