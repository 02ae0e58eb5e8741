// The bare proxy, the baseline the gateway is measured against: node:http in front, an undici Pool
// behind, and nothing in between but dropping hop-by-hop headers. Whatever the gateway costs beyond
// this is the price of authentication, rate limiting, quotas and metering. The floor proxy
// (floor-proxy.ts) is this one with a usage row and an access-log line added.
import { createServer, type Server, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

// RFC 9110 §7.6.1, plus Host (it belongs to the upstream's URL). Same set as src/pipeline/forward.ts.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'host',
]);

export function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) if (!HOP_BY_HOP.has(name)) out[name] = headers[name];
  return out;
}

const upstream = process.env.UPSTREAM_URL;
if (!upstream) throw new Error('bare-proxy: UPSTREAM_URL is required');
// The gateway's pool options (src/pipeline/forward.ts), so the two differ only in what runs per request.
const pool = new Pool(upstream, { connections: 256, keepAliveTimeout: 30_000 });

// As the gateway does (src/pipeline/read-body.ts): a body of 16 KB or less is read whole and sent
// as a Buffer. Streamed into undici, it kept every request's objects alive into the old generation.
const SMALL_BODY_BYTES = 16 * 1024;

/**
 * The response, through undici's dispatch API as the gateway's (src/pipeline/forward.ts). On
 * pool.stream this proxy fell into the garbage-collector state the README's Performance section
 * describes (2.1 MB promoted per scavenge from a mark-compact on, 80–84 µs a stream instead of
 * 57–65) in about half the runs, and the ratios read higher than they were.
 */
export class Relay implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;

  constructor(protected readonly res: ServerResponse) {
    res.on('close', () => {
      if (!res.writableEnded) this.controller?.abort(new Error('client disconnected'));
    });
  }

  /** Undefined, or what the request waits for before it is forwarded. */
  ready(): Promise<void> | undefined {
    return undefined;
  }

  /** What goes upstream: the client's end-to-end headers. */
  requestHeaders(req: IncomingMessage): OutgoingHttpHeaders {
    return endToEnd(req.headers);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.res.writeHead(statusCode, endToEnd(headers));
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.res.write(chunk);
  }

  onResponseEnd(): void {
    this.res.end();
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.res.headersSent) return void this.res.destroy(err);
    this.res.writeHead(502, { 'content-type': 'text/plain' });
    this.res.end(String(err.message));
  }
}

/** The bare proxy's server, each response relayed by the Relay `relayOf` makes for it. */
export function proxyServer(relayOf: (req: IncomingMessage, res: ServerResponse) => Relay = (_req, res) => new Relay(res)): Server {
  return createServer((req, res) => {
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > 0 && length <= SMALL_BODY_BYTES) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => proxy(req, Buffer.concat(chunks), relayOf(req, res)));
      return;
    }
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    proxy(req, hasBody ? req : null, relayOf(req, res));
  });
}

function proxy(req: IncomingMessage, body: IncomingMessage | Buffer | null, relay: Relay): void {
  const waiting = relay.ready();
  if (waiting) return void waiting.then(() => dispatch(req, body, relay));
  dispatch(req, body, relay);
}

function dispatch(req: IncomingMessage, body: IncomingMessage | Buffer | null, relay: Relay): void {
  pool.dispatch({
    path: req.url!,
    method: req.method as Dispatcher.HttpMethod,
    headers: relay.requestHeaders(req) as Record<string, string>,
    body,
  }, relay);
}
