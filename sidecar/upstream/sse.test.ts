import { describe, expect, it } from 'vitest';
import { SseTap } from './sse.ts';

const enc = (s: string) => new TextEncoder().encode(s);

function chatStream(): string[] {
  const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4.1-mini-2025-04-14' };
  return [
    `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }], usage: null })}\n\n`,
    `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: 'Hel' }, finish_reason: null }], usage: null })}\n\n`,
    `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: null })}\n\n`,
    `data: ${JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15, prompt_tokens_details: { cached_tokens: 4 }, completion_tokens_details: { reasoning_tokens: 1 } } })}\n\n`,
    'data: [DONE]\n\n',
  ];
}

describe('SseTap (chat)', () => {
  it('captures usage and removes what the app did not ask for', () => {
    const tap = new SseTap('chat', true);
    const out = chatStream().map((e) => tap.push(enc(e))).join('');
    expect(tap.usage).toEqual({ input: 12, output: 3, cached: 4, reasoning: 1 });
    expect(tap.completed).toBe(true);
    expect(tap.responseModel).toBe('gpt-4.1-mini-2025-04-14');
    expect(out).not.toContain('usage');
    expect(out.trim().split('\n\n')).toHaveLength(4);
    expect(out.endsWith('data: [DONE]\n\n')).toBe(true);
  });
  it('passes everything through when the app asked for usage', () => {
    const tap = new SseTap('chat', false);
    const events = chatStream();
    expect(events.map((e) => tap.push(enc(e))).join('')).toBe(events.join(''));
  });
  it('reassembles events split across chunks and bytes split inside a character', () => {
    const tap = new SseTap('chat', false);
    const text = chatStream().join('').replace('Hel', 'Hé😀');
    const bytes = enc(text);
    let out = '';
    for (let i = 0; i < bytes.length; i += 7) out += tap.push(bytes.subarray(i, i + 7));
    out += tap.flush();
    expect(out).toBe(text);
    expect(tap.firstTokenAt).toBeTypeOf('number');
  });
  it('notices a stream that never finished', () => {
    const tap = new SseTap('chat', true);
    chatStream().slice(0, 2).forEach((e) => tap.push(enc(e)));
    expect(tap.completed).toBe(false);
    const err = tap.errorEvent('upstream_unavailable', 'cut');
    expect(JSON.parse(err.slice(6))).toEqual({ error: { message: 'cut', type: 'envelope_error', code: 'upstream_unavailable', param: null } });
  });
});

describe('SseTap (responses)', () => {
  it('takes usage from the terminal event and numbers its own error event after the last one', () => {
    const tap = new SseTap('responses', false);
    const ev = (type: string, seq: number, extra: object = {}) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq, ...extra })}\n\n`;
    tap.push(enc(ev('response.created', 0)));
    expect(tap.firstTokenAt).toBeUndefined();
    tap.push(enc(ev('response.output_text.delta', 1, { delta: 'Hi' })));
    expect(tap.firstTokenAt).toBeTypeOf('number');
    expect(JSON.parse(tap.errorEvent('upstream_timeout', 'idle').split('data: ')[1]!)).toMatchObject({ type: 'error', code: 'upstream_timeout', sequence_number: 2 });
    tap.push(enc(ev('response.completed', 2, { response: { model: 'gpt-4.1-mini', usage: { input_tokens: 9, output_tokens: 2, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } } } })));
    expect(tap.completed).toBe(true);
    expect(tap.usage).toEqual({ input: 9, output: 2, cached: 0, reasoning: 0 });
  });
});

describe('SseTap (held terminal event)', () => {
  it('keeps back [DONE] until released, and shows every event to an observer', () => {
    const tap = new SseTap('chat', false);
    tap.holdTerminal = true;
    const seen: string[] = [];
    tap.observe = (d) => seen.push(d);
    const out = chatStream().map((e) => tap.push(enc(e))).join('');
    expect(out).not.toContain('[DONE]');
    expect(tap.heldTerminal).toBe('data: [DONE]\n\n');
    expect(seen).toHaveLength(4);
    expect(tap.completed).toBe(true);
  });
});
