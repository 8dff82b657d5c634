import { describe, expect, it } from 'vitest';
import { applyOutputCap } from './caps.ts';

describe('applyOutputCap', () => {
  it('sets the cap when the app set none, lowers a higher one, keeps a lower one', () => {
    const a: Record<string, unknown> = {};
    applyOutputCap('chat.completions', a, 100);
    expect(a.max_completion_tokens).toBe(100);
    const b: Record<string, unknown> = { max_tokens: 500 };
    applyOutputCap('chat.completions', b, 100);
    expect(b).toEqual({ max_tokens: 100 });
    const c: Record<string, unknown> = { max_output_tokens: 50 };
    applyOutputCap('responses', c, 100);
    expect(c.max_output_tokens).toBe(50);
    const d: Record<string, unknown> = {};
    applyOutputCap('embeddings', d, 100);
    expect(d).toEqual({});
    applyOutputCap('responses', d, undefined);
    expect(d).toEqual({});
  });
});
