// Watch → queue → reconcile → apply. Every change to an AIRoute, AIBudget, owned ConfigMap,
// sidecar Pod or Secret queues its namespace; a worker reconciles a namespace from the caches
// (never from event payloads), so any number of events collapse into one pass that sees them all.
// Only the leader reconciles and reads spend; followers keep their caches warm for a quick take-over.
import type { Logger } from 'pino';
import { API_VERSION, type AIBudgetStatus, type AIRouteStatus } from '../../crds/schema.ts';
import type { KubeClient, KubeObject } from '../kube/client.ts';
import { isConflict, isNotFound } from '../kube/client.ts';
import { SupervisedWatch, type WatchOptions } from './watch.ts';
import { WorkQueue } from './queue.ts';
import { reconcileNamespace, CONFIGMAP_SELECTOR, SPEC_VERSION_ANNOTATION, type DesiredStatus } from '../reconcile/desired.ts';
import { podFact, INJECT_LABEL } from '../reconcile/pods.ts';
import { applyConfigMap, configMapUpToDate, deleteConfigMap, patchStatus, statusUpToDate } from '../apply/writes.ts';
import { EventRecorder, type EventSpec } from '../apply/events.ts';
import { SpendLedger, type BudgetRef, type PodReport } from '../spend/ledger.ts';
import { scrapePod } from '../spend/scraper.ts';
import type { OperatorMetrics } from '../metrics.ts';
import type { Condition } from '../reconcile/conditions.ts';
import type { Period } from '../../sidecar/policy/periods.ts';
import { DailySpend } from '../billing/daily.ts';
import { BillingReconciler, type BillingOptions } from '../billing/reconciler.ts';

export interface ControllerOptions {
  client: KubeClient;
  log: Logger;
  metrics: OperatorMetrics;
  isLeader: () => boolean;
  identity: string;
  workers: number;
  watch?: Partial<WatchOptions>;
  /** Every namespace is reconciled again this often (period roll-over, anything missed). */
  resyncMs: number;
  /** How often sidecars' /usage is read. */
  spendIntervalMs: number;
  scrapeTimeoutMs: number;
  /** Reconciliation of spend with OpenAI billing; without an admin key Secret it is off. */
  billing?: BillingOptions;
}

const BILLING_OFF: BillingOptions = { baseURL: 'https://api.openai.com/v1', intervalMs: 3_600_000, firstDelayMs: 30_000, days: 7, threshold: { ratio: 0.05, minUSD: 0.01 }, timeoutMs: 30_000 };

const METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
const METADATA = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

/** Writes within one namespace run this many at a time. */
const NAMESPACE_PARALLELISM = 4;

async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<unknown[]> {
  const errors: unknown[] = [];
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return errors;
}

export class Controller {
  readonly routes: SupervisedWatch<KubeObject>;
  readonly budgets: SupervisedWatch<KubeObject>;
  readonly configMaps: SupervisedWatch<KubeObject>;
  readonly pods: SupervisedWatch<KubeObject>;
  readonly secrets: SupervisedWatch<KubeObject>;
  private readonly watches: Array<SupervisedWatch<KubeObject>>;
  private readonly queue: WorkQueue;
  private ledger = new SpendLedger();
  private daily = new DailySpend();
  readonly billing: BillingReconciler;
  private readonly events: EventRecorder;
  private readonly opts: ControllerOptions;
  private readonly log: Logger;
  private resync: NodeJS.Timeout | undefined;
  private scrapeTimer: NodeJS.Timeout | undefined;
  private scraping = false;
  private wasReady = false;
  private stopped = false;

  constructor(opts: ControllerOptions) {
    this.opts = opts;
    this.log = opts.log;
    const { client, log, metrics } = opts;
    this.events = new EventRecorder(client, log, opts.identity);
    this.queue = new WorkQueue((ns) => this.reconcile(ns), {
      concurrency: opts.workers,
      backoff: { baseMs: 250, maxMs: 60_000 },
      onDepth: (d) => metrics.queueDepth.set(d),
      onError: (ns, err, attempt, retryInMs) => {
        metrics.reconcileErrors.inc();
        log.warn({ event: 'reconcile_failed', namespace: ns, attempt, retry_in_ms: retryInMs, error: (err as Error).message }, 'reconcile failed; will retry');
      },
    });
    const make = (resource: string, path: string, extra: { labelSelector?: string; listAccept?: string; watchAccept?: string }, onEvent: (type: string, obj: KubeObject, old: KubeObject | undefined) => void) =>
      new SupervisedWatch<KubeObject>(
        client,
        { resource, path, ...extra },
        {
          onEvent: (type, obj, old) => onEvent(type, obj, old),
          onRestart: (reason) => metrics.watchRestarts.inc({ resource, reason }),
          onSynced: () => this.maybeReady(),
        },
        log,
        opts.watch,
      );
    const nsOf = (o: KubeObject) => o.metadata.namespace ?? '';
    // A status change alone (mostly the echo of this operator's own write) changes nothing to do;
    // the periodic resync catches anyone else's edits of a status.
    const specChanged = (type: string, o: KubeObject, old: KubeObject | undefined) =>
      type !== 'MODIFIED' ||
      !old ||
      old.metadata.generation !== o.metadata.generation ||
      old.metadata.deletionTimestamp !== o.metadata.deletionTimestamp ||
      JSON.stringify(old.metadata.labels ?? {}) !== JSON.stringify(o.metadata.labels ?? {});
    this.routes = make('airoutes', `/apis/${API_VERSION}/airoutes`, {}, (t, o, old) => specChanged(t, o, old) && this.enqueue(nsOf(o)));
    this.budgets = make('aibudgets', `/apis/${API_VERSION}/aibudgets`, {}, (t, o, old) => specChanged(t, o, old) && this.enqueue(nsOf(o)));
    this.configMaps = make('configmaps', '/api/v1/configmaps', { labelSelector: CONFIGMAP_SELECTOR }, (_t, o) => this.enqueue(nsOf(o)));
    this.pods = make('pods', '/api/v1/pods', { labelSelector: `${INJECT_LABEL}=true` }, (type, o, old) => {
      // Only what changes a sidecar count or what is scraped matters.
      const a = old ? podFact(old) : undefined;
      const b = podFact(o);
      if (type === 'MODIFIED' && a && a.adminURL === b.adminURL && JSON.stringify(a.labels) === JSON.stringify(b.labels)) return;
      this.enqueue(nsOf(o));
    });
    // Secrets: metadata only. The operator needs to know a Secret exists, never what it holds.
    this.secrets = make('secrets', '/api/v1/secrets', { listAccept: METADATA_LIST, watchAccept: METADATA }, (type, o) => {
      if (type === 'MODIFIED') return;
      const ns = nsOf(o);
      const name = o.metadata.name;
      const referenced = this.routes.inNamespace(ns).some((r) => {
        const spec = (r.spec ?? {}) as { upstream?: { secretRef?: { name?: string } }; input?: { userHashSecretRef?: { name?: string } } };
        return spec.upstream?.secretRef?.name === name || spec.input?.userHashSecretRef?.name === name;
      });
      if (referenced) this.enqueue(ns);
    });
    this.watches = [this.routes, this.budgets, this.configMaps, this.pods, this.secrets];
    this.billing = new BillingReconciler(
      {
        client,
        log,
        metrics,
        events: this.events,
        isLeader: () => opts.isLeader() && !this.stopped,
        budgets: () => this.budgets.all(),
        estimates: (b) => this.daily.byDay(`${b.metadata.namespace}/${b.metadata.name}`, b.status as AIBudgetStatus | undefined),
        onResults: (namespaces) => {
          for (const ns of namespaces) this.enqueue(ns);
        },
      },
      opts.billing ?? BILLING_OFF,
    );
  }

  start(): void {
    for (const w of this.watches) w.start();
    this.resync = setInterval(() => this.enqueueAll(), this.opts.resyncMs);
    this.resync.unref();
    this.scrapeTimer = setInterval(() => void this.scrape(), this.opts.spendIntervalMs);
    this.scrapeTimer.unref();
    this.billing.start();
  }

  /** Every watch has listed once. */
  synced(): boolean {
    return this.watches.every((w) => w.synced);
  }

  /** Seconds since each watch last heard from the API server. */
  silence(): Record<string, number> {
    const now = Date.now();
    const out: Record<string, number> = {};
    for (const w of this.watches) {
      out[w.spec.resource] = Math.round((now - w.lastActivity) / 1000);
      this.opts.metrics.watchSilence.set({ resource: w.spec.resource }, (now - w.lastActivity) / 1000);
    }
    return out;
  }

  private maybeReady(): void {
    if (this.wasReady || !this.synced()) return;
    this.wasReady = true;
    this.log.info({ event: 'caches_synced', airoutes: this.routes.size, aibudgets: this.budgets.size, configmaps: this.configMaps.size, pods: this.pods.size }, 'all watches listed');
    this.enqueueAll();
  }

  /** Called when this replica becomes leader: look at everything afresh. */
  onLeading(): void {
    // Another leader may have added spend meanwhile: resume from the statuses it wrote.
    this.ledger = new SpendLedger();
    this.daily = new DailySpend();
    this.enqueueAll();
    void this.scrape();
    this.billing.soon();
  }

  enqueue(ns: string): void {
    if (ns) this.queue.add(ns);
  }

  enqueueAll(): void {
    const all = new Set([...this.routes.namespaces(), ...this.budgets.namespaces(), ...this.configMaps.namespaces()]);
    for (const ns of all) this.enqueue(ns);
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  private budgetRef(b: KubeObject): BudgetRef {
    const period = ((b.spec as { period?: string } | undefined)?.period ?? 'monthly') as Period;
    return { namespace: b.metadata.namespace ?? '', name: b.metadata.name, period: ['daily', 'weekly', 'monthly'].includes(period) ? period : 'monthly', status: b.status as BudgetRef['status'] };
  }

  private async reconcile(ns: string): Promise<void> {
    if (this.stopped || !this.synced() || !this.opts.isLeader()) return;
    const { metrics, client } = this.opts;
    const end = metrics.reconcileDuration.startTimer();
    const now = Date.now();
    const routes = this.routes.inNamespace(ns);
    const budgets = this.budgets.inNamespace(ns);
    const spend = new Map(budgets.map((b) => [b.metadata.name, this.ledger.spendFor(this.budgetRef(b), now)]));
    const desired = reconcileNamespace({
      namespace: ns,
      routes,
      budgets,
      secrets: new Set(this.secrets.inNamespace(ns).map((s) => s.metadata.name)),
      pods: this.pods.inNamespace(ns).map(podFact),
      spend,
      now,
    });
    const errors: unknown[] = [];

    const wanted = new Set(desired.configMaps.map((c) => c.name));
    errors.push(
      ...(await inParallel(desired.configMaps, NAMESPACE_PARALLELISM, async (cm) => {
        const existing = this.configMaps.get(ns, cm.name);
        if (configMapUpToDate(existing, cm)) return;
        if (!this.opts.isLeader()) return;
        const written = await applyConfigMap(client, cm);
        this.configMaps.remember(written);
        metrics.writes.inc({ kind: 'ConfigMap', verb: existing ? 'update' : 'create' });
        this.log.info({ event: existing ? 'configmap_updated' : 'configmap_created', namespace: ns, configmap: cm.name, version: cm.version, routes: cm.routes, budgets: cm.budgets }, existing ? 'ConfigMap updated' : 'ConfigMap created');
        // Spend pushed into the config is routine; what the platform team declared changing is news.
        if (existing?.metadata.annotations?.[SPEC_VERSION_ANNOTATION] === cm.specVersion) return;
        const reason = existing ? 'ConfigMapUpdated' : 'ConfigMapCreated';
        const message = `ConfigMap ${cm.name} ${existing ? 'updated' : 'created'}: config version ${cm.version}, ${cm.routes.length} route(s) [${cm.routes.join(', ')}], ${cm.budgets.length} budget(s)`;
        for (const name of cm.routes) {
          const r = this.routes.get(ns, name);
          if (r) await this.events.record({ ...r, apiVersion: API_VERSION, kind: 'AIRoute' }, { type: 'Normal', reason, message });
        }
      })),
    );
    const stale = this.configMaps.inNamespace(ns).filter((c) => !wanted.has(c.metadata.name));
    errors.push(
      ...(await inParallel(stale, NAMESPACE_PARALLELISM, async (cm) => {
        if (!this.opts.isLeader()) return;
        try {
          await deleteConfigMap(client, cm);
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        metrics.writes.inc({ kind: 'ConfigMap', verb: 'delete' });
        this.log.info({ event: 'configmap_deleted', namespace: ns, configmap: cm.name }, 'ConfigMap no longer needed: deleted');
        await this.events.record({ ...cm, apiVersion: 'v1', kind: 'ConfigMap' }, { type: 'Normal', reason: 'ConfigMapDeleted', message: `ConfigMap ${cm.name} deleted: no AIRoute selects its pods any more` });
      })),
    );

    for (const s of desired.statuses) {
      const b = s.kind === 'AIBudget' && 'periodStart' in s.status ? this.budgets.get(ns, s.name) : undefined;
      if (!b) continue;
      const status = b.status as AIBudgetStatus | undefined;
      s.status = { ...s.status, dailySpend: this.daily.figures(`${ns}/${s.name}`, status), reconciliation: this.billing.statusFor(b) };
    }
    errors.push(...(await inParallel(desired.statuses, NAMESPACE_PARALLELISM, (s) => this.writeStatus(ns, s))));
    end();
    metrics.reconciles.inc({ result: errors.length > 0 ? 'error' : 'success' });
    if (errors.length > 0) throw errors.length === 1 ? errors[0] : new AggregateError(errors, `${errors.length} write(s) failed in ${ns}: ${errors.map((e) => (e as Error).message).join('; ')}`);
  }

  private async writeStatus(ns: string, s: DesiredStatus): Promise<void> {
    const cache = s.kind === 'AIRoute' ? this.routes : this.budgets;
    const obj = cache.get(ns, s.name);
    if (!obj || statusUpToDate(obj, s) || !this.opts.isLeader()) return;
    let written: KubeObject;
    try {
      written = await patchStatus(this.opts.client, obj, s);
    } catch (err) {
      // Changed since it was read (a spec edit, another writer) or gone: the watch event that
      // follows queues the namespace again with the fresh object.
      if (isNotFound(err)) return;
      if (isConflict(err)) throw new Error(`${s.kind} ${ns}/${s.name} changed while its status was computed; retrying`);
      throw err;
    }
    cache.remember(written);
    this.opts.metrics.writes.inc({ kind: `${s.kind}Status`, verb: 'patch' });
    for (const e of [...conditionEvents(s, (obj.status as { conditions?: Condition[] } | undefined)?.conditions), ...changeEvents(s, obj.status as AIRouteStatus | undefined)]) {
      await this.events.record({ ...obj, apiVersion: API_VERSION, kind: s.kind }, e);
    }
  }

  /** One round of reading every running sidecar's /usage (leader only). */
  async scrape(): Promise<void> {
    if (this.scraping || this.stopped || !this.synced() || !this.opts.isLeader()) return;
    this.scraping = true;
    try {
      const pods = this.pods.all();
      const targets = pods.map((p) => ({ p, f: podFact(p) })).filter(({ f }) => f.adminURL);
      const reports: PodReport[] = [];
      await inParallel(targets, 32, async ({ p, f }) => {
        try {
          reports.push(await scrapePod({ uid: f.uid, pod: f.name, namespace: p.metadata.namespace ?? '', adminURL: f.adminURL as string }, this.opts.scrapeTimeoutMs));
          this.opts.metrics.scrapes.inc({ result: 'success' });
        } catch (err) {
          this.opts.metrics.scrapes.inc({ result: 'error' });
          this.log.debug({ event: 'usage_scrape_failed', pod: `${p.metadata.namespace}/${f.name}`, error: (err as Error).message }, 'could not read /usage');
        }
      });
      const live = new Set(pods.map((p) => p.metadata.uid ?? ''));
      const now = Date.now();
      const budgets = this.budgets.all();
      const refs = budgets.map((b) => this.budgetRef(b));
      const before = refs.map((r) => this.ledger.spendFor(r, now));
      const changed = this.ledger.observe(reports, refs, live, now);
      // What each total grew by since the last round is that day's spend (billing/daily.ts).
      refs.forEach((r, i) => {
        const after = this.ledger.spendFor(r, now);
        const prev = before[i] as (typeof before)[number];
        const id = `${r.namespace}/${r.name}`;
        if (this.daily.observe(id, r.status as AIBudgetStatus | undefined, prev.period === after.period ? prev.spentNano : undefined, after.spentNano, now)) changed.add(id);
      });
      this.daily.forgetExcept(new Set(refs.map((r) => `${r.namespace}/${r.name}`)));
      for (const id of changed) this.enqueue(id.split('/')[0] as string);
    } finally {
      this.scraping = false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resync);
    clearInterval(this.scrapeTimer);
    this.queue.stop();
    await this.billing.stop();
    await Promise.all(this.watches.map((w) => w.stop()));
    await this.queue.idle();
  }
}

/** An Event for a generation newly entered in an AIRoute's history: what the edit changed. */
export function changeEvents(s: DesiredStatus, before: AIRouteStatus | undefined): EventSpec[] {
  if (s.kind !== 'AIRoute') return [];
  const latest = (s.status as AIRouteStatus).history?.[0];
  if (!latest || before?.history?.some((e) => e.generation === latest.generation)) return [];
  const what = latest.changed.includes('created') ? 'created' : `changed: ${latest.changed.join(', ')}`;
  return [{ type: 'Normal', reason: 'SpecChanged', message: `generation ${latest.generation} ${what}` }];
}

/** Events for conditions that changed: why a route stopped (or started) being served, a budget ran out. */
export function conditionEvents(s: DesiredStatus, before: ReadonlyArray<Condition> | undefined): EventSpec[] {
  const out: EventSpec[] = [];
  for (const c of s.status.conditions ?? []) {
    const old = before?.find((o) => o.type === c.type);
    if (old && old.status === c.status && old.reason === c.reason) continue;
    if (!old && c.type === 'Exhausted' && c.status === 'False') continue;
    if (c.type === 'Ready') out.push({ type: c.status === 'True' ? 'Normal' : 'Warning', reason: c.status === 'True' ? 'Ready' : c.reason, message: c.message });
    else if (c.type === 'Exhausted') out.push({ type: c.status === 'True' ? 'Warning' : 'Normal', reason: c.status === 'True' ? 'BudgetExhausted' : 'BudgetAvailable', message: c.message });
  }
  return out;
}
