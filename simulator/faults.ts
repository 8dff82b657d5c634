import { ApiError } from './errors.ts';
import { rateLimitFor, rateLimitHeaders } from './headers.ts';
import type { ErrorFault, Fault } from './types.ts';

const STREAM_ONLY = new Set(['reset_mid_stream', 'stall_mid_stream']);

interface Queued {
  fault: Fault;
  left: number;
}

export class FaultQueue {
  #queue: Queued[] = [];

  add(f: Fault): void {
    const checked = checkFault(f);
    this.#queue.push({ fault: checked, left: checked.times ?? 1 });
  }

  clear(): void {
    this.#queue = [];
  }

  get size(): number {
    return this.#queue.length;
  }

  /**
   * Consumes the first queued fault matching this request. Mid-stream faults
   * only match streaming requests, so a plain call in between does not eat them.
   */
  take(path: string, model: string | undefined, streaming: boolean): Fault | undefined {
    const i = this.#queue.findIndex(
      ({ fault }) =>
        (fault.path === undefined || fault.path === path) &&
        (fault.model === undefined || fault.model === model) &&
        (streaming || !STREAM_ONLY.has(fault.type)),
    );
    if (i < 0) return undefined;
    const q = this.#queue[i]!;
    q.left -= 1;
    if (q.left <= 0) this.#queue.splice(i, 1);
    return q.fault;
  }
}

/** Validates a fault from an untrusted source (the control API) and returns it. */
export function checkFault(v: unknown): Fault {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('a fault must be a JSON object');
  const f = v as Record<string, unknown>;
  const num = (k: string, required: boolean) => {
    if (f[k] === undefined && !required) return;
    if (typeof f[k] !== 'number' || !(f[k] >= 0)) throw new Error(`fault '${String(f.type)}' needs a number '${k}' >= 0`);
  };
  const str = (k: string) => {
    if (f[k] !== undefined && typeof f[k] !== 'string') throw new Error(`fault field '${k}' must be a string`);
  };
  str('path');
  str('model');
  if (f.times !== undefined && (typeof f.times !== 'number' || !(f.times >= 1))) throw new Error("fault field 'times' must be a number >= 1");
  if (f.headers !== undefined && (typeof f.headers !== 'object' || f.headers === null || Object.values(f.headers).some((h) => typeof h !== 'string'))) {
    throw new Error("fault field 'headers' must map names to strings");
  }
  switch (f.type) {
    case 'error':
      num('status', true);
      if ((f.status as number) < 400 || (f.status as number) > 599) throw new Error("fault 'error' needs a status in 400..599");
      num('retryAfter', false);
      num('retryAfterMs', false);
      str('message');
      str('errorType');
      break;
    case 'delay':
      num('ms', true);
      break;
    case 'reset_mid_stream':
      num('afterEvents', true);
      break;
    case 'stall_mid_stream':
      num('afterEvents', true);
      num('ms', true);
      break;
    case 'insufficient_quota':
    case 'reset':
    case 'malformed':
      break;
    default:
      throw new Error(`unknown fault type '${String(f.type)}'`);
  }
  return f as unknown as Fault;
}

const DEFAULTS: Record<number, { type: string; code: string | null; message: (model: string) => string }> = {
  400: { type: 'invalid_request_error', code: null, message: () => 'The simulator was asked to reject this request.' },
  401: {
    type: 'invalid_request_error',
    code: 'invalid_api_key',
    message: () =>
      'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
  },
  403: {
    type: 'invalid_request_error',
    code: 'unsupported_country_region_territory',
    message: () => 'Country, region, or territory not supported',
  },
  404: {
    type: 'invalid_request_error',
    code: 'model_not_found',
    message: (m) => `The model \`${m}\` does not exist or you do not have access to it.`,
  },
  408: { type: 'invalid_request_error', code: null, message: () => 'Request timed out.' },
  409: { type: 'invalid_request_error', code: null, message: () => 'The request conflicted with another request.' },
  429: {
    type: 'requests',
    code: 'rate_limit_exceeded',
    message: (m) =>
      `Rate limit reached for ${m} in organization org-simulator on requests per min (RPM): Limit 10000, Used 10000, Requested 1. Please try again later. Visit https://platform.openai.com/account/rate-limits to learn more.`,
  },
  500: {
    type: 'server_error',
    code: null,
    message: () =>
      'The server had an error while processing your request. Sorry about that! You can retry your request, or contact us through our help center at help.openai.com if the error persists.',
  },
  502: { type: 'server_error', code: null, message: () => 'Bad gateway.' },
  503: { type: 'server_error', code: null, message: () => 'The engine is currently overloaded, please try again later.' },
  504: { type: 'server_error', code: null, message: () => 'Gateway timeout.' },
};

export function errorFromFault(f: ErrorFault, model: string | undefined): ApiError {
  const d = DEFAULTS[f.status] ?? {
    type: f.status >= 500 ? 'server_error' : 'invalid_request_error',
    code: null,
    message: () => `Simulated error ${f.status}.`,
  };
  const errorType = f.errorType ?? d.type;
  const headers: Record<string, string> = {};
  if (f.status === 429) {
    const waitMs = f.retryAfterMs ?? (f.retryAfter !== undefined ? f.retryAfter * 1000 : 1000);
    const rl = rateLimitFor(model ?? '', 0);
    if (errorType === 'tokens') {
      rl.remainingTokens = 0;
      rl.resetTokensMs = waitMs;
    } else {
      rl.remainingRequests = 0;
      rl.resetRequestsMs = waitMs;
    }
    Object.assign(headers, rateLimitHeaders(rl));
  }
  if (f.retryAfter !== undefined) headers['retry-after'] = String(f.retryAfter);
  if (f.retryAfterMs !== undefined) headers['retry-after-ms'] = String(f.retryAfterMs);
  Object.assign(headers, f.headers ?? {});
  return new ApiError(f.status, f.message ?? d.message(model ?? 'gpt-4o-mini'), {
    type: errorType,
    code: f.code === undefined ? d.code : f.code,
    param: f.param ?? null,
    headers,
  });
}

export function insufficientQuota(): ApiError {
  return new ApiError(
    429,
    'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
    { type: 'insufficient_quota', code: 'insufficient_quota' },
  );
}
