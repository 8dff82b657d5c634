// Rolling-window counting, shared by the local store and mirrored line for line by the Lua in
// redis-scripts.ts, so a limit behaves the same whichever backend holds it.
//
// The rule. Time is cut into buckets of `bucketMs`; an entry made at `t` lands in bucket
// floor(t / bucketMs). A window of `windowMs` at `now` counts every bucket of which any
// millisecond is still inside (now - windowMs, now], i.e. bucket b counts while
//     b >= floor((now - windowMs + 1) / bucketMs)
// and stops counting at (b + 1) * bucketMs + windowMs - 1 (`bucketLeavesAt`).
//
// The guarantee. Every entry of the last `windowMs` sits in a bucket that still counts, so an
// admission never makes any rolling `windowMs` hold more than `limit`. The price: a bucket keeps
// counting until its newest millisecond has left, so a refused request gets room at most
// bucketMs - 1 ms later than an exact log of timestamps would give it.
import type { AdmitResult, WindowSpec, WindowState, WindowTicket } from './types.ts';

export interface WindowCounter {
  bucketMs: number;
  windowMs: number;
  /** bucket index → count. Insertion order is bucket order: nothing is ever written below `newest`. */
  buckets: Map<number, number>;
  /** Sum of `buckets`, kept as they change so a decision never sums the window. */
  total: number;
  /** The bucket written last. A clock that steps back writes into it, so counts only ever last longer. */
  newest: number;
}

export const bucketIndex = (t: number, bucketMs: number): number => Math.floor(t / bucketMs);

export const firstCountedBucket = (now: number, windowMs: number, bucketMs: number): number => Math.floor((now - windowMs + 1) / bucketMs);

export const bucketLeavesAt = (bucket: number, windowMs: number, bucketMs: number): number => (bucket + 1) * bucketMs + windowMs - 1;

export function checkSpec(spec: WindowSpec): void {
  const { windowMs, bucketMs, limit, cost } = spec;
  if (!(Number.isSafeInteger(windowMs) && windowMs > 0 && Number.isSafeInteger(bucketMs) && bucketMs > 0 && bucketMs <= windowMs)) {
    throw new RangeError(`window ${spec.key}: windowMs and bucketMs must be positive integers with bucketMs <= windowMs`);
  }
  if (!(Number.isSafeInteger(limit) && limit >= 0 && Number.isSafeInteger(cost) && cost >= 0)) {
    throw new RangeError(`window ${spec.key}: limit and cost must be non-negative integers`);
  }
}

export function newCounter(windowMs: number, bucketMs: number): WindowCounter {
  return { bucketMs, windowMs, buckets: new Map(), total: 0, newest: -Infinity };
}

/** Drops the buckets that have wholly left the window. Amortised O(1): each bucket is dropped once. */
export function prune(c: WindowCounter, now: number): void {
  const lo = firstCountedBucket(now, c.windowMs, c.bucketMs);
  for (const [b, n] of c.buckets) {
    if (b >= lo) break;
    c.buckets.delete(b);
    c.total -= n;
  }
  // Nothing left to outlast: forget `newest` too, as the Redis script does by deleting the key.
  if (c.buckets.size === 0) c.newest = -Infinity;
}

/**
 * Brings a pruned counter to the spec's granularity. A changed bucketMs makes old bucket indices
 * meaningless, so what still counts moves into the current bucket: it counts a little longer,
 * never shorter.
 */
export function conform(c: WindowCounter, spec: WindowSpec, now: number): void {
  if (c.bucketMs === spec.bucketMs) return;
  const total = c.total;
  const cur = bucketIndex(now, spec.bucketMs);
  c.bucketMs = spec.bucketMs;
  c.buckets.clear();
  c.total = 0;
  c.newest = -Infinity;
  if (total > 0) {
    c.buckets.set(cur, total);
    c.total = total;
    c.newest = cur;
  }
}

/** ms from `now` until the counter, receiving nothing more, has room for `cost` (0 when it has now). */
export function waitFor(c: WindowCounter, limit: number, cost: number, now: number): number {
  // A cost above the limit never fits; one window is as good a wait as any, and the caller
  // (the policy layer) turns it into an error that says so rather than a retry loop.
  if (cost > limit) return c.windowMs;
  let excess = c.total + cost - limit;
  if (excess <= 0) return 0;
  for (const [b, n] of c.buckets) {
    excess -= n;
    if (excess <= 0) return Math.max(0, bucketLeavesAt(b, c.windowMs, c.bucketMs) - now);
  }
  return c.windowMs; // unreachable while total is the sum of buckets
}

/** ms until the oldest counted bucket leaves the window (0 when nothing is counted). */
export function resetIn(c: WindowCounter, now: number): number {
  for (const b of c.buckets.keys()) return Math.max(0, bucketLeavesAt(b, c.windowMs, c.bucketMs) - now);
  return 0;
}

/** Adds `cost` at `now`; returns the bucket it went into. */
export function record(c: WindowCounter, cost: number, now: number): number {
  const bucket = Math.max(bucketIndex(now, c.bucketMs), c.newest);
  c.buckets.set(bucket, (c.buckets.get(bucket) ?? 0) + cost);
  c.total += cost;
  c.newest = bucket;
  return bucket;
}

/** How often (in the caller's time) idle counters are looked for and dropped. */
const SWEEP_EVERY_MS = 10_000;

/** Every window of one process: the in-memory half of the local store. */
export class WindowBook {
  private readonly counters = new Map<string, WindowCounter>();
  private lastSweep = -Infinity;

  get size(): number {
    return this.counters.size;
  }

  private counter(spec: WindowSpec, now: number): WindowCounter {
    let c = this.counters.get(spec.key);
    if (!c) {
      c = newCounter(spec.windowMs, spec.bucketMs);
      this.counters.set(spec.key, c);
    }
    c.windowMs = spec.windowMs;
    prune(c, now);
    conform(c, spec, now);
    return c;
  }

  /** All or nothing: `cost` is added to every window, or to none if any of them would pass its limit. */
  admit(specs: WindowSpec[], now: number): AdmitResult {
    now = Math.floor(now);
    this.sweep(now);
    for (const s of specs) checkSpec(s);
    const counters = specs.map((s) => this.counter(s, now));
    let refused: { key: string; wait: number; impossible: boolean } | undefined;
    const waits = specs.map((s, i) => {
      const c = counters[i] as WindowCounter;
      if (c.total + s.cost <= s.limit) return 0;
      const wait = waitFor(c, s.limit, s.cost, now);
      const impossible = s.cost > s.limit;
      // The binding window: one that can never fit first (its error is the useful one), else the longest wait.
      if (!refused || (impossible && !refused.impossible) || (impossible === refused.impossible && wait > refused.wait)) refused = { key: s.key, wait, impossible };
      return wait;
    });
    if (refused) {
      const windows: WindowState[] = specs.map((s, i) => {
        const c = counters[i] as WindowCounter;
        const wait = waits[i] as number;
        return c.total + s.cost > s.limit
          ? { key: s.key, limit: s.limit, remaining: 0, resetMs: wait }
          : { key: s.key, limit: s.limit, remaining: Math.max(0, s.limit - c.total), resetMs: resetIn(c, now) };
      });
      return { admitted: false, retryAfterMs: refused.wait, key: refused.key, windows };
    }
    const ticket: WindowTicket = { entries: [] };
    const windows: WindowState[] = specs.map((s, i) => {
      const c = counters[i] as WindowCounter;
      const bucket = record(c, s.cost, now);
      ticket.entries.push({ key: s.key, bucket, cost: s.cost, windowMs: s.windowMs, bucketMs: s.bucketMs });
      return { key: s.key, limit: s.limit, remaining: Math.max(0, s.limit - c.total), resetMs: resetIn(c, now) };
    });
    return { admitted: true, ticket, windows };
  }

  /**
   * Corrects what a ticket counted in one window. The bucket keeps its place in time; if it has
   * already left the window there is nothing left to correct. A bucket never goes below zero.
   */
  adjust(ticket: WindowTicket, key: string, delta: number, now: number): void {
    const entry = ticket.entries.find((e) => e.key === key);
    const c = this.counters.get(key);
    if (!entry || !c || c.bucketMs !== entry.bucketMs) return;
    prune(c, Math.floor(now));
    const n = c.buckets.get(entry.bucket);
    if (n === undefined) return;
    const next = Math.max(0, n + Math.trunc(delta));
    c.buckets.set(entry.bucket, next);
    c.total += next - n;
  }

  /**
   * Forgets counters whose newest bucket left the window a window ago, so one-off per-user keys
   * do not pile up. Counters still in use are only ever pruned by the calls that name them, as in
   * Redis, where such a key simply expires.
   */
  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    for (const [key, c] of this.counters) {
      if (c.buckets.size === 0 || bucketLeavesAt(c.newest, c.windowMs, c.bucketMs) + c.windowMs <= now) this.counters.delete(key);
    }
  }
}
