import { describe, expect, it } from 'vitest';
import { Breakers, CircuitBreaker } from './breaker.ts';

const policy = { failureRatio: 0.5, minimumCalls: 4, windowSeconds: 10, openSeconds: 5, halfOpenProbes: 1 };

describe('CircuitBreaker', () => {
  it('stays closed until enough calls have failed often enough', () => {
    const b = new CircuitBreaker(policy);
    expect(b.record(false, 0)).toBe('closed');
    expect(b.record(false, 10)).toBe('closed');
    expect(b.record(true, 20)).toBe('closed');
    expect(b.record(false, 30)).toBe('open');
    expect(b.tryAcquire(40)).toBe(false);
  });
  it('forgets failures that left the window', () => {
    const b = new CircuitBreaker(policy);
    b.record(false, 0);
    b.record(false, 0);
    b.record(false, 0);
    expect(b.record(false, 11_000)).toBe('closed');
  });
  it('half-opens after openSeconds with a limited number of probes, and closes on success', () => {
    const b = new CircuitBreaker(policy);
    for (let i = 0; i < 4; i++) b.record(false, 0);
    expect(b.state(4999)).toBe('open');
    expect(b.tryAcquire(5000)).toBe(true);
    expect(b.tryAcquire(5001)).toBe(false);
    expect(b.record(true, 5100)).toBe('closed');
    expect(b.tryAcquire(5200)).toBe(true);
  });
  it('opens again when a probe fails', () => {
    const b = new CircuitBreaker(policy);
    for (let i = 0; i < 4; i++) b.record(false, 0);
    expect(b.tryAcquire(6000)).toBe(true);
    expect(b.record(false, 6100)).toBe('open');
    expect(b.tryAcquire(10_000)).toBe(false);
    expect(b.tryAcquire(11_100)).toBe(true);
  });
});

describe('Breakers', () => {
  it('keeps one breaker per upstream, model and policy', () => {
    const reg = new Breakers();
    const a = reg.get('https://u', 'm', policy);
    expect(reg.get('https://u', 'm', { ...policy })).toBe(a);
    expect(reg.get('https://u', 'other', policy)).not.toBe(a);
    const b = reg.get('https://u', 'm', { ...policy, minimumCalls: 9 });
    expect(b).not.toBe(a);
    expect(reg.get('https://u', 'm', policy)).toBe(a);
    expect(reg.states(0)).toHaveLength(3);
  });
});
