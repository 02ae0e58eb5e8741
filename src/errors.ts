// Denials are codes; only the edge speaks HTTP. Stages throw GatewayError(code); writeError turns
// it into a status and a body in the route's dialect: RFC 9457 problem+json for plain routes,
// OpenAI's and Anthropic's own error shapes on AI routes so their SDKs raise the right class.
import type { ServerResponse } from 'node:http';
import type { ProviderName } from './meters/provider.ts';

export type ErrorCode =
  | 'MISSING_KEY' | 'MALFORMED_KEY' | 'INVALID_KEY'
  | 'RATE_LIMITED' | 'TOO_MANY_CONCURRENT' | 'QUOTA_EXCEEDED' | 'INSUFFICIENT_CREDITS' | 'ACCOUNT_SUSPENDED' | 'PAYMENT_PAST_DUE'
  | 'NOT_FOUND' | 'FORBIDDEN' | 'PAYLOAD_TOO_LARGE' | 'BAD_REQUEST' | 'REQUEST_TIMEOUT'
  | 'UNKNOWN_MODEL' | 'MODEL_NOT_ALLOWED' | 'PROVIDER_NOT_CONFIGURED'
  | 'METHOD_NOT_ALLOWED' | 'CONFLICT' | 'BILLING_NOT_CONFIGURED'
  | 'UPSTREAM_UNREACHABLE' | 'UPSTREAM_TIMEOUT' | 'UPSTREAM_UNAVAILABLE' | 'STORAGE_BUSY' | 'INTERNAL'
  // The admin API (src/admin/).
  | 'ADMIN_UNAUTHORIZED' | 'INVALID_INPUT' | 'IDEMPOTENCY_KEY_REUSED' | 'INSUFFICIENT_BALANCE';

interface ErrorSpec { status: number; title: string; detail: string }

const SPECS: Record<ErrorCode, ErrorSpec> = {
  MISSING_KEY: { status: 401, title: 'Missing API key', detail: 'Send your key as "Authorization: Bearer <key>" or "X-API-Key: <key>".' },
  MALFORMED_KEY: { status: 401, title: 'Malformed API key', detail: 'The key is not a Tollgate key (tg_…) or its checksum does not match; check for a copy-paste error.' },
  INVALID_KEY: { status: 401, title: 'Invalid API key', detail: 'The key is unknown, revoked or expired.' },
  RATE_LIMITED: { status: 429, title: 'Rate limit exceeded', detail: 'Too many requests; retry after the number of seconds in Retry-After.' },
  TOO_MANY_CONCURRENT: { status: 429, title: 'Too many concurrent requests', detail: 'This client has as many requests in flight as it may; retry when one of them has finished.' },
  QUOTA_EXCEEDED: { status: 402, title: 'Monthly quota exhausted', detail: 'The plan\'s monthly quota is used up; upgrade the plan or wait for the next period.' },
  INSUFFICIENT_CREDITS: { status: 402, title: 'Insufficient credits', detail: 'The monthly quota is used up and the prepaid balance cannot pay for this request; top up credits.' },
  ACCOUNT_SUSPENDED: { status: 402, title: 'Account suspended', detail: 'This account is suspended; contact the API provider.' },
  PAYMENT_PAST_DUE: { status: 402, title: 'Payment past due', detail: 'The subscription is past due and its grace period is over; update the payment method (GET /_tollgate/billing/portal returns a link).' },
  CONFLICT: { status: 409, title: 'Conflict', detail: 'The request conflicts with the account\'s current state.' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed', detail: 'This endpoint does not take this method.' },
  BILLING_NOT_CONFIGURED: { status: 503, title: 'Billing not configured', detail: 'This gateway has no Stripe settings (STRIPE_SECRET_KEY).' },
  FORBIDDEN: { status: 403, title: 'Forbidden', detail: 'This request is not allowed here.' },
  NOT_FOUND: { status: 404, title: 'Not found', detail: 'No route matches this path.' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload too large', detail: 'The request body exceeds the gateway\'s limit.' },
  REQUEST_TIMEOUT: { status: 408, title: 'Request timeout', detail: 'The request body stopped arriving; send it without long pauses.' },
  BAD_REQUEST: { status: 400, title: 'Bad request', detail: 'The request could not be understood.' },
  UPSTREAM_UNREACHABLE: { status: 502, title: 'Bad gateway', detail: 'The upstream service could not be reached.' },
  UPSTREAM_TIMEOUT: { status: 504, title: 'Gateway timeout', detail: 'The upstream service did not answer in time.' },
  UPSTREAM_UNAVAILABLE: { status: 503, title: 'Upstream unavailable', detail: 'Every upstream of this route failed its last requests; retry after the number of seconds in Retry-After.' },
  UNKNOWN_MODEL: { status: 400, title: 'Unknown model', detail: 'This model has no price on this gateway.' },
  MODEL_NOT_ALLOWED: { status: 403, title: 'Model not allowed', detail: 'Your plan does not include this model.' },
  PROVIDER_NOT_CONFIGURED: { status: 503, title: 'Provider not configured', detail: 'The gateway has no key for this provider.' },
  STORAGE_BUSY: { status: 503, title: 'Storage busy', detail: 'The gateway cannot record requests right now; retry shortly.' },
  INTERNAL: { status: 500, title: 'Internal error', detail: 'The gateway failed to handle this request.' },
  ADMIN_UNAUTHORIZED: { status: 401, title: 'Unauthorized', detail: 'Send a valid admin token as "Authorization: Bearer <token>".' },
  INVALID_INPUT: { status: 422, title: 'Invalid input', detail: 'The request\'s parameters are not valid for this endpoint.' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, title: 'Idempotency-Key reused', detail: 'This Idempotency-Key was used in the last 24 hours for a different request; send a new key.' },
  INSUFFICIENT_BALANCE: { status: 409, title: 'Insufficient balance', detail: 'The account\'s balance cannot pay this deduction.' },
};

export class GatewayError extends Error {
  readonly status: number;
  readonly title: string;
  constructor(
    readonly code: ErrorCode,
    readonly extra: { detail?: string; retryAfterS?: number } = {},
  ) {
    const spec = SPECS[code];
    super(extra.detail ?? spec.detail);
    this.name = 'GatewayError';
    this.status = spec.status;
    this.title = spec.title;
  }
}

/** Anything that is not a GatewayError is an internal error: its message never reaches a client. */
export function toGatewayError(err: unknown): GatewayError {
  return err instanceof GatewayError ? err : new GatewayError('INTERNAL');
}

// A URN rather than a URL: the gateway does not assume a host that documents its errors.
const PROBLEM_TYPE = 'urn:tollgate:error:';

export type Dialect = 'problem' | ProviderName;

// Error types the providers use for each status; their SDKs pick the exception class by status.
const OPENAI_TYPES: Record<number, string> = {
  400: 'invalid_request_error', 401: 'invalid_request_error', 402: 'insufficient_quota', 403: 'permission_denied',
  404: 'not_found', 408: 'invalid_request_error', 413: 'invalid_request_error', 429: 'rate_limit_exceeded',
};
const ANTHROPIC_TYPES: Record<number, string> = {
  400: 'invalid_request_error', 401: 'authentication_error', 402: 'billing_error', 403: 'permission_error',
  404: 'not_found_error', 408: 'invalid_request_error', 413: 'request_too_large', 429: 'rate_limit_error', 504: 'timeout_error',
};

function errorBody(err: GatewayError, requestId: string, dialect: Dialect): [contentType: string, body: string] {
  const code = err.code.toLowerCase();
  if (dialect === 'openai') {
    const type = OPENAI_TYPES[err.status] ?? 'server_error';
    return ['application/json', JSON.stringify({ error: { message: err.message, type, param: null, code } })];
  }
  if (dialect === 'anthropic') {
    const type = ANTHROPIC_TYPES[err.status] ?? 'api_error';
    return ['application/json', JSON.stringify({ type: 'error', error: { type, message: err.message }, request_id: requestId })];
  }
  return ['application/problem+json', JSON.stringify({
    type: PROBLEM_TYPE + code.replaceAll('_', '-'),
    title: err.title,
    status: err.status,
    detail: err.message,
    requestId,
  })];
}

/**
 * Writes the error in the route's dialect. `headers` are the flat response headers gathered so
 * far; they carry X-Request-Id already (RequestContext starts with it).
 */
export function writeError(res: ServerResponse, err: GatewayError, requestId: string, headers: readonly string[], dialect: Dialect = 'problem'): void {
  if (res.headersSent) {
    // The status line is gone; all that is left is to cut the stream so the client sees a failure.
    res.destroy();
    return;
  }
  const [contentType, body] = errorBody(err, requestId, dialect);
  const out = [
    ...headers,
    'content-type', contentType,
    'content-length', String(Buffer.byteLength(body)),
  ];
  if (err.status === 401) out.push('www-authenticate', 'Bearer realm="tollgate"');
  if (err.extra.retryAfterS !== undefined) out.push('retry-after', String(err.extra.retryAfterS));
  res.writeHead(err.status, out);
  res.end(body);
}
