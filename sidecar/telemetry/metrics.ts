// Prometheus metrics. Token and duration metrics follow the OpenTelemetry GenAI semantic
// conventions (names with dots become underscores); the rest are ai_envelope_*. Labels are kept
// to bounded sets: routes and models come from config or the upstream's model ids.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { HistogramFamily, ScalarFamily } from './series.ts';
import { forEachSignal } from '../policy/quality.ts';
import type { RequestRecord } from './log.ts';

const OPERATION: Record<string, string> = {
  'chat.completions': 'chat',
  responses: 'chat',
  embeddings: 'embeddings',
  moderations: 'moderations',
};

export class Metrics {
  readonly registry = new Registry();
  // Updated on every call: plain numbers until a scrape (series.ts).
  private readonly duration: HistogramFamily;
  private readonly tokens: HistogramFamily;
  private readonly ttft: HistogramFamily;
  private readonly requests: ScalarFamily;
  readonly cost: ScalarFamily;
  private readonly limited: ScalarFamily;
  private readonly quality: ScalarFamily;
  readonly promptVersion: ScalarFamily;
  readonly inFlight: ScalarFamily;
  readonly retries: Counter;
  readonly configReloads: Counter;
  readonly configInfo: Gauge;
  readonly keyReloads: Counter;
  readonly batchSettlements: Counter;
  readonly fallbacks: Counter;
  readonly breakerState: Gauge;
  readonly budgetSpent: Gauge;
  readonly budgetRemaining: Gauge;
  readonly budgetLimit: Gauge;
  readonly budgetAlerts: Counter;
  readonly stateBackend: Gauge;
  readonly moderation: Counter;
  readonly redactions: Counter;
  readonly outputViolations: Counter;
  readonly feedback: Counter;
  readonly reviews: Counter;

  constructor() {
    const registers = [this.registry];
    // The event-loop delay histogram samples with a timer: prom-client's 10 ms default woke an idle
    // sidecar 100 times a second in every pod (bench: "thread wake-ups at rest"). At 100 ms a stall
    // longer than that is still always caught, and shorter ones in proportion.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
    const r = this.registry;
    this.duration = new HistogramFamily(
      'gen_ai_client_operation_duration_seconds',
      'Duration of GenAI operations through the sidecar, retries included.',
      ['gen_ai_operation_name', 'gen_ai_system', 'gen_ai_request_model', 'gen_ai_response_model', 'error_type', 'route', 'prompt_version'],
      [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92],
      r,
    );
    this.tokens = new HistogramFamily(
      'gen_ai_client_token_usage',
      'Tokens used per GenAI operation, by token type (input, output).',
      ['gen_ai_operation_name', 'gen_ai_system', 'gen_ai_request_model', 'gen_ai_response_model', 'gen_ai_token_type', 'route', 'prompt_version'],
      [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304],
      r,
    );
    this.ttft = new HistogramFamily('ai_envelope_time_to_first_token_seconds', 'Time from the app request to the first streamed token reaching the app.', ['route', 'gen_ai_request_model'], [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32], r);
    this.requests = new ScalarFamily('counter', 'ai_envelope_requests_total', 'Requests handled by the sidecar, by route, endpoint, HTTP status and envelope error code.', ['route', 'endpoint', 'status', 'error_code', 'prompt_version'], r);
    this.retries = new Counter({
      name: 'ai_envelope_retries_total',
      help: 'Upstream attempts repeated by the sidecar, by reason.',
      labelNames: ['route', 'reason'],
      registers,
    });
    this.inFlight = new ScalarFamily('gauge', 'ai_envelope_in_flight_requests', 'Requests being served now.', ['route'], r);
    this.configReloads = new Counter({
      name: 'ai_envelope_config_reloads_total',
      help: 'Config loads by result (success, failure: the last good config stays).',
      labelNames: ['result'],
      registers,
    });
    this.configInfo = new Gauge({ name: 'ai_envelope_config_info', help: 'The config version in force (value 1).', labelNames: ['version'], registers });
    this.cost = new ScalarFamily('counter', 'ai_envelope_cost_usd_total', 'Spend in USD, from the upstream usage and the price table.', ['route', 'gen_ai_request_model', 'prompt_version'], r);
    this.fallbacks = new Counter({
      name: 'ai_envelope_fallbacks_total',
      help: 'Calls moved from a model to the next in model.fallbacks, by reason.',
      labelNames: ['route', 'from', 'reason'],
      registers,
    });
    this.limited = new ScalarFamily('counter', 'ai_envelope_limited_total', 'Calls refused by a limit or a budget, by reason.', ['route', 'reason'], r);
    this.breakerState = new Gauge({
      name: 'ai_envelope_circuit_state',
      help: 'Circuit breaker state per upstream and model: 0 closed, 1 half-open, 2 open.',
      labelNames: ['upstream', 'gen_ai_request_model'],
      registers,
    });
    this.budgetSpent = new Gauge({ name: 'ai_envelope_budget_spent_usd', help: 'Spent in the current period, as this sidecar last saw it.', labelNames: ['budget'], registers });
    this.budgetLimit = new Gauge({ name: 'ai_envelope_budget_limit_usd', help: 'limitUSD of each budget in the config in force: what spent and remaining add up against.', labelNames: ['budget'], registers });
    this.budgetRemaining = new Gauge({ name: 'ai_envelope_budget_remaining_usd', help: 'Left in the current period (limit − spent − reserved).', labelNames: ['budget'], registers });
    this.budgetAlerts = new Counter({ name: 'ai_envelope_budget_alerts_total', help: 'alertAt thresholds crossed.', labelNames: ['budget', 'threshold'], registers });
    this.stateBackend = new Gauge({ name: 'ai_envelope_state_backend', help: 'Where limits and budgets are counted: 1 for the backend in use.', labelNames: ['backend'], registers });
    this.moderation = new Counter({ name: 'ai_envelope_moderation_total', help: 'Input moderation checks, by result (passed, flagged, unavailable).', labelNames: ['route', 'result'], registers });
    this.redactions = new Counter({ name: 'ai_envelope_redactions_total', help: 'Personal data and secrets found in inputs, by kind (never the values).', labelNames: ['route', 'kind', 'action'], registers });
    this.outputViolations = new Counter({
      name: 'ai_envelope_output_violations_total',
      help: 'Answers that broke the route output contract, by code and what was done (repair, fallback, reject).',
      labelNames: ['route', 'code', 'action'],
      registers,
    });
    this.promptVersion = new ScalarFamily('counter', 'ai_envelope_prompt_requests_total', 'Calls per route prompt version.', ['route', 'prompt_version'], r);
    this.quality = new ScalarFamily(
      'counter',
      'ai_envelope_quality_signals_total',
      'Answers by quality signal: output_valid, output_repaired, output_fallback, output_rejected, tool_refused, repeated_input.',
      ['route', 'gen_ai_request_model', 'prompt_version', 'signal'],
      r,
    );
    this.feedback = new Counter({
      name: 'ai_envelope_feedback_total',
      help: 'What apps reported about answers: accepted, edited, rejected, reported.',
      labelNames: ['route', 'gen_ai_request_model', 'prompt_version', 'outcome'],
      registers,
    });
    this.reviews = new Counter({
      name: 'ai_envelope_reviews_total',
      help: 'Human review items by reason (output_invalid, moderation_flagged) and event (held, approved, rejected, edited, released).',
      labelNames: ['route', 'reason', 'event'],
      registers,
    });
    this.batchSettlements = new Counter({
      name: 'ai_envelope_batch_settlements_total',
      help: 'Batch jobs settled against budgets from their output file, by final status.',
      labelNames: ['route', 'status'],
      registers,
    });
    this.keyReloads = new Counter({
      name: 'ai_envelope_key_reloads_total',
      help: 'API key file reads after a change, by result. Never the key itself.',
      labelNames: ['result'],
      registers,
    });
  }

  observe(r: RequestRecord): void {
    // The prompt version on every call's series: a metric that moves can be read against the
    // version that moved it (the config hash is in ai_envelope_config_info and every log line).
    const prompt_version = r.prompt_version ?? '';
    const route = r.route ?? '';
    const model = r.model ?? '';
    if (r.cost_usd) this.cost.inc([route, model, prompt_version], r.cost_usd);
    if (r.error_code === 'rate_limited' || r.error_code === 'concurrency_limited' || r.error_code === 'budget_exhausted') this.limited.inc([route, r.error_code]);
    this.requests.inc([route, r.endpoint, String(r.status), r.error_code ?? '', prompt_version]);
    forEachSignal(r, (signal) => this.quality.inc([route, model, prompt_version, signal]));
    const operation = OPERATION[r.endpoint];
    if (!operation) return;
    const responseModel = r.response_model ?? '';
    this.duration.observe([operation, 'openai', model, responseModel, r.status >= 400 ? (r.error_code ?? String(r.status)) : '', route, prompt_version], r.latency_ms / 1000);
    if (r.input_tokens !== undefined) this.tokens.observe([operation, 'openai', model, responseModel, 'input', route, prompt_version], r.input_tokens);
    if (r.output_tokens !== undefined) this.tokens.observe([operation, 'openai', model, responseModel, 'output', route, prompt_version], r.output_tokens);
    if (r.ttft_ms !== undefined) this.ttft.observe([route, model], r.ttft_ms / 1000);
  }

  setConfigVersion(version: string): void {
    this.configInfo.reset();
    this.configInfo.set({ version }, 1);
  }
}
