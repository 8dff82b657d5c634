import { describe, expect, it } from 'vitest';
import { conditionEvents } from './controller.ts';
import type { DesiredStatus } from '../reconcile/desired.ts';

const c = (type: string, status: 'True' | 'False', reason: string) => ({ type, status, reason, message: `${type} ${reason}`, lastTransitionTime: '2026-11-25T00:00:00Z' });
const desired = (...conditions: ReturnType<typeof c>[]): DesiredStatus => ({ kind: 'AIBudget', name: 'b', status: { conditions } });

describe('conditionEvents', () => {
  it.each([
    ['first Ready', desired(c('Ready', 'True', 'Configured')), undefined, [{ type: 'Normal', reason: 'Ready' }]],
    ['unchanged: nothing', desired(c('Ready', 'True', 'Configured')), [c('Ready', 'True', 'Configured')], []],
    ['route stops being served', desired(c('Ready', 'False', 'SecretNotFound')), [c('Ready', 'True', 'Configured')], [{ type: 'Warning', reason: 'SecretNotFound' }]],
    ['new reason while still failing', desired(c('Ready', 'False', 'InvalidSpec')), [c('Ready', 'False', 'SecretNotFound')], [{ type: 'Warning', reason: 'InvalidSpec' }]],
    ['budget runs out', desired(c('Exhausted', 'True', 'CallsRefused')), [c('Exhausted', 'False', 'WithinLimit')], [{ type: 'Warning', reason: 'BudgetExhausted' }]],
    ['new period', desired(c('Exhausted', 'False', 'WithinLimit')), [c('Exhausted', 'True', 'LimitReached')], [{ type: 'Normal', reason: 'BudgetAvailable' }]],
    ['a new budget within its limit is no news', desired(c('Exhausted', 'False', 'WithinLimit')), undefined, []],
  ])('%s', (_name, s, before, want) => {
    expect(conditionEvents(s, before).map((e) => ({ type: e.type, reason: e.reason }))).toEqual(want);
  });
});
