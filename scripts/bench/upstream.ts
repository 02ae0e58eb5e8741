// The bench's upstream: answers every request with the same small JSON body, keep-alive. Runs in
// its own process so it neither shares a core with the load generator nor with the proxy under test.
// POST /v1/chat/completions with "stream": true is a fake OpenAI chat stream (chat-stream.ts):
// SSE_EVENTS chunk events and the usage chunk, written back to back (one write per event).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { chatStream, upstreamEvents } from './chat-stream.ts';
import { serveForParent } from './child.ts';

const BODY = Buffer.from(JSON.stringify({ ok: true, message: 'hello from the bench upstream' }));
const HEADERS = { 'content-type': 'application/json', 'content-length': String(BODY.length) };

const CHAT_PATH = '/v1/chat/completions';
const STREAM = chatStream(Number(process.env.SSE_EVENTS ?? 20));
// Both variants written once; a request only picks one.
const EVENTS = {
  withUsage: upstreamEvents(STREAM, true).map((e) => Buffer.from(e)),
  withoutUsage: upstreamEvents(STREAM, false).map((e) => Buffer.from(e)),
};
const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };
const NOT_STREAM = Buffer.from(JSON.stringify({
  error: { message: 'the bench upstream only streams: send "stream": true', type: 'invalid_request_error', code: null },
}));

const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === CHAT_PATH) return void chat(req, res);
  // Read (and discard) any request body so the connection stays usable for the next request.
  req.resume();
  req.on('end', () => {
    res.writeHead(200, HEADERS);
    res.end(BODY);
  });
});

function chat(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let body: { stream?: unknown; stream_options?: { include_usage?: unknown } };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      body = {};
    }
    if (body.stream !== true) {
      res.writeHead(400, { 'content-type': 'application/json', 'content-length': String(NOT_STREAM.length) });
      return void res.end(NOT_STREAM);
    }
    const events = body.stream_options?.include_usage === true ? EVENTS.withUsage : EVENTS.withoutUsage;
    res.writeHead(200, SSE_HEADERS);
    for (const e of events) res.write(e);
    res.end();
  });
}

serveForParent(server);
