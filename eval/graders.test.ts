import { describe, expect, it } from 'vitest';
import { caseStatus, fieldAt, runGraders, type Answer, type Judge } from './graders.ts';
import { Case, type Grader } from './suite.ts';

const text = (t: string): Answer => ({ status: 200, ok: true, text: t, toolCalls: [] });
const tool = (name: string, args: unknown): Answer => ({ status: 200, ok: true, text: '', toolCalls: [{ name, arguments: typeof args === 'string' ? args : JSON.stringify(args) }] });
const refused = (code: string, status = 400): Answer => ({ status, ok: false, text: '', toolCalls: [], error: { code, message: `refused: ${code}` } });

/** Graders as the suite schema makes them (defaults applied). */
function graders(...raw: unknown[]): Grader[] {
  return Case.parse({ id: 'c', input: 'x', graders: raw }).graders;
}

async function one(raw: unknown, answer: Answer, judge?: Judge) {
  const [r] = await runGraders(graders(raw), answer, 'the input', judge);
  return r!;
}

describe('graders', () => {
  it('exact compares trimmed text, case-sensitively unless told', async () => {
    expect((await one({ type: 'exact', value: 'billing' }, text(' billing\n'))).status).toBe('pass');
    expect(await one({ type: 'exact', value: 'billing' }, text('Billing'))).toMatchObject({ status: 'fail', reason: 'expected "billing", got "Billing"' });
    expect((await one({ type: 'exact', value: 'billing', caseSensitive: false }, text('Billing'))).status).toBe('pass');
  });

  it('contains needs every value; not_contains none', async () => {
    expect((await one({ type: 'contains', value: ['sorry', '24 HOURS'] }, text('Sorry, within 24 hours.'))).status).toBe('pass');
    expect(await one({ type: 'contains', value: ['sorry', 'refund'] }, text('Sorry.'))).toMatchObject({ status: 'fail', reason: 'missing "refund" in "Sorry."' });
    expect(await one({ type: 'not_contains', value: '4242' }, text('card 4242 on file'))).toMatchObject({ status: 'fail', reason: 'found "4242"' });
    expect((await one({ type: 'not_contains', value: '4242' }, text('card [CREDIT_CARD]'))).status).toBe('pass');
  });

  it('regex uses the given flags', async () => {
    expect((await one({ type: 'regex', pattern: '30[- ]day', flags: 'i' }, text('Within 30 DAYS'))).status).toBe('pass');
    expect((await one({ type: 'regex', pattern: '^\\d+$' }, text('12a'))).status).toBe('fail');
  });

  it('json_schema validates structured output and locates the errors', async () => {
    const g = { type: 'json_schema', schema: { type: 'object', required: ['order_id'], properties: { order_id: { type: 'string' } } } };
    expect((await one(g, text('{"order_id":"A-1"}'))).status).toBe('pass');
    expect(await one(g, text('{"order_id":7}'))).toMatchObject({ status: 'fail', reason: expect.stringContaining('/order_id') });
    expect(await one(g, text('not json'))).toMatchObject({ status: 'fail', reason: 'the answer is not JSON: "not json"' });
  });

  it('fields compares values at dotted paths, null and nested included', async () => {
    const answer = text('{"order":{"id":"B-7","lines":[{"sku":"S1"}]},"amount":null}');
    expect((await one({ type: 'fields', equals: { 'order.id': 'B-7', 'order.lines[0].sku': 'S1', amount: null } }, answer)).status).toBe('pass');
    expect(await one({ type: 'fields', equals: { 'order.id': 'B-8', missing: 1 } }, answer)).toMatchObject({ status: 'fail', reason: 'order.id: expected "B-8", got "B-7"; missing: expected 1, got nothing' });
    expect(fieldAt({ a: [{ b: 2 }] }, 'a.0.b')).toBe(2);
  });

  it('tool_call finds the call and checks its arguments (a subset unless exact)', async () => {
    const g = { type: 'tool_call', tool: 'lookup_order', arguments: { order_id: 'A-2001' } };
    expect((await one(g, tool('lookup_order', { order_id: 'A-2001', verbose: true }))).status).toBe('pass');
    expect(await one({ ...g, exactArguments: true }, tool('lookup_order', { order_id: 'A-2001', verbose: true }))).toMatchObject({ status: 'fail', reason: 'lookup_order arguments: verbose: not expected' });
    expect(await one(g, tool('lookup_order', { order_id: 'A-2002' }))).toMatchObject({ status: 'fail', reason: 'lookup_order arguments: order_id: expected "A-2001", got "A-2002"' });
    expect(await one(g, tool('create_ticket', {}))).toMatchObject({ status: 'fail', reason: 'no call to lookup_order (called: create_ticket)' });
    expect(await one(g, text('I looked it up'))).toMatchObject({ status: 'fail', reason: 'no call to lookup_order (called: none)' });
    expect(await one(g, tool('lookup_order', '{"order_id":'))).toMatchObject({ status: 'fail', reason: expect.stringContaining('arguments are not JSON') });
  });

  it('label must be one of the allowed set, and the expected one when given', async () => {
    const g = { type: 'label', labels: ['billing', 'shipping'], expected: 'billing' };
    expect(await one(g, text('Billing'))).toMatchObject({ status: 'pass', reason: 'labelled billing' });
    expect(await one(g, text('shipping'))).toMatchObject({ status: 'fail', reason: 'labelled shipping, expected billing' });
    expect(await one(g, text('refunds'))).toMatchObject({ status: 'fail', reason: '"refunds" is not one of billing, shipping' });
    expect((await one({ type: 'label', labels: ['low', 'high'], field: 'priority' }, text('{"priority":"high"}'))).status).toBe('pass');
  });

  it('number allows an absolute or relative tolerance, from a field or the text', async () => {
    expect((await one({ type: 'number', field: 'amount', expected: 59.9, tolerance: 0.01 }, text('{"amount":59.905}'))).status).toBe('pass');
    expect(await one({ type: 'number', field: 'amount', expected: 59.9, tolerance: 0.01 }, text('{"amount":60}'))).toMatchObject({ status: 'fail' });
    expect((await one({ type: 'number', expected: 200, tolerance: 0.1, relative: true }, text('About 215 EUR'))).status).toBe('pass');
    expect(await one({ type: 'number', expected: 1 }, text('none'))).toMatchObject({ status: 'fail', reason: 'no number in "none"' });
  });

  it('error expects the envelope to refuse with the code; other graders fail on a refusal', async () => {
    expect(await one({ type: 'error', code: 'tool_not_allowed' }, refused('tool_not_allowed', 422))).toMatchObject({ status: 'pass' });
    expect(await one({ type: 'error', code: 'tool_not_allowed' }, refused('pii_blocked'))).toMatchObject({ status: 'fail', reason: 'refused with pii_blocked, expected tool_not_allowed' });
    expect(await one({ type: 'error', code: 'pii_blocked' }, text('ok'))).toMatchObject({ status: 'fail', reason: 'the call succeeded; expected the envelope to refuse with pii_blocked' });
    expect(await one({ type: 'contains', value: 'x' }, refused('output_invalid', 422))).toMatchObject({ status: 'fail', reason: 'the call failed: 422 output_invalid: refused: output_invalid' });
  });

  it('rubric asks the judge and applies the minimum score', async () => {
    const seen: string[] = [];
    const judge: Judge = async (rubric, input, answer) => {
      seen.push(`${rubric}|${input}|${answer.text}`);
      return { pass: true, score: 0.6, reason: 'fine' };
    };
    expect(await one({ type: 'rubric', rubric: 'Be kind.' }, text('Sorry!'), judge)).toMatchObject({ status: 'pass', score: 0.6, reason: 'judge: pass, score 0.6: fine' });
    expect(seen).toEqual(['Be kind.|the input|Sorry!']);
    expect((await one({ type: 'rubric', rubric: 'Be kind.', minScore: 0.8 }, text('Sorry!'), judge)).status).toBe('fail');
  });

  it('a grader that throws is an error of its case, and the others still run', async () => {
    const judge: Judge = async () => {
      throw new Error("the judge's verdict is not JSON");
    };
    const results = await runGraders(graders({ type: 'rubric', rubric: 'r' }, { type: 'contains', value: 'ok' }), text('ok'), 'in', judge);
    expect(results).toEqual([
      { grader: 'rubric', type: 'rubric', status: 'error', reason: "the judge's verdict is not JSON" },
      { grader: 'contains', type: 'contains', status: 'pass', reason: 'all present' },
    ]);
    expect(caseStatus(results)).toBe('error');
    expect((await one({ type: 'rubric', rubric: 'r' }, text('ok'))).status).toBe('error');
  });

  it('a case passes only when every grader passes', () => {
    const r = (status: 'pass' | 'fail') => ({ grader: 'g', type: 'exact' as const, status, reason: '' });
    expect(caseStatus([r('pass'), r('pass')])).toBe('pass');
    expect(caseStatus([r('pass'), r('fail')])).toBe('fail');
  });
});
