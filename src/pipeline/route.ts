// Longest path prefix wins. A prefix matches at a segment boundary: "/api" matches "/api",
// "/api/x" and "/api?q", never "/apix". Of two routes on one path, the one that names a request
// header wins when the request carries it (GET /v1/models: Anthropic's SDK sends anthropic-version).
import type { IncomingHttpHeaders } from 'node:http';
import type { Route } from '../config.ts';

export class Router {
  private readonly routes: readonly Route[];

  constructor(routes: readonly Route[]) {
    this.routes = [...routes].sort((a, b) => b.path.length - a.path.length || Number(b.whenHeader !== undefined) - Number(a.whenHeader !== undefined));
  }

  match(url: string, headers?: IncomingHttpHeaders): Route | undefined {
    for (const r of this.routes) {
      if (!url.startsWith(r.path)) continue;
      if (r.whenHeader !== undefined && headers?.[r.whenHeader] === undefined) continue;
      if (r.path.endsWith('/') || url.length === r.path.length) return r;
      const next = url.charCodeAt(r.path.length);
      if (next === 47 /* / */ || next === 63 /* ? */) return r;
    }
    return undefined;
  }
}
