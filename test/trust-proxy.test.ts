// TRUST_PROXY: which peers' X-Forwarded-* the gateway believes. From an untrusted peer they are
// replaced by what the gateway saw; from a trusted proxy they are kept (X-Forwarded-For gets the
// gateway's hop), and the client's address, for per-address caps and the logs, is the first
// untrusted one from the right. Through the gateway, on the SQLite file and on PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { bytesOf, parseTrustProxy, TrustedProxies } from '../src/pipeline/trusted-proxies.ts';
import { BACKENDS, startBackendGateway, type BackendGateway } from './backend-gateway.ts';
import { bearer, startUpstream, type Upstream } from './helpers.ts';
import { until } from './until.ts';

const proxies = (raw: string) => {
  const problems: string[] = [];
  const t = new TrustedProxies(parseTrustProxy(raw, problems));
  expect(problems).toEqual([]);
  return t;
};

describe('TrustedProxies', () => {
  it('matches addresses and CIDRs, IPv4 and IPv6, and reads IPv4-mapped addresses as IPv4', () => {
    const t = proxies('loopback, 10.0.0.0/8, 192.0.2.7, fd00::/8, 2001:db8::1');
    for (const a of ['127.0.0.1', '127.9.9.9', '::1', '10.1.2.3', '192.0.2.7', '::ffff:10.0.0.1', '::ffff:127.0.0.1', 'fd12:3456::1', '2001:db8::1', '2001:0db8:0:0:0:0:0:1']) {
      expect(t.trusts(a), a).toBe(true);
    }
    for (const a of ['11.0.0.1', '192.0.2.8', '::2', 'fe80::1', '2001:db8::2', '::ffff:11.0.0.1', 'garbage', '', '1.2.3.4:80']) {
      expect(t.trusts(a), a).toBe(false);
    }
    expect(new TrustedProxies([]).trusts('127.0.0.1')).toBe(false);
    expect(proxies('0.0.0.0/0').trusts('203.0.113.9')).toBe(true);
    expect(proxies('10.128.0.0/9').trusts('10.127.255.255')).toBe(false);
    expect(proxies('10.128.0.0/9').trusts('10.128.0.0')).toBe(true);
  });

  it('parses IPv6 forms, and refuses what is not an address', () => {
    expect(bytesOf('::')).toEqual(new Array(16).fill(0));
    expect(bytesOf('1::')).toEqual([0, 1, ...new Array(14).fill(0)]);
    expect(bytesOf('::ffff:192.0.2.1')).toEqual([192, 0, 2, 1]);
    expect(bytesOf('fe80::1%eth0')).toEqual([0xfe, 0x80, ...new Array(13).fill(0), 1]);
    for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', '1.2.3', '1.2.3.256', '::g', ':1', '1:2:3:4:5:6:7']) expect(bytesOf(bad), bad).toBeUndefined();
  });

  it('the client behind a trusted proxy is the first untrusted address from the right of X-Forwarded-For', () => {
    const t = proxies('loopback, 10.0.0.0/8');
    expect(t.client('127.0.0.1', undefined)).toBe('127.0.0.1');
    expect(t.client('127.0.0.1', '203.0.113.7')).toBe('203.0.113.7');
    // A client's own forged entries sit left of what the proxies appended.
    expect(t.client('127.0.0.1', '6.6.6.6, 203.0.113.7, 10.0.0.5')).toBe('203.0.113.7');
    expect(t.client('127.0.0.1', '10.0.0.9, 10.0.0.5')).toBe('10.0.0.9');
    expect(t.client('127.0.0.1', 'unknown, 203.0.113.7')).toBe('203.0.113.7');
    expect(t.client('127.0.0.1', '203.0.113.7, , 10.0.0.5')).toBe('10.0.0.5');
  });

  it('TRUST_PROXY that is not an address list stops the gateway at start, naming the entry', () => {
    expect(loadConfig({ TRUST_PROXY: '' }).trustProxy).toEqual([]);
    expect(loadConfig({ TRUST_PROXY: 'off' }).trustProxy).toEqual([]);
    expect(loadConfig({ TRUST_PROXY: 'loopback' }).trustProxy).toEqual(['127.0.0.0/8', '::1/128']);
    for (const bad of ['everyone', '10.0.0.0/33', '::1/129', '10.0.0.0/', '300.1.1.1', 'true']) {
      expect(() => loadConfig({ TRUST_PROXY: `loopback,${bad}` }), bad).toThrow(ConfigError);
      try {
        loadConfig({ TRUST_PROXY: bad });
      } catch (err) {
        expect((err as ConfigError).problems, bad).toEqual([expect.stringContaining(`TRUST_PROXY: expected "loopback"`)]);
        expect((err as ConfigError).problems[0], bad).toContain(`"${bad}"`);
      }
    }
  });
});

describe.each(BACKENDS)('X-Forwarded-* through the gateway on $backend', ({ backend }) => {
  let up: Upstream;
  beforeAll(async () => {
    up = await startUpstream();
  });
  afterAll(() => up.close());

  const SPOOF = { 'x-forwarded-for': '203.0.113.7, 198.51.100.2', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example.com' };

  async function withGateway(env: Record<string, string>, run: (gw: BackendGateway, key: string, lines: Record<string, unknown>[]) => Promise<void>) {
    const lines: Record<string, unknown>[] = [];
    const gw = await startBackendGateway(backend, {
      env: { MAX_CONCURRENT_PER_CLIENT: '1', ...env },
      log: createLogger('info', (l) => lines.push(JSON.parse(l) as Record<string, unknown>)),
      file: { routes: [{ path: '/api/', upstream: up.url }, { path: '/open/', upstream: up.url, auth: false }] },
    });
    try {
      await run(gw, (await gw.seed('default')).key, lines);
    } finally {
      await gw.close();
    }
  }

  it('without TRUST_PROXY (the default) they are replaced by what the gateway saw', async () => {
    await withGateway({}, async (gw, key, lines) => {
      expect((await fetch(`${gw.url}/api/a`, { headers: { ...bearer(key), ...SPOOF } })).status).toBe(200);
      expect(up.received.at(-1)!.headers).toMatchObject({ 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': new URL(gw.url).host });
      expect(lines.at(-1)).toMatchObject({ msg: 'request', client: '127.0.0.1' });
    });
  });

  it('from a peer TRUST_PROXY does not name, the same', async () => {
    await withGateway({ TRUST_PROXY: '10.0.0.0/8, fd00::/8' }, async (gw, key) => {
      expect((await fetch(`${gw.url}/api/b`, { headers: { ...bearer(key), ...SPOOF } })).status).toBe(200);
      expect(up.received.at(-1)!.headers).toMatchObject({ 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': new URL(gw.url).host });
    });
  });

  it('from a trusted proxy they are kept and X-Forwarded-For gets the gateway\'s hop; the client is the address it names', async () => {
    await withGateway({ TRUST_PROXY: 'loopback' }, async (gw, key, lines) => {
      expect((await fetch(`${gw.url}/api/c`, { headers: { ...bearer(key), ...SPOOF } })).status).toBe(200);
      expect(up.received.at(-1)!.headers).toMatchObject({
        'x-forwarded-for': '203.0.113.7, 198.51.100.2, 127.0.0.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example.com',
      });
      expect(lines.at(-1)).toMatchObject({ msg: 'request', client: '198.51.100.2' });
      // A proxy that sends none of them: the gateway's own view, as without one.
      expect((await fetch(`${gw.url}/api/d`, { headers: bearer(key) })).status).toBe(200);
      expect(up.received.at(-1)!.headers).toMatchObject({ 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': new URL(gw.url).host });
    });
  });

  it('per-address caps on auth-free routes count the client a trusted proxy names, not the proxy', async () => {
    const held: (() => void)[] = [];
    const slow = await startUpstream((_req, res) => held.push(() => res.end('ok')));
    const lines: Record<string, unknown>[] = [];
    const gw = await startBackendGateway(backend, {
      env: { MAX_CONCURRENT_PER_CLIENT: '1', TRUST_PROXY: 'loopback' },
      file: { routes: [{ path: '/open/', upstream: slow.url, auth: false }] },
      log: createLogger('info', (l) => lines.push(JSON.parse(l) as Record<string, unknown>)),
    });
    try {
      const from = (client: string) => fetch(`${gw.url}/open/x`, { headers: { 'x-forwarded-for': client } });
      const first = from('203.0.113.1');
      const second = from('203.0.113.2');
      await until(() => held.length === 2, 2000, 'both requests at the upstream');
      // Two clients behind the one proxy each have their slot; the first one's second request does not.
      expect((await from('203.0.113.1')).status).toBe(429);
      for (const release of held) release();
      expect((await first).status).toBe(200);
      expect((await second).status).toBe(200);
      expect(lines.filter((l) => l.msg === 'request').map((l) => l.client).sort()).toEqual(['203.0.113.1', '203.0.113.1', '203.0.113.2']);
    } finally {
      await gw.close();
      await slow.close();
    }
  });
});
