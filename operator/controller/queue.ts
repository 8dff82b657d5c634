// A keyed work queue. A key is queued at most once however often it is added; a key being worked
// on is never worked on twice at the same time (an add during the work runs it once more after);
// a failed key comes back after a per-key backoff while every other key carries on. Nothing is
// kept for a key once it has succeeded, so the queue's memory follows the work, not the history.
import { backoffDelay, type Backoff } from './backoff.ts';

export interface QueueOptions {
  concurrency: number;
  backoff: Backoff;
  /** Called with the number of keys waiting (queued or waiting for a retry). */
  onDepth?: (depth: number) => void;
  onError?: (key: string, err: unknown, attempt: number, retryInMs: number) => void;
}

export class WorkQueue {
  private readonly worker: (key: string) => Promise<void>;
  private readonly opts: QueueOptions;
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly active = new Set<string>();
  /** Added again while being worked on. */
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly retries = new Map<string, NodeJS.Timeout>();
  private running = 0;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];

  constructor(worker: (key: string) => Promise<void>, opts: QueueOptions) {
    this.worker = worker;
    this.opts = opts;
  }

  get depth(): number {
    return this.queue.length + this.retries.size;
  }

  add(key: string): void {
    if (this.stopped) return;
    // A fresh reason to look at a key beats waiting out its backoff.
    const timer = this.retries.get(key);
    if (timer) {
      clearTimeout(timer);
      this.retries.delete(key);
    }
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.report();
    this.pump();
  }

  private report(): void {
    this.opts.onDepth?.(this.depth);
  }

  private pump(): void {
    while (!this.stopped && this.running < this.opts.concurrency && this.queue.length > 0) {
      const key = this.queue.shift() as string;
      this.queued.delete(key);
      this.active.add(key);
      this.running++;
      void this.work(key);
    }
    this.report();
    if (this.running === 0 && this.queue.length === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private async work(key: string): Promise<void> {
    let failed: unknown;
    try {
      await this.worker(key);
    } catch (err) {
      failed = err ?? new Error('failed');
    }
    this.active.delete(key);
    this.running--;
    if (failed !== undefined && !this.dirty.has(key)) {
      const attempt = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, attempt);
      const delay = backoffDelay(attempt - 1, this.opts.backoff);
      this.opts.onError?.(key, failed, attempt, delay);
      if (!this.stopped) {
        const timer = setTimeout(() => {
          this.retries.delete(key);
          this.add(key);
        }, delay);
        timer.unref();
        this.retries.set(key, timer);
      }
    } else if (failed === undefined) {
      this.failures.delete(key);
    }
    if (this.dirty.delete(key)) this.add(key);
    this.pump();
  }

  /** Resolves when nothing is queued or running (retries waiting on a timer do not count). */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.retries.values()) clearTimeout(t);
    this.retries.clear();
    this.queue.length = 0;
    this.queued.clear();
    this.report();
  }
}
