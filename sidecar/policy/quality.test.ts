import { describe, expect, it } from 'vitest';
import { QualitySignals, qualitySignals } from './quality.ts';
import type { RequestRecord } from '../telemetry/log.ts';

const body = (s: string) => Buffer.from(JSON.stringify({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: s }] }));
const answered = (id: string, extra: Partial<RequestRecord> = {}): RequestRecord => ({ request_id: id, endpoint: 'chat.completions', method: 'POST', path: '/v1/chat/completions', stream: false, status: 200, attempts: 1, latency_ms: 1, route: 'shop/support', model: 'gpt-4.1-mini', prompt_version: 'v3', ...extra });

describe('QualitySignals.repeated', () => {
  it('is a repeat for the same user, route and body within the window, and not after it', () => {
    const q = new QualitySignals({ repeatWindowMs: 1000 });
    expect(q.repeated('shop/a', 'u1', body('where is my order?'), 0)).toBe(false);
    expect(q.repeated('shop/a', 'u1', body('where is my order?'), 500)).toBe(true);
    // Each repeat restarts the window.
    expect(q.repeated('shop/a', 'u1', body('where is my order?'), 1400)).toBe(true);
    expect(q.repeated('shop/a', 'u1', body('where is my order?'), 2401)).toBe(false);
  });

  it('tells users, routes and inputs apart', () => {
    const q = new QualitySignals();
    q.repeated('shop/a', 'u1', body('hello'), 0);
    expect(q.repeated('shop/a', 'u2', body('hello'), 1)).toBe(false);
    expect(q.repeated('shop/b', 'u1', body('hello'), 2)).toBe(false);
    expect(q.repeated('shop/a', 'u1', body('hello!'), 3)).toBe(false);
  });

  it('forgets the oldest fingerprints beyond its bound', () => {
    const q = new QualitySignals({ maxFingerprints: 2 });
    for (const s of ['a', 'b', 'c']) q.repeated('r', 'u', body(s), 0);
    expect(q.repeated('r', 'u', body('a'), 1)).toBe(false);
    expect(q.repeated('r', 'u', body('c'), 1)).toBe(true);
  });
});

describe('QualitySignals.feedback', () => {
  it('takes one verdict per answered request, and says when it does not know the request', () => {
    const q = new QualitySignals({ feedbackWindowMs: 1000 });
    q.answeredRequest(answered('req_1'), 0);
    q.answeredRequest(answered('req_err', { status: 429 }), 0);
    expect(q.feedback('req_1', 'edited', 10)).toEqual({ kind: 'recorded', request: { route: 'shop/support', model: 'gpt-4.1-mini', promptVersion: 'v3', feedback: 'edited' } });
    expect(q.feedback('req_1', 'accepted', 20)).toEqual({ kind: 'already', outcome: 'edited' });
    expect(q.feedback('req_err', 'rejected', 20)).toEqual({ kind: 'unknown' });
    expect(q.feedback('req_nope', 'rejected', 20)).toEqual({ kind: 'unknown' });
    q.answeredRequest(answered('req_2'), 0);
    expect(q.feedback('req_2', 'accepted', 1000)).toEqual({ kind: 'unknown' });
  });
});

describe('qualitySignals', () => {
  it.each([
    [{}, []],
    [{ output_checked: true }, ['output_valid']],
    [{ output_checked: true, output_action: 'repaired' }, ['output_valid', 'output_repaired']],
    [{ output_checked: true, output_action: 'fallback' }, ['output_valid', 'output_fallback']],
    [{ output_action: 'reject', error_code: 'output_invalid', status: 422 }, ['output_rejected']],
    [{ error_code: 'tool_not_allowed', status: 403 }, ['tool_refused']],
    [{ repeat: true }, ['repeated_input']],
  ] as Array<[Partial<RequestRecord>, string[]]>)('%j → %j', (extra, signals) => {
    expect(qualitySignals(answered('r', extra))).toEqual(signals);
  });
});
