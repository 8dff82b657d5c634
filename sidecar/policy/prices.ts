// What a call costs: the built-in price table, a route's overrides, and the arithmetic in integer
// nano-dollars that budget counters add up exactly.
import type { NanoUSD } from '../state/types.ts';
import type { Usage } from '../upstream/usage.ts';

/** USD per 1M tokens, and the most output tokens one call to the model can produce. */
export interface Price {
  input: number;
  cachedInput: number;
  output: number;
  maxOutputTokens: number;
}

export type PriceOverrides = Record<string, { input: number; cachedInput?: number | undefined; output: number }>;

/**
 * OpenAI's public pricing (standard tier, text tokens) as mirrored in this month; a route's
 * `spec.prices` overrides any entry, which is the way to follow a price change before a release.
 */
export const PRICES_AS_OF = '2026-11';

// Maximum output tokens as on OpenAI's model pages, cross-checked against third-party mirrors of
// those pages and the model metadata shipped in gpt-tokenizer 4.0 (OpenAI's own pages were not
// reachable from here). Embeddings produce no output tokens.
const TABLE: Record<string, Price> = {
  'gpt-4.1': { input: 2.0, cachedInput: 0.5, output: 8.0, maxOutputTokens: 32_768 },
  'gpt-4.1-mini': { input: 0.4, cachedInput: 0.1, output: 1.6, maxOutputTokens: 32_768 },
  'gpt-4.1-nano': { input: 0.1, cachedInput: 0.025, output: 0.4, maxOutputTokens: 32_768 },
  'gpt-4o': { input: 2.5, cachedInput: 1.25, output: 10.0, maxOutputTokens: 16_384 },
  // The first gpt-4o snapshot kept its launch price and has no cache discount: without this entry
  // it would be priced as gpt-4o, at half its cost.
  'gpt-4o-2024-05-13': { input: 5.0, cachedInput: 5.0, output: 15.0, maxOutputTokens: 4_096 },
  'gpt-4o-mini': { input: 0.15, cachedInput: 0.075, output: 0.6, maxOutputTokens: 16_384 },
  o3: { input: 2.0, cachedInput: 0.5, output: 8.0, maxOutputTokens: 100_000 },
  'o4-mini': { input: 1.1, cachedInput: 0.275, output: 4.4, maxOutputTokens: 100_000 },
  'gpt-5': { input: 1.25, cachedInput: 0.125, output: 10.0, maxOutputTokens: 128_000 },
  'gpt-5-mini': { input: 0.25, cachedInput: 0.025, output: 2.0, maxOutputTokens: 128_000 },
  'gpt-5-nano': { input: 0.05, cachedInput: 0.005, output: 0.4, maxOutputTokens: 128_000 },
  'text-embedding-3-small': { input: 0.02, cachedInput: 0.02, output: 0, maxOutputTokens: 0 },
  'text-embedding-3-large': { input: 0.13, cachedInput: 0.13, output: 0, maxOutputTokens: 0 },
};

/** The models the built-in table prices, in table order (the cost calculator compares among them). */
export const PRICED_MODELS: readonly string[] = Object.keys(TABLE);

/** For an override of a model the table does not know: the largest maximum in the table. */
const UNKNOWN_MAX_OUTPUT = 128_000;

// Only a date suffix maps a model to its base: a variant such as o3-pro or gpt-5-pro costs many
// times its base and must stay unpriced (the caller then refuses it under a budget) rather than
// be charged as the base.
const SNAPSHOT = /^(.+)-\d{4}-\d{2}-\d{2}$/;

function lookup(model: string, overrides: PriceOverrides | undefined): Price | undefined {
  const known = TABLE[model];
  const o = overrides?.[model];
  if (o) {
    return { input: o.input, cachedInput: o.cachedInput ?? o.input, output: o.output, maxOutputTokens: known?.maxOutputTokens ?? UNKNOWN_MAX_OUTPUT };
  }
  return known;
}

/** The exact id first (a route's override before the table), then a dated snapshot's base. */
export function priceFor(model: string, overrides?: PriceOverrides): Price | undefined {
  const exact = lookup(model, overrides);
  if (exact) return exact;
  const base = SNAPSHOT.exec(model)?.[1];
  return base === undefined ? undefined : lookup(base, overrides);
}

// Prices become integer pico-dollars per token (USD per 1M tokens x 1e6), exact for any price
// with up to six decimals and rounded up beyond that; sums are done in BigInt, then rounded up
// once to whole nano-dollars, so a charge is never below the true cost.
const PICO_PER_NANO = 1000n;

function picoPerToken(usdPerMillion: number): bigint {
  if (!(usdPerMillion > 0)) return 0n;
  // The epsilon absorbs float error in the product (0.00204 * 1e6 is 2040.0000000000002).
  return BigInt(Math.ceil(usdPerMillion * 1e6 - 1e-6));
}

const whole = (n: number): bigint => (Number.isFinite(n) && n > 0 ? BigInt(Math.ceil(n)) : 0n);

function toNano(pico: bigint, batch: boolean | undefined): NanoUSD {
  // Batch halves both input and output prices.
  const div = batch ? PICO_PER_NANO * 2n : PICO_PER_NANO;
  return Number((pico + div - 1n) / div);
}

/**
 * What a call cost: uncached input at the input price, cached input at the cached price, output
 * (which already includes reasoning tokens) at the output price; rounded up to a nano-dollar.
 */
export function costNano(usage: Usage, price: Price, opts?: { batch?: boolean }): NanoUSD {
  const input = whole(usage.input);
  let cached = whole(usage.cached);
  if (cached > input) cached = input;
  const pico = (input - cached) * picoPerToken(price.input) + cached * picoPerToken(price.cachedInput) + whole(usage.output) * picoPerToken(price.output);
  return toNano(pico, opts?.batch);
}

/** The most a call can cost: all input at the full input price (no cache hit assumed) plus the output. */
export function worstCaseNano(inputTokens: number, outputTokens: number, price: Price, opts?: { batch?: boolean }): NanoUSD {
  const pico = whole(inputTokens) * picoPerToken(price.input) + whole(outputTokens) * picoPerToken(price.output);
  return toNano(pico, opts?.batch);
}
