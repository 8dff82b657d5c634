import { describe, expect, it } from 'vitest';
import { periodOf } from './periods.ts';

const at = (s: string) => Date.parse(s);

describe('periodOf', () => {
  it('splits days, ISO weeks (from Monday) and months in UTC', () => {
    expect(periodOf('daily', at('2026-11-25T23:59:59Z'))).toEqual({ key: '2026-11-25', start: at('2026-11-25T00:00:00Z'), end: at('2026-11-26T00:00:00Z') });
    expect(periodOf('weekly', at('2026-11-25T10:00:00Z'))).toEqual({ key: '2026-W-2026-11-23', start: at('2026-11-23T00:00:00Z'), end: at('2026-11-30T00:00:00Z') });
    expect(periodOf('weekly', at('2026-11-29T23:00:00Z')).key).toBe('2026-W-2026-11-23');
    expect(periodOf('weekly', at('2026-11-30T00:00:00Z')).key).toBe('2026-W-2026-11-30');
    expect(periodOf('monthly', at('2026-12-31T12:00:00Z'))).toEqual({ key: '2026-12', start: at('2026-12-01T00:00:00Z'), end: at('2027-01-01T00:00:00Z') });
    expect(periodOf('monthly', at('2028-02-29T12:00:00Z')).end).toBe(at('2028-03-01T00:00:00Z'));
  });

  it('answers every instant right whatever order they come in, though it keeps the last span', () => {
    // Forth and back across boundaries: a kept span must never answer for an instant outside it.
    const instants = ['2026-11-30T23:59:59.999Z', '2026-12-01T00:00:00Z', '2026-11-30T12:00:00Z', '2027-01-01T00:00:00Z', '2026-12-31T23:59:59.999Z'];
    const keys = instants.map((s) => [periodOf('daily', at(s)).key, periodOf('weekly', at(s)).key, periodOf('monthly', at(s)).key]);
    expect(keys).toEqual([
      ['2026-11-30', '2026-W-2026-11-30', '2026-11'],
      ['2026-12-01', '2026-W-2026-11-30', '2026-12'],
      ['2026-11-30', '2026-W-2026-11-30', '2026-11'],
      ['2027-01-01', '2026-W-2026-12-28', '2027-01'],
      ['2026-12-31', '2026-W-2026-12-28', '2026-12'],
    ]);
    // Inside one span the same object comes back, and nobody can change it for the next caller.
    const span = periodOf('monthly', at('2026-12-05T00:00:00Z'));
    expect(periodOf('monthly', at('2026-12-20T00:00:00Z'))).toBe(span);
    expect(Object.isFrozen(span)).toBe(true);
  });
});
