import { describe, expect, it } from 'vitest';
import { compareDays, driftEvents, lastDates, pastThreshold, reconciliationOf, utcDate, worstDay } from './drift.ts';
import { DailySpend, KEEP_DAYS } from './daily.ts';

const T = { ratio: 0.05, minUSD: 0.01 };
const nano = (usd: number) => Math.round(usd * 1e9);
const at = (iso: string) => Date.parse(iso);

describe('UTC days', () => {
  it('counts days in UTC, whatever the hour, newest first', () => {
    expect(utcDate(at('2026-12-06T23:59:59.999Z'))).toBe('2026-12-06');
    expect(utcDate(at('2026-12-07T00:00:00Z'))).toBe('2026-12-07');
    expect(lastDates(at('2026-03-01T05:00:00Z'), 3)).toEqual(['2026-03-01', '2026-02-28', '2026-02-27']);
  });
});

describe('compareDays', () => {
  it('puts billed minus estimated on each day, rounded to a micro-dollar, with a ratio over the larger amount', () => {
    const billed = new Map([['2026-12-06', nano(1.2)], ['2026-12-05', nano(0.3)]]);
    const estimated = new Map([['2026-12-06', nano(1)], ['2026-12-05', nano(0.3) + 1], ['2026-12-04', nano(0.5)]]);
    const days = compareDays(['2026-12-06', '2026-12-05', '2026-12-04', '2026-12-03'], billed, estimated);
    expect(days).toEqual([
      { date: '2026-12-06', billedUSD: 1.2, estimatedUSD: 1, driftUSD: 0.2, driftRatio: 0.1667 },
      // One nano-dollar apart: no drift worth a float's noise.
      { date: '2026-12-05', billedUSD: 0.3, estimatedUSD: 0.3, driftUSD: 0, driftRatio: 0 },
      // Counted by the envelope, missing from the bill: -100 %.
      { date: '2026-12-04', billedUSD: 0, estimatedUSD: 0.5, driftUSD: -0.5, driftRatio: -1 },
      { date: '2026-12-03', billedUSD: 0, estimatedUSD: 0, driftUSD: 0, driftRatio: 0 },
    ]);
    expect(worstDay(days)?.date).toBe('2026-12-04');
  });

  it('reports drift only past both the ratio and the USD floor', () => {
    const day = (billed: number, estimated: number) => compareDays(['d'], new Map([['d', nano(billed)]]), new Map([['d', nano(estimated)]]))[0]!;
    expect(pastThreshold(day(1.06, 1), T)).toBe(true);
    expect(pastThreshold(day(1.04, 1), T)).toBe(false);
    // A large share of a tiny amount is noise.
    expect(pastThreshold(day(0.004, 0.001), T)).toBe(false);
    expect(pastThreshold(day(0.9, 1), T)).toBe(true);
    // The ratio is over the larger amount: 0.01 of 1.01 is under 1 %.
    expect(pastThreshold(day(1.01, 1), { ratio: 0.01, minUSD: 0.01 })).toBe(false);
    expect(pastThreshold(day(1.02, 1), { ratio: 0.01, minUSD: 0.01 })).toBe(true);
  });
});

describe('reconciliation and its events', () => {
  const now = at('2026-12-06T12:00:00Z');
  const ok = reconciliationOf('proj_a', compareDays(['2026-12-06'], new Map([['2026-12-06', nano(1)]]), new Map([['2026-12-06', nano(1)]])), T, now);
  const drift = reconciliationOf('proj_a', compareDays(['2026-12-06', '2026-12-05'], new Map([['2026-12-06', nano(3)], ['2026-12-05', nano(1)]]), new Map([['2026-12-06', nano(1)], ['2026-12-05', nano(1)]])), T, now);

  it('says Ok or Drift with the days past the threshold in the message', () => {
    expect(ok).toMatchObject({ state: 'Ok', projectId: 'proj_a', lastCheckedAt: '2026-12-06T12:00:00Z' });
    expect(drift.state).toBe('Drift');
    expect(drift.message).toContain('2026-12-06: OpenAI billed 3 USD, the envelope counted 1 USD (+2 USD, 66.7%)');
    expect(drift.message).not.toContain('2026-12-05');
  });

  it('warns once per drifting day, and says when the drift is gone', () => {
    const [warn] = driftEvents(ok, drift, T);
    expect(warn).toMatchObject({ type: 'Warning', reason: 'BillingDrift' });
    expect(warn?.message).toContain('proj_a');
    expect(driftEvents(drift, drift, T)).toEqual([]);
    expect(driftEvents(undefined, ok, T)).toEqual([]);
    expect(driftEvents(drift, ok, T)).toEqual([expect.objectContaining({ type: 'Normal', reason: 'BillingReconciled' })]);
    expect(driftEvents(drift, { state: 'Error', reason: 'CostsUnavailable' }, T)).toEqual([]);
  });
});

describe('DailySpend', () => {
  it('puts what a total grew by on the day it was read, and a new period\'s total whole', () => {
    const d = new DailySpend();
    expect(d.observe('ns/b', undefined, 0, 0, at('2026-12-05T10:00:00Z'))).toBe(true);
    d.observe('ns/b', undefined, 0, nano(1), at('2026-12-05T23:00:00Z'));
    expect(d.observe('ns/b', undefined, nano(1), nano(1), at('2026-12-05T23:30:00Z'))).toBe(false);
    d.observe('ns/b', undefined, nano(1), nano(1.5), at('2026-12-06T00:00:10Z'));
    // A monthly budget's period rolled over: everything in the new total is new.
    d.observe('ns/b', undefined, undefined, nano(0.25), at('2026-12-06T01:00:00Z'));
    expect(d.figures('ns/b', undefined)).toEqual([{ date: '2026-12-06', spentUSD: 0.75 }, { date: '2026-12-05', spentUSD: 1 }]);
  });

  it('resumes from the status, and keeps only the last days', () => {
    const d = new DailySpend();
    const status = { dailySpend: [{ date: '2026-12-01', spentUSD: 2 }, { date: 'not a date', spentUSD: 1 }] };
    expect(d.figures('ns/b', status)).toEqual([{ date: '2026-12-01', spentUSD: 2 }]);
    for (let i = 2; i <= 12; i++) d.observe('ns/b', status, 0, nano(i), at(`2026-12-${String(i).padStart(2, '0')}T12:00:00Z`));
    const figures = d.figures('ns/b', status);
    expect(figures).toHaveLength(KEEP_DAYS);
    expect(figures[0]).toEqual({ date: '2026-12-12', spentUSD: 12 });
    expect(figures.at(-1)?.date).toBe('2026-12-05');
    d.forgetExcept(new Set());
    expect(d.figures('ns/b', undefined)).toEqual([]);
  });
});
