// The arithmetic of an estimate. Pure: a route's figures and a price in, dollars out. Every
// request is priced with the sidecar's own costNano (integer nano-dollars, rounded up per call as
// the sidecar books it), then multiplied by how many such requests a day brings.
import { costNano, priceFor, PRICED_MODELS, type Price, type PriceOverrides } from '../sidecar/policy/prices.ts';

export interface TokenPair {
  input: number;
  output: number;
}

/** One route with every figure known: the scenario's, filled in from logs, an eval or manifests. */
export interface RouteFigures {
  /** `namespace/name`. */
  id: string;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  model: string;
  requestsPerDay: number;
  typical: TokenPair;
  worst: TokenPair;
  cachedShare: number;
  retryRate: number;
  streamingShare: number;
  batchShare: number;
  batchableShare: number;
  users?: number;
  /** Models to price the same traffic on; empty: the cheaper ones of the model's family. */
  compare: string[];
  prices: PriceOverrides;
  /** Which figures were measured, and where: `tokens from logs`, say. */
  sources: string[];
}

/** What one request of each kind costs, in nano-dollars. */
export interface PerRequest {
  /** A real-time request that succeeded on its first attempt. */
  standard: number;
  /** The same request through the Batch API. */
  batch: number;
  /** A failed attempt that reached the model: its input, billed, no output. */
  retry: number;
}

/**
 * Per-request prices for a token pair. Cached tokens are the cached share of the input, rounded
 * to whole tokens; the worst case assumes no cache hit.
 */
export function perRequest(tokens: TokenPair, cachedShare: number, price: Price): PerRequest {
  const cached = Math.round(tokens.input * cachedShare);
  const usage = { input: tokens.input, output: tokens.output, cached, reasoning: 0 };
  return {
    standard: costNano(usage, price),
    batch: costNano(usage, price, { batch: true }),
    retry: costNano({ ...usage, output: 0 }, price),
  };
}

/**
 * Nano-dollars a day: the real-time share pays each request plus `retryRate` failed attempts
 * (the sidecar retries; the Batch API's own retries are not billed to the caller), the batch
 * share pays the batch price.
 */
export function dailyNano(requestsPerDay: number, p: PerRequest, retryRate: number, batchShare: number): number {
  return requestsPerDay * ((1 - batchShare) * (p.standard + retryRate * p.retry) + batchShare * p.batch);
}

export interface Saving {
  kind: 'model' | 'batch';
  /** The other model, for kind model. */
  model?: string;
  /** The share of requests that would go through the Batch API, for kind batch. */
  batchShare?: number;
  monthlyUSD: number;
  /** Positive: cheaper by this much a month. */
  savingUSD: number;
}

/** The figures it was priced from, then what they cost. */
export interface RouteEstimate extends Pick<RouteFigures, 'id' | 'name' | 'model' | 'requestsPerDay' | 'typical' | 'worst' | 'cachedShare' | 'retryRate' | 'streamingShare' | 'batchShare' | 'batchableShare'> {
  perRequestNano: { typical: PerRequest; worst: PerRequest };
  dailyUSD: number;
  worstDailyUSD: number;
  monthlyUSD: number;
  worstMonthlyUSD: number;
  savings: Saving[];
  sources: string[];
}

export interface Estimate {
  days: number;
  pricesAsOf: string;
  routes: RouteEstimate[];
  monthlyUSD: number;
  worstMonthlyUSD: number;
}

export class PriceError extends Error {}

const usd = (nano: number) => nano / 1e9;

function priced(model: string, overrides: PriceOverrides, where: string): Price {
  const price = priceFor(model, overrides);
  if (!price) throw new PriceError(`${where}: no price for model '${model}' in the built-in table; add it under prices (USD per 1M tokens: input, cachedInput, output)`);
  return price;
}

function typicalDaily(r: RouteFigures, price: Price, batchShare: number): number {
  return usd(dailyNano(r.requestsPerDay, perRequest(r.typical, r.cachedShare, price), r.retryRate, batchShare));
}

// gpt-4.1-mini and gpt-4.1-nano are of gpt-4.1's family; o3 and o4-mini of none but their own.
const family = (model: string) => model.replace(/-\d{4}-\d{2}-\d{2}$/, '').replace(/-(mini|nano)$/, '');

/** The models named in `compare`, else the priced models of the same family that cost less for this traffic. */
export function comparisonModels(r: RouteFigures, days: number): string[] {
  if (r.compare.length > 0) return r.compare.filter((m) => m !== r.model);
  const own = priced(r.model, r.prices, r.id);
  const current = typicalDaily(r, own, r.batchShare) * days;
  const candidates = [...new Set([...PRICED_MODELS, ...Object.keys(r.prices)])].filter((m) => m !== r.model && family(m) === family(r.model));
  return candidates.filter((m) => typicalDaily(r, priced(m, r.prices, r.id), r.batchShare) * days < current);
}

/** One route over a month of `days` days: typical, worst case, and what cheaper choices would save. */
export function estimateRoute(r: RouteFigures, days: number): RouteEstimate {
  const price = priced(r.model, r.prices, r.id);
  const typical = perRequest(r.typical, r.cachedShare, price);
  // Worst case: the worst token figures, not one cache hit, and the retries still there.
  const worst = perRequest(r.worst, 0, price);
  const dailyUSD = usd(dailyNano(r.requestsPerDay, typical, r.retryRate, r.batchShare));
  const worstDailyUSD = usd(dailyNano(r.requestsPerDay, worst, r.retryRate, r.batchShare));
  const monthlyUSD = dailyUSD * days;
  const savings: Saving[] = [];
  for (const model of comparisonModels(r, days)) {
    const m = typicalDaily(r, priced(model, r.prices, `${r.id}: compare`), r.batchShare) * days;
    savings.push({ kind: 'model', model, monthlyUSD: m, savingUSD: monthlyUSD - m });
  }
  if (r.batchableShare > r.batchShare) {
    const m = typicalDaily(r, price, r.batchableShare) * days;
    savings.push({ kind: 'batch', batchShare: r.batchableShare, monthlyUSD: m, savingUSD: monthlyUSD - m });
  }
  return {
    id: r.id,
    name: r.name,
    model: r.model,
    requestsPerDay: r.requestsPerDay,
    typical: r.typical,
    worst: r.worst,
    cachedShare: r.cachedShare,
    retryRate: r.retryRate,
    streamingShare: r.streamingShare,
    batchShare: r.batchShare,
    batchableShare: r.batchableShare,
    perRequestNano: { typical, worst },
    dailyUSD,
    worstDailyUSD,
    monthlyUSD,
    worstMonthlyUSD: worstDailyUSD * days,
    savings,
    sources: r.sources,
  };
}

export function estimate(routes: RouteFigures[], days: number, pricesAsOf: string): Estimate {
  const estimates = routes.map((r) => estimateRoute(r, days));
  return {
    days,
    pricesAsOf,
    routes: estimates,
    monthlyUSD: estimates.reduce((s, r) => s + r.monthlyUSD, 0),
    worstMonthlyUSD: estimates.reduce((s, r) => s + r.worstMonthlyUSD, 0),
  };
}
