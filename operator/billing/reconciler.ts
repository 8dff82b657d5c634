// The leader's periodic comparison of OpenAI's bill with the envelope's spend: it reads the admin
// key from its Secret (through the API server, each round, so a rotated key is picked up), the
// Costs API for the last days grouped by project, and each AIBudget's daily spend; the outcome
// goes into the budgets' status (written by the controller's reconcile), two gauges and Events.
// Without an admin key Secret it does nothing and every budget's status says so.
import type { Logger } from 'pino';
import type { KubeClient, KubeObject } from '../kube/client.ts';
import type { EventRecorder } from '../apply/events.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { API_VERSION } from '../../crds/schema.ts';
import { compareDays, dayStart, driftEvents, lastDates, reconciliationOf, worstDay, type ByDay, type Reconciliation, type Threshold } from './drift.ts';
import { readBill } from './costs-client.ts';

export interface BillingOptions {
  /** The Secret holding the admin key, in the operator's namespace; absent: reconciliation is off. */
  adminKeySecret?: { namespace: string; name: string; key: string };
  /** The OpenAI API, `/v1` included. */
  baseURL: string;
  intervalMs: number;
  /** The first round after start or after becoming leader: soon, but once spend has been read. */
  firstDelayMs: number;
  /** UTC days compared, today included. */
  days: number;
  threshold: Threshold;
  timeoutMs: number;
}

export interface BillingDeps {
  client: KubeClient;
  log: Logger;
  metrics: OperatorMetrics;
  events: EventRecorder;
  isLeader: () => boolean;
  budgets: () => KubeObject[];
  /** The envelope's spend of one budget per UTC day. */
  estimates: (b: KubeObject) => ByDay;
  /** Statuses to rewrite: the namespaces whose budgets have a new reconciliation. */
  onResults: (namespaces: Set<string>) => void;
}

const idOf = (b: KubeObject) => `${b.metadata.namespace}/${b.metadata.name}`;
const projectOf = (b: KubeObject) => (b.spec as { reconcile?: { projectId?: unknown } } | undefined)?.reconcile?.projectId;
const previous = (b: KubeObject) => (b.status as { reconciliation?: Reconciliation } | undefined)?.reconciliation;
const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export class BillingReconciler {
  private readonly deps: BillingDeps;
  private readonly opts: BillingOptions;
  private readonly results = new Map<string, Reconciliation>();
  private failure: { reason: string; message: string; at: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private first: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(deps: BillingDeps, opts: BillingOptions) {
    this.deps = deps;
    this.opts = opts;
  }

  get enabled(): boolean {
    return this.opts.adminKeySecret !== undefined;
  }

  start(): void {
    if (!this.enabled) {
      this.deps.log.info({ event: 'billing_reconciliation_disabled', reason: 'NoAdminKey' }, 'no admin key Secret configured (--billing-secret): spend is not reconciled with OpenAI billing');
      return;
    }
    const s = this.opts.adminKeySecret as NonNullable<BillingOptions['adminKeySecret']>;
    this.deps.log.info({ event: 'billing_reconciliation_enabled', secret: `${s.namespace}/${s.name}`, key: s.key, interval_seconds: this.opts.intervalMs / 1000, days: this.opts.days }, 'spend is reconciled with OpenAI billing');
    this.timer = setInterval(() => void this.run(), this.opts.intervalMs);
    this.timer.unref();
    this.soon();
  }

  /** A round shortly: after start, and when this replica becomes leader. */
  soon(): void {
    if (!this.enabled) return;
    clearTimeout(this.first);
    this.first = setTimeout(() => void this.run(), this.opts.firstDelayMs);
    this.first.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.first);
    await this.running;
  }

  /** What the budget's status should say about billing, as of the last round. */
  statusFor(b: KubeObject): Reconciliation {
    if (!this.enabled) return { state: 'Disabled', reason: 'NoAdminKey', message: 'the operator has no admin key Secret (chart value billing.adminKeySecret.name): spend is not compared with OpenAI billing' };
    const projectId = projectOf(b);
    if (typeof projectId !== 'string') return { state: 'Disabled', reason: 'NoProjectId', message: 'set spec.reconcile.projectId to compare this budget with OpenAI billing' };
    const prev = this.results.get(idOf(b)) ?? previous(b);
    const last = prev?.projectId === projectId ? prev : undefined;
    if (this.failure) {
      return { state: 'Error', reason: this.failure.reason, message: this.failure.message, projectId, lastCheckedAt: rfc3339(this.failure.at), ...(last?.days ? { days: last.days } : {}) };
    }
    return last ?? { state: 'Pending', reason: 'NotCheckedYet', message: "OpenAI's bill has not been read yet", projectId };
  }

  /** One round (leader only); concurrent calls share it. */
  run(): Promise<void> {
    if (!this.enabled || !this.deps.isLeader()) return Promise.resolve();
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async round(): Promise<void> {
    const { log, metrics } = this.deps;
    const now = Date.now();
    const budgets = this.deps.budgets().filter((b) => !b.metadata.deletionTimestamp && typeof projectOf(b) === 'string');
    const namespaces = new Set(this.deps.budgets().map((b) => b.metadata.namespace ?? ''));
    try {
      const adminKey = await this.adminKey();
      const projects = [...new Set(budgets.map((b) => projectOf(b) as string))].sort();
      const bill = projects.length === 0 ? new Map() : await readBill({ baseURL: this.opts.baseURL, adminKey, startTime: dayStart(now, this.opts.days - 1) / 1000, projectIds: projects, timeoutMs: this.opts.timeoutMs });
      this.failure = undefined;
      metrics.billingChecks.inc({ result: 'success' });
      metrics.billingDriftUSD.reset();
      metrics.billingDriftRatio.reset();
      const dates = lastDates(now, this.opts.days);
      const fresh = new Map<string, Reconciliation>();
      for (const projectId of projects) {
        const group = budgets.filter((b) => projectOf(b) === projectId);
        const estimated = new Map<string, number>();
        for (const b of group) for (const [date, nano] of this.deps.estimates(b)) estimated.set(date, (estimated.get(date) ?? 0) + nano);
        // Only days the envelope watched are compared: before it was installed it counted nothing.
        const days = compareDays(dates.filter((d) => estimated.has(d)), bill.get(projectId) ?? new Map(), estimated);
        const rec = reconciliationOf(projectId, days, this.opts.threshold, now);
        const worst = worstDay(days);
        for (const b of group) {
          const labels = { budget_namespace: b.metadata.namespace ?? '', budget: b.metadata.name, project: projectId };
          metrics.billingDriftUSD.set(labels, worst?.driftUSD ?? 0);
          metrics.billingDriftRatio.set(labels, worst?.driftRatio ?? 0);
          for (const e of driftEvents(this.results.get(idOf(b)) ?? previous(b), rec, this.opts.threshold)) {
            await this.deps.events.record({ ...b, apiVersion: API_VERSION, kind: 'AIBudget' }, e);
          }
          fresh.set(idOf(b), rec);
        }
        log.info({ event: 'billing_reconciled', project: projectId, budgets: group.map(idOf), state: rec.state, days: days.length, worst_drift_usd: worst?.driftUSD ?? 0 }, rec.state === 'Ok' ? "spend agrees with OpenAI's bill" : "spend differs from OpenAI's bill");
      }
      this.results.clear();
      for (const [k, v] of fresh) this.results.set(k, v);
    } catch (err) {
      const message = (err as Error).message;
      const reason = err instanceof AdminKeyError ? 'AdminKeyUnavailable' : 'CostsUnavailable';
      this.failure = { reason, message, at: now };
      metrics.billingChecks.inc({ result: 'error' });
      log.warn({ event: 'billing_reconcile_failed', reason, error: message }, "could not compare spend with OpenAI's bill; will try again next round");
    }
    this.deps.onResults(namespaces);
  }

  private async adminKey(): Promise<string> {
    const s = this.opts.adminKeySecret as NonNullable<BillingOptions['adminKeySecret']>;
    let secret: KubeObject;
    try {
      secret = await this.deps.client.call<KubeObject>('GET', `/api/v1/namespaces/${s.namespace}/secrets/${s.name}`, { timeoutMs: this.opts.timeoutMs });
    } catch (err) {
      throw new AdminKeyError(`cannot read Secret ${s.namespace}/${s.name}: ${(err as Error).message}`);
    }
    const encoded = (secret.data as Record<string, string> | undefined)?.[s.key];
    if (!encoded) throw new AdminKeyError(`Secret ${s.namespace}/${s.name} has no key '${s.key}'`);
    const key = Buffer.from(encoded, 'base64').toString('utf8').trim();
    if (!key) throw new AdminKeyError(`Secret ${s.namespace}/${s.name} key '${s.key}' is empty`);
    return key;
  }
}

class AdminKeyError extends Error {}
