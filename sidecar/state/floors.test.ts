// Operator-reported spend as a floor: a replica enforces at least what every replica spent
// together, plus what it spent itself since it learnt that sum; /usage still reports its own.
import { describe, expect, it } from 'vitest';
import { BudgetBook } from './budget-book.ts';
import type { BudgetSpec } from './types.ts';

const NOW = 1_000_000;
const END = NOW + 3_600_000;
const spec: BudgetSpec = { key: 'b:shop/m:2026-11', limit: 100, enforce: true, expiresAt: END };

describe('BudgetBook floors', () => {
  it('refuses once the reported total leaves no room, though this replica spent nothing', () => {
    const book = new BudgetBook();
    expect(book.reserve([spec], 10, 1000, NOW, 't1').ok).toBe(true);
    book.setFloors([{ key: spec.key, spent: 95, expiresAt: END }], NOW);
    const r = book.reserve([spec], 10, 1000, NOW, 't2');
    expect(r).toMatchObject({ ok: false, spent: 95, reserved: 10 });
  });

  it('adds what this replica spent after the floor arrived', () => {
    const book = new BudgetBook();
    book.setFloors([{ key: spec.key, spent: 50, expiresAt: END }], NOW);
    const t = book.reserve([spec], 30, 1000, NOW, 't1');
    if (!t.ok) throw new Error('refused');
    book.settle(t.ticket, 30, NOW);
    expect(book.levels([spec.key], NOW).get(spec.key)?.spent).toBe(80);
    // The same floor delivered again (a config reloaded for another reason) keeps its base.
    book.setFloors([{ key: spec.key, spent: 50, expiresAt: END }], NOW);
    expect(book.levels([spec.key], NOW).get(spec.key)?.spent).toBe(80);
    // A new sum already holds this replica's 30.
    book.setFloors([{ key: spec.key, spent: 85, expiresAt: END }], NOW);
    expect(book.levels([spec.key], NOW).get(spec.key)?.spent).toBe(85);
    expect(book.reserve([spec], 20, 1000, NOW, 't2').ok).toBe(false);
  });

  it('reports its own spend, not the floor, in the snapshot the operator adds up', () => {
    const book = new BudgetBook();
    const t = book.reserve([spec], 7, 1000, NOW, 't1');
    if (t.ok) book.settle(t.ticket, 7, NOW);
    book.setFloors([{ key: spec.key, spent: 60, expiresAt: END }], NOW);
    expect(book.snapshot(NOW).get(spec.key)?.spent).toBe(7);
    expect(book.levels([spec.key], NOW).get(spec.key)?.spent).toBe(60);
  });

  it('ignores a floor whose period is over, and counts refusals', () => {
    const book = new BudgetBook();
    book.setFloors([{ key: spec.key, spent: 100, expiresAt: NOW - 1 }], NOW);
    expect(book.reserve([spec], 10, 1000, NOW, 't1').ok).toBe(true);
    book.setFloors([{ key: spec.key, spent: 100, expiresAt: END }], NOW);
    expect(book.reserve([spec], 10, 1000, NOW, 't2').ok).toBe(false);
    expect(book.snapshot(NOW).get(spec.key)?.refused).toBe(1);
  });
});
