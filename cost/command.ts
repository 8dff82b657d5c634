// `ai-envelope cost`: flags and files around the estimate. Exit 0: the estimate printed (and every
// budget holds); 1: a budget (or a user's share of one) runs out in the typical case; 2: usage,
// scenario, manifest or price errors.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { formatProblem, parseManifests, readSources } from '../crds/manifests.ts';
import type { AIBudget, AIRoute } from '../crds/schema.ts';
import { PRICES_AS_OF } from '../sidecar/policy/prices.ts';
import { anyRunsOut, checkBudget } from './budget.ts';
import { estimate, PriceError } from './estimate.ts';
import { formatReport, type Report } from './format.ts';
import { EvalReport, summariseLogs, type LogSummary } from './measured.ts';
import { resolveRoutes } from './resolve.ts';
import { loadScenario, parseScenario, ScenarioError, type Scenario } from './scenario.ts';

export const COST_USAGE = `  cost -f SCENARIOS [--days 30] [--format text|json] [--from-logs FILE...] [--from-eval REPORT.json]
       [--routes PATH] [--budget PATH]
        Estimate a month's spend per route and in total, the worst case, and what cheaper models or the
        Batch API would save, priced as the sidecar prices (README: Cost estimates). --from-logs: token
        figures, rates and retries measured from sidecar request logs; --from-eval: token figures from
        an eval report; --routes: AIRoutes for labels, default models and prices; --budget: AIBudgets
        to check. Exit 1 when a budget runs out in the typical case; 2 on bad input.
`;

async function manifests(path: string): Promise<{ routes: AIRoute[]; budgets: AIBudget[] }> {
  let sources;
  try {
    sources = await readSources(path);
  } catch (e) {
    throw new ScenarioError([`${path}: ${(e as Error).message}`]);
  }
  const m = parseManifests(sources);
  if (m.problems.length > 0) throw new ScenarioError(m.problems.map(formatProblem));
  return { routes: m.routes, budgets: m.budgets };
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new ScenarioError([`${what} ${file}: ${(e as Error).message}`]);
  }
}

async function evalReport(file: string): Promise<EvalReport> {
  const text = await readText(file, '--from-eval');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ScenarioError([`${file}: not JSON: ${(e as Error).message}`]);
  }
  const r = EvalReport.safeParse(value);
  if (!r.success) throw new ScenarioError([`${file}: not an ai-envelope eval report (report.json): ${r.error.issues.map((i) => `${i.path.join('.') || '(report)'}: ${i.message}`).join('; ')}`]);
  return r.data;
}

export async function buildCostReport(opts: { file?: string; days?: number; logFiles: string[]; evalFile?: string; routesPath?: string; budgetPath?: string }): Promise<Report> {
  const scenario: Scenario = opts.file ? await loadScenario(opts.file) : parseScenario({}, '(no scenario)');
  const label = opts.file ?? 'the logs';
  const days = opts.days ?? scenario.days;
  let logs: LogSummary | undefined;
  if (opts.logFiles.length > 0) logs = summariseLogs(await Promise.all(opts.logFiles.map((f) => readText(f, '--from-logs'))));
  const airoutes: AIRoute[] = [];
  let budgets: AIBudget[] = [];
  if (opts.routesPath) airoutes.push(...(await manifests(opts.routesPath)).routes);
  if (opts.budgetPath) {
    const m = await manifests(opts.budgetPath);
    budgets = m.budgets;
    // Routes next to the budgets count too: a whole manifests folder can be given once.
    airoutes.push(...m.routes.filter((r) => !airoutes.some((a) => a.metadata.namespace === r.metadata.namespace && a.metadata.name === r.metadata.name)));
    if (budgets.length === 0) throw new ScenarioError([`${opts.budgetPath}: no AIBudget found`]);
  }
  const resolved = resolveRoutes(scenario, {
    file: label,
    ...(logs ? { logs } : {}),
    ...(opts.evalFile ? { evalReport: { file: opts.evalFile, report: await evalReport(opts.evalFile) } } : {}),
    airoutes,
  });
  if (resolved.problems.length > 0) throw new ScenarioError(resolved.problems);
  if (resolved.routes.length === 0) throw new ScenarioError([`${label}: no routes to estimate${logs ? ' (the logs hold no request lines with usage)' : ''}`]);
  let est;
  try {
    est = estimate(resolved.routes, days, PRICES_AS_OF);
  } catch (e) {
    if (e instanceof PriceError) throw new ScenarioError([`${label}: ${e.message}`]);
    throw e;
  }
  const notes: string[] = [];
  if (logs && logs.spanDays > 0 && logs.spanDays < 1) notes.push(`the logs span ${(logs.spanDays * 24).toFixed(2)} hours: requests/day taken from them is that window's rate scaled to a day`);
  const streamed = est.routes.filter((r) => r.streamingShare > 0);
  if (streamed.length > 0) notes.push('streamed requests are priced as the others (usage is the same); abandoned streams are not modelled');
  return {
    scenario: label,
    estimate: est,
    budgets: budgets.map((b) => checkBudget(b, resolved.routes, est.routes, days)),
    ...(logs ? { logs: { requests: logs.requests, unbilled: logs.unbilled, otherLines: logs.otherLines, badLines: logs.badLines, spanDays: logs.spanDays } } : {}),
    notes,
  };
}

export async function costCommand(args: string[]): Promise<number> {
  const fail = (message: string) => {
    process.stderr.write(`ai-envelope cost: ${message}\n`);
    return 2;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: {
        file: { type: 'string', short: 'f' },
        days: { type: 'string' },
        format: { type: 'string' },
        'from-logs': { type: 'string', multiple: true },
        'from-eval': { type: 'string' },
        routes: { type: 'string' },
        budget: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return fail((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(COST_USAGE);
    return 0;
  }
  // `--from-logs a.log b.log`: the files after the first are positionals.
  const logFiles = [...(v['from-logs'] ?? []), ...(v['from-logs'] ? parsed.positionals : [])];
  if (!v['from-logs'] && parsed.positionals.length > 0) return fail(`unexpected argument '${parsed.positionals[0]}'`);
  if (!v.file && logFiles.length === 0) return fail('-f SCENARIOS is required (or --from-logs FILE...)');
  const format = v.format ?? 'text';
  if (format !== 'text' && format !== 'json') return fail(`--format must be text or json, got '${format}'`);
  let days: number | undefined;
  if (v.days !== undefined) {
    days = Number(v.days);
    if (!Number.isInteger(days) || days < 1 || days > 366) return fail(`--days must be a whole number from 1 to 366, got '${v.days}'`);
  }
  let report: Report;
  try {
    report = await buildCostReport({
      ...(v.file ? { file: v.file } : {}),
      ...(days !== undefined ? { days } : {}),
      logFiles,
      ...(v['from-eval'] ? { evalFile: v['from-eval'] } : {}),
      ...(v.routes ? { routesPath: v.routes } : {}),
      ...(v.budget ? { budgetPath: v.budget } : {}),
    });
  } catch (e) {
    if (e instanceof ScenarioError) {
      for (const p of e.problems) process.stderr.write(`${p}\n`);
      return 2;
    }
    throw e;
  }
  process.stdout.write(format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return anyRunsOut(report.budgets) ? 1 : 0;
}
