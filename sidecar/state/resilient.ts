// Redis while it answers, the local store while it does not, so a Redis outage costs the
// sharing of limits between replicas, never the sidecar's ability to serve and to count.
//
// Failover: the first failed call switches to local (onChange('local', reason)), seeds the local
// budgets with the spent levels last seen in Redis, and probes Redis every probeMs.
// Reconciliation: once Redis answers, the spend the local store journalled during the outage is
// added to Redis in batches, each applied once by id (a retry after a lost reply changes nothing),
// together with the settles of Redis tickets that arrived while it was away; then the store
// switches back (onChange('redis')).
//
// Limits, by design:
// - Windows counted locally are not pushed to Redis: they expire on their own. Local windows
//   start empty, so for up to one window after a switch each replica admits up to the whole limit
//   on its own.
// - During an outage each replica enforces a budget alone, from the level it last saw, so the
//   replicas together may pass it by what remained times (replicas - 1).
// - Token corrections (adjust) of Redis-counted windows that arrive during an outage are dropped.
// - A call that fails after Redis applied it (a lost reply) is redone locally: counted twice,
//   which errs on the side of refusing, never of overspending.
// - Settles of Redis tickets waiting for Redis live in memory: if the process dies first, Redis
//   counts those reservations as spent when their hold runs out (an overcount).
// - A Redis that comes back empty (no persistence) has lost what it held before the outage; the
//   outage's own spend is still added to it.
import { LOCAL_TICKET_PREFIX, LocalStore } from './local.ts';
import { REDIS_TICKET_PREFIX, RedisStore } from './redis.ts';
import type { AdmitResult, BudgetLevel, BudgetSpec, BudgetTicket, NanoUSD, ReserveOptions, ReserveResult, StateStore, WindowSpec, WindowTicket } from './types.ts';

type Backend = 'local' | 'redis';

export interface ResilientStoreOptions {
  redis: RedisStore;
  /** Must journal (`journal: true`): the journal is what reconciliation delivers. */
  local: LocalStore;
  /** How often to PING Redis while on local. Default 1000 ms. */
  probeMs?: number;
  /** Called on every switch, with why for a switch to local. */
  onChange?: (kind: Backend, reason?: string) => void;
  /** Clock for the work done outside callers' calls (reconciliation). Default Date.now. */
  clock?: () => number;
}

interface KnownBudget {
  expiresAt: number;
  spent?: NanoUSD;
}

const reasonOf = (err: unknown): string => (err instanceof Error ? err.message : String(err)) || 'redis error';

export class ResilientStore implements StateStore {
  private readonly redis: RedisStore;
  private readonly local: LocalStore;
  private readonly probeMs: number;
  private readonly onChange: (kind: Backend, reason?: string) => void;
  private readonly clock: () => number;
  private mode: Backend = 'redis';
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private closed = false;
  /** Which backend counted each window ticket (adjust goes to the same place). */
  private readonly windowOrigin = new WeakMap<WindowTicket, Backend>();
  /** Budgets seen in Redis: end of period, last spent level (seeds the local store on failover). */
  private readonly known = new Map<string, KnownBudget>();
  private lastPrune = -Infinity;
  /** Settles of Redis tickets that arrived while Redis was away, replayed to it on return. */
  private readonly deferred: Array<{ ticket: BudgetTicket; actual: NanoUSD }> = [];

  constructor(opts: ResilientStoreOptions) {
    if (!opts.local.journaling) throw new TypeError('ResilientStore needs a LocalStore opened with journal: true');
    this.redis = opts.redis;
    this.local = opts.local;
    this.probeMs = opts.probeMs ?? 1000;
    const onChange = opts.onChange ?? (() => {});
    // A failing listener must not turn a switch of backend into a failed call.
    this.onChange = (kind, reason) => {
      try {
        onChange(kind, reason);
      } catch {
        /* the switch stands */
      }
    };
    this.clock = opts.clock ?? Date.now;
  }

  /**
   * The usual way in: a journalling LocalStore (resumed from stateDir) and a RedisStore on
   * `redisUrl`. Spend left undelivered by a previous process is delivered first; if Redis does not
   * answer within readyTimeoutMs the store starts on local and probes.
   */
  static async open(opts: {
    redisUrl: string;
    stateDir?: string;
    keyPrefix?: string;
    probeMs?: number;
    readyTimeoutMs?: number;
    onChange?: (kind: Backend, reason?: string) => void;
    onError?: (err: Error) => void;
    clock?: () => number;
  }): Promise<ResilientStore> {
    const local = await LocalStore.open({ journal: true, ...(opts.stateDir ? { stateDir: opts.stateDir } : {}), ...(opts.onError ? { onError: opts.onError } : {}) });
    // Connection errors surface as failed calls and onChange; the events would only repeat them.
    const redis = new RedisStore(opts.redisUrl, { ...(opts.keyPrefix ? { keyPrefix: opts.keyPrefix } : {}), onError: () => {} });
    const store = new ResilientStore({ redis, local, ...opts });
    try {
      await redis.ready(opts.readyTimeoutMs ?? 2000);
      await store.reconcile();
    } catch (err) {
      store.fail(err);
    }
    return store;
  }

  get kind(): Backend {
    return this.mode;
  }

  private fail(err: unknown): void {
    // A call the stores refuse to make (bad amounts, bad window specs) says nothing about Redis.
    if (err instanceof RangeError) throw err;
    if (this.mode === 'local' || this.closed) return;
    this.mode = 'local';
    const now = this.clock();
    for (const [key, k] of this.known) {
      if (k.spent !== undefined) this.local.raiseSpent(key, k.spent, k.expiresAt, now);
    }
    this.onChange('local', reasonOf(err));
    this.probeTimer = setInterval(() => void this.probe(), this.probeMs);
    this.probeTimer.unref();
  }

  private async probe(): Promise<void> {
    if (this.probing || this.mode === 'redis' || this.closed) return;
    this.probing = true;
    try {
      await this.redis.ping();
      await this.reconcile();
      clearInterval(this.probeTimer);
      this.probeTimer = undefined;
      this.mode = 'redis';
      this.onChange('redis');
      // A local call may have completed while the last reply travelled back: deliver it too.
      if (this.local.journalSize > 0 || this.deferred.length > 0) void this.deliver();
    } catch {
      // Still away; the next tick tries again.
    } finally {
      this.probing = false;
    }
  }

  /** Delivers journalled local spend and deferred settles to Redis until none is left. */
  private async reconcile(): Promise<void> {
    for (;;) {
      const batch = this.local.journalBatch();
      if (batch) {
        await this.redis.applySpend(batch);
        this.local.confirmJournal(batch.id);
        continue;
      }
      const d = this.deferred[0];
      if (!d) return;
      await this.redis.settle(d.ticket, d.actual, this.clock());
      this.deferred.shift();
    }
  }

  /** For work that reaches Redis after the switch back (local tickets settling late). */
  private async deliver(): Promise<void> {
    try {
      await this.reconcile();
    } catch (err) {
      this.fail(err);
    }
  }

  private remember(key: string, level: { expiresAt?: number; spent?: NanoUSD }): void {
    const k = this.known.get(key);
    if (k) {
      if (level.expiresAt !== undefined) k.expiresAt = Math.max(k.expiresAt, level.expiresAt);
      if (level.spent !== undefined) k.spent = level.spent;
    } else if (level.expiresAt !== undefined) {
      this.known.set(key, { expiresAt: level.expiresAt, ...(level.spent !== undefined ? { spent: level.spent } : {}) });
    }
  }

  private rememberLevels(levels: Map<string, BudgetLevel>): void {
    for (const [key, l] of levels) this.remember(key, { spent: l.spent });
  }

  private pruneKnown(now: number): void {
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    for (const [key, k] of this.known) if (k.expiresAt <= now) this.known.delete(key);
  }

  async admit(windows: WindowSpec[], now: number): Promise<AdmitResult> {
    if (this.mode === 'redis') {
      try {
        const result = await this.redis.admit(windows, now);
        if (result.admitted) this.windowOrigin.set(result.ticket, 'redis');
        return result;
      } catch (err) {
        this.fail(err);
      }
    }
    const result = await this.local.admit(windows, now);
    if (result.admitted) this.windowOrigin.set(result.ticket, 'local');
    return result;
  }

  async adjust(ticket: WindowTicket, key: string, delta: number, now: number): Promise<void> {
    const origin = this.windowOrigin.get(ticket) ?? this.mode;
    if (origin === 'local') return this.local.adjust(ticket, key, delta, now);
    if (this.mode !== 'redis') return; // Redis away: the correction is dropped (see the header)
    try {
      await this.redis.adjust(ticket, key, delta, now);
    } catch (err) {
      this.fail(err);
    }
  }

  async flush(): Promise<void> {
    await this.local.flush();
  }

  async reserve(budgets: BudgetSpec[], amount: NanoUSD, holdMs: number, now: number, opts?: ReserveOptions): Promise<ReserveResult> {
    this.pruneKnown(now);
    for (const b of budgets) this.remember(b.key, { expiresAt: b.expiresAt });
    if (this.mode === 'redis') {
      try {
        const result = await this.redis.reserve(budgets, amount, holdMs, now);
        if (!result.ok) this.remember(result.key, { spent: result.spent });
        return result;
      } catch (err) {
        this.fail(err);
      }
    }
    return this.local.reserve(budgets, amount, holdMs, now, opts);
  }

  async settle(ticket: BudgetTicket, actual: NanoUSD, now: number): Promise<Map<string, BudgetLevel>> {
    const origin: Backend = ticket.id.startsWith(LOCAL_TICKET_PREFIX) ? 'local' : ticket.id.startsWith(REDIS_TICKET_PREFIX) ? 'redis' : this.mode;
    if (origin === 'local') {
      const levels = await this.local.settle(ticket, actual, now);
      if (this.mode !== 'redis') return levels;
      // Reserved during an outage, settled after it: its spend goes to Redis like the rest.
      await this.deliver();
      return this.levels(ticket.keys, now);
    }
    if (this.mode === 'redis') {
      try {
        const levels = await this.redis.settle(ticket, actual, now);
        this.rememberLevels(levels);
        return levels;
      } catch (err) {
        this.fail(err);
      }
    }
    // A Redis ticket while Redis is away: count the spend here at once (outside the journal, as
    // Redis will get it from the replayed settle, which its reservation id makes idempotent).
    this.deferred.push({ ticket, actual });
    for (const key of ticket.keys) {
      const k = this.known.get(key);
      if (k) this.local.addSpent(key, actual, k.expiresAt, now, false);
    }
    return this.local.levels(ticket.keys, now);
  }

  async levels(keys: string[], now: number): Promise<Map<string, BudgetLevel>> {
    if (this.mode === 'redis') {
      try {
        const levels = await this.redis.levels(keys, now);
        this.rememberLevels(levels);
        return levels;
      } catch (err) {
        this.fail(err);
      }
    }
    return this.local.levels(keys, now);
  }

  async snapshot(now: number): Promise<Map<string, BudgetLevel>> {
    if (this.mode === 'redis') {
      try {
        const levels = await this.redis.snapshot(now);
        this.rememberLevels(levels);
        return levels;
      } catch (err) {
        this.fail(err);
      }
    }
    return this.local.snapshot(now);
  }

  /** Only the local fallback needs them: Redis already counts every replica's spend. */
  setFloors(floors: Array<{ key: string; spent: NanoUSD; expiresAt: number }>, now: number): void {
    this.local.setFloors(floors, now);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    await Promise.allSettled([this.redis.close(), this.local.close()]);
  }
}
