// Budgets against an estimate: which hold, and the day of the period on which one runs out.
import { describe, expect, it } from 'vitest';
import { AIBudget } from '../crds/schema.ts';
import { anyRunsOut, checkBudget, outcome } from './budget.ts';
import { estimate, type RouteFigures } from './estimate.ts';

describe('run-out day', () => {
  it('holds while the period spend fits, also exactly at the limit', () => {
    // $10 a day for 30 days = $300 against $300: every call of the period is paid.
    expect(outcome(10, 300, 30)).toEqual({ periodUSD: 300, share: 1, holds: true });
  });
  it('names the first day whose calls are refused', () => {
    // $20 a day against $500: spent after 25 whole days, so calls are refused from day 26.
    expect(outcome(20, 500, 30)).toMatchObject({ holds: false, afterDays: 25, runsOutOnDay: 26, periodUSD: 600 });
    // $30 a day: $500 reached after 16.67 days, during day 17.
    const o = outcome(30, 500, 30);
    expect(o.runsOutOnDay).toBe(17);
    expect(o.afterDays).toBeCloseTo(16.667, 3);
    // A daily budget of $5 at $8 a day runs out within its one day, after 0.625 days (15:00 UTC).
    expect(outcome(8, 5, 1)).toMatchObject({ holds: false, runsOutOnDay: 1, afterDays: 0.625 });
  });
});

function route(name: string, over: Partial<RouteFigures> = {}): RouteFigures {
  // gpt-4.1-mini, 1000 input (no cache) and 250 output: 1000×0.40 + 250×1.60 = 800 µ$ a request.
  return {
    id: `shop/${name}`,
    name,
    namespace: 'shop',
    labels: { team: 'support' },
    model: 'gpt-4.1-mini',
    requestsPerDay: 1000,
    typical: { input: 1000, output: 250 },
    worst: { input: 4000, output: 1000 },
    cachedShare: 0,
    retryRate: 0,
    streamingShare: 0,
    batchShare: 0,
    batchableShare: 0,
    compare: [],
    prices: {},
    sources: [],
    ...over,
  };
}

const budget = (spec: Record<string, unknown>, namespace = 'shop') => AIBudget.parse({ apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIBudget', metadata: { name: 'b', namespace }, spec });

describe('checkBudget', () => {
  // Two support routes at 1000 × 800 µ$ = $0.80 a day each; worst 4000×0.40 + 1000×1.60 = 3200 µ$, $3.20 a day.
  // A route of another team and one of another namespace are not the budget's.
  const routes = [route('a', { users: 100 }), route('b', { users: 100 }), route('c', { labels: { team: 'search' } }), { ...route('d'), id: 'other/d', namespace: 'other' }];
  const est = estimate(routes, 30, '2026-11').routes;

  it('covers the routes of its namespace that its selector matches', () => {
    const c = checkBudget(budget({ routeSelector: { matchLabels: { team: 'support' } }, limitUSD: 50, period: 'monthly' }), routes, est, 30);
    expect(c.routes).toEqual(['shop/a', 'shop/b']);
    // $1.60 a day × 30 = $48 of $50: holds. Worst $6.40 a day: $50 reached after 7.8 days, day 8.
    expect(c.typical.holds).toBe(true);
    expect(c.typical.periodUSD).toBeCloseTo(48, 9);
    expect(c.worst).toMatchObject({ holds: false, runsOutOnDay: 8 });
    expect(anyRunsOut([c])).toBe(false);
  });

  it('a weekly period is seven days, whatever the month', () => {
    // No selector: a, b and c, $2.40 a day; 7 days = $16.80 against $10: after 4.17 days, day 5.
    const c = checkBudget(budget({ limitUSD: 10, period: 'weekly' }), routes, est, 30);
    expect(c.routes).toEqual(['shop/a', 'shop/b', 'shop/c']);
    expect(c.periodDays).toBe(7);
    expect(c.typical).toMatchObject({ holds: false, runsOutOnDay: 5 });
    expect(c.typical.periodUSD).toBeCloseTo(16.8, 9);
    expect(anyRunsOut([c])).toBe(true);
  });

  it('per user: each route spread over its users', () => {
    // a and b: $0.80 a day over 100 users each, $0.016 a day per user; 30 days = $0.48 against $0.40:
    // after 25 days, so day 26.
    const c = checkBudget(budget({ routeSelector: { matchLabels: { team: 'support' } }, limitUSD: 100, perUserLimitUSD: 0.4 }), routes, est, 30);
    expect(c.typical.holds).toBe(true);
    expect(c.perUser).toMatchObject({ users: 100, typical: { holds: false, runsOutOnDay: 26 } });
    expect(anyRunsOut([c])).toBe(true);
  });

  it('says when it cannot check per user', () => {
    const c = checkBudget(budget({ limitUSD: 100, perUserLimitUSD: 1 }), routes, est, 30);
    expect(c.perUser).toEqual({ limitUSD: 1, note: 'not checked: no user count for shop/c (users in the scenario)' });
  });
});
