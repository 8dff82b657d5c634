// A supervised list-and-watch of one resource, keeping a cache of every object. client-node's
// informer stops for good after an error event and can stall without noticing; this loop owns
// recovery instead:
// - list (paginated), then watch from the list's resourceVersion, resuming from the last one seen
//   (bookmarks keep it fresh on quiet resources);
// - 410 Gone (the version was compacted away): list again and report the differences as events;
// - any error or end of stream: watch again after a backoff with jitter, growing while restarts
//   keep failing and reset once a watch has worked;
// - silence past a deadline (no event, bookmark or end within the server's own timeout plus a
//   margin): the connection is presumed dead and is aborted and restarted.
import type { Logger } from 'pino';
import { backoffDelay, sleep, type Backoff } from './backoff.ts';
import { isGone, type KubeClient, type KubeList, type KubeObject } from '../kube/client.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchSpec {
  /** Short name for logs and metrics: `airoutes`, `pods`... */
  resource: string;
  /** Collection path across namespaces, e.g. `/apis/ai-envelope.dev/v1alpha1/airoutes`. */
  path: string;
  labelSelector?: string;
  /** e.g. metadata only: `application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`. */
  listAccept?: string;
  watchAccept?: string;
}

export interface WatchOptions {
  /**
   * Asked of the server; it ends the watch around then (randomised a little so watches do not end
   * together). 0: ask nothing, the server picks (its --min-request-timeout, up to twice that).
   */
  timeoutSeconds: number;
  /** Silence beyond the server timeout after which the watch is presumed dead. */
  silenceMarginMs: number;
  backoff: Backoff;
  pageSize: number;
}

export const DEFAULT_WATCH_OPTIONS: WatchOptions = { timeoutSeconds: 300, silenceMarginMs: 30_000, backoff: { baseMs: 500, maxMs: 30_000 }, pageSize: 500 };

export type RestartReason = 'end' | 'error' | 'gone' | 'silent';

export interface WatchListener<T extends KubeObject> {
  onEvent(type: WatchEventType, obj: T, old: T | undefined): void;
  onRestart?(reason: RestartReason, err?: unknown): void;
  onSynced?(): void;
}

const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export class SupervisedWatch<T extends KubeObject> {
  readonly spec: WatchSpec;
  /** `namespace/name` → object, per namespace for reconciles that look at one namespace. */
  private readonly byNs = new Map<string, Map<string, T>>();
  private resourceVersion: string | undefined;
  private readonly client: KubeClient;
  private readonly listener: WatchListener<T>;
  private readonly opts: WatchOptions;
  private readonly log: Logger;
  private readonly stopper = new AbortController();
  private current: AbortController | undefined;
  private loop: Promise<void> | undefined;
  /** Last sign of life from the server: an event, a bookmark, a list. */
  lastActivity = Date.now();
  synced = false;
  restarts = 0;

  constructor(client: KubeClient, spec: WatchSpec, listener: WatchListener<T>, log: Logger, opts: Partial<WatchOptions> = {}) {
    this.client = client;
    this.spec = spec;
    this.listener = listener;
    this.log = log.child({ watch: spec.resource });
    this.opts = { ...DEFAULT_WATCH_OPTIONS, ...opts };
  }

  get(namespace: string, name: string): T | undefined {
    return this.byNs.get(namespace)?.get(name);
  }

  inNamespace(namespace: string): T[] {
    return [...(this.byNs.get(namespace)?.values() ?? [])];
  }

  namespaces(): string[] {
    return [...this.byNs.keys()];
  }

  all(): T[] {
    return [...this.byNs.values()].flatMap((m) => [...m.values()]);
  }

  get size(): number {
    let n = 0;
    for (const m of this.byNs.values()) n += m.size;
    return n;
  }

  /** Records what this process itself just wrote, so a reconcile before the watch event sees it. */
  remember(obj: T): void {
    const old = this.get(obj.metadata.namespace ?? '', obj.metadata.name);
    if (old && Number(old.metadata.resourceVersion) > Number(obj.metadata.resourceVersion)) return;
    this.put(obj);
  }

  private put(obj: T): void {
    const ns = obj.metadata.namespace ?? '';
    let m = this.byNs.get(ns);
    if (!m) this.byNs.set(ns, (m = new Map()));
    m.set(obj.metadata.name, obj);
  }

  private drop(obj: T): void {
    const ns = obj.metadata.namespace ?? '';
    const m = this.byNs.get(ns);
    m?.delete(obj.metadata.name);
    if (m && m.size === 0) this.byNs.delete(ns);
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    this.current?.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    const watchdog = setInterval(() => this.checkSilence(), 1000);
    watchdog.unref();
    try {
      while (!this.stopper.signal.aborted) {
        const began = Date.now();
        let reason: RestartReason = 'end';
        let error: unknown;
        try {
          if (this.resourceVersion === undefined) await this.list();
          await this.watchOnce();
        } catch (err) {
          if (this.stopper.signal.aborted) break;
          error = err;
          if (isGone(err) || (err as { gone?: boolean }).gone) {
            reason = 'gone';
            this.resourceVersion = undefined;
          } else if ((err as { silent?: boolean }).silent) {
            reason = 'silent';
          } else {
            reason = 'error';
          }
        }
        if (this.stopper.signal.aborted) break;
        this.restarts++;
        // A watch that ran a while worked: the next restart is quick again.
        if (reason === 'end' && Date.now() - began > 2000) attempt = 0;
        const delay = reason === 'gone' ? 0 : backoffDelay(attempt++, this.opts.backoff);
        this.listener.onRestart?.(reason, error);
        const line = { event: 'watch_restart', reason, delay_ms: delay, resource_version: this.resourceVersion ?? null, ...(error ? { error: (error as Error).message } : {}) };
        if (reason === 'end' || reason === 'gone') this.log.debug(line, 'watch restarting');
        else this.log.warn(line, 'watch restarting');
        await sleep(delay, this.stopper.signal);
      }
    } finally {
      clearInterval(watchdog);
    }
  }

  private checkSilence(): void {
    // With the server's own choice, a watch lasts at most twice its default --min-request-timeout (1800 s).
    const deadline = (this.opts.timeoutSeconds > 0 ? this.opts.timeoutSeconds : 3600) * 1000 + this.opts.silenceMarginMs;
    if (this.current && Date.now() - this.lastActivity > deadline) {
      const ctl = this.current;
      this.current = undefined;
      ctl.abort(Object.assign(new Error(`no event, bookmark or end for ${Math.round((Date.now() - this.lastActivity) / 1000)} s`), { silent: true }));
    }
  }

  /** Lists everything; objects that vanished since the last list are reported deleted. */
  private async list(): Promise<void> {
    const seen = new Set<string>();
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.client.get<KubeList<T>>(this.spec.path, {
        query: { limit: this.opts.pageSize, continue: cont, labelSelector: this.spec.labelSelector },
        ...(this.spec.listAccept ? { accept: this.spec.listAccept } : {}),
        signal: this.stopper.signal,
        timeoutMs: 60_000,
      });
      this.lastActivity = Date.now();
      for (const obj of page.items) {
        seen.add(keyOf(obj));
        const old = this.get(obj.metadata.namespace ?? '', obj.metadata.name);
        this.put(obj);
        if (!old) this.listener.onEvent('ADDED', obj, undefined);
        else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.listener.onEvent('MODIFIED', obj, old);
      }
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion;
    } while (cont);
    for (const obj of this.all()) {
      if (seen.has(keyOf(obj))) continue;
      this.drop(obj);
      this.listener.onEvent('DELETED', obj, obj);
    }
    this.resourceVersion = rv;
    if (!this.synced) {
      this.synced = true;
      this.log.info({ event: 'watch_synced', objects: this.size }, 'initial list done');
      this.listener.onSynced?.();
    }
  }

  private async watchOnce(): Promise<void> {
    const ctl = new AbortController();
    this.current = ctl;
    const onStop = () => ctl.abort();
    this.stopper.signal.addEventListener('abort', onStop, { once: true });
    this.lastActivity = Date.now();
    // Spread the ends of the server-side timeouts so every watch does not reconnect at once.
    const timeout = this.opts.timeoutSeconds > 0 ? Math.max(1, Math.round(this.opts.timeoutSeconds * (0.8 + Math.random() * 0.2))) : undefined;
    try {
      await this.client.watch(
        this.spec.path,
        { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: timeout, labelSelector: this.spec.labelSelector },
        ctl.signal,
        (ev) => this.handle(ev),
        this.spec.watchAccept,
      );
    } catch (err) {
      // An abort by the watchdog carries why; report that instead of the generic abort.
      if (ctl.signal.aborted && ctl.signal.reason instanceof Error) throw ctl.signal.reason;
      throw err;
    } finally {
      this.stopper.signal.removeEventListener('abort', onStop);
      if (this.current === ctl) this.current = undefined;
    }
  }

  private handle(ev: { type: string; object: unknown }): void {
    this.lastActivity = Date.now();
    if (ev.type === 'ERROR') {
      const status = ev.object as { code?: number; reason?: string; message?: string };
      throw Object.assign(new Error(`watch error ${status.code ?? '?'} ${status.reason ?? ''}: ${status.message ?? ''}`), { gone: status.code === 410 });
    }
    const obj = ev.object as T;
    if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
    if (ev.type === 'BOOKMARK') return;
    const old = this.get(obj.metadata.namespace ?? '', obj.metadata.name);
    // This process's own write, already in the cache (remember): nothing new to react to.
    if (ev.type !== 'DELETED' && old?.metadata.resourceVersion === obj.metadata.resourceVersion) {
      this.put(obj);
      return;
    }
    if (ev.type === 'DELETED') {
      this.drop(obj);
      this.listener.onEvent('DELETED', obj, old);
    } else if (ev.type === 'ADDED' || ev.type === 'MODIFIED') {
      this.put(obj);
      this.listener.onEvent(old ? 'MODIFIED' : 'ADDED', obj, old);
    }
  }
}
