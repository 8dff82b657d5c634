// The estimate as a terminal report: a table per route and in total, then savings, budgets and
// where each measured figure came from. `--format json` prints the same objects instead.
import type { BudgetCheck, Outcome } from './budget.ts';
import type { Estimate } from './estimate.ts';
import type { LogSummary } from './measured.ts';

export interface Report {
  scenario: string;
  estimate: Estimate;
  budgets: BudgetCheck[];
  logs?: Omit<LogSummary, 'groups'>;
  notes: string[];
}

/** Dollars: cents from a dollar up, two significant digits below a cent. */
export function usd(n: number): string {
  if (n === 0) return '$0.00';
  const abs = Math.abs(n);
  const text = abs >= 0.01 ? abs.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : abs.toPrecision(2);
  return `${n < 0 ? '-' : ''}$${text}`;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (n: number) => `${Math.round(n * 1000) / 10}%`;

function table(rows: string[][], rightAligned: Set<number>): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (rightAligned.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd()).join('\n');
}

function describe(o: Outcome, days: number): string {
  const used = `${usd(o.periodUSD)} (${pct(o.share)} of the limit)`;
  if (o.holds) return `holds, ${used}`;
  return `runs out on day ${o.runsOutOnDay} of ${days} (after ${o.afterDays!.toFixed(1)} days), ${used}`;
}

export function formatReport(r: Report): string {
  const e = r.estimate;
  const out: string[] = [];
  out.push(`Cost estimate for ${r.scenario}: a month of ${e.days} days, prices from the built-in table as of ${e.pricesAsOf} (USD per 1M tokens) and any overrides`);
  out.push('');
  const rows = [['route', 'model', 'req/day', 'in', 'out', 'cached', 'retry', 'batch', 'per month', 'worst in', 'worst out', 'worst case']];
  for (const x of e.routes) {
    rows.push([x.id, x.model, int(x.requestsPerDay), int(x.typical.input), int(x.typical.output), pct(x.cachedShare), pct(x.retryRate), pct(x.batchShare), usd(x.monthlyUSD), int(x.worst.input), int(x.worst.output), usd(x.worstMonthlyUSD)]);
  }
  rows.push(['total', '', int(e.routes.reduce((s, x) => s + x.requestsPerDay, 0)), '', '', '', '', '', usd(e.monthlyUSD), '', '', usd(e.worstMonthlyUSD)]);
  out.push(table(rows, new Set([2, 3, 4, 5, 6, 7, 8, 9, 10, 11])));
  out.push('');
  out.push('in/out: typical input and output tokens per request; worst case: worst tokens, no cache hits, retries as given.');

  const savings = e.routes.flatMap((x) =>
    x.savings.map((s) => {
      const what = s.kind === 'model' ? `on ${s.model}` : `with ${pct(s.batchShare!)} through the Batch API (now ${pct(x.batchShare)})`;
      const how = s.savingUSD >= 0 ? `saves ${usd(s.savingUSD)} a month (${pct(s.savingUSD / x.monthlyUSD)})` : `costs ${usd(-s.savingUSD)} more a month`;
      return `  ${x.id} ${what}: ${usd(s.monthlyUSD)}, ${how}`;
    }),
  );
  if (savings.length > 0) out.push('', 'Cheaper choices:', ...savings);

  if (r.budgets.length > 0) {
    out.push('', 'Budgets (typical, then worst case):');
    for (const b of r.budgets) {
      if (b.routes.length === 0) {
        out.push(`  ${b.budget} (${b.period}, ${usd(b.limitUSD)}): covers none of the scenario's routes`);
        continue;
      }
      out.push(`  ${b.budget} (${b.period}, ${usd(b.limitUSD)}, onExhausted ${b.onExhausted}; ${b.routes.join(', ')})`);
      out.push(`    typical: ${describe(b.typical, b.periodDays)}`);
      out.push(`    worst:   ${describe(b.worst, b.periodDays)}`);
      if (b.perUser && 'note' in b.perUser) out.push(`    per user (${usd(b.perUser.limitUSD)}): ${b.perUser.note}`);
      else if (b.perUser) {
        out.push(`    per user (${usd(b.perUser.limitUSD)}, traffic spread over ${int(b.perUser.users)} users) typical: ${describe(b.perUser.typical, b.periodDays)}`);
        out.push(`    per user worst: ${describe(b.perUser.worst, b.periodDays)}`);
      }
    }
  }

  const measured = e.routes.filter((x) => x.sources.length > 0);
  if (measured.length > 0 || r.logs) {
    out.push('', 'Where the figures come from (the rest from the scenario):');
    if (r.logs) {
      const l = r.logs;
      out.push(`  logs: ${int(l.requests)} priced request lines over ${l.spanDays < 1 ? `${(l.spanDays * 24).toFixed(2)} hours` : `${l.spanDays.toFixed(1)} days`}; ${l.unbilled} without usage, ${l.otherLines} other lines and ${l.badLines} unreadable lines skipped; typical = median, worst = p99`);
    }
    for (const x of measured) out.push(`  ${x.id}: ${x.sources.join('; ')}`);
  }
  for (const n of r.notes) out.push(`note: ${n}`);
  return `${out.join('\n')}\n`;
}
