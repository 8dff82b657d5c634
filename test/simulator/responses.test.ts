import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../simulator/index.ts';
import { client, raw, tok } from './helpers.ts';

let sim: Simulator;
let openai: OpenAI;

beforeAll(async () => {
  sim = await startSimulator();
  openai = client(sim);
});
afterAll(() => sim.close());

const LONG = 'Tell me everything. LONG_REPLY';

describe('responses', () => {
  it('answers a string input with the full response object', async () => {
    const r = await openai.responses.create({ model: 'gpt-4.1-mini', input: 'Hi there', instructions: 'Be brief.' });
    expect(r.id).toMatch(/^resp_/);
    expect(r).toMatchObject({ object: 'response', status: 'completed', error: null, incomplete_details: null, instructions: 'Be brief.', model: 'gpt-4.1-mini' });
    expect(r.output_text).toBe('Simulated reply to: Hi there');
    expect(r.output).toHaveLength(1);
    const msg = r.output[0]!;
    expect(msg).toMatchObject({ type: 'message', status: 'completed', role: 'assistant' });
    expect(msg.type === 'message' && msg.id).toMatch(/^msg_/);
    expect(msg.type === 'message' && msg.content).toEqual([{ type: 'output_text', text: 'Simulated reply to: Hi there', annotations: [], logprobs: [] }]);
    // 3 priming + instructions as a developer message + the input as a user message.
    const input = 3 + (3 + tok('developer') + tok('Be brief.')) + (3 + tok('user') + tok('Hi there'));
    const output = tok('Simulated reply to: Hi there');
    expect(r.usage).toMatchObject({ input_tokens: input, input_tokens_details: { cached_tokens: 0 }, output_tokens: output, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + output });
    for (const k of ['parallel_tool_calls', 'store', 'temperature', 'tool_choice', 'tools', 'top_p', 'truncation', 'metadata', 'text', 'reasoning', 'created_at']) {
      expect(r).toHaveProperty(k);
    }
    // The SDK adds output_text; the wire must not carry it.
    const wire = await raw(sim, '/responses', { body: JSON.stringify({ model: 'gpt-4.1-mini', input: 'Hi' }) });
    expect(JSON.parse(wire.text)).not.toHaveProperty('output_text');
  });

  it('takes message items with input_text parts and stores the response for retrieval', async () => {
    const r = await openai.responses.create({
      model: 'gpt-4o',
      input: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'ok' },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'second question' }] },
      ],
    });
    expect(r.output_text).toBe('Simulated reply to: second question');
    const again = await openai.responses.retrieve(r.id);
    expect(again.output_text).toBe(r.output_text);
  });

  it('goes incomplete at max_output_tokens and rejects caps under 16', async () => {
    const r = await openai.responses.create({ model: 'gpt-4o', input: LONG, max_output_tokens: 16 });
    expect(r.status).toBe('incomplete');
    expect(r.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(r.usage!.output_tokens).toBe(16);
    expect(r.output[0]!.type === 'message' && r.output[0]!.status).toBe('incomplete');

    const err = await openai.responses.create({ model: 'gpt-4o', input: 'x', max_output_tokens: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.APIError>).param).toBe('max_output_tokens');
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('integer_below_min_value');
  });

  it('returns JSON for text.format json_schema', async () => {
    const r = await openai.responses.create({
      model: 'gpt-4o',
      input: 'classify',
      text: { format: { type: 'json_schema', name: 'c', strict: true, schema: { type: 'object', properties: { kind: { type: 'string' }, urgent: { type: 'boolean' } }, required: ['kind', 'urgent'], additionalProperties: false } } },
    });
    expect(JSON.parse(r.output_text)).toEqual({ kind: 'x', urgent: true });
  });

  it('calls a function tool on CALL_TOOL', async () => {
    const r = await openai.responses.create({
      model: 'gpt-4o',
      input: 'CALL_TOOL please',
      tools: [{ type: 'function', name: 'get_weather', strict: true, parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false } }],
    });
    const call = r.output[0]!;
    expect(call.type).toBe('function_call');
    if (call.type !== 'function_call') return;
    expect(call.id).toMatch(/^fc_/);
    expect(call.call_id).toMatch(/^call_/);
    expect(call).toMatchObject({ name: 'get_weather', status: 'completed' });
    expect(JSON.parse(call.arguments)).toEqual({ city: 'x' });
  });

  it('puts a reasoning item first for reasoning models', async () => {
    const r = await openai.responses.create({ model: 'o3', input: 'Hi there' });
    expect(r.output.map((o) => o.type)).toEqual(['reasoning', 'message']);
    expect(r.output_text).toBe('Simulated reply to: Hi there');
    expect(r.usage!.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
    expect(r.usage!.output_tokens).toBe(r.usage!.output_tokens_details.reasoning_tokens + tok('Simulated reply to: Hi there'));
  });

  it('streams events in order with sequence numbers and usage only at the end', async () => {
    const stream = await openai.responses.create({ model: 'gpt-4o', input: 'Hi there', stream: true });
    const events = [];
    for await (const e of stream) events.push(e);
    const types = events.map((e) => e.type);
    const deltas = types.filter((t) => t === 'response.output_text.delta').length;
    expect(deltas).toBeGreaterThan(2);
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(deltas).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const text = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : [])).join('');
    expect(text).toBe('Simulated reply to: Hi there');
    const itemId = events.find((e) => e.type === 'response.output_item.added')!;
    for (const e of events) {
      if (e.type === 'response.output_text.delta' || e.type === 'response.content_part.added') {
        expect(e).toMatchObject({ output_index: 0, content_index: 0, item_id: itemId.type === 'response.output_item.added' && itemId.item.id });
      }
      if (e.type === 'response.created' || e.type === 'response.in_progress') expect(e.response.usage ?? null).toBeNull();
    }
    const last = events.at(-1)!;
    // One delta per token, so the deltas are the output tokens.
    expect(last.type === 'response.completed' && last.response.usage!.output_tokens).toBe(deltas);
    expect(last.type === 'response.completed' && last.response.usage!.total_tokens).toBe(3 + 3 + tok('user') + tok('Hi there') + tok('Simulated reply to: Hi there'));
  });

  it('has no [DONE] and names every event', async () => {
    const res = await raw(sim, '/responses', { body: JSON.stringify({ model: 'gpt-4o', input: 'Hi', stream: true }) });
    expect(res.text).not.toContain('[DONE]');
    const blocks = res.text.split('\n\n').filter((b) => b !== '');
    for (const b of blocks) {
      const [ev, data] = b.split('\n');
      expect(ev!.startsWith('event: ')).toBe(true);
      expect(JSON.parse(data!.slice(6)).type).toBe(ev!.slice(7));
    }
  });

  it('gives finalResponse() and output_text through responses.stream', async () => {
    const stream = openai.responses.stream({ model: 'gpt-5-nano', input: 'streamed hello' });
    const deltas: string[] = [];
    stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    expect(final.output_text).toBe('Simulated reply to: streamed hello');
    expect(deltas.join('')).toBe(final.output_text);
    expect(final.usage!.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
  });

  it('streams a function call and ends with response.incomplete when cut', async () => {
    const calls = openai.responses.stream({
      model: 'gpt-4o',
      input: 'CALL_TOOL',
      tools: [{ type: 'function', name: 'f', strict: true, parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'], additionalProperties: false } }],
    });
    const final = await calls.finalResponse();
    expect(final.output[0]!.type === 'function_call' && JSON.parse(final.output[0]!.arguments)).toEqual({ q: 'x' });

    const cut = await openai.responses.create({ model: 'gpt-4o', input: LONG, max_output_tokens: 16, stream: true });
    const types = [];
    let terminal;
    for await (const e of cut) {
      types.push(e.type);
      terminal = e;
    }
    expect(types).not.toContain('response.completed');
    expect(terminal!.type).toBe('response.incomplete');
    expect(terminal!.type === 'response.incomplete' && terminal!.response.incomplete_details).toEqual({ reason: 'max_output_tokens' });
  });
});
