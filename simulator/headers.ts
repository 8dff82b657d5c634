/** Formats milliseconds the way Go's time.Duration prints: `120ms`, `1.5s`, `6m0s`, `1h0m0s`. */
export function goDuration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms < 1000) return `${trim(ms)}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = trim((ms % 60_000) / 1000);
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

function trim(n: number): string {
  return String(Math.round(n * 1000) / 1000);
}

export interface RateLimitState {
  limitRequests: number;
  limitTokens: number;
  remainingRequests: number;
  remainingTokens: number;
  resetRequestsMs: number;
  resetTokensMs: number;
}

const LIMITS: { match: (m: string) => boolean; requests: number; tokens: number }[] = [
  { match: (m) => m.startsWith('text-embedding'), requests: 10_000, tokens: 10_000_000 },
  { match: (m) => m.includes('moderation'), requests: 1_000, tokens: 150_000 },
  { match: () => true, requests: 10_000, tokens: 30_000_000 },
];

/** A plausible per-minute window: one request and `tokens` just spent from a full bucket. */
export function rateLimitFor(model: string, tokens: number): RateLimitState {
  const lim = LIMITS.find((l) => l.match(model))!;
  const spent = Math.min(tokens, lim.tokens);
  return {
    limitRequests: lim.requests,
    limitTokens: lim.tokens,
    remainingRequests: lim.requests - 1,
    remainingTokens: lim.tokens - spent,
    resetRequestsMs: 60_000 / lim.requests,
    resetTokensMs: Math.ceil((spent / lim.tokens) * 60_000),
  };
}

export function rateLimitHeaders(s: RateLimitState): Record<string, string> {
  return {
    'x-ratelimit-limit-requests': String(s.limitRequests),
    'x-ratelimit-limit-tokens': String(s.limitTokens),
    'x-ratelimit-remaining-requests': String(s.remainingRequests),
    'x-ratelimit-remaining-tokens': String(s.remainingTokens),
    'x-ratelimit-reset-requests': goDuration(s.resetRequestsMs),
    'x-ratelimit-reset-tokens': goDuration(s.resetTokensMs),
  };
}
