// A circuit breaker per upstream and model. Attempts that fail for upstream reasons (5xx,
// timeouts, broken connections) are counted in a rolling window of one-second buckets; when
// enough calls have been seen and the failure share reaches the threshold, the circuit opens
// and calls go to the fallback (or get circuit_open) at once, sparing a struggling upstream
// and the app's latency. After `openSeconds` a few probes are let through: success closes it.
import type { z } from 'zod';
import type { CircuitBreakerPolicy } from '../../crds/schema.ts';

export type BreakerPolicy = z.output<typeof CircuitBreakerPolicy>;
export type BreakerState = 'closed' | 'open' | 'half_open';

export class CircuitBreaker {
  readonly policy: BreakerPolicy;
  private mode: BreakerState = 'closed';
  private openedAt = 0;
  private probes = 0;
  /** second → [calls, failures] */
  private readonly buckets = new Map<number, [number, number]>();

  constructor(policy: BreakerPolicy) {
    this.policy = policy;
  }

  state(now: number): BreakerState {
    if (this.mode === 'open' && now - this.openedAt >= this.policy.openSeconds * 1000) {
      this.mode = 'half_open';
      this.probes = 0;
    }
    return this.mode;
  }

  /** Whether an attempt may go now; in half-open this takes one of the probe slots. */
  tryAcquire(now: number): boolean {
    const s = this.state(now);
    if (s === 'closed') return true;
    if (s === 'open') return false;
    if (this.probes >= this.policy.halfOpenProbes) return false;
    this.probes++;
    return true;
  }

  /** Records an attempt's outcome; returns the state after it. */
  record(success: boolean, now: number): BreakerState {
    const s = this.state(now);
    if (s === 'half_open') {
      if (success) this.close();
      else this.open(now);
      return this.mode;
    }
    if (s === 'open') return s;
    const second = Math.floor(now / 1000);
    const bucket = this.buckets.get(second) ?? [0, 0];
    bucket[0]++;
    if (!success) bucket[1]++;
    this.buckets.set(second, bucket);
    if (success) return s;
    let calls = 0;
    let failures = 0;
    const oldest = second - this.policy.windowSeconds + 1;
    for (const [sec, [c, f]] of this.buckets) {
      if (sec < oldest) this.buckets.delete(sec);
      else {
        calls += c;
        failures += f;
      }
    }
    if (calls >= this.policy.minimumCalls && failures / calls >= this.policy.failureRatio) this.open(now);
    return this.mode;
  }

  private open(now: number): void {
    this.mode = 'open';
    this.openedAt = now;
    this.buckets.clear();
  }

  private close(): void {
    this.mode = 'closed';
    this.buckets.clear();
  }
}

/**
 * One breaker per upstream, model and policy: routes that share an upstream and a policy share
 * what they learn; a route with its own policy keeps its own count.
 */
export class Breakers {
  private readonly map = new Map<string, { upstream: string; model: string; breaker: CircuitBreaker }>();

  get(upstream: string, model: string, policy: BreakerPolicy): CircuitBreaker {
    const key = `${upstream} ${model} ${policy.failureRatio}/${policy.minimumCalls}/${policy.windowSeconds}/${policy.openSeconds}/${policy.halfOpenProbes}`;
    let entry = this.map.get(key);
    if (!entry) {
      entry = { upstream, model, breaker: new CircuitBreaker(policy) };
      this.map.set(key, entry);
    }
    return entry.breaker;
  }

  states(now: number): Array<{ upstream: string; model: string; state: BreakerState }> {
    return [...this.map.values()].map((e) => ({ upstream: e.upstream, model: e.model, state: e.breaker.state(now) }));
  }
}
