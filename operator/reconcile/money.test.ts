import { describe, expect, it } from 'vitest';
import { formatUSD, parseUSD } from './money.ts';

describe('formatUSD / parseUSD', () => {
  it.each([
    [0, '0.00'],
    [123_450_000_000, '123.45'],
    [500_000_000, '0.50'],
    [123_456, '0.000123456'],
    [1_000_000_001, '1.000000001'],
  ])('%d nano-USD ⇄ %s', (nano, text) => {
    expect(formatUSD(nano)).toBe(text);
    expect(parseUSD(text)).toBe(nano);
  });
  it('refuses what it did not write', () => {
    expect(parseUSD('-1')).toBeUndefined();
    expect(parseUSD('1e3')).toBeUndefined();
    expect(parseUSD(undefined)).toBeUndefined();
  });
});
