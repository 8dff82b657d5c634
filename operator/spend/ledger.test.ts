import { describe, expect, it } from 'vitest';
import { SpendLedger, type BudgetRef, type PodReport } from './ledger.ts';

const NOW = Date.UTC(2026, 10, 25, 12);
const B: BudgetRef = { namespace: 'shop', name: 'm', period: 'monthly' };
const rep = (uid: string, spentNano: number, opts: { period?: string; backend?: string; refused?: boolean } = {}): PodReport => ({
  uid,
  pod: `pod-${uid}`,
  namespace: 'shop',
  backend: opts.backend ?? 'local',
  budgets: new Map([['m', { period: opts.period ?? '2026-11', spentNano, refused: opts.refused ?? false }]]),
});

describe('SpendLedger', () => {
  it('sums pods, and keeps the spend of a pod that is gone', () => {
    const l = new SpendLedger();
    expect(l.observe([rep('a', 10), rep('b', 5)], [B], new Set(['a', 'b']), NOW)).toEqual(new Set(['shop/m']));
    expect(l.spendFor(B, NOW).spentNano).toBe(15);
    l.observe([rep('b', 7)], [B], new Set(['b']), NOW);
    expect(l.spendFor(B, NOW)).toMatchObject({ spentNano: 17, sidecarSpend: [{ uid: 'b', pod: 'pod-b' }] });
  });

  it('keeps a figure when a pod does not answer, and reports no change', () => {
    const l = new SpendLedger();
    l.observe([rep('a', 10)], [B], new Set(['a']), NOW);
    expect(l.observe([], [B], new Set(['a']), NOW).size).toBe(0);
    expect(l.spendFor(B, NOW).spentNano).toBe(10);
  });

  it('carries what a sidecar had counted when it restarts from zero', () => {
    const l = new SpendLedger();
    l.observe([rep('a', 10)], [B], new Set(['a']), NOW);
    l.observe([rep('a', 3)], [B], new Set(['a']), NOW);
    expect(l.spendFor(B, NOW).spentNano).toBe(13);
  });

  it('takes a shared Redis counter once, however many replicas report it', () => {
    const l = new SpendLedger();
    l.observe([rep('a', 40, { backend: 'redis' }), rep('b', 42, { backend: 'redis' })], [B], new Set(['a', 'b']), NOW);
    expect(l.spendFor(B, NOW).spentNano).toBe(42);
  });

  it('starts from zero in a new period and ignores reports of another one', () => {
    const l = new SpendLedger();
    l.observe([rep('a', 10)], [B], new Set(['a']), NOW);
    const december = Date.UTC(2026, 11, 1, 0, 0, 1);
    l.observe([rep('a', 12, { period: '2026-11' })], [B], new Set(['a']), december);
    expect(l.spendFor(B, december)).toMatchObject({ period: '2026-12', spentNano: 0 });
    l.observe([rep('a', 2, { period: '2026-12' })], [B], new Set(['a']), december);
    expect(l.spendFor(B, december).spentNano).toBe(2);
  });

  it('resumes from the status after a restart without counting a pod twice', () => {
    const withStatus: BudgetRef = { ...B, status: { periodStart: '2026-11-01T00:00:00Z', spentUSD: '0.000000030', sidecarSpend: [{ uid: 'a', pod: 'pod-a', spentUSD: 0.00000001 }] } };
    const l = new SpendLedger();
    expect(l.spendFor(withStatus, NOW).spentNano).toBe(30);
    l.observe([rep('a', 12)], [withStatus], new Set(['a']), NOW);
    expect(l.spendFor(withStatus, NOW).spentNano).toBe(32);
    // A status from an earlier period is not resumed.
    const stale: BudgetRef = { ...B, status: { periodStart: '2026-10-01T00:00:00Z', spentUSD: '5.00' } };
    expect(new SpendLedger().spendFor(stale, NOW).spentNano).toBe(0);
  });

  it('remembers a refusal for the period', () => {
    const l = new SpendLedger();
    l.observe([rep('a', 10, { refused: true })], [B], new Set(['a']), NOW);
    expect(l.spendFor(B, NOW).refused).toBe(true);
  });
});
