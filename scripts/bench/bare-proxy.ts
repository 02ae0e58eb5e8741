// The baseline the gateway is measured against: node:http in front, an undici Pool behind, and
// nothing in between but dropping hop-by-hop headers. Whatever the gateway costs beyond this is
// the price of authentication, rate limiting, quotas and metering.
// Usage (from bench.ts, over fork): UPSTREAM_URL=http://127.0.0.1:PORT
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import { serveForParent } from './child.ts';

// RFC 9110 §7.6.1, plus Host (it belongs to the upstream's URL). Same set as src/pipeline/forward.ts.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'host',
]);

function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) if (!HOP_BY_HOP.has(name)) out[name] = headers[name];
  return out;
}

const upstream = process.env.UPSTREAM_URL;
if (!upstream) throw new Error('bare-proxy: UPSTREAM_URL is required');
// The gateway's pool options (src/pipeline/forward.ts), so the two differ only in what runs per request.
const pool = new Pool(upstream, { connections: 256, keepAliveTimeout: 30_000 });

// As the gateway does (src/pipeline/read-body.ts): a body of 16 KB or less is read whole and sent
// as a Buffer. Streamed into undici, it kept every request's objects alive into the old
// generation, and this proxy took 100–106 µs a stream in the sse case instead of 80–86.
const SMALL_BODY_BYTES = 16 * 1024;

const server = createServer((req, res) => {
  const length = Number(req.headers['content-length'] ?? 0);
  if (length > 0 && length <= SMALL_BODY_BYTES) {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => proxy(req, res, Buffer.concat(chunks)));
    return;
  }
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  proxy(req, res, hasBody ? req : null);
});

function proxy(req: IncomingMessage, res: ServerResponse, body: IncomingMessage | Buffer | null): void {
  pool.stream(
    {
      path: req.url!,
      method: req.method as Dispatcher.HttpMethod,
      headers: endToEnd(req.headers) as Record<string, string>,
      body,
    },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, endToEnd(headers));
      return res;
    },
    (err) => {
      if (!err) return;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(String(err.message));
    },
  );
}
serveForParent(server);
