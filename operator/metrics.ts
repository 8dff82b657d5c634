// The operator's Prometheus metrics, on its own registry (never the global one).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles: Counter;
  readonly reconcileDuration: Histogram;
  readonly reconcileErrors: Counter;
  readonly queueDepth: Gauge;
  readonly watchRestarts: Counter;
  readonly writes: Counter;
  readonly leader: Gauge;
  readonly scrapes: Counter;
  readonly watchSilence: Gauge;
  readonly billingDriftUSD: Gauge;
  readonly billingDriftRatio: Gauge;
  readonly billingChecks: Counter;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.reconciles = new Counter({ name: 'ai_envelope_operator_reconcile_total', help: 'Namespace reconciles by result', labelNames: ['result'], registers });
    this.reconcileDuration = new Histogram({ name: 'ai_envelope_operator_reconcile_duration_seconds', help: 'Time to reconcile one namespace', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers });
    this.reconcileErrors = new Counter({ name: 'ai_envelope_operator_reconcile_errors_total', help: 'Reconciles that failed and will be retried', registers });
    this.queueDepth = new Gauge({ name: 'ai_envelope_operator_queue_depth', help: 'Namespaces waiting to be reconciled (queued or backing off)', registers });
    this.watchRestarts = new Counter({ name: 'ai_envelope_operator_watch_restarts_total', help: 'Watches restarted, by resource and reason (end, error, gone, silent)', labelNames: ['resource', 'reason'], registers });
    this.writes = new Counter({ name: 'ai_envelope_operator_writes_total', help: 'Writes to the API server by kind and verb', labelNames: ['kind', 'verb'], registers });
    this.leader = new Gauge({ name: 'ai_envelope_operator_leader', help: '1 while this replica holds the leader Lease', registers });
    this.scrapes = new Counter({ name: 'ai_envelope_operator_usage_scrapes_total', help: 'Reads of sidecar /usage by result', labelNames: ['result'], registers });
    // `budget_namespace`, not `namespace`: Prometheus gives the scraped operator pod's namespace that name.
    const billing = ['budget_namespace', 'budget', 'project'];
    this.billingDriftUSD = new Gauge({ name: 'ai_envelope_billing_drift_usd', help: "OpenAI's bill minus the envelope's spend for the budget's project, on the day of the largest difference among those compared", labelNames: billing, registers });
    this.billingDriftRatio = new Gauge({ name: 'ai_envelope_billing_drift_ratio', help: 'That difference over the larger of bill and spend (-1 to 1)', labelNames: billing, registers });
    this.billingChecks = new Counter({ name: 'ai_envelope_billing_checks_total', help: "Reads of OpenAI's organization Costs API by result", labelNames: ['result'], registers });
    this.watchSilence = new Gauge({ name: 'ai_envelope_operator_watch_silence_seconds', help: 'Seconds since each watch last heard from the API server', labelNames: ['resource'], registers });
  }
}
