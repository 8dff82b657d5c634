import { describe, expect, it } from 'vitest';
import { costNano, PRICES_AS_OF, priceFor, worstCaseNano, type Price } from './prices.ts';

const usage = (input: number, output: number, cached = 0, reasoning = 0) => ({ input, output, cached, reasoning });

describe('priceFor', () => {
  it('knows the table, dated', () => {
    expect(PRICES_AS_OF).toMatch(/^\d{4}-(0[1-9]|1[0-2])$/);
    expect(priceFor('gpt-4.1-mini')).toEqual({ input: 0.4, cachedInput: 0.1, output: 1.6, maxOutputTokens: 32_768 });
    expect(priceFor('o4-mini')).toEqual({ input: 1.1, cachedInput: 0.275, output: 4.4, maxOutputTokens: 100_000 });
    expect(priceFor('gpt-5-nano')).toEqual({ input: 0.05, cachedInput: 0.005, output: 0.4, maxOutputTokens: 128_000 });
    expect(priceFor('text-embedding-3-small')).toEqual({ input: 0.02, cachedInput: 0.02, output: 0, maxOutputTokens: 0 });
  });

  it('maps a dated snapshot to its own base, never a shorter one', () => {
    expect(priceFor('gpt-4.1-mini-2025-04-14')).toEqual(priceFor('gpt-4.1-mini'));
    expect(priceFor('gpt-4.1-mini-2025-04-14')).not.toEqual(priceFor('gpt-4.1'));
    expect(priceFor('gpt-4.1-2025-04-14')).toEqual(priceFor('gpt-4.1'));
    expect(priceFor('gpt-5-nano-2025-08-07')).toEqual(priceFor('gpt-5-nano'));
    expect(priceFor('gpt-4o-mini-2024-07-18')).toEqual(priceFor('gpt-4o-mini'));
  });

  it('keeps the first gpt-4o snapshot at its own, higher price', () => {
    expect(priceFor('gpt-4o-2024-05-13')?.input).toBe(5);
    expect(priceFor('gpt-4o-2024-08-06')).toEqual(priceFor('gpt-4o'));
  });

  it('leaves variants and unknown models unpriced rather than pricing them as a cheaper base', () => {
    for (const m of ['o3-pro', 'gpt-5-pro', 'gpt-5-pro-2025-10-06', 'gpt-4o-realtime-preview', 'gpt-9', 'gpt-4.1-mini-latest', '']) {
      expect([m, priceFor(m)]).toEqual([m, undefined]);
    }
  });

  it('prefers a route override to the table, for the exact id and for snapshots of it', () => {
    const overrides = { 'gpt-4.1': { input: 3, cachedInput: 1, output: 12 } };
    expect(priceFor('gpt-4.1', overrides)).toEqual({ input: 3, cachedInput: 1, output: 12, maxOutputTokens: 32_768 });
    expect(priceFor('gpt-4.1-2025-04-14', overrides)).toEqual(priceFor('gpt-4.1', overrides));
    // Other models are untouched.
    expect(priceFor('gpt-4.1-mini', overrides)).toEqual(priceFor('gpt-4.1-mini'));
    // An override of the dated id itself wins over the base's.
    const both = { ...overrides, 'gpt-4.1-2025-04-14': { input: 9, output: 9 } };
    expect(priceFor('gpt-4.1-2025-04-14', both)?.input).toBe(9);
  });

  it('prices a model only the override knows; cached input defaults to the input price', () => {
    const p = priceFor('acme-llm-2', { 'acme-llm-2': { input: 0.7, output: 2.1 } });
    expect(p).toEqual({ input: 0.7, cachedInput: 0.7, output: 2.1, maxOutputTokens: 128_000 });
    expect(priceFor('gpt-4o', { 'gpt-4o': { input: 2, output: 8 } })?.cachedInput).toBe(2);
  });
});

describe('costNano', () => {
  const gpt41 = priceFor('gpt-4.1') as Price;

  it('bills uncached input, cached input and output at their own prices', () => {
    // (600 x $2 + 400 x $0.50 + 500 x $8) per 1M tokens = $0.0054
    expect(costNano(usage(1000, 500, 400), gpt41)).toBe(5_400_000);
    expect(costNano(usage(1000, 500), gpt41)).toBe(6_000_000);
  });

  it('never bills reasoning twice: it is already part of the output', () => {
    expect(costNano(usage(1000, 500, 400, 300), gpt41)).toBe(costNano(usage(1000, 500, 400, 0), gpt41));
  });

  it('halves input and output for batch', () => {
    expect(costNano(usage(1000, 500, 400), gpt41, { batch: true })).toBe(2_700_000);
  });

  it('rounds up to a whole nano-dollar, and only when there is a fraction', () => {
    const nano41 = priceFor('gpt-4.1-nano') as Price;
    expect(costNano(usage(1, 0, 1), nano41)).toBe(25); // $0.025 per 1M
    expect(costNano(usage(1, 0, 1), nano41, { batch: true })).toBe(13); // 12.5
    const tiny = priceFor('x', { x: { input: 0.0000001, output: 0 } }) as Price;
    expect(costNano(usage(1, 0), tiny)).toBe(1);
    // No float residue turns an exact cost into more (0.00204 x 1e6 is 2040.0000000000002 in floats).
    const odd = priceFor('x', { x: { input: 0.00204, output: 0 } }) as Price;
    expect(costNano(usage(1000, 0), odd)).toBe(2040);
    expect(costNano(usage(1000, 0, 1000), priceFor('o4-mini') as Price)).toBe(275_000);
    expect(costNano(usage(3, 7), priceFor('gpt-5-mini') as Price)).toBe(3 * 250 + 7 * 2000);
  });

  it('is exact for large counts', () => {
    expect(costNano(usage(1_000_000_000, 0), priceFor('gpt-4o') as Price)).toBe(2_500 * 1e9);
    expect(costNano(usage(123_456_789, 98_765_432, 11_111_111), gpt41)).toBe((123_456_789 - 11_111_111) * 2000 + 11_111_111 * 500 + 98_765_432 * 8000);
  });

  it('treats a cached count above the input as all of the input cached', () => {
    expect(costNano(usage(100, 0, 500), gpt41)).toBe(100 * 500);
  });

  it('costs nothing for no tokens, and embeddings only their input', () => {
    expect(costNano(usage(0, 0), gpt41)).toBe(0);
    expect(costNano(usage(1000, 0), priceFor('text-embedding-3-large') as Price)).toBe(130_000);
  });
});

describe('worstCaseNano', () => {
  const gpt5 = priceFor('gpt-5') as Price;

  it('charges all input at the full price and the whole output allowance', () => {
    expect(worstCaseNano(2000, 1000, gpt5)).toBe(2000 * 1250 + 1000 * 10_000);
    expect(worstCaseNano(2000, gpt5.maxOutputTokens, gpt5)).toBe(2000 * 1250 + 128_000 * 10_000);
  });

  it('is never below the real cost of a call within those bounds', () => {
    const price = priceFor('o4-mini') as Price;
    const worst = worstCaseNano(1500, 800, price);
    for (const u of [usage(1500, 800), usage(1500, 800, 1024, 500), usage(10, 1), usage(1500, 0)]) {
      expect(costNano(u, price)).toBeLessThanOrEqual(worst);
    }
    expect(costNano(usage(1500, 800), price)).toBe(worst);
  });

  it('halves for batch and rounds up', () => {
    expect(worstCaseNano(2000, 1000, gpt5, { batch: true })).toBe((2000 * 1250 + 1000 * 10_000) / 2);
    expect(worstCaseNano(1, 0, priceFor('gpt-5-nano') as Price, { batch: true })).toBe(25);
    expect(worstCaseNano(1, 1, priceFor('gpt-4.1-nano') as Price, { batch: true })).toBe(250);
    expect(worstCaseNano(1, 0, priceFor('x', { x: { input: 0.0015, output: 0 } }) as Price, { batch: true })).toBe(1);
  });
});
