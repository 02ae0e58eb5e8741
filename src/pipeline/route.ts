// Stage 0: which route a request belongs to. Longest path prefix wins, at a segment boundary:
// "/api" matches "/api", "/api/x" and "/api?q", never "/apix". Matching ignores case, and a target
// that an upstream could read as another path is refused before any route is chosen: what the
// gateway routes (and bills) must be what every upstream serves. Of two routes on one path, the
// one that names a request header wins when the request carries it (GET /v1/models: Anthropic's
// SDK sends anthropic-version).
import type { IncomingHttpHeaders } from 'node:http';
import type { Route } from '../config.ts';
import { GatewayError } from '../errors.ts';

// Forms upstreams normalise into another path (each was seen to reach a paid route through an
// auth-free one):
// - empty segments: nginx (merge_slashes), Apache and Spring read "//api/x" as "/api/x";
// - dot segments, also percent-encoded or with parameters ("..;" is ".." to Tomcat);
// - backslashes and encoded slashes or backslashes ("\" is "/" to IIS and some frameworks);
// - percent-encoded unreserved characters (RFC 3986 §2.3: "%61pi" is "api"), an encoded "%"
//   (decoded twice, "%252e" becomes "."), and an encoded NUL (C upstreams stop reading there);
// - a fragment: never part of a request target, it ends the path for a URL parser.
// Only the path is checked (up to "?"): a query may carry an encoded URL.
const UNSAFE_PATH = /^[^?]*(?:\/\/|\/(?:\.|%2e){1,2}(?:[/?;]|$)|%2f|%5c|\\|%(?:00|25|3[0-9]|[46][1-9a-f]|[57][0-9a]|2[de]|5f|7e))|#/i;
const UPPER = /[A-Z]/;
// ";params" on a segment: Tomcat and Spring drop them before routing ("/api;x/secret" is
// "/api/secret" there), most other servers keep them.
const PARAMS = /;[^/?]*/g;

export class Router {
  private readonly routes: readonly Route[];
  private readonly lower: readonly string[];

  constructor(routes: readonly Route[]) {
    this.routes = [...routes].sort((a, b) => b.path.length - a.path.length || Number(b.whenHeader !== undefined) - Number(a.whenHeader !== undefined));
    this.lower = this.routes.map((r) => r.path.toLowerCase());
  }

  /**
   * The route for a request target; throws BAD_REQUEST for a target some upstream would read as
   * another path, and undefined when no route matches.
   */
  route(url: string, headers?: IncomingHttpHeaders): Route | undefined {
    if (url.charCodeAt(0) !== 47 /* / */) throw new GatewayError('BAD_REQUEST', { detail: 'The request target must be a path starting with "/".' });
    if (UNSAFE_PATH.test(url)) {
      throw new GatewayError('BAD_REQUEST', { detail: 'Paths with empty or dot segments, backslashes, fragments or needless percent-encoding (of /, \\, %, NUL or of letters, digits, -._~) are refused.' });
    }
    const route = this.match(url, headers);
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    // Read with its parameters dropped, the path must land on the same route.
    if (path.includes(';') && this.match(path.replace(PARAMS, '') + (q === -1 ? '' : url.slice(q)), headers) !== route) {
      throw new GatewayError('BAD_REQUEST', { detail: 'Path parameters (";…") that change which route a path belongs to are refused.' });
    }
    return route;
  }

  /** The longest route prefix of `url`, case-insensitively, at a segment boundary. */
  match(url: string, headers?: IncomingHttpHeaders): Route | undefined {
    const target = UPPER.test(url) ? url.toLowerCase() : url;
    for (let i = 0; i < this.routes.length; i++) {
      const p = this.lower[i];
      if (!target.startsWith(p)) continue;
      const when = this.routes[i].whenHeader;
      if (when !== undefined && headers?.[when] === undefined) continue;
      if (p.endsWith('/') || target.length === p.length) return this.routes[i];
      const next = target.charCodeAt(p.length);
      if (next === 47 /* / */ || next === 63 /* ? */) return this.routes[i];
    }
    return undefined;
  }
}
