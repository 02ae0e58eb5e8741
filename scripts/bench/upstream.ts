// The bench's upstream: answers every request with the same small JSON body, keep-alive. Runs in
// its own process so it neither shares a core with the load generator nor with the proxy under test.
import { createServer } from 'node:http';
import { serveForParent } from './child.ts';

const BODY = Buffer.from(JSON.stringify({ ok: true, message: 'hello from the bench upstream' }));
const HEADERS = { 'content-type': 'application/json', 'content-length': String(BODY.length) };

const server = createServer((req, res) => {
  // Read (and discard) any request body so the connection stays usable for the next request.
  req.resume();
  req.on('end', () => {
    res.writeHead(200, HEADERS);
    res.end(BODY);
  });
});
serveForParent(server);
