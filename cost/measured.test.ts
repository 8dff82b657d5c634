// Figures measured from sidecar request logs (lines written by the sidecar's own line writer) and
// from an eval report, and how they fill in a scenario.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { AIRoute } from '../crds/schema.ts';
import { requestLineWriter, type RequestRecord } from '../sidecar/telemetry/log.ts';
import { fromEval, median, percentile, summariseLogs, type EvalReport } from './measured.ts';
import { resolveRoutes } from './resolve.ts';
import { parseScenario } from './scenario.ts';

/** Log text as the sidecar writes it: its logger's options, its request line writer, at the given times. */
function sidecarLog(entries: Array<{ at: string; record: Partial<RequestRecord> }>, extra: string[] = []): string {
  let text = '';
  const log = pino({ base: { component: 'sidecar' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }, { write: (s: string) => void (text += s) });
  const write = requestLineWriter(log);
  vi.useFakeTimers({ toFake: ['Date'] });
  for (const e of entries) {
    vi.setSystemTime(new Date(e.at));
    write({ request_id: 'r', endpoint: 'chat.completions', method: 'POST', path: '/v1/chat/completions', stream: false, status: 200, attempts: 1, latency_ms: 5, ...e.record });
  }
  log.info({ event: 'config_loaded' }, 'config loaded');
  return text + extra.join('\n');
}

afterEach(() => {
  vi.useRealTimers();
});

describe('percentiles', () => {
  it('median of odd and even counts, nearest-rank p99', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 0.99)).toBe(99);
    expect(percentile([7, 1, 3], 0.99)).toBe(7);
  });
});

describe('summariseLogs', () => {
  const usage = (input: number, output: number, cached: number, more: Partial<RequestRecord> = {}) => ({ route: 'shop/triage', model: 'gpt-4.1-mini', input_tokens: input, output_tokens: output, cached_tokens: cached, ...more });
  const text = sidecarLog(
    [
      { at: '2026-11-02T00:00:00Z', record: usage(1000, 100, 0) },
      { at: '2026-11-02T06:00:00Z', record: usage(3000, 300, 1000, { attempts: 3, stream: true }) },
      { at: '2026-11-02T12:00:00Z', record: usage(2000, 200, 1000) },
      { at: '2026-11-02T18:00:00Z', record: usage(500, 50, 0, { model: 'gpt-4.1-nano', fallback_from: 'gpt-4.1-mini' }) },
      // Refused before any model: no usage, not priced. A moderation: free.
      { at: '2026-11-02T20:00:00Z', record: usage(40, 0, 0, { endpoint: 'moderations', model: 'omni-moderation-latest' }) },
      { at: '2026-11-03T00:00:00Z', record: { route: 'shop/triage', status: 429, error_code: 'rate_limited' } },
    ],
    ['not json at all', '{"msg":"request","time":"yesterday"}'],
  );

  it('groups by route and model, skipping and counting other lines', () => {
    const s = summariseLogs([text]);
    expect(s).toMatchObject({ requests: 4, unbilled: 2, otherLines: 1, badLines: 2, spanDays: 1 });
    expect(s.groups.map((g) => [g.route, g.model, g.requests])).toEqual([
      ['shop/triage', 'gpt-4.1-mini', 3],
      ['shop/triage', 'gpt-4.1-nano', 1],
    ]);
  });

  it('medians, p99, cached share of input, retries from attempts, rate over the span', () => {
    const mini = summariseLogs([text]).groups[0]!;
    // Inputs 1000, 3000, 2000: median 2000, p99 3000; outputs 100, 300, 200: 200 and 300.
    expect(mini.typical).toEqual({ input: 2000, output: 200 });
    expect(mini.worst).toEqual({ input: 3000, output: 300 });
    // Cached 2000 of 6000 input tokens; 2 extra attempts over 3 requests; 1 of 3 streamed; 3 in one day.
    expect(mini.cachedShare).toBeCloseTo(1 / 3, 9);
    expect(mini.retryRate).toBeCloseTo(2 / 3, 9);
    expect(mini.streamingShare).toBeCloseTo(1 / 3, 9);
    expect(mini.requestsPerDay).toBe(3);
  });

  it('fills in a scenario: logs replace token figures, the scenario keeps its traffic forecast', () => {
    const scenario = parseScenario({ routes: [{ name: 'triage', model: 'gpt-4.1', requestsPerDay: 4000, tokens: { typical: { input: 9, output: 9 } }, cachedShare: 0.9 }, { name: 'other', model: 'gpt-4.1-mini', requestsPerDay: 10, tokens: { typical: { input: 10 } } }] }, 's.yaml');
    const r = resolveRoutes(scenario, { file: 's.yaml', logs: summariseLogs([text]) });
    expect(r.problems).toEqual([]);
    // The logs saw two models on the route: 3 of 4 calls on mini, 1 on nano (a fallback).
    const [mini, nano, other] = r.routes;
    expect(mini).toMatchObject({ id: 'shop/triage (gpt-4.1-mini)', namespace: 'shop', model: 'gpt-4.1-mini', requestsPerDay: 3000, typical: { input: 2000, output: 200 } });
    expect(mini!.cachedShare).toBeCloseTo(1 / 3, 9);
    expect(nano).toMatchObject({ id: 'shop/triage (gpt-4.1-nano)', requestsPerDay: 1000, typical: { input: 500, output: 50 } });
    expect(mini!.sources.join('; ')).toMatch(/from logs \(3 requests, 75% of the route's\)/);
    expect(other).toMatchObject({ id: 'default/other', worst: { input: 10, output: 0 }, sources: ['worst case tokens = typical (no tokens.worst)'] });
  });

  it('estimates routes the scenario does not name from the logs alone', () => {
    const r = resolveRoutes(parseScenario({}, '(none)'), { file: '(none)', logs: summariseLogs([text]) });
    expect(r.routes.map((x) => [x.id, x.requestsPerDay])).toEqual([
      ['shop/triage (gpt-4.1-mini)', 3],
      ['shop/triage (gpt-4.1-nano)', 1],
    ]);
  });

  it('asks for the namespace when the logs hold the route name in two', () => {
    const two = sidecarLog([
      { at: '2026-11-02T00:00:00Z', record: usage(10, 1, 0) },
      { at: '2026-11-02T01:00:00Z', record: usage(10, 1, 0, { route: 'staging/triage' }) },
    ]);
    const r = resolveRoutes(parseScenario({ routes: [{ name: 'triage' }] }, 's.yaml'), { file: 's.yaml', logs: summariseLogs([two]) });
    expect(r.problems[0]).toBe('s.yaml: routes[0].namespace: required: the logs hold routes shop/triage and staging/triage');
  });

  it('asks for a rate when the logs span no time', () => {
    const one = sidecarLog([{ at: '2026-11-02T00:00:00Z', record: usage(10, 1, 0) }]);
    const r = resolveRoutes(parseScenario({ routes: [{ name: 'triage' }] }, 's.yaml'), { file: 's.yaml', logs: summariseLogs([one]) });
    expect(r.problems).toEqual(['s.yaml: routes[0].requestsPerDay: required: the logs span no time to measure a rate from']);
  });
});

describe('from an eval report', () => {
  const run = (inputTokens: number, outputTokens: number, httpStatus = 200) => ({ status: 'pass', httpStatus, model: 'gpt-4.1-mini', inputTokens, outputTokens });
  const report: EvalReport = {
    suite: 'triage',
    cases: [
      { id: 'a', tags: ['common'], baseline: run(100, 10), candidate: run(200, 20) },
      { id: 'b', tags: ['common'], baseline: run(300, 30), candidate: run(400, 40) },
      { id: 'c', tags: ['edge'], baseline: run(900, 90), candidate: run(5000, 500, 500) },
    ],
  };

  it('takes the candidate when there is one, median and maximum, failed calls left out', () => {
    // Candidate runs 200, 400 (the 500 failed): median 300, max 400.
    expect(fromEval(report, 'r', {})).toMatchObject({ model: 'gpt-4.1-mini', requests: 2, typical: { input: 300, output: 30 }, worst: { input: 400, output: 40 } });
    // Baseline, edge cases only: the one case at 900.
    expect(fromEval(report, 'r', { version: 'baseline', tags: ['edge'] })).toMatchObject({ requests: 1, typical: { input: 900, output: 90 } });
    expect(fromEval(report, 'r', { tags: ['nope'] })).toBeUndefined();
  });

  it('fills the routes that ask for it, and says when none does', () => {
    const scenario = parseScenario({ routes: [{ name: 'triage', requestsPerDay: 100, eval: { tags: ['common'] } }] }, 's.yaml');
    const r = resolveRoutes(scenario, { file: 's.yaml', evalReport: { file: 'report.json', report } });
    expect(r.problems).toEqual([]);
    expect(r.routes[0]).toMatchObject({ model: 'gpt-4.1-mini', typical: { input: 300, output: 30 }, worst: { input: 400, output: 40 } });
    expect(r.routes[0]!.sources).toEqual(['tokens from report.json (2 cases), model too']);
    const none = resolveRoutes(parseScenario({ routes: [{ name: 'x', model: 'gpt-4.1', requestsPerDay: 1, tokens: { typical: { input: 1 } } }] }, 's.yaml'), { file: 's.yaml', evalReport: { file: 'report.json', report } });
    expect(none.problems).toEqual(['report.json: no route of s.yaml says which eval cases measure it (give a route eval: {} or eval: {tags: [...]})']);
  });
});

describe('from AIRoute manifests', () => {
  it('gives a scenario route its namespace, labels, default model and prices; the scenario wins', () => {
    const manifest = AIRoute.parse({
      apiVersion: 'ai-envelope.dev/v1alpha1',
      kind: 'AIRoute',
      metadata: { name: 'triage', namespace: 'shop', labels: { team: 'support' } },
      spec: { model: { default: 'gpt-4.1-mini' }, prices: { 'gpt-4.1-mini': { input: 1, output: 2 }, 'ft:custom': { input: 3, output: 4 } } },
    });
    const scenario = parseScenario({ prices: { 'gpt-4.1-mini': { input: 0.5, output: 1 } }, routes: [{ name: 'triage', requestsPerDay: 1, tokens: { typical: { input: 1 } } }] }, 's.yaml');
    const r = resolveRoutes(scenario, { file: 's.yaml', airoutes: [manifest] });
    expect(r.routes[0]).toMatchObject({ id: 'shop/triage', labels: { team: 'support' }, model: 'gpt-4.1-mini', prices: { 'gpt-4.1-mini': { input: 0.5, output: 1 }, 'ft:custom': { input: 3, output: 4 } } });
    expect(r.routes[0]!.sources).toEqual(['labels, prices, model from AIRoute shop/triage', 'worst case tokens = typical (no tokens.worst)']);
    // Without a manifest or a model, the scenario has to say which model.
    expect(resolveRoutes(parseScenario({ routes: [{ name: 'x', requestsPerDay: 1, tokens: { typical: { input: 1 } } }] }, 's.yaml'), { file: 's.yaml' }).problems).toEqual([
      's.yaml: routes[0].model: required field is missing (no logs, eval or AIRoute default model gives one)',
    ]);
  });
});
