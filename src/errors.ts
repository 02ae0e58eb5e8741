// Denials are codes; only the edge speaks HTTP. Stages throw GatewayError(code); writeError turns
// it into a status and a body in the route's dialect (RFC 9457 problem+json for plain routes).
import type { ServerResponse } from 'node:http';

export type ErrorCode =
  | 'MISSING_KEY' | 'MALFORMED_KEY' | 'INVALID_KEY'
  | 'RATE_LIMITED' | 'QUOTA_EXCEEDED' | 'INSUFFICIENT_CREDITS' | 'ACCOUNT_SUSPENDED'
  | 'NOT_FOUND' | 'PAYLOAD_TOO_LARGE' | 'BAD_REQUEST'
  | 'UPSTREAM_UNREACHABLE' | 'UPSTREAM_TIMEOUT' | 'SHUTTING_DOWN' | 'INTERNAL';

interface ErrorSpec { status: number; title: string; detail: string }

const SPECS: Record<ErrorCode, ErrorSpec> = {
  MISSING_KEY: { status: 401, title: 'Missing API key', detail: 'Send your key as "Authorization: Bearer <key>" or "X-API-Key: <key>".' },
  MALFORMED_KEY: { status: 401, title: 'Malformed API key', detail: 'The key is not a Tollgate key (tg_…) or its checksum does not match; check for a copy-paste error.' },
  INVALID_KEY: { status: 401, title: 'Invalid API key', detail: 'The key is unknown, revoked or expired.' },
  RATE_LIMITED: { status: 429, title: 'Rate limit exceeded', detail: 'Too many requests; retry after the number of seconds in Retry-After.' },
  QUOTA_EXCEEDED: { status: 402, title: 'Monthly quota exhausted', detail: 'The plan\'s monthly quota is used up; upgrade the plan or wait for the next period.' },
  INSUFFICIENT_CREDITS: { status: 402, title: 'Insufficient credits', detail: 'The monthly quota is used up and the prepaid balance cannot pay for this request; top up credits.' },
  ACCOUNT_SUSPENDED: { status: 402, title: 'Account suspended', detail: 'This account is suspended; contact the API provider.' },
  NOT_FOUND: { status: 404, title: 'Not found', detail: 'No route matches this path.' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload too large', detail: 'The request body exceeds the gateway\'s limit.' },
  BAD_REQUEST: { status: 400, title: 'Bad request', detail: 'The request could not be understood.' },
  UPSTREAM_UNREACHABLE: { status: 502, title: 'Bad gateway', detail: 'The upstream service could not be reached.' },
  UPSTREAM_TIMEOUT: { status: 504, title: 'Gateway timeout', detail: 'The upstream service did not answer in time.' },
  SHUTTING_DOWN: { status: 503, title: 'Shutting down', detail: 'The gateway is restarting; retry shortly.' },
  INTERNAL: { status: 500, title: 'Internal error', detail: 'The gateway failed to handle this request.' },
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

/** Writes the error as application/problem+json (RFC 9457) with the request id. */
export function writeError(res: ServerResponse, err: GatewayError, requestId: string, headers: string[] = []): void {
  if (res.headersSent) {
    // The status line is gone; all that is left is to cut the stream so the client sees a failure.
    res.destroy();
    return;
  }
  const body = JSON.stringify({
    type: PROBLEM_TYPE + err.code.toLowerCase().replaceAll('_', '-'),
    title: err.title,
    status: err.status,
    detail: err.message,
    requestId,
  });
  const out = [
    ...headers,
    'content-type', 'application/problem+json',
    'content-length', String(Buffer.byteLength(body)),
    'x-request-id', requestId,
  ];
  if (err.status === 401) out.push('www-authenticate', 'Bearer realm="tollgate"');
  if (err.extra.retryAfterS !== undefined) out.push('retry-after', String(err.extra.retryAfterS));
  res.writeHead(err.status, out);
  res.end(body);
}
