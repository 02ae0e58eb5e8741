// The baseline the gateway is measured against (relay.ts), as a child server of the bench.
// Usage (from bench.ts, over fork): UPSTREAM_URL=http://127.0.0.1:PORT
import { serveForParent } from './child.ts';
import { proxyServer } from './relay.ts';

serveForParent(proxyServer());
