// The state one sidecar process shares between its listeners: config, keys, telemetry, and the
// in-flight count that graceful shutdown waits on.
import type { Logger } from 'pino';
import { ConfigStore } from './config/store.ts';
import { KeyStore } from './config/keys.ts';
import { Metrics } from './telemetry/metrics.ts';
import { requestLineWriter, type RequestRecord } from './telemetry/log.ts';
import type { StateStore } from './state/types.ts';
import { NANO_PER_USD, type BudgetLevel } from './state/types.ts';
import { Breakers, type BreakerState } from './policy/breaker.ts';
import { ConcurrencyGate } from './policy/concurrency.ts';
import { IdempotencyCache } from './policy/idempotency.ts';
import { QualitySignals } from './policy/quality.ts';
import type { Reviews } from './review/store.ts';
import type { RuntimeConfig, RuntimeRoute } from './config/runtime.ts';
import { periodOf } from './policy/periods.ts';
import type { BudgetUse } from './pipeline/admission.ts';
import type { BatchService } from './batch/service.ts';

export interface SidecarOptions {
  configPath: string;
  secretsDir: string;
  log: Logger;
  /** Where limits and budgets are counted. */
  state: StateStore;
  /** The human review queue (durable with a state dir). */
  reviews: Reviews;
  /** How often config and key files are re-checked besides the file watchers. */
  pollMs?: number;
}

interface RouteUsage {
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  cost_usd: number;
}

export class Sidecar {
  readonly log: Logger;
  /** The request log line (invariant 6): one per exchange, written by Exchange.finish. */
  readonly logRequest: (record: RequestRecord) => void;
  readonly metrics = new Metrics();
  readonly keys: KeyStore;
  readonly config: ConfigStore;
  readonly startedAt = new Date();
  readonly state: StateStore;
  readonly breakers = new Breakers();
  readonly idempotency = new IdempotencyCache();
  readonly quality = new QualitySignals();
  readonly reviews: Reviews;
  /** Governed Batch jobs and deferred calls; set by startSidecar once the state dir is open. */
  batches!: BatchService;
  inFlight = 0;
  draining = false;
  private readonly gates = new Map<string, ConcurrencyGate>();
  /** `budget key|threshold` already announced by this sidecar. */
  private readonly alerted = new Set<string>();
  private readonly usage = new Map<string, RouteUsage>();
  private idleWaiters: Array<() => void> = [];

  constructor(opts: SidecarOptions) {
    this.log = opts.log;
    this.logRequest = requestLineWriter(opts.log);
    this.state = opts.state;
    this.reviews = opts.reviews;
    this.keys = new KeyStore(opts.log, this.metrics, opts.pollMs);
    this.config = new ConfigStore({ path: opts.configPath, secretsDir: opts.secretsDir, keys: this.keys, log: opts.log, metrics: this.metrics, onLoad: (c) => this.onConfig(c) });
  }

  private onConfig(config: RuntimeConfig): void {
    // Budgets removed from the config leave the metric with them.
    this.metrics.budgetLimit.reset();
    for (const b of config.source.budgets) this.metrics.budgetLimit.set({ budget: `${b.namespace}/${b.name}` }, b.limitUSD);
    this.applyReported(config);
  }

  /**
   * The operator's sum of every replica's spend becomes a floor for this period's counter, so a
   * budget exhausted elsewhere blocks here too and a fresh sidecar does not start from zero.
   */
  private applyReported(config: RuntimeConfig, now = Date.now()): void {
    if (!this.state.setFloors) return;
    const floors: Array<{ key: string; spent: number; expiresAt: number }> = [];
    for (const b of config.source.budgets) {
      if (!b.reported) continue;
      const period = periodOf(b.period, now);
      // A sum from a period that has ended says nothing about this one.
      if (b.reported.period !== period.key) continue;
      const usd = b.reported.exhausted ? Math.max(b.reported.spentUSD, b.limitUSD) : b.reported.spentUSD;
      // Same counter key as admission's budget reservations.
      floors.push({ key: `b:${b.namespace}/${b.name}:${period.key}`, spent: Math.round(usd * NANO_PER_USD), expiresAt: period.end });
    }
    this.state.setFloors(floors, now);
  }

  /** Ready: a config is in force, every key it needs is readable, and no shutdown has begun. */
  readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (this.draining) reasons.push('shutting down');
    if (!this.config.current) reasons.push(...(this.config.lastError ?? ['no config loaded yet']));
    reasons.push(...this.keys.problems().map((p) => `API key unavailable: ${p}`));
    return { ready: reasons.length === 0, reasons };
  }

  account(r: RequestRecord): void {
    const key = r.route ?? '(none)';
    let u = this.usage.get(key);
    if (!u) {
      u = { requests: 0, errors: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0, reasoning_tokens: 0, cost_usd: 0 };
      this.usage.set(key, u);
    }
    u.requests++;
    if (r.status >= 400) u.errors++;
    u.input_tokens += r.input_tokens ?? 0;
    u.output_tokens += r.output_tokens ?? 0;
    u.cached_tokens += r.cached_tokens ?? 0;
    u.reasoning_tokens += r.reasoning_tokens ?? 0;
    u.cost_usd += r.cost_usd ?? 0;
  }

  /** The route's concurrency gate, rebuilt when its limits change; none without limits.concurrency. */
  gate(route: RuntimeRoute): ConcurrencyGate | undefined {
    const { concurrency, queue } = route.spec.limits;
    if (concurrency === undefined) return undefined;
    const found = this.gates.get(route.id);
    if (found && found.limit === concurrency && found.maxWaiting === queue.maxWaiting && found.maxWaitMs === queue.maxWaitMs) return found;
    const gate = new ConcurrencyGate(concurrency, queue.maxWaiting, queue.maxWaitMs);
    this.gates.set(route.id, gate);
    return gate;
  }

  onBreaker(upstream: string, model: string, state: BreakerState): void {
    this.metrics.breakerState.set({ upstream, gen_ai_request_model: model }, state === 'closed' ? 0 : state === 'half_open' ? 1 : 2);
    this.log.warn({ event: 'circuit', upstream, model, state }, `circuit ${state.replace('_', '-')} for ${model}`);
  }

  /** After a settlement: budget gauges, and alertAt thresholds crossed (announced once per period). */
  onBudgetLevels(uses: BudgetUse[], levels: Map<string, BudgetLevel>): void {
    for (const u of uses) {
      const level = levels.get(u.key);
      if (!level) continue;
      const name = `${u.budget.namespace}/${u.budget.name}`;
      const limit = u.budget.limitUSD * NANO_PER_USD;
      this.metrics.budgetSpent.set({ budget: name }, level.spent / NANO_PER_USD);
      this.metrics.budgetRemaining.set({ budget: name }, Math.max(0, limit - level.spent - level.reserved) / NANO_PER_USD);
      for (const threshold of u.budget.alertAt) {
        const id = `${u.key}|${threshold}`;
        if (level.spent < threshold * limit || this.alerted.has(id)) continue;
        this.alerted.add(id);
        this.metrics.budgetAlerts.inc({ budget: name, threshold: String(threshold) });
        this.log.warn(
          { event: 'budget_alert', budget: name, period: u.period.key, threshold, spent_usd: level.spent / NANO_PER_USD, limit_usd: u.budget.limitUSD, on_exhausted: u.budget.onExhausted },
          `budget ${name} passed ${Math.round(threshold * 100)}% of its limit`,
        );
      }
    }
  }

  /** Counters per route since start, and budget spend per period (the operator adds these up across pods). */
  async usageReport(): Promise<unknown> {
    type Row = { period: string; spent_usd: number; reserved_usd: number; refused?: number; limit_usd?: number; users: Record<string, { spent_usd: number; reserved_usd: number }> };
    const budgets: Record<string, Row> = {};
    const limits = new Map((this.config.current?.source.budgets ?? []).map((b) => [`${b.namespace}/${b.name}`, b.limitUSD]));
    for (const [key, level] of await this.state.snapshot(Date.now())) {
      // Keys are `b:<namespace>/<name>:<period>` and, per user, `...:u:<digest>`.
      const m = /^b:([^:]+):([^:]+)(?::u:(.+))?$/.exec(key);
      if (!m) continue;
      const [, name = '', period = '', user] = m;
      const row = (budgets[`${name}@${period}`] ??= { period, spent_usd: 0, reserved_usd: 0, users: {}, ...(limits.has(name) ? { limit_usd: limits.get(name) as number } : {}) });
      const amounts = { spent_usd: level.spent / NANO_PER_USD, reserved_usd: level.reserved / NANO_PER_USD };
      if (user) row.users[user] = amounts;
      else Object.assign(row, amounts, level.refused ? { refused: level.refused } : {});
    }
    return {
      since: this.startedAt.toISOString(),
      config_version: this.config.current?.version ?? null,
      state_backend: this.state.kind,
      routes: Object.fromEntries(this.usage),
      budgets,
    };
  }

  onIdle(): void {
    if (this.inFlight > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when nothing is in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.config.stop();
    this.keys.close();
    await this.batches?.close();
    await this.state.close();
    await this.reviews.close?.();
  }
}
