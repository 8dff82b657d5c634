import { describe, expect, it } from 'vitest';
import { esc, renderHtml } from './html.ts';
import { buildReport, formatTable, gates, summarise, type CaseRun, type VersionRun } from './report.ts';
import type { Suite } from './suite.ts';

function run(id: string, tags: string[], status: 'pass' | 'fail' | 'error', extra: Partial<CaseRun> = {}): CaseRun {
  return {
    id,
    tags,
    status,
    graders: [{ grader: 'label', type: 'label', status, reason: status === 'pass' ? 'labelled billing' : 'labelled shipping, expected billing' }],
    answer: status === 'pass' ? 'billing' : 'shipping',
    httpStatus: 200,
    model: 'gpt-4.1-mini',
    latencyMs: 10,
    inputTokens: 100,
    outputTokens: 10,
    costUSD: 0.001,
    cached: false,
    ...extra,
  };
}

function version(label: 'baseline' | 'candidate', cases: CaseRun[]): VersionRun {
  return { label, routes: `${label}.yaml`, configVersion: label === 'baseline' ? '0123456789abcdef' : 'fedcba9876543210', prompts: { triage: label === 'baseline' ? 'v1' : 'v2' }, cases, judgeCostUSD: 0.0005 };
}

const suite = (over: Partial<Suite> = {}): Suite => ({ name: 'triage', file: 'suite.yaml', thresholds: { tags: {}, graders: {} }, regression: { margin: 0 }, cases: [], ...over });

describe('report', () => {
  it('summarises pass rates per tag and grader, latency, tokens and cost', () => {
    const s = summarise(
      version('baseline', [
        run('a', ['common'], 'pass', { latencyMs: 10 }),
        run('b', ['common', 'edge'], 'fail', { latencyMs: 30, cached: true }),
        run('c', ['adversarial'], 'error', { latencyMs: 20 }),
        run('d', ['adversarial'], 'pass', { latencyMs: 40 }),
      ]),
    );
    expect(s.overall).toEqual({ passed: 2, total: 4, rate: 0.5 });
    expect(s.errors).toBe(1);
    expect(s.perTag).toEqual({ adversarial: { passed: 1, total: 2, rate: 0.5 }, common: { passed: 1, total: 2, rate: 0.5 }, edge: { passed: 0, total: 1, rate: 0 } });
    expect(s.perGrader).toEqual({ label: { passed: 2, total: 4, rate: 0.5 } });
    expect(s.latencyMs).toEqual({ p50: 20, p95: 40, mean: 25 });
    expect(s.tokens).toEqual({ input: 400, output: 40 });
    expect(s.costUSD).toBe(0.004);
    expect(s.cached).toBe(1);
  });

  it('diffs the versions case by case', () => {
    const r = buildReport(
      suite(),
      version('baseline', [run('same', [], 'pass'), run('fixed', [], 'fail'), run('regressed', [], 'pass'), run('changed', [], 'fail')]),
      version('candidate', [run('same', [], 'pass'), run('fixed', [], 'pass'), run('regressed', [], 'fail'), run('changed', [], 'error', { answer: 'other' })]),
    );
    expect(r.cases.map((c) => [c.id, c.change])).toEqual([
      ['same', 'same'],
      ['fixed', 'fixed'],
      ['regressed', 'regressed'],
      ['changed', 'changed'],
    ]);
  });

  it('gates the shipping version on thresholds, and the candidate on regressions past the margin', () => {
    const b = summarise(version('baseline', [run('a', ['adv'], 'pass'), run('b', ['adv'], 'pass'), run('c', ['common'], 'pass'), run('d', ['common'], 'fail')]));
    const c = summarise(version('candidate', [run('a', ['adv'], 'pass'), run('b', ['adv'], 'fail'), run('c', ['common'], 'pass'), run('d', ['common'], 'pass')]));
    const s = suite({ thresholds: { passRate: 0.75, tags: { adv: 1, missing: 0.5 }, graders: { label: 0.7 } }, regression: { margin: 0 } });
    expect(gates(s, b)).toEqual([
      { name: 'grader errors', ok: true, detail: 'baseline 0' },
      { name: 'pass rate', ok: true, detail: 'baseline 75.0%, needs 75.0%' },
      { name: 'pass rate [adv]', ok: true, detail: 'baseline 100.0%, needs 100.0%' },
      { name: 'pass rate [missing]', ok: false, detail: 'no case is tagged missing' },
      { name: 'grader label', ok: true, detail: 'baseline 75.0%, needs 70.0%' },
    ]);
    const withCandidate = gates(s, b, c);
    // Same overall rate, but the adversarial tag dropped.
    expect(withCandidate.find((g) => g.name === 'regression')).toEqual({ name: 'regression', ok: true, detail: '75.0% -> 75.0%, margin 0.0%' });
    expect(withCandidate.find((g) => g.name === 'regression [adv]')).toEqual({ name: 'regression [adv]', ok: false, detail: '100.0% -> 50.0%, margin 0.0%' });
    expect(withCandidate.find((g) => g.name === 'pass rate [adv]')?.ok).toBe(false);
    // A margin of 50 points lets the tag's drop through.
    expect(gates({ ...s, regression: { margin: 0.5 } }, b, c).some((g) => g.name.startsWith('regression') && !g.ok)).toBe(false);
    // Without thresholds a failing case passes the gates, a grader error does not.
    expect(buildReport(suite(), version('baseline', [run('a', [], 'fail')])).ok).toBe(true);
    const erred = buildReport(suite(), version('baseline', [run('a', [], 'pass')]), version('candidate', [run('a', [], 'error')]));
    expect(erred.gates).toEqual([expect.objectContaining({ name: 'grader errors', ok: false, detail: 'baseline 0, candidate 1' }), expect.objectContaining({ name: 'regression', ok: false })]);
  });

  it('prints a table with the summary, the cases and the gates', () => {
    const r = buildReport(suite({ thresholds: { passRate: 1, tags: {}, graders: {} } }), version('baseline', [run('a', ['common'], 'pass')]), version('candidate', [run('a', ['common'], 'fail')]));
    const out = formatTable(r);
    expect(out).toContain('pass rate        100.0% (1/1)');
    expect(out).toMatch(/^prompts\s+triage v1\s+triage v2$/m);
    expect(out).toMatch(/^a\s+common\s+pass\s+fail\s+regressed\s+label: labelled shipping, expected billing$/m);
    expect(out).toContain('FAIL  pass rate: candidate 0.0%, needs 100.0%');
    expect(out).toContain('result: FAILED');
  });

  it('renders a self-contained page with every value escaped', () => {
    const r = buildReport(suite(), version('baseline', [run('a', ['common'], 'pass', { answer: '<script>alert(1)</script>' })]));
    const html = renderHtml(r);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//);
    expect(html).not.toMatch(/<link|@import/);
    expect(esc(`"'&`)).toBe('&quot;&#39;&amp;');
  });
});
