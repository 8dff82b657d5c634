import { describe, expect, it } from 'vitest';
import { EnvelopeError } from '../errors.ts';
import { ConcurrencyGate } from './concurrency.ts';

const never = new AbortController().signal;

describe('ConcurrencyGate', () => {
  it('runs up to the limit, queues in order, and hands slots over on release', async () => {
    const gate = new ConcurrencyGate(2, 5, 1000);
    const r1 = await gate.acquire(never, 'r');
    await gate.acquire(never, 'r');
    const order: number[] = [];
    const w3 = gate.acquire(never, 'r').then((rel) => (order.push(3), rel));
    const w4 = gate.acquire(never, 'r').then((rel) => (order.push(4), rel));
    expect(gate.inFlight).toBe(2);
    expect(gate.waiting).toBe(2);
    r1();
    r1(); // releasing twice frees one slot only
    const rel3 = await w3;
    expect(order).toEqual([3]);
    expect(gate.inFlight).toBe(2);
    rel3();
    await w4;
    expect(order).toEqual([3, 4]);
  });
  it('refuses at once when the queue is full', async () => {
    const gate = new ConcurrencyGate(1, 1, 1000);
    await gate.acquire(never, 'r');
    void gate.acquire(never, 'r');
    await expect(gate.acquire(never, 'r')).rejects.toMatchObject({ code: 'concurrency_limited', status: 429 });
  });
  it('refuses a waiter after maxWaitMs and forgets it', async () => {
    const gate = new ConcurrencyGate(1, 4, 30);
    const release = await gate.acquire(never, 'r');
    const err = await gate.acquire(never, 'r').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvelopeError);
    expect((err as EnvelopeError).message).toContain('30 ms');
    expect(gate.waiting).toBe(0);
    release();
    expect(gate.inFlight).toBe(0);
  });
  it('drops a waiter whose app went away', async () => {
    const gate = new ConcurrencyGate(1, 4, 1000);
    await gate.acquire(never, 'r');
    const ac = new AbortController();
    const waiting = gate.acquire(ac.signal, 'r').catch((e: unknown) => e);
    ac.abort();
    expect(((await waiting) as EnvelopeError).status).toBe(499);
    expect(gate.waiting).toBe(0);
  });
});
