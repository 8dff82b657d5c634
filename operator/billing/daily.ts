// The envelope's spend per UTC day, derived by the operator from successive readings of the spend
// ledger: what a budget's total grew by between two scrapes is put on the day of the later scrape.
// The sidecars count per period only and their hot path stays as it is; the price is that spend
// made just before midnight and read just after lands on the next day (at most one scrape
// interval's worth). Kept in the budget's status (`dailySpend`), so a restart or a new leader resumes.
import type { AIBudgetStatus } from '../../crds/schema.ts';
import { usdToNano } from '../reconcile/money.ts';
import { utcDate, type ByDay } from './drift.ts';

export type DayFigure = NonNullable<AIBudgetStatus['dailySpend']>[number];

/** Days kept per budget: a week of complete days plus today. */
export const KEEP_DAYS = 8;

export class DailySpend {
  /** Nano-USD by date, per budget id (`namespace/name`). */
  private readonly budgets = new Map<string, Map<string, number>>();

  private entry(id: string, status: Pick<AIBudgetStatus, 'dailySpend'> | undefined): Map<string, number> {
    let e = this.budgets.get(id);
    if (!e) {
      e = new Map();
      for (const d of status?.dailySpend ?? []) if (/^\d{4}-\d{2}-\d{2}$/.test(d.date) && d.spentUSD >= 0) e.set(d.date, usdToNano(d.spentUSD));
      this.budgets.set(id, e);
    }
    return e;
  }

  /**
   * One reading of a budget's total for its current period. `before` is the total at the previous
   * reading (of the same period, or undefined when the period changed in between: then the whole
   * new total is new). Today's day is recorded even at zero, so it counts as a day the envelope
   * watched. Returns whether anything changed.
   */
  observe(id: string, status: Pick<AIBudgetStatus, 'dailySpend'> | undefined, before: number | undefined, after: number, now: number): boolean {
    const e = this.entry(id, status);
    const today = utcDate(now);
    const grew = Math.max(0, after - (before ?? 0));
    const had = e.get(today);
    e.set(today, (had ?? 0) + grew);
    let changed = had === undefined || grew > 0;
    for (const date of [...e.keys()].sort().reverse().slice(KEEP_DAYS)) {
      e.delete(date);
      changed = true;
    }
    return changed;
  }

  /** Newest first, for the status; resumed from `status` when this budget was not seen yet. */
  figures(id: string, status: Pick<AIBudgetStatus, 'dailySpend'> | undefined): DayFigure[] {
    const e = this.entry(id, status);
    return [...e.keys()]
      .sort()
      .reverse()
      .slice(0, KEEP_DAYS)
      .map((date) => ({ date, spentUSD: (e.get(date) as number) / 1e9 }));
  }

  byDay(id: string, status: Pick<AIBudgetStatus, 'dailySpend'> | undefined): ByDay {
    this.entry(id, status);
    return this.budgets.get(id) as ByDay;
  }

  forgetExcept(ids: ReadonlySet<string>): void {
    for (const id of this.budgets.keys()) if (!ids.has(id)) this.budgets.delete(id);
  }
}
