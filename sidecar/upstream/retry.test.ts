import { describe, expect, it } from 'vitest';
import { backoffMs, isRetryableStatus, retryDelayMs, serverDelayMs } from './retry.ts';
import { formatGoDuration, parseGoDuration } from './duration.ts';

const policy = { maxAttempts: 5, baseDelayMs: 250, maxDelayMs: 2000 };

describe('isRetryableStatus', () => {
  it('retries rate limits, conflicts, timeouts and server errors', () => {
    for (const s of [408, 409, 429, 500, 502, 503, 504]) expect(isRetryableStatus(s, 'rate_limit_exceeded')).toBe(true);
  });
  it('never retries quota and billing errors, nor client errors', () => {
    expect(isRetryableStatus(429, 'insufficient_quota', 'insufficient_quota')).toBe(false);
    expect(isRetryableStatus(429, null, 'insufficient_quota')).toBe(false);
    expect(isRetryableStatus(429, 'credit_balance_exhausted')).toBe(false);
    for (const s of [400, 401, 403, 404, 422]) expect(isRetryableStatus(s)).toBe(false);
  });
});

describe('parseGoDuration', () => {
  it('reads the forms OpenAI sends', () => {
    expect(parseGoDuration('1s')).toBe(1000);
    expect(parseGoDuration('6m0s')).toBe(360_000);
    expect(parseGoDuration('120ms')).toBe(120);
    expect(parseGoDuration('1h2m3.5s')).toBe(3_723_500);
    expect(parseGoDuration('0.5s')).toBe(500);
  });
  it('writes what it reads', () => {
    for (const ms of [0, 120, 999.5, 1000, 1500, 59_999, 60_000, 360_000, 3_723_500]) {
      expect(parseGoDuration(formatGoDuration(ms))).toBe(ms);
    }
    expect(formatGoDuration(360_000)).toBe('6m0s');
    expect(formatGoDuration(120)).toBe('120ms');
    expect(formatGoDuration(3_723_500)).toBe('1h2m3.5s');
  });
  it('refuses anything else', () => {
    expect(parseGoDuration('')).toBeUndefined();
    expect(parseGoDuration('10')).toBeUndefined();
    expect(parseGoDuration('1s junk')).toBeUndefined();
  });
});

describe('serverDelayMs', () => {
  it('prefers retry-after-ms, then retry-after', () => {
    expect(serverDelayMs({ 'retry-after-ms': '1500.5', 'retry-after': '9' })).toBe(1500.5);
    expect(serverDelayMs({ 'retry-after': '2' })).toBe(2000);
  });
  it('reads an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(serverDelayMs({ 'retry-after': 'Thu, 01 Jan 2026 00:00:03 GMT' }, now)).toBe(3000);
  });
  it('falls back to the reset of the exhausted budget only', () => {
    const h = { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1.5s', 'x-ratelimit-remaining-tokens': '900', 'x-ratelimit-reset-tokens': '30s' };
    expect(serverDelayMs(h)).toBe(1500);
    expect(serverDelayMs({ 'x-ratelimit-remaining-tokens': '0', 'x-ratelimit-reset-tokens': '250ms' })).toBe(250);
    expect(serverDelayMs({})).toBeUndefined();
  });
});

describe('backoff', () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    expect(backoffMs(1, policy, () => 0.999)).toBe(249);
    expect(backoffMs(2, policy, () => 0.999)).toBe(499);
    expect(backoffMs(10, policy, () => 0.999)).toBe(1998);
    expect(backoffMs(3, policy, () => 0)).toBe(0);
  });
  it('treats a server hint as a floor', () => {
    expect(retryDelayMs(1, policy, 1200, () => 0.5)).toBe(1200);
    expect(retryDelayMs(4, policy, 10, () => 0.999)).toBe(1998);
    expect(retryDelayMs(1, policy, undefined, () => 0.5)).toBe(125);
  });
});
