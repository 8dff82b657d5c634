import { describe, expect, it } from 'vitest';
import { parseUsage } from './scraper.ts';

describe('parseUsage', () => {
  it('keeps the budgets of the pod’s own namespace, in nano-USD', () => {
    const out = parseUsage(
      {
        state_backend: 'local',
        budgets: {
          'shop/monthly@2026-11': { period: '2026-11', spent_usd: 0.000123, reserved_usd: 0, refused: 2 },
          'other/monthly@2026-11': { period: '2026-11', spent_usd: 5 },
          'shop/broken@2026-11': { period: '2026-11', spent_usd: -1 },
        },
      },
      'shop',
    );
    expect(out.backend).toBe('local');
    expect([...out.budgets]).toEqual([['monthly', { period: '2026-11', spentNano: 123_000, refused: true }]]);
  });
  it('survives an answer of the wrong shape', () => {
    expect(parseUsage('nope', 'shop').budgets.size).toBe(0);
    expect(parseUsage(null, 'shop').budgets.size).toBe(0);
  });
});
