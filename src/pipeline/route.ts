// Longest path prefix wins. A prefix matches at a segment boundary: "/api" matches "/api",
// "/api/x" and "/api?q", never "/apix".
import type { Route } from '../config.ts';

export class Router {
  private readonly routes: readonly Route[];

  constructor(routes: readonly Route[]) {
    this.routes = [...routes].sort((a, b) => b.path.length - a.path.length);
  }

  match(url: string): Route | undefined {
    for (const r of this.routes) {
      if (!url.startsWith(r.path)) continue;
      if (r.path.endsWith('/') || url.length === r.path.length) return r;
      const next = url.charCodeAt(r.path.length);
      if (next === 47 /* / */ || next === 63 /* ? */) return r;
    }
    return undefined;
  }
}
