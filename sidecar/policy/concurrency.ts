// In-flight calls per route: up to `limit` run, up to `maxWaiting` more wait in order for at most
// `maxWaitMs`, and the rest are refused at once with concurrency_limited, so a burst neither
// floods the upstream nor piles up unbounded in memory.
import { EnvelopeError } from '../errors.ts';

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  onAbort: () => void;
  signal: AbortSignal;
}

export class ConcurrencyGate {
  readonly limit: number;
  readonly maxWaiting: number;
  readonly maxWaitMs: number;
  private running = 0;
  private readonly queue: Waiter[] = [];

  constructor(limit: number, maxWaiting: number, maxWaitMs: number) {
    this.limit = limit;
    this.maxWaiting = maxWaiting;
    this.maxWaitMs = maxWaitMs;
  }

  get inFlight(): number {
    return this.running;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Resolves with a release function once the call may run. */
  acquire(signal: AbortSignal, route: string): Promise<() => void> {
    if (this.running < this.limit) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.queue.length >= this.maxWaiting) {
      return Promise.reject(this.refusal(route, `${this.running} calls in flight and ${this.queue.length} waiting`));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        timer: setTimeout(() => {
          this.remove(waiter);
          reject(this.refusal(route, `no slot freed within ${this.maxWaitMs} ms`));
        }, this.maxWaitMs),
        onAbort: () => {
          this.remove(waiter);
          reject(new EnvelopeError('concurrency_limited', 'The app closed the connection while waiting.', { status: 499 }));
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.queue.shift();
      if (next) {
        clearTimeout(next.timer);
        next.signal.removeEventListener('abort', next.onAbort);
        next.resolve(this.releaser());
      } else {
        this.running--;
      }
    };
  }

  private remove(w: Waiter): void {
    const i = this.queue.indexOf(w);
    if (i !== -1) this.queue.splice(i, 1);
    clearTimeout(w.timer);
    w.signal.removeEventListener('abort', w.onAbort);
  }

  private refusal(route: string, why: string): EnvelopeError {
    return new EnvelopeError('concurrency_limited', `Route '${route}' is at its concurrency limit (limits.concurrency: ${this.limit}; ${why}). Try again shortly.`, {
      headers: { 'retry-after': '1' },
    });
  }
}
