import { describe, expect, it } from 'vitest';
import { failureOf, mergeResults } from './results.ts';

const ok = (id: string) => JSON.stringify({ id: `batch_req_${id}`, custom_id: id, response: { status_code: 200, request_id: 'req_1', body: {} }, error: null });
const bad = (id: string) =>
  JSON.stringify({ id: `batch_req_${id}`, custom_id: id, response: { status_code: 404, request_id: 'req_2', body: { error: { message: 'no such model', type: 'invalid_request_error', param: null, code: 'model_not_found' } } }, error: null });
const expired = (id: string) => JSON.stringify({ id: `batch_req_${id}`, custom_id: id, response: null, error: { code: 'batch_expired', message: 'too late' } });

describe('mergeResults', () => {
  it('writes one line per request in input order and lists failures per custom_id', () => {
    const m = mergeResults(`${ok('c')}\n${ok('a')}\n`, `${bad('b')}\n${expired('d')}\n`, ['a', 'b', 'c', 'd', 'e']);
    expect(m.lines.map((l) => JSON.parse(l).custom_id)).toEqual(['a', 'b', 'c', 'd']);
    expect(m.errorLines).toEqual([bad('b'), expired('d')]);
    expect(m.succeeded).toBe(2);
    expect(m.failed).toEqual([
      { customId: 'b', reason: '404 model_not_found: no such model' },
      { customId: 'd', reason: 'batch_expired: too late' },
    ]);
    expect(m.missing).toEqual(['e']);
  });

  it('keeps the files own order without an input, and names a broken server line', () => {
    expect(mergeResults(ok('z'), bad('y')).lines.map((l) => JSON.parse(l).custom_id)).toEqual(['z', 'y']);
    expect(() => mergeResults(`${ok('a')}\n{oops`, '')).toThrow(/^output file, line 2: not valid JSON/);
  });

  it('treats any non-2xx response as failed, with or without an error body', () => {
    expect(failureOf({ response: { status_code: 201, body: {} }, error: null })).toBeUndefined();
    expect(failureOf({ response: { status_code: 500, body: 'boom' }, error: null })).toBe('500 no error detail');
  });
});
