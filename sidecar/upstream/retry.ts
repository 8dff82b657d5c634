// When and how long to wait before trying the upstream again. Pure functions: the loop that uses
// them lives in client.ts. See docs/adr/0004-retries.md for why this is not a retry library.
import { parseGoDuration } from './duration.ts';

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

type HeaderValue = string | string[] | undefined;
export type HeaderBag = Record<string, HeaderValue>;

function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

// Billing errors look like rate limits (429) but no wait will ever fix them.
const FINAL_429 = new Set(['insufficient_quota', 'credit_balance_exhausted', 'billing_hard_limit_reached', 'billing_not_active']);

/** Statuses worth another attempt; `code`/`type` are from the upstream's error body. */
export function isRetryableStatus(status: number, code?: string | null, type?: string | null): boolean {
  if (status === 429) return !FINAL_429.has(code ?? '') && !FINAL_429.has(type ?? '');
  return status === 408 || status === 409 || status >= 500;
}

/**
 * What the upstream asked us to wait, in ms: `retry-after-ms`, then `retry-after` (seconds or an
 * HTTP date), then the reset of whichever x-ratelimit budget is exhausted.
 */
export function serverDelayMs(headers: HeaderBag, now: number = Date.now()): number | undefined {
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined && ms.trim() !== '' && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms);
  const ra = header(headers, 'retry-after');
  if (ra !== undefined && ra.trim() !== '') {
    const seconds = Number(ra);
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
    const date = Date.parse(ra);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  let reset: number | undefined;
  for (const kind of ['requests', 'tokens']) {
    if (header(headers, `x-ratelimit-remaining-${kind}`) !== '0') continue;
    const value = header(headers, `x-ratelimit-reset-${kind}`);
    const d = value ? parseGoDuration(value.trim()) : undefined;
    if (d !== undefined) reset = Math.max(reset ?? 0, d);
  }
  return reset;
}

/** Exponential backoff with full jitter after the given (1-based) failed attempt. */
export function backoffMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random() * ceiling);
}

/** A server hint is a floor, never shortened by jitter; without one, full jitter. */
export function retryDelayMs(attempt: number, policy: RetryPolicy, hintMs: number | undefined, random: () => number = Math.random): number {
  const jitter = backoffMs(attempt, policy, random);
  return hintMs === undefined ? jitter : Math.max(Math.ceil(hintMs), jitter);
}
