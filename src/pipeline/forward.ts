// Stage 4: forward to the upstream and stream the answer back, both bodies unbuffered. One undici
// Pool per upstream origin; the dispatch handler writes each chunk to the client as it arrives
// and pauses the upstream while the client's socket is full.
import { Transform, type TransformCallback } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import type { Route } from '../config.ts';
import { GatewayError } from '../errors.ts';
import type { RequestContext } from './context.ts';

// RFC 9110 §7.6.1 hop-by-hop fields (plus Host, which belongs to the upstream's URL). Fields
// named in Connection are dropped too, per request.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'host',
]);
// Set by the gateway alone: whatever a client sends under these names is dropped.
const OWN_REQUEST_HEADERS = new Set(['x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);
const CLIENT_GONE = new Error('client disconnected');
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

interface Upstream { pool: Pool; basePath: string }

export class Upstreams {
  private readonly byRoute = new Map<Route, Upstream>();
  private readonly pools = new Map<string, Pool>();

  constructor(routes: readonly Route[]) {
    for (const r of routes) {
      const origin = r.upstream.origin;
      let pool = this.pools.get(origin);
      if (!pool) this.pools.set(origin, (pool = new Pool(origin, { connections: 256, keepAliveTimeout: 30_000 })));
      const p = r.upstream.pathname;
      this.byRoute.set(r, { pool, basePath: p === '/' ? '' : p.replace(/\/$/, '') });
    }
  }

  get(route: Route): Upstream {
    return this.byRoute.get(route)!;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
  }
}

/** The path to request upstream: the upstream's own base path, then the client's path. */
export function upstreamPath(route: Route, basePath: string, url: string): string {
  if (!route.stripPrefix) return basePath + url;
  const rest = url.slice(route.path.length);
  return `${basePath}/${rest.charCodeAt(0) === 47 ? rest.slice(1) : rest}`;
}

/**
 * Sends the request upstream. `done` is called once: with null when the response was streamed
 * whole, or with the error that stopped it (the caller decides what the client sees).
 */
export function forward(ctx: RequestContext, upstream: Upstream, maxBodyBytes: number, done: (err: Error | null) => void): void {
  const { req, res } = ctx;
  const route = ctx.route!;
  const handler = new ForwardHandler(ctx, done);
  res.on('close', () => {
    if (!res.writableEnded) {
      ctx.clientGone = true;
      handler.controller?.abort(CLIENT_GONE);
    }
  });

  let body: Dispatcher.DispatchOptions['body'] = null;
  const length = req.headers['content-length'];
  if (length !== undefined && length !== '0') {
    ctx.requestBytes = Number(length);
    body = req;
  } else if (req.headers['transfer-encoding'] !== undefined) {
    body = req.pipe(new BodyLimit(ctx, maxBodyBytes));
    req.on('error', (err) => (body as Transform).destroy(err));
  }

  upstream.pool.dispatch({
    path: upstreamPath(route, upstream.basePath, req.url!),
    method: req.method as Dispatcher.HttpMethod,
    headers: requestHeaders(ctx, route),
    body,
    headersTimeout: route.timeoutMs,
    bodyTimeout: route.timeoutMs,
  }, handler);
}

function requestHeaders(ctx: RequestContext, route: Route): string[] {
  const { req } = ctx;
  const headers = req.headers;
  const named = headers.connection;
  const dropNamed = named !== undefined && named !== 'keep-alive' && named !== 'close'
    ? new Set(named.toLowerCase().split(',').map((s) => s.trim())) : undefined;
  const out: string[] = [];
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || OWN_REQUEST_HEADERS.has(name) || name.startsWith('x-tollgate-')) continue;
    if (name === ctx.keyHeader || dropNamed?.has(name) || name in route.headers) continue;
    const v = headers[name]!;
    if (typeof v === 'string') out.push(name, v);
    else for (const one of v) out.push(name, one);
  }
  for (const name in route.headers) out.push(name, route.headers[name]);
  if (ctx.account) {
    out.push('x-tollgate-account', ctx.account.id, 'x-tollgate-plan', ctx.plan!.name, 'x-tollgate-key-id', ctx.key!.id);
  }
  const forwardedFor = headers['x-forwarded-for'];
  const client = req.socket.remoteAddress ?? 'unknown';
  out.push(
    'x-request-id', ctx.requestId,
    'x-forwarded-for', forwardedFor ? `${forwardedFor}, ${client}` : client,
    // Behind Caddy the client's scheme arrives here; directly, it is plain http.
    'x-forwarded-proto', (headers['x-forwarded-proto'] as string | undefined) ?? 'http',
  );
  if (headers.host) out.push('x-forwarded-host', headers.host);
  return out;
}

/** The answer a client sees when forwarding fails before the response started. */
export function upstreamFailure(err: Error): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: string }).code;
  return new GatewayError(code !== undefined && TIMEOUT_CODES.has(code) ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNREACHABLE');
}

class ForwardHandler implements Dispatcher.DispatchHandler {
  controller: Dispatcher.DispatchController | undefined = undefined;
  private finished = false;

  constructor(private readonly ctx: RequestContext, private readonly done: (err: Error | null) => void) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.ctx.clientGone) controller.abort(CLIENT_GONE);
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx: the final status follows
    const { ctx } = this;
    ctx.status = statusCode;
    const named = headers.connection;
    const dropNamed = typeof named === 'string' && named !== 'keep-alive' && named !== 'close'
      ? new Set(named.toLowerCase().split(',').map((s) => s.trim())) : undefined;
    const out = ctx.responseHeaders;
    for (const name in headers) {
      if (HOP_BY_HOP.has(name) || name === 'x-request-id' || dropNamed?.has(name)) continue;
      const v = headers[name]!;
      if (typeof v === 'string') out.push(name, v);
      else for (const one of v) out.push(name, one);
    }
    ctx.res.writeHead(statusCode, out);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const { res } = this.ctx;
    this.ctx.responseBytes += chunk.length;
    if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.ctx.res.end();
    this.finish(null);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.finish(err);
  }

  private finish(err: Error | null): void {
    if (this.finished) return;
    this.finished = true;
    this.done(err);
  }
}

/** Counts a chunked request body and fails it past the limit (a sized one is checked up front). */
class BodyLimit extends Transform {
  constructor(private readonly ctx: RequestContext, private readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.ctx.requestBytes += chunk.length;
    if (this.ctx.requestBytes > this.limit) cb(new GatewayError('PAYLOAD_TOO_LARGE'));
    else cb(null, chunk);
  }
}
