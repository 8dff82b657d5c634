// Limits and budgets shared by every replica through one Redis. Each decision is one Lua script
// (redis-scripts.ts), run by EVALSHA, so it is atomic across every key it names.
//
// Key layout, under the prefix (default `ai-envelope:`):
//   <p><window key>         hash   bucket index -> count, total, oldest, newest, bms; PEXPIRE just past the window
//   <p><budget key>         hash   spent, reserved (nano-USD integers), until (end of period)
//   <p><budget key>#held    zset   reservation id, scored by when its hold runs out
//   <p><budget key>#amt     hash   reservation id -> amount
//   <p><budget key>#swept   zset   ids of reservations that expired into spent, scored by when to forget them
//   <p>#budgets             zset   budget key, scored by end of period (for snapshots)
//   <p>#applied:<batch id>  string marks a spend batch as applied (ResilientStore's reconciliation)
// The four keys of a budget PEXPIREAT the end of its period + 1 day.
//
// `now` is the caller's clock, not Redis TIME (see redis-scripts.ts): replicas must be NTP-synced.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { ADJUST, ADMIT, APPLY_SPEND, LEVELS, RESERVE, SETTLE } from './redis-scripts.ts';
import { checkNano, SWEPT_GRACE_MS, type SpendBatch } from './budget-book.ts';
import { checkSpec } from './windows.ts';
import type { AdmitResult, BudgetLevel, BudgetSpec, BudgetTicket, NanoUSD, ReserveResult, StateStore, WindowSpec, WindowState, WindowTicket } from './types.ts';

export interface RedisStoreOptions {
  /** Prepended to every key; default `ai-envelope:`. */
  keyPrefix?: string;
  /** For a client created from a URL: how long a connection attempt may take. Default 1000 ms. */
  connectTimeoutMs?: number;
  /** For a client created from a URL: how long a command may take before it fails. Default 1000 ms. */
  commandTimeoutMs?: number;
  /** Connection errors of a client created from a URL (ioredis reports them as events). */
  onError?: (err: Error) => void;
}

/** Tickets of this store carry this prefix, so a store that routes between backends knows whose they are. */
export const REDIS_TICKET_PREFIX = 'r-';

/** How long a reconciled batch id is remembered, so a retried delivery is not counted twice. */
const APPLIED_MARK_MS = 7 * 86_400_000;

type Reply = Array<number | string>;
type Script = (numKeys: number, ...args: Array<string | number>) => Promise<Reply | number>;
interface Scripts {
  aiEnvelopeAdmit: Script;
  aiEnvelopeAdjust: Script;
  aiEnvelopeReserve: Script;
  aiEnvelopeSettle: Script;
  aiEnvelopeLevels: Script;
  aiEnvelopeApplySpend: Script;
}

const SCRIPTS: Record<keyof Scripts, string> = {
  aiEnvelopeAdmit: ADMIT,
  aiEnvelopeAdjust: ADJUST,
  aiEnvelopeReserve: RESERVE,
  aiEnvelopeSettle: SETTLE,
  aiEnvelopeLevels: LEVELS,
  aiEnvelopeApplySpend: APPLY_SPEND,
};

const num = (v: number | string | undefined): number => Number(v ?? 0);

export class RedisStore implements StateStore {
  readonly kind = 'redis' as const;
  readonly client: Redis;
  private readonly prefix: string;
  private readonly ownsClient: boolean;
  private readonly scripts: Scripts;
  private readonly connectTimeoutMs: number;
  private firstConnect: Promise<void> | undefined;

  /**
   * `target`: an ioredis client (left open by close()) or a redis:// URL. A client made from a URL
   * fails fast when Redis is away (no offline queue, one retry, short timeouts, no blind resend of
   * a script whose reply was lost), so the caller can fall back instead of waiting.
   */
  constructor(target: Redis | string, opts: RedisStoreOptions = {}) {
    this.prefix = opts.keyPrefix ?? 'ai-envelope:';
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 1000;
    if (typeof target === 'string') {
      this.client = new Redis(target, {
        enableOfflineQueue: false,
        connectTimeout: this.connectTimeoutMs,
        commandTimeout: opts.commandTimeoutMs ?? 1000,
        maxRetriesPerRequest: 1,
        autoResendUnfulfilledCommands: false,
        // Keep reconnecting, but never more than a second apart, so a returning Redis is seen soon.
        retryStrategy: (times) => Math.min(times * 100, 1000),
      });
      const onError = opts.onError ?? (() => {});
      this.client.on('error', (err: Error) => onError(err));
      this.ownsClient = true;
    } else {
      this.client = target;
      this.ownsClient = false;
    }
    for (const [name, lua] of Object.entries(SCRIPTS)) this.client.defineCommand(name, { lua });
    this.scripts = this.client as unknown as Scripts;
  }

  /** Resolves once the client is connected and ready; rejects after `timeoutMs` or when it gives up. */
  async ready(timeoutMs = 2000): Promise<void> {
    if (this.client.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        this.client.off('end', onEnd);
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => done();
      const onEnd = () => done(new Error('redis connection ended'));
      const timer = setTimeout(() => done(new Error(`redis not ready after ${timeoutMs} ms`)), timeoutMs);
      this.client.on('ready', onReady);
      this.client.on('end', onEnd);
    });
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  /**
   * The first connection is still being made: wait for it (bounded) rather than fail a call
   * that was merely early. Any other state fails fast, through the client.
   */
  private async connected(): Promise<Scripts> {
    const s = this.client.status;
    if (s === 'wait' || s === 'connecting' || s === 'connect') {
      if (s === 'wait') this.client.connect().catch(() => {});
      this.firstConnect ??= this.ready(this.connectTimeoutMs).catch(() => {});
      await this.firstConnect;
    }
    return this.scripts;
  }

  private budgetKeys(key: string): string[] {
    const h = this.prefix + key;
    return [h, `${h}#held`, `${h}#amt`, `${h}#swept`];
  }

  private get indexKey(): string {
    return `${this.prefix}#budgets`;
  }

  async admit(windows: WindowSpec[], now: number): Promise<AdmitResult> {
    now = Math.floor(now);
    for (const w of windows) checkSpec(w);
    if (windows.length === 0) return { admitted: true, ticket: { entries: [] }, windows: [] };
    const args = windows.flatMap((w) => [w.windowMs, w.bucketMs, w.limit, w.cost]);
    const out = (await (await this.connected()).aiEnvelopeAdmit(windows.length, ...windows.map((w) => this.prefix + w.key), now, ...args)) as Reply;
    const states: WindowState[] = windows.map((w, i) => ({ key: w.key, limit: w.limit, remaining: num(out[3 + i * 3]), resetMs: num(out[4 + i * 3]) }));
    if (num(out[0]) !== 1) {
      const refused = windows[num(out[2])] ?? windows[0];
      return { admitted: false, retryAfterMs: num(out[1]), key: (refused as WindowSpec).key, windows: states };
    }
    const ticket: WindowTicket = {
      entries: windows.map((w, i) => ({ key: w.key, bucket: num(out[5 + i * 3]), cost: w.cost, windowMs: w.windowMs, bucketMs: w.bucketMs })),
    };
    return { admitted: true, ticket, windows: states };
  }

  async adjust(ticket: WindowTicket, key: string, delta: number, now: number): Promise<void> {
    const e = ticket.entries.find((x) => x.key === key);
    if (!e || delta === 0) return;
    await (await this.connected()).aiEnvelopeAdjust(1, this.prefix + key, Math.floor(now), e.windowMs, e.bucketMs, e.bucket, Math.trunc(delta));
  }

  async reserve(budgets: BudgetSpec[], amount: NanoUSD, holdMs: number, now: number): Promise<ReserveResult> {
    checkNano('amount', amount);
    const id = REDIS_TICKET_PREFIX + randomUUID();
    if (budgets.length === 0) return { ok: true, ticket: { id, keys: [], amount } };
    const keys = [...budgets.flatMap((b) => this.budgetKeys(b.key)), this.indexKey];
    const args = budgets.flatMap((b) => [b.limit, b.enforce ? 1 : 0, Math.floor(b.expiresAt), b.key]);
    const out = (await (await this.connected()).aiEnvelopeReserve(keys.length, ...keys, Math.floor(now), amount, Math.max(0, Math.floor(holdMs)), id, SWEPT_GRACE_MS, ...args)) as Reply;
    if (num(out[0]) === 1) return { ok: true, ticket: { id, keys: budgets.map((b) => b.key), amount } };
    const refused = (budgets[num(out[1])] ?? budgets[0]) as BudgetSpec;
    return { ok: false, key: refused.key, spent: num(out[2]), reserved: num(out[3]), limit: refused.limit };
  }

  async settle(ticket: BudgetTicket, actual: NanoUSD, now: number): Promise<Map<string, BudgetLevel>> {
    checkNano('actual', actual);
    if (ticket.keys.length === 0) return new Map();
    const keys = ticket.keys.flatMap((k) => this.budgetKeys(k));
    const out = (await (await this.connected()).aiEnvelopeSettle(keys.length, ...keys, Math.floor(now), ticket.id, ticket.amount, actual, SWEPT_GRACE_MS)) as Reply;
    return this.toLevels(ticket.keys, out);
  }

  async levels(keys: string[], now: number): Promise<Map<string, BudgetLevel>> {
    const result = new Map<string, BudgetLevel>();
    // Chunks keep one script from holding Redis for long when a snapshot names many budgets.
    for (let i = 0; i < keys.length; i += 200) {
      const chunk = keys.slice(i, i + 200);
      const redisKeys = chunk.flatMap((k) => this.budgetKeys(k));
      const out = (await (await this.connected()).aiEnvelopeLevels(redisKeys.length, ...redisKeys, Math.floor(now), SWEPT_GRACE_MS)) as Reply;
      for (const [k, level] of this.toLevels(chunk, out)) result.set(k, level);
    }
    return result;
  }

  /** Budgets whose period has not ended, as the index knows them. */
  async snapshot(now: number): Promise<Map<string, BudgetLevel>> {
    now = Math.floor(now);
    await this.connected();
    await this.client.zremrangebyscore(this.indexKey, '-inf', now);
    const keys = await this.client.zrangebyscore(this.indexKey, `(${now}`, '+inf');
    return this.levels(keys, now);
  }

  /**
   * Adds spend recorded while Redis was away to spent, once per batch: a batch id seen before
   * (a retry after a lost reply) changes nothing. Returns whether this call applied it.
   */
  async applySpend(batch: SpendBatch): Promise<boolean> {
    if (batch.entries.length === 0) return false;
    const keys = [`${this.prefix}#applied:${batch.id}`, this.indexKey, ...batch.entries.map((e) => this.prefix + e.key)];
    const args = batch.entries.flatMap((e) => [Math.trunc(e.delta), Math.floor(e.expiresAt), e.key]);
    return num((await (await this.connected()).aiEnvelopeApplySpend(keys.length, ...keys, APPLIED_MARK_MS, ...args)) as number) === 1;
  }

  private toLevels(keys: string[], out: Reply): Map<string, BudgetLevel> {
    return new Map(keys.map((k, i) => [k, { spent: num(out[i * 2]), reserved: num(out[i * 2 + 1]) }]));
  }

  async close(): Promise<void> {
    if (!this.ownsClient) return;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
