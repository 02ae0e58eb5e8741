// The baseline the gateway is measured against: node:http in front, an undici Pool behind, and
// nothing in between but dropping hop-by-hop headers. Whatever the gateway costs beyond this is
// the price of authentication, rate limiting, quotas and metering.
// Usage (from bench.ts, over fork): UPSTREAM_URL=http://127.0.0.1:PORT
import { createServer, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
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

const server = createServer((req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.stream(
    {
      path: req.url!,
      method: req.method as Dispatcher.HttpMethod,
      headers: endToEnd(req.headers) as Record<string, string>,
      body: hasBody ? req : null,
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
});
serveForParent(server);
