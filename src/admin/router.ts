// Finds the admin endpoint for a method and a path: route paths are OpenAPI templates
// ('/admin/v1/keys/{id}/revoke'), so the table and its document use one spelling.
import type { AdminRoute, Method } from './http.ts';

export type Match =
  | { route: AdminRoute; params: Record<string, string> }
  /** The path exists, with other methods. */
  | { allow: Method[] };

interface Compiled { route: AdminRoute; segments: string[] }

const PARAM = /^\{(\w+)\}$/;

export class AdminRouter {
  private readonly compiled: Compiled[];

  constructor(readonly routes: readonly AdminRoute[]) {
    const seen = new Set<string>();
    for (const r of routes) {
      const id = `${r.method} ${r.path}`;
      if (seen.has(id)) throw new Error(`admin route ${id} is declared twice`);
      seen.add(id);
    }
    this.compiled = routes.map((route) => ({ route, segments: route.path.split('/') }));
  }

  /** undefined: no endpoint at this path (or a segment that is not valid percent-encoding). */
  match(method: string, path: string): Match | undefined {
    const parts = path.split('/');
    const allow: Method[] = [];
    for (const { route, segments } of this.compiled) {
      const params = bind(segments, parts);
      if (params === undefined) continue;
      if (route.method === method) return { route, params };
      allow.push(route.method);
    }
    return allow.length > 0 ? { allow } : undefined;
  }
}

function bind(segments: string[], parts: string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const name = PARAM.exec(segments[i])?.[1];
    if (name === undefined) {
      if (segments[i] !== parts[i]) return undefined;
      continue;
    }
    if (parts[i] === '') return undefined;
    try {
      params[name] = decodeURIComponent(parts[i]);
    } catch {
      return undefined;
    }
  }
  return params;
}
