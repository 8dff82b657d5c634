import { describe, expect, it } from 'vitest';
import { checkBatchInput } from './input.ts';

const line = (o: Record<string, unknown>) => JSON.stringify({ method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4.1-mini' }, ...o });

describe('checkBatchInput', () => {
  it('accepts a good file, skipping blank lines, and keeps the custom_id order', () => {
    const r = checkBatchInput(`${line({ custom_id: 'b' })}\n\n${line({ custom_id: 'a' })}\n`, 'in.jsonl');
    expect(r).toEqual({ customIds: ['b', 'a'], endpoint: '/v1/chat/completions', problems: [] });
  });

  it('names the file and line of every problem', () => {
    const text = [
      line({ custom_id: 'a' }),
      '{"custom_id": "b",',
      line({ custom_id: 'a' }),
      line({}),
      line({ custom_id: 'c', method: 'GET' }),
      line({ custom_id: 'd', url: '/v1/embeddings' }),
      line({ custom_id: 'e', body: 'hi' }),
      line({ custom_id: 'f', body: { stream: true } }),
      '[1]',
    ].join('\n');
    const { problems } = checkBatchInput(text, 'in.jsonl');
    expect(problems).toEqual([
      expect.stringMatching(/^in\.jsonl:2: not valid JSON \(/),
      "in.jsonl:3: custom_id 'a' repeats line 1",
      'in.jsonl:4: custom_id is missing',
      'in.jsonl:5: method must be "POST", got "GET"',
      "in.jsonl:6: url '/v1/embeddings' differs from '/v1/chat/completions' on line 1: a batch has one endpoint",
      'in.jsonl:7: body must be a JSON object (the request body)',
      'in.jsonl:8: body.stream: streaming is not supported in a batch',
      'in.jsonl:9: must be a JSON object with custom_id, method, url and body',
    ]);
  });

  it('holds every line to --endpoint when given, and refuses an empty file', () => {
    expect(checkBatchInput(line({ custom_id: 'a' }), 'x', '/v1/responses').problems).toEqual([
      "x:1: url '/v1/chat/completions' differs from --endpoint '/v1/responses': a batch has one endpoint",
    ]);
    expect(checkBatchInput('\n\n', 'x').problems).toEqual(['x: no requests (an empty file)']);
  });
});
