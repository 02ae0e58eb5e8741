// Browsers calling a route that opted in with "cors": the gateway answers their preflights itself
// (an OPTIONS request carries no key, so it would get 401) and marks every response, refusals
// included, as readable by the origin. The upstream's own Access-Control-* headers are dropped
// on such a route: two answers to one question would confuse the browser.
import type { Route } from '../config.ts';
import { GatewayError } from '../errors.ts';
import type { RequestContext } from './context.ts';

// What a page may read of the gateway's own headers (the rest of CORS's safelist is implied).
const EXPOSE = 'ratelimit, ratelimit-policy, retry-after, x-request-id, x-tollgate-cost-micros';
const MAX_AGE_S = '600';

/** True when this was a preflight, answered here; else the response headers are set for the origin. */
export function cors(ctx: RequestContext, route: Route): boolean {
  const origin = ctx.req.headers.origin;
  if (origin === undefined) return false;
  const allowed = route.cors!;
  const any = allowed[0] === '*';
  if (!any && !allowed.includes(origin.toLowerCase())) {
    throw new GatewayError('FORBIDDEN', { detail: `The origin ${origin} may not call this route from a browser.` });
  }
  const out = ctx.responseHeaders;
  out.push('access-control-allow-origin', any ? '*' : origin, 'vary', 'origin');
  const method = ctx.req.headers['access-control-request-method'];
  if (ctx.req.method !== 'OPTIONS' || method === undefined) {
    out.push('access-control-expose-headers', EXPOSE);
    return false;
  }
  out.push(
    'access-control-allow-methods', method,
    'access-control-allow-headers', ctx.req.headers['access-control-request-headers'] ?? 'authorization, x-api-key, content-type',
    'access-control-max-age', MAX_AGE_S,
    'content-length', '0',
  );
  ctx.res.writeHead(204, out);
  ctx.res.end();
  return true;
}
