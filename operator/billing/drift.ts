// Billing reconciliation as pure arithmetic: OpenAI's bill for a project and the envelope's own
// estimate, day by day in UTC, and whether the difference is worth a warning. Amounts are added in
// integer nano-dollars and shown rounded to a micro-dollar, so a match never reads as 1e-12 drift.
import type { AIBudgetStatus } from '../../crds/schema.ts';
import type { EventSpec } from '../apply/events.ts';
import { usdToNano } from '../reconcile/money.ts';

export type Reconciliation = NonNullable<AIBudgetStatus['reconciliation']>;
export type DriftDay = NonNullable<Reconciliation['days']>[number];

/** Nano-USD by UTC date (`YYYY-MM-DD`). */
export type ByDay = ReadonlyMap<string, number>;

/** A day is reported as drift when both are passed: a share of the larger amount and a floor in USD. */
export interface Threshold {
  ratio: number;
  minUSD: number;
}

const DAY_MS = 86_400_000;

export const utcDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** Midnight UTC of `now`'s day, minus `back` days, in ms. */
export const dayStart = (now: number, back = 0): number => Math.floor(now / DAY_MS) * DAY_MS - back * DAY_MS;

/** The last `n` UTC dates up to `now`'s, newest first. */
export function lastDates(now: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => utcDate(dayStart(now, i)));
}

// `|| 0`: a rounded -0 would read as drift in JSON diffs and kubectl.
const micro = (nano: number) => Math.round(nano / 1000) / 1e6 || 0;

/**
 * One row per date: driftUSD = billed - estimated (positive: OpenAI billed more than the envelope
 * counted), driftRatio = drift / the larger of the two (0 when both are 0), so it lies in [-1, 1]
 * whichever side is missing.
 */
export function compareDays(dates: readonly string[], billed: ByDay, estimated: ByDay): DriftDay[] {
  return dates.map((date) => {
    const b = billed.get(date) ?? 0;
    const e = estimated.get(date) ?? 0;
    const drift = b - e;
    const base = Math.max(Math.abs(b), Math.abs(e));
    return { date, billedUSD: micro(b), estimatedUSD: micro(e), driftUSD: micro(drift), driftRatio: base === 0 ? 0 : Math.round((drift / base) * 1e4) / 1e4 || 0 };
  });
}

export function pastThreshold(d: DriftDay, t: Threshold): boolean {
  return Math.abs(d.driftRatio) >= t.ratio && usdToNano(Math.abs(d.driftUSD)) >= usdToNano(t.minUSD);
}

/** The day that says most about the drift: the largest absolute difference, the newest on a tie. */
export function worstDay(days: readonly DriftDay[]): DriftDay | undefined {
  let worst: DriftDay | undefined;
  for (const d of days) if (!worst || Math.abs(d.driftUSD) > Math.abs(worst.driftUSD)) worst = d;
  return worst;
}

export function reconciliationOf(projectId: string, days: DriftDay[], t: Threshold, checkedAt: number): Reconciliation {
  const over = days.filter((d) => pastThreshold(d, t));
  const at = new Date(checkedAt).toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (over.length === 0) {
    return { state: 'Ok', reason: 'WithinThreshold', message: `${days.length} day(s) compared with OpenAI's bill for ${projectId}, all within ${describe(t)}`, projectId, lastCheckedAt: at, days };
  }
  return { state: 'Drift', reason: 'DriftPastThreshold', message: `${over.map(dayText).join('; ')} (threshold ${describe(t)})`, projectId, lastCheckedAt: at, days };
}

const describe = (t: Threshold) => `${Math.round(t.ratio * 1000) / 10}% and ${t.minUSD} USD`;
const dayText = (d: DriftDay) => `${d.date}: OpenAI billed ${d.billedUSD} USD, the envelope counted ${d.estimatedUSD} USD (${d.driftUSD >= 0 ? '+' : ''}${d.driftUSD} USD, ${Math.round(d.driftRatio * 1000) / 10}%)`;

/**
 * Events for a new reconciliation against the one last written: a Warning for each day newly past
 * the threshold (so a day is warned about once, across restarts), a Normal one when drift is gone.
 */
export function driftEvents(before: Reconciliation | undefined, after: Reconciliation, t: Threshold): EventSpec[] {
  if (after.state !== 'Ok' && after.state !== 'Drift') return [];
  const warned = new Set((before?.days ?? []).filter((d) => pastThreshold(d, t)).map((d) => d.date));
  const warn = (after.days ?? []).filter((d) => pastThreshold(d, t) && !warned.has(d.date));
  if (warn.length > 0) return [{ type: 'Warning', reason: 'BillingDrift', message: `OpenAI's bill for ${after.projectId} differs from the envelope's spend: ${warn.map(dayText).join('; ')}` }];
  if (after.state === 'Ok' && before?.state === 'Drift') return [{ type: 'Normal', reason: 'BillingReconciled', message: `OpenAI's bill for ${after.projectId} agrees with the envelope's spend again` }];
  return [];
}
