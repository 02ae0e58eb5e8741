// A gateway with its admin listener on 127.0.0.1:0, and a client for the admin API that checks
// every answer it gets against the OpenAPI document (src/admin/openapi.ts): the status must be
// documented for the operation and the body must validate against its schema.
import { expect } from 'vitest';
import { openapiDocument } from '../src/admin/openapi.ts';
import { startBackendGateway, type Backend, type BackendGateway, type BackendGatewayOptions } from './backend-gateway.ts';
import { checkProblem, startGateway, type GatewayOptions, type Problem, type TestGateway } from './helpers.ts';
import { validate } from './json-schema.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const OTHER_TOKEN = 'test-admin-token-abcdefghij';

export interface ApiResponse<T> { status: number; headers: Headers; body: T; text: string }
interface CallOptions { body?: unknown; headers?: Record<string, string>; token?: string | null }

const DOC = openapiDocument() as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }> }>> };
const TEMPLATES = Object.keys(DOC.paths).map((t) => ({ t, re: new RegExp(`^${t.replace(/\{\w+\}/g, '[^/]+')}$`) }));

/** Problems of an answer against the document (none for a path the document does not know: a 404 test). */
export function documentProblems(method: string, path: string, status: number, contentType: string | null, body: unknown): string[] {
  const template = TEMPLATES.find(({ re }) => re.test(path.split('?')[0]))?.t;
  if (template === undefined) return [];
  const operation = DOC.paths[template][method.toLowerCase()];
  if (!operation) return status === 405 ? [] : [`${method} ${template} is not documented`];
  const response = operation.responses[String(status)];
  if (!response) return [`${method} ${template}: status ${status} is not documented`];
  const [type, media] = Object.entries(response.content ?? {})[0] ?? [];
  if (!type || !media) return [];
  if (contentType !== type) return [`${method} ${template} ${status}: content-type ${contentType}, documented ${type}`];
  return validate(body, media.schema, DOC as unknown as Record<string, unknown>).map((p) => `${method} ${template} ${status}: ${p}`);
}

export function adminApi(base: string, token: string = ADMIN_TOKEN) {
  /** `T`: the shape the test expects (src/admin/shapes.ts); the document check is what proves it. */
  async function call<T = unknown>(method: string, path: string, { body, headers = {}, token: t = token }: CallOptions = {}): Promise<ApiResponse<T>> {
    const res = await fetch(base + path, {
      method,
      headers: {
        ...(t !== null && { authorization: `Bearer ${t}` }),
        ...(body !== undefined && { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    const parsed: unknown = text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
    expect(documentProblems(method, path, res.status, res.headers.get('content-type'), parsed)).toEqual([]);
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  }
  return {
    call,
    get: <T = unknown>(path: string, o?: CallOptions) => call<T>('GET', path, o),
    post: <T = unknown>(path: string, body?: unknown, o?: CallOptions) => call<T>('POST', path, { ...o, body }),
    patch: <T = unknown>(path: string, body?: unknown, o?: CallOptions) => call<T>('PATCH', path, { ...o, body }),
  };
}

export type AdminApi = ReturnType<typeof adminApi>;

/** checkProblem (helpers.ts) on an admin API answer: status, content type, exactly the documented members. */
export function problem(res: ApiResponse<unknown>, status: number, code: string): Problem {
  return checkProblem({ status: res.status, headers: res.headers, body: res.text }, status, code);
}

export interface AdminGateway extends TestGateway {
  adminUrl: string;
  api: AdminApi;
}

/** A gateway started by the tests' helper, with ADMIN_TOKEN set and its admin listener up. */
export async function startAdminGateway(options: GatewayOptions = {}): Promise<AdminGateway> {
  const gw = await startGateway({ ...options, env: { ADMIN_TOKEN: `${ADMIN_TOKEN}, ${OTHER_TOKEN}`, ...options.env } });
  const port = await gw.app.admin!.listen(0, '127.0.0.1');
  const adminUrl = `http://127.0.0.1:${port}`;
  return { ...gw, adminUrl, api: adminApi(adminUrl) };
}

/** A gateway on `backend` with ADMIN_TOKEN set and its admin listener up (the suites that run on both). */
export async function startAdminBackend(backend: Backend, options: BackendGatewayOptions): Promise<BackendGateway & { adminUrl: string; api: AdminApi }> {
  const gw = await startBackendGateway(backend, { ...options, env: { ADMIN_TOKEN: `${ADMIN_TOKEN}, ${OTHER_TOKEN}`, ...options.env } });
  const port = await gw.app.admin!.listen(0, '127.0.0.1');
  const adminUrl = `http://127.0.0.1:${port}`;
  return { ...gw, adminUrl, api: adminApi(adminUrl) };
}
