// The metrics every call updates, kept as plain numbers and handed to prom-client's registry,
// which formats them, only when /metrics is scraped (ADR 0022). prom-client's own counters and
// histograms validate and hash a label object on every update: with a dozen updates a call that
// was ~3 % of the sidecar's CPU under load and ~6 KB of garbage per call. Here a series is found
// by its label values joined into one key, and the exposition is prom-client's, unchanged (a
// test compares the two byte for byte).
import type { Registry } from 'prom-client';

/** Label values in the order of the family's label names. */
export type LabelValues = readonly string[];

// Not a character label values carry: routes, models and codes are config or API identifiers.
const SEP = '\u0001';

interface Value {
  labels?: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName?: string;
}

interface Exported {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: Value[];
  aggregator: 'sum';
}

abstract class Family<S extends { labels: Record<string, string> }> {
  protected readonly series = new Map<string, S>();
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];

  constructor(name: string, help: string, labelNames: readonly string[], registry: Registry) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    // prom-client's registry takes any object with a name, get() and reset(): the same contract
    // its own metric classes keep.
    registry.registerMetric(this as never);
  }

  protected find(values: LabelValues): S {
    const key = values.length === 1 ? (values[0] as string) : values.join(SEP);
    let s = this.series.get(key);
    if (s === undefined) {
      if (values.length !== this.labelNames.length) throw new Error(`${this.name}: ${values.length} label values for ${this.labelNames.length} label names`);
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] as string));
      s = this.fresh(labels);
      this.series.set(key, s);
    }
    return s;
  }

  protected abstract fresh(labels: Record<string, string>): S;

  reset(): void {
    this.series.clear();
  }
}

interface Scalar {
  labels: Record<string, string>;
  value: number;
}

/** A counter (or, with dec, a gauge) per label set. */
export class ScalarFamily extends Family<Scalar> {
  readonly type: 'counter' | 'gauge';

  constructor(type: 'counter' | 'gauge', name: string, help: string, labelNames: readonly string[], registry: Registry) {
    super(name, help, labelNames, registry);
    this.type = type;
  }

  protected fresh(labels: Record<string, string>): Scalar {
    return { labels, value: 0 };
  }

  inc(values: LabelValues, by = 1): void {
    if (!(by >= 0 && Number.isFinite(by))) throw new Error(`${this.name}: cannot add ${by}`);
    this.find(values).value += by;
  }

  dec(values: LabelValues, by = 1): void {
    if (this.type !== 'gauge') throw new Error(`${this.name}: a counter only goes up`);
    this.find(values).value -= by;
  }

  /** The value of one series, 0 if it was never touched. */
  value(values: LabelValues): number {
    return this.series.get(values.join(SEP))?.value ?? 0;
  }

  get(): Exported {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: [...this.series.values()].map((s) => ({ labels: { ...s.labels }, value: s.value })) };
  }
}

interface Buckets {
  labels: Record<string, string>;
  /** Observations per bucket (not cumulative); the last slot holds those above every bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/** A histogram per label set, with prom-client's bucket rule: a value goes in the first bucket whose bound is ≥ it. */
export class HistogramFamily extends Family<Buckets> {
  readonly type = 'histogram';
  private readonly bounds: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[], registry: Registry) {
    super(name, help, labelNames, registry);
    if (labelNames.includes('le')) throw new Error('le is a reserved label name');
    this.bounds = [...buckets].sort((a, b) => a - b);
  }

  protected fresh(labels: Record<string, string>): Buckets {
    return { labels, counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
  }

  observe(values: LabelValues, v: number): void {
    if (!Number.isFinite(v)) throw new Error(`${this.name}: cannot observe ${v}`);
    const s = this.find(values);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && v > (bounds[i] as number)) i++;
    (s.counts[i] as number)++;
    s.sum += v;
    s.count++;
  }

  // The text exposition, in the shape prom-client's own histogram gives its registry: `le` first,
  // the series' labels after it as shared labels.
  getForPromString(): Exported {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += s.counts[i] as number;
        values.push({ labels: { le }, sharedLabels: s.labels, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** JSON (registry.getMetricsAsJSON): the shared labels folded into each value's labels. */
  get(): Exported {
    const out = this.getForPromString();
    out.values = out.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return out;
  }
}
