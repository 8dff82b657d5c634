// Budget periods in UTC. The key names the period in counter keys, so a new period starts from
// zero without anyone resetting anything.
export type Period = 'daily' | 'weekly' | 'monthly';

export interface PeriodSpan {
  /** `2026-11-25` (daily), `2026-W-2026-11-23` (weekly: its Monday), `2026-11` (monthly). */
  key: string;
  start: number;
  end: number;
}

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);

// The span changes only at a period's boundary, and admission asks for it on every call for every
// budget: the last span of each kind is kept (frozen, as it is shared) while `now` stays inside it.
const last: Partial<Record<Period, Readonly<PeriodSpan>>> = {};

export function periodOf(period: Period, now: number): Readonly<PeriodSpan> {
  const hit = last[period];
  if (hit && now >= hit.start && now < hit.end) return hit;
  const span = Object.freeze(spanOf(period, now));
  last[period] = span;
  return span;
}

function spanOf(period: Period, now: number): PeriodSpan {
  const d = new Date(now);
  if (period === 'daily') {
    const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    return { key: iso(start), start, end: start + DAY };
  }
  if (period === 'weekly') {
    const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    const start = midnight - ((d.getUTCDay() + 6) % 7) * DAY;
    return { key: `${iso(start).slice(0, 4)}-W-${iso(start)}`, start, end: start + 7 * DAY };
  }
  const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const end = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return { key: iso(start).slice(0, 7), start, end };
}
