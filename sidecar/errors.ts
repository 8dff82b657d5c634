// The sidecar's own errors: one code → status table, one body shape. Every SDK parses OpenAI's
// error body, so ours uses it too, with type `envelope_error` to tell them apart from upstream's.

export const ERROR_STATUS = {
  route_not_found: 404,
  model_not_allowed: 403,
  endpoint_not_allowed: 403,
  invalid_request: 400,
  request_too_large: 413,
  input_too_long: 400,
  rate_limited: 429,
  budget_exhausted: 429,
  concurrency_limited: 429,
  upstream_timeout: 504,
  upstream_unavailable: 502,
  circuit_open: 503,
  pii_blocked: 400,
  moderation_flagged: 400,
  output_invalid: 422,
  tool_not_allowed: 422,
  key_unavailable: 503,
  review_pending: 409,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

// The SDKs retry 408/409/429/5xx unless told otherwise. These codes are final for the app:
// retrying them unchanged gives the same answer (or, for upstream failures, the sidecar has
// already retried and a second layer of retries would multiply upstream calls).
const FINAL: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'budget_exhausted',
  'upstream_timeout',
  'upstream_unavailable',
  'review_pending',
  'output_invalid',
  'tool_not_allowed',
]);

export interface ErrorBody {
  error: { message: string; type: string; code: string | null; param: string | null };
}

export class EnvelopeError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, opts: { param?: string; status?: number; headers?: Record<string, string> } = {}) {
    super(message);
    this.code = code;
    this.status = opts.status ?? ERROR_STATUS[code];
    this.param = opts.param ?? null;
    this.headers = opts.headers ?? {};
  }

  /** Whether the app's SDK may usefully retry this error by itself. */
  get retryable(): boolean {
    if (FINAL.has(this.code)) return false;
    return this.status === 408 || this.status === 409 || this.status === 429 || this.status >= 500;
  }

  body(): ErrorBody {
    return { error: { message: this.message, type: 'envelope_error', code: this.code, param: this.param } };
  }
}

/** For the few places that must put an error inside an already-started stream. */
export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return new EnvelopeError(code, message).body();
}
