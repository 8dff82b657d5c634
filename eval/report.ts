// The report: pass rates per tag and grader, latency, tokens and cost per version, the per-case
// diff between two versions, and the gates CI decides on. Pure: built from results, printed as a
// terminal table; html.ts renders the same object as a page.
import type { CaseStatus, GraderResult } from './graders.ts';
import type { Suite } from './suite.ts';

/** One case run through one version of the route. */
export interface CaseRun {
  id: string;
  tags: string[];
  status: CaseStatus;
  graders: GraderResult[];
  /** What the answer was, shortened: text, a tool call, or the error code. */
  answer: string;
  httpStatus: number;
  model?: string;
  latencyMs: number;
  inputTokens: number;
  outputTokens: number;
  costUSD: number;
  /** Served from the result cache (latency and cost are the original run's). */
  cached: boolean;
}

export interface VersionRun {
  label: 'baseline' | 'candidate';
  routes: string;
  configVersion: string;
  /** The prompt version of each route the suite called (`-` for a route without a prompt). */
  prompts: Record<string, string>;
  cases: CaseRun[];
  /** What the judge's calls cost for this version's answers. */
  judgeCostUSD: number;
}

export interface Rate {
  passed: number;
  total: number;
  rate: number;
}

export interface VersionSummary {
  label: 'baseline' | 'candidate';
  routes: string;
  configVersion: string;
  prompts: Record<string, string>;
  overall: Rate;
  errors: number;
  perTag: Record<string, Rate>;
  perGrader: Record<string, Rate>;
  latencyMs: { p50: number; p95: number; mean: number };
  tokens: { input: number; output: number };
  costUSD: number;
  judgeCostUSD: number;
  cached: number;
}

export type Change = 'same' | 'fixed' | 'regressed' | 'changed';

export interface CaseDiff {
  id: string;
  tags: string[];
  baseline: CaseRun;
  candidate?: CaseRun;
  change: Change;
}

export interface Gate {
  name: string;
  ok: boolean;
  detail: string;
}

export interface Report {
  suite: string;
  file: string;
  /** The judge's prompt version, when the suite has a judge. */
  judgePrompt?: string;
  generatedAt: string;
  baseline: VersionSummary;
  candidate?: VersionSummary;
  cases: CaseDiff[];
  gates: Gate[];
  ok: boolean;
}

function rate(runs: CaseRun[]): Rate {
  const passed = runs.filter((r) => r.status === 'pass').length;
  return { passed, total: runs.length, rate: runs.length === 0 ? 0 : passed / runs.length };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;

export function summarise(v: VersionRun): VersionSummary {
  const perTag: Record<string, Rate> = {};
  for (const tag of [...new Set(v.cases.flatMap((c) => c.tags))].sort()) perTag[tag] = rate(v.cases.filter((c) => c.tags.includes(tag)));
  const perGrader: Record<string, Rate> = {};
  const byGrader = new Map<string, GraderResult[]>();
  for (const c of v.cases) for (const g of c.graders) byGrader.set(g.grader, [...(byGrader.get(g.grader) ?? []), g]);
  for (const [name, results] of [...byGrader].sort(([a], [b]) => a.localeCompare(b))) {
    const passed = results.filter((r) => r.status === 'pass').length;
    perGrader[name] = { passed, total: results.length, rate: passed / results.length };
  }
  const latencies = v.cases.map((c) => c.latencyMs).sort((a, b) => a - b);
  return {
    label: v.label,
    routes: v.routes,
    configVersion: v.configVersion,
    prompts: v.prompts,
    overall: rate(v.cases),
    errors: v.cases.filter((c) => c.status === 'error').length,
    perTag,
    perGrader,
    latencyMs: {
      p50: round(percentile(latencies, 0.5), 1),
      p95: round(percentile(latencies, 0.95), 1),
      mean: round(latencies.reduce((s, l) => s + l, 0) / Math.max(1, latencies.length), 1),
    },
    tokens: { input: v.cases.reduce((s, c) => s + c.inputTokens, 0), output: v.cases.reduce((s, c) => s + c.outputTokens, 0) },
    costUSD: round(v.cases.reduce((s, c) => s + c.costUSD, 0), 9),
    judgeCostUSD: round(v.judgeCostUSD, 9),
    cached: v.cases.filter((c) => c.cached).length,
  };
}

function change(b: CaseRun, c: CaseRun | undefined): Change {
  if (!c) return 'same';
  if (b.status === 'pass' && c.status !== 'pass') return 'regressed';
  if (b.status !== 'pass' && c.status === 'pass') return 'fixed';
  return b.status === c.status && b.answer === c.answer ? 'same' : 'changed';
}

const pct = (r: number) => `${(r * 100).toFixed(1)}%`;

/**
 * The gates: the suite's thresholds on the version that would ship (the candidate when there is
 * one), and with --compare no drop in pass rate, overall or per tag, beyond the suite's margin.
 */
export function gates(suite: Pick<Suite, 'thresholds' | 'regression'>, baseline: VersionSummary, candidate?: VersionSummary): Gate[] {
  const out: Gate[] = [];
  const ship = candidate ?? baseline;
  // A grader that could not decide (a broken judge, say) leaves the verdict open: never a pass.
  const versions = [baseline, ...(candidate ? [candidate] : [])];
  out.push({ name: 'grader errors', ok: versions.every((v) => v.errors === 0), detail: versions.map((v) => `${v.label} ${v.errors}`).join(', ') });
  const t = suite.thresholds;
  if (t.passRate !== undefined) out.push({ name: 'pass rate', ok: ship.overall.rate >= t.passRate, detail: `${ship.label} ${pct(ship.overall.rate)}, needs ${pct(t.passRate)}` });
  for (const [tag, min] of Object.entries(t.tags)) {
    const r = ship.perTag[tag];
    out.push({ name: `pass rate [${tag}]`, ok: r !== undefined && r.rate >= min, detail: r ? `${ship.label} ${pct(r.rate)}, needs ${pct(min)}` : `no case is tagged ${tag}` });
  }
  for (const [grader, min] of Object.entries(t.graders)) {
    const r = ship.perGrader[grader];
    out.push({ name: `grader ${grader}`, ok: r !== undefined && r.rate >= min, detail: r ? `${ship.label} ${pct(r.rate)}, needs ${pct(min)}` : `no grader is named ${grader}` });
  }
  if (candidate) {
    const margin = suite.regression.margin;
    const drop = baseline.overall.rate - candidate.overall.rate;
    out.push({ name: 'regression', ok: drop <= margin + 1e-9, detail: `${pct(baseline.overall.rate)} -> ${pct(candidate.overall.rate)}, margin ${pct(margin)}` });
    for (const [tag, b] of Object.entries(baseline.perTag)) {
      const c = candidate.perTag[tag];
      if (!c) continue;
      const d = b.rate - c.rate;
      if (d > margin + 1e-9) out.push({ name: `regression [${tag}]`, ok: false, detail: `${pct(b.rate)} -> ${pct(c.rate)}, margin ${pct(margin)}` });
    }
  }
  return out;
}

export function buildReport(suite: Suite, baseline: VersionRun, candidate?: VersionRun, now = new Date()): Report {
  const b = summarise(baseline);
  const c = candidate ? summarise(candidate) : undefined;
  const byId = new Map(candidate?.cases.map((r) => [r.id, r]));
  const cases = baseline.cases.map((run) => {
    const other = byId.get(run.id);
    return { id: run.id, tags: run.tags, baseline: run, ...(other ? { candidate: other } : {}), change: change(run, other) };
  });
  const g = gates(suite, b, c);
  return { suite: suite.name, file: suite.file, ...(suite.judge ? { judgePrompt: suite.judge.prompt.version } : {}), generatedAt: now.toISOString(), baseline: b, ...(c ? { candidate: c } : {}), cases, gates: g, ok: g.every((x) => x.ok) };
}

// ---- terminal table ----

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export const promptList = (p: Record<string, string>) =>
  Object.entries(p)
    .map(([route, version]) => `${route} ${version}`)
    .join(', ') || '-';
const usd = (n: number) => `$${n < 0.01 ? n.toFixed(6) : n.toFixed(4)}`;
const rateCell = (r: Rate | undefined) => (r ? `${pct(r.rate)} (${r.passed}/${r.total})` : '-');

export function formatTable(r: Report): string {
  const versions = [r.baseline, ...(r.candidate ? [r.candidate] : [])];
  const head = ['', ...versions.map((v) => v.label)];
  const summary: string[][] = [
    head,
    ['routes', ...versions.map((v) => `${v.routes} @${v.configVersion}`)],
    ['prompts', ...versions.map((v) => promptList(v.prompts))],
    ['pass rate', ...versions.map((v) => rateCell(v.overall))],
    ['errors', ...versions.map((v) => String(v.errors))],
  ];
  const tags = [...new Set(versions.flatMap((v) => Object.keys(v.perTag)))].sort();
  for (const t of tags) summary.push([`  tag ${t}`, ...versions.map((v) => rateCell(v.perTag[t]))]);
  const graders = [...new Set(versions.flatMap((v) => Object.keys(v.perGrader)))].sort();
  for (const g of graders) summary.push([`  grader ${g}`, ...versions.map((v) => rateCell(v.perGrader[g]))]);
  summary.push(
    ['latency p50/p95', ...versions.map((v) => `${v.latencyMs.p50} / ${v.latencyMs.p95} ms`)],
    ['tokens in/out', ...versions.map((v) => `${v.tokens.input} / ${v.tokens.output}`)],
    ['cost', ...versions.map((v) => usd(v.costUSD))],
    ['judge cost', ...versions.map((v) => usd(v.judgeCostUSD))],
    ['cached', ...versions.map((v) => `${v.cached}/${v.overall.total}`)],
  );

  const caseRows: string[][] = [['case', 'tags', 'baseline', ...(r.candidate ? ['candidate', 'change'] : []), 'why']];
  for (const c of r.cases) {
    const shown = c.candidate ?? c.baseline;
    const why = shown.graders.filter((g) => g.status !== 'pass').map((g) => `${g.grader}: ${g.reason}`).join('; ');
    caseRows.push([c.id, c.tags.join(','), c.baseline.status, ...(r.candidate ? [c.candidate?.status ?? '-', c.change] : []), why.length > 100 ? `${why.slice(0, 99)}…` : why]);
  }
  const gateRows = r.gates.map((g) => `${g.ok ? 'ok  ' : 'FAIL'}  ${g.name}: ${g.detail}`);
  return [
    `suite ${r.suite} (${r.file})${r.judgePrompt ? `, judge prompt ${r.judgePrompt}` : ''}`,
    '',
    table(summary),
    '',
    table(caseRows),
    '',
    ...gateRows,
    '',
    r.ok ? 'result: ok' : 'result: FAILED',
    '',
  ].join('\n');
}
