import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../simulator/index.ts';
import { client, errorBody, firstTokens, GO_DURATION, promptTokens, raw, sseDataLines, tok } from './helpers.ts';

let sim: Simulator;
let openai: OpenAI;

beforeAll(async () => {
  sim = await startSimulator();
  openai = client(sim);
});
afterAll(() => sim.close());

const hello = [{ role: 'user' as const, content: 'Hello world' }];
const REPLY = 'Simulated reply to: Hello world';
// 3 priming + (3 + role + content) for the one message; the reply is counted in o200k tokens.
const PROMPT = promptTokens(hello);
const COMPLETION = tok(REPLY);

describe('chat completions', () => {
  it('answers deterministically with OpenAI headers and usage', async () => {
    const { data, response } = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: hello }).withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.id).toMatch(/^chatcmpl-/);
    expect(data.choices).toHaveLength(1);
    expect(data.choices[0]!.message).toMatchObject({ role: 'assistant', content: 'Simulated reply to: Hello world', refusal: null });
    expect(data.choices[0]!.finish_reason).toBe('stop');
    expect(PROMPT).toBe(3 + 3 + 1 + 2); // 'user' is one token, 'Hello world' two
    expect(data.usage).toEqual({
      prompt_tokens: PROMPT,
      completion_tokens: COMPLETION,
      total_tokens: PROMPT + COMPLETION,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    });
    expect(response.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
    expect(response.headers.get('openai-version')).toBe('2020-10-01');
    expect(Number(response.headers.get('openai-processing-ms'))).toBeGreaterThan(0);
    for (const kind of ['requests', 'tokens']) {
      expect(Number(response.headers.get(`x-ratelimit-limit-${kind}`))).toBeGreaterThan(0);
      expect(Number(response.headers.get(`x-ratelimit-remaining-${kind}`))).toBeGreaterThan(0);
      expect(response.headers.get(`x-ratelimit-reset-${kind}`)).toMatch(GO_DURATION);
    }
  });

  it('cuts output at max_completion_tokens with finish_reason length, and honours n', async () => {
    const cut = await openai.chat.completions.create({ model: 'gpt-4.1', messages: hello, max_completion_tokens: 2 });
    expect(cut.choices[0]!.finish_reason).toBe('length');
    expect(cut.choices[0]!.message.content).toBe(firstTokens(REPLY, 2));
    expect(cut.usage!.completion_tokens).toBe(2);

    const legacy = await openai.chat.completions.create({ model: 'gpt-4.1', messages: hello, max_tokens: 3 });
    expect(legacy.usage!.completion_tokens).toBe(3);

    const two = await openai.chat.completions.create({ model: 'gpt-4.1', messages: hello, n: 2 });
    expect(two.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(two.usage!.completion_tokens).toBe(2 * COMPLETION);
  });

  it('counts reasoning tokens for reasoning models and rejects max_tokens there', async () => {
    const r = await openai.chat.completions.create({ model: 'gpt-5-mini', messages: hello });
    const reasoning = r.usage!.completion_tokens_details!.reasoning_tokens!;
    expect(reasoning).toBeGreaterThan(0);
    expect(r.usage!.completion_tokens).toBe(reasoning + COMPLETION);

    const err = await openai.chat.completions.create({ model: 'o4-mini', messages: hello, max_tokens: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.APIError>).param).toBe('max_tokens');
  });

  it('calls the first tool on CALL_TOOL or when tool_choice forces one', async () => {
    const tools = [
      { type: 'function' as const, function: { name: 'lookup_order', parameters: { type: 'object', properties: { id: { type: 'string' }, n: { type: 'integer' }, rush: { type: 'boolean' } }, required: ['id', 'n', 'rush'] } } },
      { type: 'function' as const, function: { name: 'create_ticket', parameters: { type: 'object', properties: { title: { type: 'string' } }, required: ['title'] } } },
    ];
    const r = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'please CALL_TOOL now' }], tools });
    const call = r.choices[0]!.message.tool_calls![0]!;
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');
    expect(r.choices[0]!.message.content).toBeNull();
    expect(call.id).toMatch(/^call_/);
    expect(call.type === 'function' && call.function.name).toBe('lookup_order');
    expect(call.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ id: 'x', n: 1, rush: true });

    const forced = await openai.chat.completions.create({ model: 'gpt-4o', messages: hello, tools, tool_choice: { type: 'function', function: { name: 'create_ticket' } } });
    const f = forced.choices[0]!.message.tool_calls![0]!;
    expect(f.type === 'function' && f.function.name).toBe('create_ticket');

    const plain = await openai.chat.completions.create({ model: 'gpt-4o', messages: hello, tools });
    expect(plain.choices[0]!.message.tool_calls).toBeUndefined();
  });

  it('returns JSON content for response_format', async () => {
    const r = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: hello,
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'x', strict: true, schema: { type: 'object', properties: { label: { type: 'string', enum: ['a', 'b'] }, score: { type: 'number' }, tags: { type: 'array', items: { type: 'string' } } }, required: ['label', 'score', 'tags'], additionalProperties: false } },
      },
    });
    expect(JSON.parse(r.choices[0]!.message.content!)).toEqual({ label: 'a', score: 1, tags: ['x'] });
    const obj = await openai.chat.completions.create({ model: 'gpt-4o', messages: hello, response_format: { type: 'json_object' } });
    expect(JSON.parse(obj.choices[0]!.message.content!)).toEqual({ reply: 'Simulated reply to: Hello world' });
  });

  it('reports a cached share for long prompts with prompt_cache_key', async () => {
    const long = [{ role: 'user' as const, content: 'lorem ipsum '.repeat(1100) }];
    const prompt = promptTokens(long);
    expect(prompt).toBeGreaterThan(2048);
    const cached = await openai.chat.completions.create({ model: 'gpt-4.1', messages: long, prompt_cache_key: 'k1' });
    expect(cached.usage!.prompt_tokens).toBe(prompt);
    // Half the prompt in whole 128-token blocks.
    expect(cached.usage!.prompt_tokens_details!.cached_tokens).toBe(Math.floor(prompt / 256) * 128);
    const uncached = await openai.chat.completions.create({ model: 'gpt-4.1', messages: long });
    expect(uncached.usage!.prompt_tokens_details!.cached_tokens).toBe(0);
  });

  it('streams chunks without usage unless asked', async () => {
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: hello, stream: true });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.length).toBeGreaterThan(4);
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '', refusal: null });
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && !('usage' in c))).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('Simulated reply to: Hello world');
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.slice(0, -1).every((c) => c.choices[0]!.finish_reason === null)).toBe(true);
  });

  it('with include_usage: usage null on every chunk, then a choices-less usage chunk, then [DONE]', async () => {
    const res = await raw(sim, '/chat/completions', {
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: hello, stream: true, stream_options: { include_usage: true } }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.text.includes('event:')).toBe(false);
    const lines = sseDataLines(res.text);
    expect(lines.at(-1)).toBe('[DONE]');
    const chunks = lines.slice(0, -1).map((l) => JSON.parse(l));
    const last = chunks.at(-1);
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: PROMPT, completion_tokens: COMPLETION, total_tokens: PROMPT + COMPLETION });
    expect(chunks.slice(0, -1).every((c) => 'usage' in c && c.usage === null)).toBe(true);
    expect(chunks.at(-2).choices[0].finish_reason).toBe('stop');

    // The SDK sees the same: the usage arrives on the final chunk only.
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: hello, stream: true, stream_options: { include_usage: true } });
    const seen = [];
    for await (const c of stream) seen.push(c);
    expect(seen.at(-1)!.usage!.total_tokens).toBe(PROMPT + COMPLETION);
  });

  it('streams one delta per output token, keeping multi-byte characters whole', async () => {
    const text = '東京 ᚠᛇᚻ café';
    const reply = `Simulated reply to: ${text}`;
    const res = await raw(sim, '/chat/completions', {
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: text }], stream: true, stream_options: { include_usage: true } }),
    });
    const chunks = sseDataLines(res.text).slice(0, -1).map((l) => JSON.parse(l));
    const deltas: string[] = chunks.flatMap((c) => (c.choices[0]?.delta.content ? [c.choices[0].delta.content] : []));
    expect(deltas.join('')).toBe(reply);
    expect(deltas.every((d) => !d.includes('\uFFFD'))).toBe(true);
    const usage = chunks.at(-1).usage;
    expect(usage.completion_tokens).toBe(tok(reply));
    // Each rune is three byte-level tokens but travels as one delta; other deltas are one token.
    expect(tok(' ᚠᛇᚻ')).toBe(tok(' ') + 9);
    expect(deltas).toEqual(expect.arrayContaining(['ᚠ', 'ᛇ', 'ᚻ']));
    expect(deltas.length).toBe(usage.completion_tokens - 3 * 2);
  });

  it('counts tool definitions and images as OpenAI bills them', async () => {
    const fn = { name: 'lookup', description: 'Finds an order', parameters: { type: 'object', properties: { id: { type: 'string', description: 'Order id' }, kind: { type: 'string', enum: ['a', 'bb'] } } } };
    const plain = await openai.chat.completions.create({ model: 'gpt-4o', messages: hello });
    const withTool = await openai.chat.completions.create({ model: 'gpt-4o', messages: hello, tools: [{ type: 'function', function: fn }] });
    // 7 per function + name:description, 3 for the properties, each 3 + key:type:description,
    // an enum 3 per value instead of the property's 3, 12 to close.
    const expected = 7 + tok('lookup:Finds an order') + 3 + (3 + tok('id:string:Order id')) + (3 - 3 + 3 + tok('a') + 3 + tok('bb') + tok('kind:string:')) + 12;
    expect(withTool.usage!.prompt_tokens - plain.usage!.prompt_tokens).toBe(expected);

    const image = (detail: 'low' | 'high') => [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'Hello world' }, { type: 'image_url' as const, image_url: { url: 'https://example.com/a.png', detail } }] }];
    const low = await openai.chat.completions.create({ model: 'gpt-4o', messages: image('low') });
    const high = await openai.chat.completions.create({ model: 'gpt-4o', messages: image('high') });
    expect(low.usage!.prompt_tokens).toBe(PROMPT + 85);
    expect(high.usage!.prompt_tokens).toBe(PROMPT + 765);
  });

  it('streams tool calls as fragments the SDK reassembles', async () => {
    const stream = openai.chat.completions.stream({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'CALL_TOOL' }],
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city', 'days'] } } }],
    });
    const final = await stream.finalChatCompletion();
    const call = final.choices[0]!.message.tool_calls![0]!;
    expect(final.choices[0]!.finish_reason).toBe('tool_calls');
    expect(call.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ city: 'x', days: 1 });
  });

  it('rejects bad requests in the OpenAI error shape', async () => {
    const badJson = await raw(sim, '/chat/completions', { body: '{"model":' });
    expect(badJson.status).toBe(400);
    expect(errorBody(badJson.text).type).toBe('invalid_request_error');
    expect(badJson.headers.get('x-request-id')).toMatch(/^req_/);

    const missing = await raw(sim, '/chat/completions', { body: JSON.stringify({ model: 'gpt-4o' }) });
    expect(missing.status).toBe(400);
    expect(errorBody(missing.text)).toMatchObject({ param: 'messages', code: 'missing_required_parameter' });

    const unknown = await openai.chat.completions.create({ model: 'gpt-9', messages: hello }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    expect((unknown as InstanceType<typeof OpenAI.APIError>).code).toBe('model_not_found');

    const nowhere = await raw(sim, '/nope', { method: 'GET' });
    expect(nowhere.status).toBe(404);
    expect(errorBody(nowhere.text).message).toBe('Invalid URL (GET /v1/nope)');
  });
});

describe('misbehaving structured output', () => {
  const format = { type: 'json_schema' as const, json_schema: { name: 'out', schema: { type: 'object', properties: { category: { type: 'string' } }, required: ['category'], additionalProperties: false } } };
  it('answers cut-off JSON for BROKEN_JSON and schema-ignoring JSON for WRONG_JSON', async () => {
    const broken = await openai.chat.completions.create({ model: 'gpt-4.1-mini', response_format: format, messages: [{ role: 'user', content: 'BROKEN_JSON please' }] });
    expect(() => JSON.parse(broken.choices[0]?.message.content ?? '')).toThrow();
    const wrong = await openai.chat.completions.create({ model: 'gpt-4.1-mini', response_format: format, messages: [{ role: 'user', content: 'WRONG_JSON please' }] });
    expect(JSON.parse(wrong.choices[0]?.message.content ?? '')).toEqual({ unexpected: true });
    const good = await openai.chat.completions.create({ model: 'gpt-4.1-mini', response_format: format, messages: [{ role: 'user', content: 'fine' }] });
    expect(JSON.parse(good.choices[0]?.message.content ?? '')).toEqual({ category: 'x' });
  });
});
