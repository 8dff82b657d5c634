// An estimate against AIBudgets: does each budget hold over its period, and if not, on which day
// does it run out. Pure. Spend is taken as even over the day and the period; the budget covers
// the scenario routes of its namespace that its routeSelector matches, as render.ts decides.
import type { AIBudget } from '../crds/schema.ts';
import { matchesSelector } from '../crds/selector.ts';
import type { RouteEstimate, RouteFigures } from './estimate.ts';

export interface Outcome {
  /** Spend over one whole period. */
  periodUSD: number;
  /** periodUSD / limit. */
  share: number;
  holds: boolean;
  /** When it does not hold: the day of the period (1-based) whose calls are the first refused. */
  runsOutOnDay?: number;
  /** When it does not hold: days into the period at which spend reaches the limit. */
  afterDays?: number;
}

export interface BudgetCheck {
  budget: string;
  period: 'daily' | 'weekly' | 'monthly';
  periodDays: number;
  limitUSD: number;
  onExhausted: string;
  routes: string[];
  typical: Outcome;
  worst: Outcome;
  perUser?: { limitUSD: number; users: number; typical: Outcome; worst: Outcome } | { limitUSD: number; note: string };
}

/** Days in a budget period; a monthly budget's month is the estimate's month. */
export function periodDays(period: 'daily' | 'weekly' | 'monthly', monthDays: number): number {
  return period === 'daily' ? 1 : period === 'weekly' ? 7 : monthDays;
}

/**
 * A period's spend at `dailyUSD` a day against `limitUSD`. It holds when the whole period's spend
 * fits (spend equal to the limit still pays every call). Otherwise spend reaches the limit after
 * limit/daily days, and the first calls refused are on the day after the last whole day it paid.
 */
export function outcome(dailyUSD: number, limitUSD: number, days: number): Outcome {
  const periodUSD = dailyUSD * days;
  const share = periodUSD / limitUSD;
  if (periodUSD <= limitUSD) return { periodUSD, share, holds: true };
  const afterDays = limitUSD / dailyUSD;
  return { periodUSD, share, holds: false, runsOutOnDay: Math.floor(afterDays) + 1, afterDays };
}

export function checkBudget(budget: AIBudget, routes: RouteFigures[], estimates: RouteEstimate[], monthDays: number): BudgetCheck {
  const spec = budget.spec;
  const covered = routes.filter((r) => r.namespace === budget.metadata.namespace && matchesSelector(spec.routeSelector, r.labels));
  const est = (r: RouteFigures) => estimates.find((e) => e.id === r.id)!;
  const days = periodDays(spec.period, monthDays);
  const daily = covered.reduce((s, r) => s + est(r).dailyUSD, 0);
  const worstDaily = covered.reduce((s, r) => s + est(r).worstDailyUSD, 0);
  const check: BudgetCheck = {
    budget: `${budget.metadata.namespace}/${budget.metadata.name}`,
    period: spec.period,
    periodDays: days,
    limitUSD: spec.limitUSD,
    onExhausted: spec.onExhausted,
    routes: covered.map((r) => r.id),
    typical: outcome(daily, spec.limitUSD, days),
    worst: outcome(worstDaily, spec.limitUSD, days),
  };
  if (spec.perUserLimitUSD !== undefined && covered.length > 0) {
    const unknown = covered.filter((r) => r.users === undefined).map((r) => r.id);
    if (unknown.length > 0) {
      check.perUser = { limitUSD: spec.perUserLimitUSD, note: `not checked: no user count for ${unknown.join(', ')} (users in the scenario)` };
    } else {
      // Each route's traffic spread evenly over its users; a user of every covered route pays a share of each.
      const perUser = covered.reduce((s, r) => s + est(r).dailyUSD / r.users!, 0);
      const perUserWorst = covered.reduce((s, r) => s + est(r).worstDailyUSD / r.users!, 0);
      check.perUser = {
        limitUSD: spec.perUserLimitUSD,
        users: Math.min(...covered.map((r) => r.users!)),
        typical: outcome(perUser, spec.perUserLimitUSD, days),
        worst: outcome(perUserWorst, spec.perUserLimitUSD, days),
      };
    }
  }
  return check;
}

/** True when the typical estimate runs out some budget or some user's budget (the exit code). */
export function anyRunsOut(checks: BudgetCheck[]): boolean {
  return checks.some((c) => !c.typical.holds || (c.perUser !== undefined && 'typical' in c.perUser && !c.perUser.typical.holds));
}
