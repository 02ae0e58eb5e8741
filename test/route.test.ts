import { describe, expect, it } from 'vitest';
import type { Route } from '../src/config.ts';
import { upstreamPath } from '../src/pipeline/forward.ts';
import { Upstreams } from '../src/pipeline/upstreams.ts';
import { Router } from '../src/pipeline/route.ts';

function route(path: string, upstream = 'http://127.0.0.1:9', extra: Partial<Route> = {}): Route {
  return {
    path, upstreams: [new URL(upstream)], priceMicros: 0, metered: true, auth: true, stripPrefix: false,
    headers: {}, timeoutMs: 1000, ...extra,
  };
}

describe('Router', () => {
  const root = route('/');
  const api = route('/api');
  const apiV2 = route('/api/v2/');
  const apiV2Admin = route('/api/v2/admin');
  const router = new Router([root, api, apiV2Admin, apiV2]);

  it('picks the longest matching prefix, whatever the declaration order', () => {
    expect(router.match('/api/v2/admin/users')).toBe(apiV2Admin);
    expect(router.match('/api/v2/things')).toBe(apiV2);
    expect(router.match('/api/v1/things')).toBe(api);
    expect(router.match('/other')).toBe(root);
    expect(new Router([apiV2, api]).match('/api/v2/x')).toBe(apiV2);
    expect(new Router([api, apiV2]).match('/api/v2/x')).toBe(apiV2);
  });

  it('matches a prefix only at a segment boundary', () => {
    const r = new Router([api]);
    expect(r.match('/api')).toBe(api);
    expect(r.match('/api/')).toBe(api);
    expect(r.match('/api/x')).toBe(api);
    expect(r.match('/api?q=1')).toBe(api);
    expect(r.match('/apix')).toBeUndefined();
    expect(r.match('/ap')).toBeUndefined();
    expect(r.match('/')).toBeUndefined();
    // The catch-all still takes what the narrower route refuses.
    expect(router.match('/apix')).toBe(root);
  });

  it('a prefix ending in / matches below it', () => {
    const r = new Router([apiV2]);
    expect(r.match('/api/v2/')).toBe(apiV2);
    expect(r.match('/api/v2/x?y')).toBe(apiV2);
    expect(r.match('/api/v2x')).toBeUndefined();
  });

  it('no route, no match', () => {
    expect(new Router([]).match('/anything')).toBeUndefined();
  });
});

describe('upstreamPath', () => {
  it('keeps the client path when the prefix is not stripped', () => {
    expect(upstreamPath(route('/api/'), '', '/api/items?x=1')).toBe('/api/items?x=1');
    expect(upstreamPath(route('/api/'), '/base', '/api/items?x=1')).toBe('/base/api/items?x=1');
  });

  it('strips the route prefix when asked, keeping one slash and the query', () => {
    const strip = (path: string) => route(path, undefined, { stripPrefix: true });
    expect(upstreamPath(strip('/public/'), '', '/public/hello')).toBe('/hello');
    expect(upstreamPath(strip('/public/'), '', '/public/')).toBe('/');
    expect(upstreamPath(strip('/public/'), '', '/public/a/b?c=d')).toBe('/a/b?c=d');
    expect(upstreamPath(strip('/public'), '', '/public')).toBe('/');
    expect(upstreamPath(strip('/public'), '', '/public/hello')).toBe('/hello');
    expect(upstreamPath(strip('/public'), '', '/public?q=1')).toBe('/?q=1');
    expect(upstreamPath(strip('/'), '', '/x/y')).toBe('/x/y');
  });

  it('puts the upstream base path in front, stripped or not', () => {
    const strip = route('/public/', undefined, { stripPrefix: true });
    expect(upstreamPath(strip, '/v1', '/public/hello')).toBe('/v1/hello');
    expect(upstreamPath(strip, '/v1', '/public/')).toBe('/v1/');
    expect(upstreamPath(route('/public'), '/v1', '/public/hello')).toBe('/v1/public/hello');
  });

  it('derives the base path from the upstream URL, with or without a trailing slash', async () => {
    const routes = [
      route('/a/', 'http://127.0.0.1:9'),
      route('/b/', 'http://127.0.0.1:9/'),
      route('/c/', 'http://127.0.0.1:9/v1'),
      route('/d/', 'http://127.0.0.1:9/v1/', { stripPrefix: true }),
    ];
    const ups = new Upstreams(routes, { connections: 4, bodyTimeoutMs: 1000, writeTimeoutMs: 1000, maxBodyBytes: 1024, now: Date.now });
    try {
      const path = (r: Route, url: string) => upstreamPath(r, ups.pick(r).basePath, url);
      expect(path(routes[0], '/a/x')).toBe('/a/x');
      expect(path(routes[1], '/b/x')).toBe('/b/x');
      expect(path(routes[2], '/c/x?y=1')).toBe('/v1/c/x?y=1');
      expect(path(routes[3], '/d/x?y=1')).toBe('/v1/x?y=1');
      // One connection pool per upstream origin.
      expect(ups.pick(routes[0]).origin.pool).toBe(ups.pick(routes[3]).origin.pool);
    } finally {
      await ups.close();
    }
  });
});
