import fc from 'fast-check';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HistogramFamily, ScalarFamily } from './series.ts';

const LABELS = ['route', 'model'] as const;
const BUCKETS = [0.01, 0.1, 1, 10];

type Op = { kind: 'counter' | 'gauge+' | 'gauge-' | 'histogram'; values: [string, string]; v: number };

/** The same updates through prom-client's own metrics and through the families: both registries' output. */
async function both(ops: Op[]): Promise<{ ours: Registry; theirs: Registry }> {
  const ours = new Registry();
  const theirs = new Registry();
  const c = new ScalarFamily('counter', 'calls_total', 'Calls.', LABELS, ours);
  const g = new ScalarFamily('gauge', 'in_flight', 'In flight.', LABELS, ours);
  const h = new HistogramFamily('duration_seconds', 'Duration.', LABELS, BUCKETS, ours);
  const pc = new Counter({ name: 'calls_total', help: 'Calls.', labelNames: LABELS, registers: [theirs] });
  const pg = new Gauge({ name: 'in_flight', help: 'In flight.', labelNames: LABELS, registers: [theirs] });
  const ph = new Histogram({ name: 'duration_seconds', help: 'Duration.', labelNames: LABELS, buckets: BUCKETS, registers: [theirs] });
  for (const op of ops) {
    const labels = { route: op.values[0], model: op.values[1] };
    if (op.kind === 'counter') {
      c.inc(op.values, op.v);
      pc.inc(labels, op.v);
    } else if (op.kind === 'gauge+') {
      g.inc(op.values, op.v);
      pg.inc(labels, op.v);
    } else if (op.kind === 'gauge-') {
      g.dec(op.values, op.v);
      pg.dec(labels, op.v);
    } else {
      h.observe(op.values, op.v);
      ph.observe(labels, op.v);
    }
  }
  return { ours, theirs };
}

describe('metric families', () => {
  it("give prom-client's exposition byte for byte, escapes and bucket edges included", async () => {
    const ops: Op[] = [
      { kind: 'histogram', values: ['shop/main', 'gpt-4.1-mini'], v: 0.01 }, // on a bound: that bucket
      { kind: 'histogram', values: ['shop/main', 'gpt-4.1-mini'], v: 0.0100001 },
      { kind: 'histogram', values: ['shop/main', 'gpt-4.1-mini'], v: 42 }, // above every bound: +Inf only
      { kind: 'histogram', values: ['a "quoted" \\ route\nline', ''], v: 0 },
      { kind: 'counter', values: ['shop/main', 'gpt-4.1-mini'], v: 1 },
      { kind: 'counter', values: ['shop/main', 'gpt-4.1-nano'], v: 0.000123 },
      { kind: 'counter', values: ['shop/main', 'gpt-4.1-mini'], v: 2 },
      { kind: 'gauge+', values: ['shop/main', 'gpt-4.1-mini'], v: 1 },
      { kind: 'gauge-', values: ['shop/main', 'gpt-4.1-mini'], v: 1 },
      { kind: 'gauge-', values: ['other', 'x'], v: 2 },
    ];
    const { ours, theirs } = await both(ops);
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('duration_seconds_bucket{le="0.01",route="shop/main",model="gpt-4.1-mini"} 1\n');
    expect(text).toContain('duration_seconds_bucket{le="+Inf",route="shop/main",model="gpt-4.1-mini"} 3\n');
    expect(text).toContain('calls_total{route="shop/main",model="gpt-4.1-mini"} 3\n');
    expect(text).toContain('in_flight{route="other",model="x"} -2');
    // JSON too, but for prom-client's empty exemplar slots (families keep no exemplars).
    const noExemplars = (metrics: unknown) => JSON.parse(JSON.stringify(metrics, (k, v: unknown) => (k === 'exemplar' && v === null ? undefined : v))) as unknown;
    expect(noExemplars(await ours.getMetricsAsJSON())).toEqual(noExemplars(await theirs.getMetricsAsJSON()));
  });

  it('agree with prom-client on any sequence of updates', async () => {
    const value = fc.oneof(fc.constantFrom(0, 0.01, 0.1, 1, 10), fc.double({ min: 0, max: 1e6, noNaN: true }));
    const op = fc.record({
      kind: fc.constantFrom<Op['kind']>('counter', 'gauge+', 'gauge-', 'histogram'),
      values: fc.tuple(fc.constantFrom('r1', 'r2', 'r"3'), fc.constantFrom('m1', 'm2', '')),
      v: value,
    });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const { ours, theirs } = await both(ops);
        expect(await ours.metrics()).toBe(await theirs.metrics());
      }),
      { numRuns: 200 },
    );
  });

  it('refuse what prom-client refuses: a wrong number of labels, a counter going down, a value that is not a number', () => {
    const r = new Registry();
    const c = new ScalarFamily('counter', 'c_total', 'C.', LABELS, r);
    const h = new HistogramFamily('h', 'H.', LABELS, BUCKETS, r);
    expect(() => c.inc(['only-one'])).toThrow(/1 label values for 2 label names/);
    expect(() => c.inc(['a', 'b'], -1)).toThrow(/cannot add -1/);
    expect(() => c.dec(['a', 'b'])).toThrow(/only goes up/);
    expect(() => h.observe(['a', 'b'], Number.NaN)).toThrow(/cannot observe NaN/);
    expect(() => new HistogramFamily('h2', 'H.', ['le'], BUCKETS, r)).toThrow(/le is a reserved/);
    expect(() => new ScalarFamily('counter', 'c_total', 'again', LABELS, r)).toThrow(/already been registered/);
  });

  it('start over on reset, as the registry asks of every metric', async () => {
    const r = new Registry();
    const c = new ScalarFamily('counter', 'c_total', 'C.', LABELS, r);
    c.inc(['a', 'b'], 5);
    expect(c.value(['a', 'b'])).toBe(5);
    r.resetMetrics();
    expect(c.value(['a', 'b'])).toBe(0);
    expect(await r.metrics()).toBe('# HELP c_total C.\n# TYPE c_total counter\n');
  });
});
