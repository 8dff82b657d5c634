// `ai-envelope cost` as a platform team runs it: the example scenario against the example budget,
// JSON output, exit codes, and an estimate from the request log of a real sidecar process.
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { buildReport, type CaseRun } from '../../eval/report.ts';
import { routeManifest, simRoute, startEnv, type Env } from '../support/fixtures.ts';
import { tempDir } from '../support/sidecar-process.ts';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../examples', import.meta.url));
const cost = (...args: string[]) =>
  promisify(execFile)(process.execPath, [CLI, 'cost', ...args]).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

interface JsonRoute {
  id: string;
  model: string;
  requestsPerDay: number;
  typical: { input: number; output: number };
  cachedShare: number;
  retryRate: number;
  streamingShare: number;
  perRequestNano: { typical: { standard: number } };
  monthlyUSD: number;
  worstMonthlyUSD: number;
  worst: { input: number; output: number };
  sources: string[];
}
interface JsonReport {
  estimate: { days: number; pricesAsOf: string; monthlyUSD: number; routes: JsonRoute[] };
  budgets: Array<{ budget: string; typical: { holds: boolean; runsOutOnDay?: number } }>;
  logs?: { requests: number; badLines: number };
}

describe('ai-envelope cost', () => {
  it('estimates the example scenario against the example budget', async () => {
    const r = await cost('-f', join(EXAMPLES, 'cost/shop.yaml'), '--budget', join(EXAMPLES, 'routes.yaml'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // support-triage: 1500 in (750 cached), 250 out on gpt-4.1-mini = 300 + 75 + 400 = 775 µ$; a retry
    // is the input, 375 µ$; 8000 × (775 + 0.02 × 375) µ$ = $6.26 a day, $187.80 in 30 days. Worst:
    // 6000×0.40 + 1000×1.60 = 4000 µ$ + 0.02 × 2400 µ$ = 4048 µ$ × 8000 = $32.384 a day, $971.52.
    // Embeddings: 300 × 0.02 = 6 µ$, half of it batch: 50,000 × 4.5 µ$ × 30 = $6.75.
    expect(r.stdout).toMatch(/a month of 30 days, prices from the built-in table as of 2026-11/);
    expect(r.stdout).toMatch(/shop\/support-triage +gpt-4\.1-mini +8,000 +1,500 +250 +50% +2% +0% +\$187\.80 +6,000 +1,000 +\$971\.52/);
    expect(r.stdout).toMatch(/shop\/search-embeddings .* \$6\.75 /);
    expect(r.stdout).toMatch(/total +58,000 +\$194\.55 +\$1,016\.52/);
    // The budget ($500 a month, support routes) holds typically; the worst case spends it after
    // 500 / 32.384 = 15.4 days.
    expect(r.stdout).toContain('shop/shop-monthly (monthly, $500.00, onExhausted block; shop/support-triage)');
    expect(r.stdout).toContain('typical: holds, $187.80 (37.6% of the limit)');
    expect(r.stdout).toContain('worst:   runs out on day 16 of 30 (after 15.4 days)');
    expect(r.stdout).toContain('shop/support-triage on gpt-4.1-nano: $46.95, saves $140.85 a month (75%)');
    expect(r.stdout).toContain('labels from AIRoute shop/support-triage');
  });

  it('prints JSON, takes --days, and exits 1 when a budget runs out', async () => {
    const dir = tempDir('cost');
    const budget = join(dir, 'budget.yaml');
    writeFileSync(budget, stringify({ apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIBudget', metadata: { name: 'tight', namespace: 'shop' }, spec: { period: 'weekly', limitUSD: 40 } }));
    const r = await cost('-f', join(EXAMPLES, 'cost/shop.yaml'), '--budget', budget, '--days', '7', '--format', 'json');
    expect(r.stderr).toBe('');
    // Both routes, $6.26 + $0.225 = $6.485 a day, $45.395 a week against $40: after 6.17 days, day 7.
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as JsonReport;
    expect(report.estimate.days).toBe(7);
    expect(report.estimate.monthlyUSD).toBeCloseTo(45.395, 6);
    expect(report.budgets[0]).toMatchObject({ budget: 'shop/tight', typical: { holds: false, runsOutOnDay: 7 } });
  });

  it('takes token figures from an eval report', async () => {
    const dir = tempDir('cost');
    const caseRun = (id: string, tags: string[], inputTokens: number, outputTokens: number): CaseRun => ({ id, tags, status: 'pass', graders: [], answer: 'ok', httpStatus: 200, model: 'gpt-4.1-nano', latencyMs: 5, inputTokens, outputTokens, costUSD: 0, cached: false });
    const report = buildReport(
      { name: 'triage', file: 'suite.yaml', thresholds: { tags: {}, graders: {} }, regression: { margin: 0 }, cases: [] },
      { label: 'baseline', routes: 'routes.yaml', configVersion: '0123456789abcdef', prompts: {}, cases: [caseRun('a', ['common'], 1000, 100), caseRun('b', ['common'], 3000, 300), caseRun('c', ['edge'], 9000, 900)], judgeCostUSD: 0 },
    );
    const reportFile = join(dir, 'report.json');
    writeFileSync(reportFile, JSON.stringify(report));
    const scenario = join(dir, 'scenario.yaml');
    writeFileSync(scenario, stringify({ routes: [{ name: 'triage', namespace: 'shop', requestsPerDay: 1000, eval: { tags: ['common'] } }] }));
    const r = await cost('-f', scenario, '--from-eval', reportFile, '--format', 'json');
    expect(r.stderr).toBe('');
    // common cases: inputs 1000 and 3000 (median 2000, max 3000), outputs 100 and 300 (200, 300), on gpt-4.1-nano:
    // 2000×0.10 + 200×0.40 = 280 µ$ a request, 1000 a day for 30 days = $8.40.
    const json = JSON.parse(r.stdout) as JsonReport;
    expect(json.estimate.routes[0]).toMatchObject({ model: 'gpt-4.1-nano', typical: { input: 2000, output: 200 }, worst: { input: 3000, output: 300 } });
    expect(json.estimate.monthlyUSD).toBeCloseTo(8.4, 9);
    writeFileSync(reportFile, '{"cases": 3}');
    const bad = await cost('-f', scenario, '--from-eval', reportFile);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${reportFile}: not an ai-envelope eval report (report.json)`);
  });

  it('says what is wrong with the scenario or the flags, exit 2', async () => {
    const dir = tempDir('cost');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'routes:\n  - name: r\n    model: gpt-4.1-mini\n    requestsPerDay: 10\n    cachedShare: 2\n');
    const r = await cost('-f', bad);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([`${bad}: routes[0].cachedShare: must be from 0 to 1`]);
    const unpriced = join(dir, 'unpriced.yaml');
    writeFileSync(unpriced, 'routes:\n  - {name: r, model: o3-pro, requestsPerDay: 10, tokens: {typical: {input: 10}}}\n');
    expect((await cost('-f', unpriced)).stderr).toContain(`${unpriced}: default/r: no price for model 'o3-pro' in the built-in table; add it under prices`);
    expect((await cost()).stderr).toContain('-f SCENARIOS is required');
    expect((await cost('-f', bad, '--days', 'many')).stderr).toContain("--days must be a whole number from 1 to 366, got 'many'");
    expect((await cost('-f', join(dir, 'missing.yaml'))).code).toBe(2);
  });
});

describe('ai-envelope cost --from-logs, from a real sidecar', () => {
  let env: Env | undefined;
  afterAll(async () => {
    await env?.close();
  });

  it('measures tokens, retries and streaming from the log and prices them as the sidecar did', async () => {
    env = await startEnv({ routes: (sim) => [routeManifest('main', simRoute(sim))] });
    const { client, sim, sidecar } = env;
    const ask = () => client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Where is my order 1234?' }] });
    await ask();
    await ask();
    sim.fault({ type: 'error', status: 500, times: 1 });
    await ask();
    const stream = await client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Where is my order 1234?' }], stream: true, stream_options: { include_usage: true } });
    for await (const _ of stream);
    await sidecar.waitForLog(() => sidecar.requestLogs().length === 4);
    const lines = sidecar.requestLogs();
    expect(lines.map((l) => l.attempts)).toEqual([1, 1, 2, 1]);
    // The same prompt each time: the simulator answers with the same usage.
    expect(new Set(lines.map((l) => `${String(l.input_tokens)}/${String(l.output_tokens)}`)).size).toBe(1);

    const dir = tempDir('cost');
    const log = join(dir, 'sidecar.log');
    writeFileSync(log, sidecar.output());
    const scenario = join(dir, 'scenario.yaml');
    writeFileSync(scenario, stringify({ routes: [{ name: 'main', requestsPerDay: 10_000 }] }));
    const r = await cost('-f', scenario, '--from-logs', log, '--format', 'json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as JsonReport;
    expect(report.logs).toMatchObject({ requests: 4 });
    const [route] = report.estimate.routes;
    expect(route).toMatchObject({ id: 'shop/main', model: 'gpt-4.1-mini', requestsPerDay: 10_000, typical: { input: lines[0]!.input_tokens, output: lines[0]!.output_tokens }, retryRate: 0.25, streamingShare: 0.25, cachedShare: 0 });
    // One request costs here what the sidecar booked for it.
    expect(route!.perRequestNano.typical.standard / 1e9).toBe(lines[0]!.cost_usd);
    expect(route!.sources.join('; ')).toContain('from logs (4 requests)');

    // Without a scenario: the route and its rate from the log alone (a span of seconds, scaled to a day).
    const alone = await cost('--from-logs', log);
    expect(alone.code).toBe(0);
    expect(alone.stdout).toMatch(/^shop\/main +gpt-4\.1-mini /m);
    expect(alone.stdout).toContain('everything from logs (4 requests; not in the scenario)');
    expect(alone.stdout).toMatch(/note: the logs span [\d.]+ hours/);
  });
});
