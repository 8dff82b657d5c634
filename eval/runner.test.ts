import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { answerSummary, pool, ResultCache, toAnswer, type CallResult } from './runner.ts';

describe('answers from either API', () => {
  it('reads text and function calls from a Responses body', () => {
    const body = {
      output: [
        { type: 'reasoning', summary: [] },
        { type: 'function_call', name: 'lookup_order', arguments: '{"order_id":"A-1"}', call_id: 'call_1' },
        { type: 'message', content: [{ type: 'output_text', text: 'one ' }, { type: 'output_text', text: 'two' }] },
      ],
    };
    expect(toAnswer('responses', 200, JSON.stringify(body), 'gpt-4.1-mini')).toEqual({
      status: 200,
      ok: true,
      model: 'gpt-4.1-mini',
      text: 'one two',
      toolCalls: [{ name: 'lookup_order', arguments: '{"order_id":"A-1"}' }],
    });
  });

  it('reads content and tool calls from a Chat body', () => {
    const body = { choices: [{ message: { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'create_ticket', arguments: '{}' } }] } }] };
    expect(toAnswer('chat', 200, JSON.stringify(body), undefined)).toEqual({ status: 200, ok: true, text: '', toolCalls: [{ name: 'create_ticket', arguments: '{}' }] });
  });

  it('keeps the code and message of an error body, or the raw text', () => {
    const err = { error: { message: 'The input holds data this route blocks: email.', type: 'envelope_error', code: 'pii_blocked', param: null } };
    const a = toAnswer('responses', 400, JSON.stringify(err), undefined);
    expect(a).toEqual({ status: 400, ok: false, text: '', toolCalls: [], error: { code: 'pii_blocked', message: 'The input holds data this route blocks: email.' } });
    expect(answerSummary(a)).toBe('error 400 pii_blocked: The input holds data this route blocks: email.');
    expect(toAnswer('chat', 502, 'Bad Gateway', undefined).error).toEqual({ code: null, message: 'Bad Gateway' });
  });
});

describe('the result cache', () => {
  const result = (status: number): CallResult => ({ answer: { status, ok: status === 200, text: 'x', toolCalls: [] }, latencyMs: 5, inputTokens: 10, outputTokens: 1, costUSD: 0.00001 });

  it('keeps answers by key, but not outages, limits or connection errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ai-envelope-cache-'));
    const cache = new ResultCache(dir);
    const key = ResultCache.key({ id: 'a', config: '0123456789abcdef' });
    expect(key).not.toBe(ResultCache.key({ id: 'a', config: 'fedcba9876543210' }));
    expect(await cache.get(key)).toBeUndefined();
    await cache.put(key, result(200));
    expect(await cache.get(key)).toEqual(result(200));
    expect(cache.hits).toBe(1);
    for (const status of [0, 408, 429, 500, 503]) await cache.put(ResultCache.key({ status }), result(status));
    expect(readdirSync(dir)).toEqual([`${key}.json`]);
    // Without a folder nothing is kept.
    const none = new ResultCache(undefined);
    await none.put(key, result(200));
    expect(await none.get(key)).toBeUndefined();
  });
});

describe('bounded concurrency', () => {
  it('never has more than the limit in flight, and runs every item', async () => {
    let inFlight = 0;
    let most = 0;
    const done: number[] = [];
    const gates: Array<() => void> = [];
    const run = pool([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise<void>((resolve) => gates.push(resolve));
      inFlight--;
      done.push(n);
    });
    // Release the waiting items one at a time until all have run.
    while (done.length < 7) {
      await new Promise((r) => setImmediate(r));
      gates.shift()?.();
    }
    await run;
    expect(most).toBe(3);
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });
});
