// The calculator's arithmetic against cases worked by hand (prices in USD per 1M tokens, from the
// built-in table: gpt-4.1-mini 0.40 / 0.10 cached / 1.60 out, gpt-4.1-nano a quarter of that).
import { describe, expect, it } from 'vitest';
import { dailyNano, estimate, estimateRoute, perRequest, PriceError, type RouteFigures } from './estimate.ts';
import { priceFor } from '../sidecar/policy/prices.ts';

function route(over: Partial<RouteFigures> = {}): RouteFigures {
  return {
    id: 'shop/triage',
    name: 'triage',
    namespace: 'shop',
    labels: {},
    model: 'gpt-4.1-mini',
    requestsPerDay: 1000,
    typical: { input: 2000, output: 500 },
    worst: { input: 8000, output: 2000 },
    cachedShare: 0.25,
    retryRate: 0.1,
    streamingShare: 0,
    batchShare: 0.2,
    batchableShare: 0.5,
    compare: [],
    prices: {},
    sources: [],
    ...over,
  };
}

describe('per request', () => {
  it('prices cached input, output, batch and a failed attempt', () => {
    // 2000 input, 25% cached = 500 cached + 1500 uncached, 500 output, on gpt-4.1-mini:
    //   standard = 1500×0.40 + 500×0.10 + 500×1.60 = 600 + 50 + 800 = 1450 µ$ = 1,450,000 n$
    //   batch    = half                                                         =   725,000 n$
    //   retry    = the input alone: 600 + 50 = 650 µ$                           =   650,000 n$
    expect(perRequest({ input: 2000, output: 500 }, 0.25, priceFor('gpt-4.1-mini')!)).toEqual({ standard: 1_450_000, batch: 725_000, retry: 650_000 });
  });

  it('rounds each request up to a nano-dollar, as the sidecar books it', () => {
    // 3 input tokens, all cached, on gpt-4.1-nano: $0.025 per 1M = 25,000 p$ a token;
    // 3 × 25,000 p$ = 75 n$; through batch 37.5 n$, charged 38.
    const p = perRequest({ input: 3, output: 0 }, 1, priceFor('gpt-4.1-nano')!);
    expect(p.standard).toBe(75);
    expect(p.batch).toBe(38);
  });

  it('adds the retries to the real-time share only', () => {
    // 1000 a day × (0.8 × (1,450,000 + 0.1 × 650,000) + 0.2 × 725,000)
    //   = 1000 × (0.8 × 1,515,000 + 145,000) = 1000 × 1,357,000 = 1,357,000,000 n$ = $1.357
    expect(dailyNano(1000, { standard: 1_450_000, batch: 725_000, retry: 650_000 }, 0.1, 0.2)).toBe(1_357_000_000);
  });
});

describe('a route over a month', () => {
  it('typical, worst case and savings, worked by hand', () => {
    const e = estimateRoute(route(), 30);
    // Typical: $1.357 a day (above) × 30 = $40.71.
    expect(e.dailyUSD).toBeCloseTo(1.357, 9);
    expect(e.monthlyUSD).toBeCloseTo(40.71, 9);
    // Worst: 8000 in, 2000 out, no cache: 8000×0.40 + 2000×1.60 = 3200 + 3200 = 6400 µ$; batch 3200 µ$;
    // retry 3200 µ$. A day: 1000 × (0.8 × (6400 + 320) + 0.2 × 3200) µ$ = 1000 × 6016 µ$ = $6.016;
    // a month $180.48.
    expect(e.perRequestNano.worst).toEqual({ standard: 6_400_000, batch: 3_200_000, retry: 3_200_000 });
    expect(e.worstMonthlyUSD).toBeCloseTo(180.48, 9);
    // Default comparison: the cheaper models of gpt-4.1's family, so gpt-4.1-nano and not gpt-4.1.
    // Its prices are a quarter of mini's: $40.71 / 4 = $10.1775 a month, saving $30.5325.
    // Batchable 50% instead of 20%: 1000 × (0.5 × 1,515,000 + 0.5 × 725,000) n$ = $1.12 a day, $33.60
    // a month, saving $7.11.
    expect(e.savings).toHaveLength(2);
    expect(e.savings[0]).toMatchObject({ kind: 'model', model: 'gpt-4.1-nano' });
    expect(e.savings[0]!.monthlyUSD).toBeCloseTo(10.1775, 9);
    expect(e.savings[0]!.savingUSD).toBeCloseTo(30.5325, 9);
    expect(e.savings[1]).toMatchObject({ kind: 'batch', batchShare: 0.5 });
    expect(e.savings[1]!.monthlyUSD).toBeCloseTo(33.6, 9);
    expect(e.savings[1]!.savingUSD).toBeCloseTo(7.11, 9);
  });

  it('prices named comparisons even when they cost more, and honours price overrides', () => {
    // gpt-4.1 is 5× mini: $40.71 × 5 = $203.55, i.e. $162.84 more. An override makes mini cost
    // 0.80 / 0.20 / 3.20 (double): $81.42.
    const e = estimateRoute(route({ compare: ['gpt-4.1'], batchableShare: 0.2, prices: { 'gpt-4.1-mini': { input: 0.8, cachedInput: 0.2, output: 3.2 } } }), 30);
    expect(e.monthlyUSD).toBeCloseTo(81.42, 9);
    expect(e.savings).toHaveLength(1);
    expect(e.savings[0]!.monthlyUSD).toBeCloseTo(203.55, 9);
    expect(e.savings[0]!.savingUSD).toBeCloseTo(81.42 - 203.55, 9);
  });

  it('totals the routes over the given month', () => {
    // Embeddings: 300 input tokens at 0.02 = 6 µ$; 50,000 a day, half batch: 50,000 × (0.5×6 + 0.5×3) µ$ = $0.225 a day;
    // 7 days: $1.575. With the route above, 7 × $1.357 = $9.499. Total $11.074.
    const emb = route({ id: 'shop/emb', model: 'text-embedding-3-small', requestsPerDay: 50_000, typical: { input: 300, output: 0 }, worst: { input: 300, output: 0 }, cachedShare: 0, retryRate: 0, batchShare: 0.5, batchableShare: 0.5 });
    const total = estimate([route(), emb], 7, '2026-11');
    expect(total.routes[1]!.monthlyUSD).toBeCloseTo(1.575, 9);
    expect(total.monthlyUSD).toBeCloseTo(11.074, 9);
    expect(total.pricesAsOf).toBe('2026-11');
  });

  it('refuses a model with no price, saying where and what to add', () => {
    expect(() => estimateRoute(route({ model: 'o3-pro' }), 30)).toThrow(PriceError);
    expect(() => estimateRoute(route({ model: 'o3-pro' }), 30)).toThrow(/shop\/triage: no price for model 'o3-pro'.*add it under prices/);
  });
});
