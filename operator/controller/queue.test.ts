import { describe, expect, it } from 'vitest';
import { WorkQueue } from './queue.ts';
import { backoffDelay } from './backoff.ts';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('WorkQueue', () => {
  it('runs a key once however often it is added while queued', async () => {
    const seen: string[] = [];
    const q = new WorkQueue(async (k) => void seen.push(k), { concurrency: 1, backoff: { baseMs: 1, maxMs: 1 } });
    // x takes the only worker, so a and b wait in the queue.
    q.add('x');
    q.add('a');
    q.add('b');
    q.add('b');
    q.add('a');
    expect(q.depth).toBe(2);
    await q.idle();
    expect(seen).toEqual(['x', 'a', 'b']);
  });

  it('never works on one key twice at once, and runs it again when added meanwhile', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const q = new WorkQueue(
      async () => {
        running++;
        runs++;
        maxRunning = Math.max(maxRunning, running);
        await tick(20);
        running--;
      },
      { concurrency: 4, backoff: { baseMs: 1, maxMs: 1 } },
    );
    q.add('a');
    await tick();
    q.add('a');
    q.add('a');
    await tick(60);
    await q.idle();
    expect(maxRunning).toBe(1);
    expect(runs).toBe(2);
  });

  it('retries a failing key with backoff while other keys go on', async () => {
    const attempts: Record<string, number[]> = { bad: [], good: [] };
    const start = Date.now();
    const q = new WorkQueue(
      async (k) => {
        attempts[k]?.push(Date.now() - start);
        if (k === 'bad' && (attempts.bad?.length ?? 0) < 3) throw new Error('boom');
      },
      { concurrency: 1, backoff: { baseMs: 20, maxMs: 1000 } },
    );
    q.add('bad');
    q.add('good');
    await tick(10);
    expect(attempts.good).toHaveLength(1);
    expect(q.depth).toBe(1);
    for (let i = 0; i < 50 && (attempts.bad?.length ?? 0) < 3; i++) await tick(10);
    expect(attempts.bad).toHaveLength(3);
    const [, second = 0, third = 0] = attempts.bad ?? [];
    // The second wait is at least half of twice the base.
    expect(third - second).toBeGreaterThanOrEqual(19);
    expect(q.depth).toBe(0);
    q.stop();
  });
});

describe('backoffDelay', () => {
  it('grows exponentially to the cap, with half of it random', () => {
    const b = { baseMs: 100, maxMs: 1000 };
    expect(backoffDelay(0, b, () => 0)).toBe(50);
    expect(backoffDelay(0, b, () => 1)).toBe(100);
    expect(backoffDelay(3, b, () => 0)).toBe(400);
    expect(backoffDelay(10, b, () => 1)).toBe(1000);
    expect(backoffDelay(1000, b, () => 0.5)).toBe(750);
  });
});
