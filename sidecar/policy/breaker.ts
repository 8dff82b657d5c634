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

/** One breaker per upstream and model; a changed policy starts a fresh breaker. */
export class Breakers {
  private readonly map = new Map<string, CircuitBreaker>();

  get(baseURL: string, model: string, policy: BreakerPolicy): CircuitBreaker {
    const key = `${baseURL} ${model}`;
    const found = this.map.get(key);
    if (found && samePolicy(found.policy, policy)) return found;
    const fresh = new CircuitBreaker(policy);
    this.map.set(key, fresh);
    return fresh;
  }

  states(now: number): Array<{ upstream: string; model: string; state: BreakerState }> {
    return [...this.map].map(([key, b]) => {
      const [upstream = '', model = ''] = key.split(' ');
      return { upstream, model, state: b.state(now) };
    });
  }
}

function samePolicy(a: BreakerPolicy, b: BreakerPolicy): boolean {
  return a.failureRatio === b.failureRatio && a.minimumCalls === b.minimumCalls && a.windowSeconds === b.windowSeconds && a.openSeconds === b.openSeconds && a.halfOpenProbes === b.halfOpenProbes;
}
