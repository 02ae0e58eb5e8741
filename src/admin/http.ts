// What an admin endpoint is: a method, an OpenAPI path template and a handler from the request's
// parsed parts to a reply. Endpoints read their input with the checks of input.ts and act through
// the Operations of the backend, bound to the token that called: SQLite's answer at once (a POST
// runs inside its Idempotency-Key's synchronous transaction), PostgreSQL's later.
import type { MaybePromise } from '../storage/ports.ts';
import type { Operations } from './operations.ts';

export interface AdminContext {
  /** The path template's parameters, decoded. */
  params: Readonly<Record<string, string>>;
  query: URLSearchParams;
  /** The JSON body of a POST or PATCH (undefined when none was sent). */
  body: unknown;
  ops: Operations;
  requestId: string;
}

export type Reply =
  | { status: number; json: unknown }
  /** Anything but JSON (Prometheus' text format, say). */
  | { status: number; text: string; contentType: string };

export type Method = 'GET' | 'POST' | 'PATCH';

export interface AdminRoute {
  method: Method;
  /** An OpenAPI path template: '/admin/v1/accounts/{id}'. */
  path: string;
  handle(ctx: AdminContext): Reply | Promise<Reply>;
  /**
   * A POST runs in one transaction with its Idempotency-Key's record, so a retry can never do it
   * twice; false for a handler that waits on something (a webhook replay, which is idempotent by
   * itself): its answer is recorded once it is done.
   */
  atomic?: boolean;
}

/** An OpenAPI 3.1 operation object (what openapi.ts writes for each route). */
export type Operation = Record<string, unknown> & { operationId: string; responses: Record<string, unknown> };

/** An endpoint mounted from outside src/admin/ (GET /metrics): it brings its own OpenAPI operation. */
export interface ExtraRoute extends AdminRoute {
  doc: Operation;
}

/** A reply of `status` with what an operation answered: at once when it did, else later. */
function reply(status: number, json: unknown): MaybePromise<Reply> {
  return json instanceof Promise ? json.then((j: unknown) => ({ status, json: j })) : { status, json };
}

export const ok = (json: unknown): MaybePromise<Reply> => reply(200, json);
export const created = (json: unknown): MaybePromise<Reply> => reply(201, json);
