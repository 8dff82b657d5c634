import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../simulator/index.ts';
import { countTokens, encodingFor, estimateInputTokens, loadedEncodings, MEMO_MAX_CHARS, outputCap, rememberedChars, warmTokenizers } from './tokens.ts';

const require = createRequire(import.meta.url);
const PLAIN = { disallowedSpecial: new Set<string>() };

// Expectations come from gpt-tokenizer used directly, loaded only after the laziness check.
type Encode = (text: string, opts: typeof PLAIN) => number[];
let o200k: Encode;
let cl100k: Encode;
const o = (s: string) => o200k(s, PLAIN).length;
const cl = (s: string) => cl100k(s, PLAIN).length;

const rankListCached = () => Object.keys(require.cache).some((k) => k.includes('gpt-tokenizer/cjs/bpeRanks/'));

describe('tokenizer loading', () => {
  // Must run before anything in this file counts tokens.
  it('loads no encoding at import, then only the one a model needs, once, and lets its rank list go', () => {
    expect(loadedEncodings()).toEqual([]);
    countTokens('hello', 'gpt-4o');
    expect(loadedEncodings()).toEqual(['o200k_base']);
    // The table is built; the 200k strings it came from are no longer held.
    expect(rankListCached()).toBe(false);
    countTokens('hello again', 'gpt-5-mini');
    expect(loadedEncodings()).toEqual(['o200k_base']);
    warmTokenizers(['text-embedding-3-small']);
    expect(loadedEncodings()).toEqual(['o200k_base', 'cl100k_base']);
    expect(rankListCached()).toBe(false);
  });
});

beforeAll(async () => {
  o200k = (await import('gpt-tokenizer/encoding/o200k_base')).encode;
  cl100k = (await import('gpt-tokenizer/encoding/cl100k_base')).encode;
});

describe('encodingFor', () => {
  it('maps model families to their tokenizer, unknown models to o200k', () => {
    for (const m of ['gpt-4o', 'gpt-4o-mini-2024-07-18', 'gpt-4.1-mini', 'gpt-4.5-preview', 'gpt-5', 'gpt-5-nano-2025-08-07', 'o1', 'o3-mini', 'o4-mini', 'chatgpt-4o-latest', 'ft:gpt-4o-mini-2024-07-18:acme::abc', 'llama-3-70b', 'omni-moderation-latest']) {
      expect([m, encodingFor(m)]).toEqual([m, 'o200k_base']);
    }
    for (const m of ['gpt-4', 'gpt-4-turbo', 'gpt-4-0613', 'gpt-3.5-turbo', 'text-embedding-3-small', 'text-embedding-ada-002', 'ft:gpt-3.5-turbo-0125:acme::xyz']) {
      expect([m, encodingFor(m)]).toEqual([m, 'cl100k_base']);
    }
  });
});

describe('countTokens', () => {
  const samples = [
    'hello world',
    'The quick brown fox jumps over the lazy dog.',
    'function add(a, b) {\n  return a + b;\n}\n',
    'Größenordnung und Straße',
    '東京都は日本の首都です。',
    'emoji 🚀🔥 and   spaces\t\ttabs',
    '   ',
  ];

  it('counts like the model real tokenizer', () => {
    expect(countTokens('hello world', 'gpt-4o')).toBe(2);
    expect(countTokens('hello world', 'gpt-4')).toBe(2);
    for (const s of samples) {
      expect(countTokens(s, 'gpt-4.1')).toBe(o(s));
      expect(countTokens(s, 'gpt-3.5-turbo')).toBe(cl(s));
    }
    // The two encodings really differ, and each model gets its own.
    const cjk = samples[4]!;
    expect(o(cjk)).not.toBe(cl(cjk));
    expect(countTokens(cjk, 'gpt-4o')).not.toBe(countTokens(cjk, 'gpt-4'));
    expect(countTokens('', 'gpt-4o')).toBe(0);
  });

  it('counts text that spells a special token as text instead of throwing', () => {
    const s = 'before <|endoftext|> after';
    expect(countTokens(s, 'gpt-4o')).toBe(o(s));
    expect(countTokens(s, 'gpt-4o')).toBeGreaterThan(3);
  });

  it('is exact on long ordinary text', () => {
    const text = samples.join(' ').repeat(200);
    expect(text.length).toBeGreaterThan(10_000);
    expect(countTokens(text, 'gpt-4o')).toBe(o(text));
    expect(countTokens(text, 'gpt-4')).toBe(cl(text));
  });

  it('remembers counts of long texts per encoding, stays exact, and forgets the oldest past its bound', () => {
    const prompt = 'You are the support assistant of a shop. Answer briefly and politely, in the customer language.';
    for (let i = 0; i < 3; i++) {
      expect(countTokens(prompt, 'gpt-4o')).toBe(o(prompt));
      expect(countTokens(prompt, 'gpt-4')).toBe(cl(prompt));
    }
    // Many distinct long texts: each still counted exactly, the memory stays within its bound.
    const piece = samples.slice(0, 4).join(' ');
    for (let i = 0; i < 600; i++) {
      const text = `${i} ${piece.repeat(80)} ${i}`;
      if (i % 100 === 0) expect(countTokens(text, 'gpt-4.1')).toBe(o(text));
      else countTokens(text, 'gpt-4.1');
    }
    expect(rememberedChars('gpt-4.1')).toBeGreaterThan(MEMO_MAX_CHARS / 2);
    expect(rememberedChars('gpt-4.1')).toBeLessThanOrEqual(MEMO_MAX_CHARS);
    expect(countTokens(prompt, 'gpt-4o')).toBe(o(prompt));
  });

  it('stays fast on one huge run of a character, still counting at least the exact tokens', () => {
    // The library alone needs minutes for this: its BPE is quadratic in the run length.
    const started = performance.now();
    const n = countTokens('a'.repeat(1_000_000), 'gpt-4o');
    expect(performance.now() - started).toBeLessThan(5000);
    expect(n).toBeGreaterThanOrEqual(1_000_000 / 8);
    for (const run of ['a'.repeat(3000), ' '.repeat(3000), '='.repeat(3000), '🚀'.repeat(1500)]) {
      const exact = o(run);
      const counted = countTokens(run, 'gpt-4o');
      expect(counted).toBeGreaterThanOrEqual(exact);
      expect(counted).toBeLessThanOrEqual(exact + Math.ceil(run.length / 256) + 1);
    }
  });
});

describe('estimateInputTokens against the simulator', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(() => sim.close());

  async function billed(path: string, body: Record<string, unknown>): Promise<number> {
    const res = await fetch(`${sim.url}${path}`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as { usage?: { prompt_tokens?: number; input_tokens?: number }; error?: unknown };
    if (!res.ok) throw new Error(JSON.stringify(json.error));
    return json.usage?.prompt_tokens ?? json.usage?.input_tokens ?? NaN;
  }

  /** The estimate never falls below what the upstream bills, and is at most `margin` above it. */
  async function expectBound(endpoint: 'chat.completions' | 'responses' | 'embeddings', body: Record<string, unknown>, margin: number) {
    const path = endpoint === 'chat.completions' ? '/chat/completions' : `/${endpoint}`;
    const real = await billed(path, body);
    const estimate = estimateInputTokens(endpoint, body, body.model as string);
    expect(estimate).toBeGreaterThanOrEqual(real);
    expect(estimate - real).toBeLessThanOrEqual(margin);
    return { real, estimate };
  }

  const weather = {
    name: 'get_weather',
    description: 'Current weather for a city.',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', description: 'City name' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        days: { type: 'integer', description: 'Forecast length' },
      },
      required: ['city'],
    },
  };
  const schema = { type: 'object', properties: { label: { type: 'string', enum: ['spam', 'ham'] }, score: { type: 'number' } }, required: ['label', 'score'], additionalProperties: false };

  it('chat: matches plain conversations exactly, names included', async () => {
    const body = {
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'You are a terse assistant.' },
        { role: 'user', name: 'alice', content: 'What is the capital of France?' },
        { role: 'assistant', content: 'Paris.' },
        { role: 'user', content: [{ type: 'text', text: 'And of ' }, { type: 'text', text: 'Germany?' }] },
      ],
    };
    const { real, estimate } = await expectBound('chat.completions', body, 0);
    expect(estimate).toBe(real);
    await expectBound('chat.completions', { ...body, model: 'gpt-4.1-mini' }, 0);
  });

  it('chat: tools, tool calls, tool results and a json_schema stay above the bill, within a margin', async () => {
    const body = {
      model: 'gpt-4.1',
      messages: [
        { role: 'user', content: 'Weather in Paris for 3 days?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","days":3}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '{"forecast":["sun","rain","sun"]}' },
      ],
      tools: [{ type: 'function', function: weather }],
      response_format: { type: 'json_schema', json_schema: { name: 'verdict', strict: true, schema } },
    };
    // The margin is the parameter schema as JSON instead of OpenAI's compact rendering, the
    // tool_call_id and the schema name.
    const { real, estimate } = await expectBound('chat.completions', body, 45);
    expect(estimate / real).toBeLessThan(1.5);
  });

  it('chat: images are charged at the model worst case unless detail is low', async () => {
    const image = (detail?: string) => ({ type: 'image_url', image_url: { url: 'https://example.com/cat.png', ...(detail ? { detail } : {}) } });
    const messages = (detail?: string) => [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, image(detail)] }];
    const low = await expectBound('chat.completions', { model: 'gpt-4o', messages: messages('low') }, 0);
    const high = await expectBound('chat.completions', { model: 'gpt-4o', messages: messages('high') }, 1445 - 765);
    expect(high.estimate - low.estimate).toBe(1445 - 85);
    const auto = estimateInputTokens('chat.completions', { messages: messages() }, 'gpt-4o');
    expect(auto).toBe(high.estimate);
    // gpt-4o-mini bills ~33x the tokens for the same image; patch models ignore `detail`.
    expect(estimateInputTokens('chat.completions', { messages: messages('low') }, 'gpt-4o-mini') - low.estimate).toBe(2833 - 85);
    expect(estimateInputTokens('chat.completions', { messages: messages() }, 'gpt-4o-mini') - low.estimate).toBe(2833 + 8 * 5667 - 85);
    expect(estimateInputTokens('chat.completions', { messages: messages('low') }, 'gpt-4.1-mini') - low.estimate).toBe(Math.ceil(1536 * 1.62) - 85);
  });

  it('chat: audio is sized by its data, a file is a flat charge', () => {
    const base = estimateInputTokens('chat.completions', { messages: [{ role: 'user', content: [] }] }, 'gpt-4o');
    const audio = estimateInputTokens('chat.completions', { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'A'.repeat(10_050), format: 'wav' } }] }] }, 'gpt-4o');
    expect(audio - base).toBe(101);
    const file = estimateInputTokens('chat.completions', { messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'file-1' } }] }] }, 'gpt-4o');
    expect(file - base).toBe(25_000);
  });

  it('responses: instructions, string input and message items match exactly', async () => {
    await expectBound('responses', { model: 'gpt-4.1-mini', instructions: 'Be brief.', input: 'Hi there, how are you?' }, 0);
    await expectBound(
      'responses',
      {
        model: 'gpt-5-mini',
        input: [
          { role: 'developer', content: 'Answer in French.' },
          { role: 'user', content: 'first question' },
          { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'première réponse' }] },
          { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'second question' }, { type: 'input_image', image_url: 'https://example.com/a.png', detail: 'low' }] },
        ],
      },
      // gpt-5-mini is a patch model: a low-detail image is still charged at the patch cap.
      Math.ceil(1536 * 1.62) - 85,
    );
  });

  it('responses: function calls, outputs, tools and text.format stay above the bill', async () => {
    const body = {
      model: 'gpt-4o',
      instructions: 'Use tools.',
      input: [
        { role: 'user', content: 'Weather in Paris?' },
        { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { type: 'function_call_output', call_id: 'call_1', output: '{"temp":21}' },
      ],
      tools: [{ type: 'function', strict: false, ...weather }],
      text: { format: { type: 'json_schema', name: 'verdict', strict: true, schema } },
    };
    const { real, estimate } = await expectBound('responses', body, 45);
    expect(estimate / real).toBeLessThan(1.5);
  });

  it('embeddings: strings and token arrays match exactly', async () => {
    await expectBound('embeddings', { model: 'text-embedding-3-small', input: ['alpha beta', 'Größenordnung', 'x'] }, 0);
    await expectBound('embeddings', { model: 'text-embedding-3-large', input: 'a single string input' }, 0);
    await expectBound('embeddings', { model: 'text-embedding-3-small', input: [[1, 2, 3], [4, 5]] }, 0);
    expect(estimateInputTokens('embeddings', { input: [10, 20, 30, 40] }, 'text-embedding-3-small')).toBe(4);
    expect(estimateInputTokens('embeddings', { input: ['Größenordnung'] }, 'text-embedding-3-small')).toBe(cl('Größenordnung'));
  });
});

describe('estimateInputTokens', () => {
  const user = (content: unknown) => ({ messages: [{ role: 'user', content }] });

  it('grows with tool definitions: 7 per function, 1 joining name and description, the schema, 3 per property or enum value, 12 to close', () => {
    const plain = estimateInputTokens('chat.completions', user('hi'), 'gpt-4o');
    const fn = { name: 'ping', description: 'Checks liveness' };
    const one = estimateInputTokens('chat.completions', { ...user('hi'), tools: [{ type: 'function', function: fn }] }, 'gpt-4o');
    expect(one - plain).toBe(7 + 1 + o('ping') + o('Checks liveness') + 12);
    const params = { type: 'object', properties: { host: { type: 'string' }, mode: { type: 'string', enum: ['a', 'b', 'c'] } } };
    const withParams = estimateInputTokens('chat.completions', { ...user('hi'), tools: [{ type: 'function', function: { ...fn, parameters: params } }] }, 'gpt-4o');
    expect(withParams - one).toBe(o(JSON.stringify(params)) + 3 * (2 + 3));
    // Responses' flat tool shape and chat's legacy `functions` count the same.
    const flat = estimateInputTokens('chat.completions', { ...user('hi'), functions: [{ ...fn, parameters: params }] }, 'gpt-4o');
    expect(flat).toBe(withParams);
  });

  it('grows with a structured-output schema, in both APIs', () => {
    const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] };
    const plain = estimateInputTokens('chat.completions', user('hi'), 'gpt-4o');
    const chat = estimateInputTokens('chat.completions', { ...user('hi'), response_format: { type: 'json_schema', json_schema: { name: 'out', schema } } }, 'gpt-4o');
    expect(chat - plain).toBe(o('out') + o(JSON.stringify(schema)));
    // json_object has no schema to send.
    expect(estimateInputTokens('chat.completions', { ...user('hi'), response_format: { type: 'json_object' } }, 'gpt-4o')).toBe(plain);
    const r0 = estimateInputTokens('responses', { input: 'hi' }, 'gpt-4o');
    const r1 = estimateInputTokens('responses', { input: 'hi', text: { format: { type: 'json_schema', name: 'out', schema } } }, 'gpt-4o');
    expect(r1 - r0).toBe(o('out') + o(JSON.stringify(schema)));
  });

  it('counts assistant tool calls by name and arguments, not their envelope', () => {
    const args = '{"q":"weather in Paris"}';
    const body = { messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'call_abcdefghijklmnop', type: 'function', function: { name: 'search', arguments: args } }] }] };
    expect(estimateInputTokens('chat.completions', body, 'gpt-4o')).toBe(3 + 3 + o('assistant') + 3 + o('search') + o(args));
  });

  it('counts moderation inputs as their text', () => {
    expect(estimateInputTokens('moderations', { input: 'some text to check' }, 'omni-moderation-latest')).toBe(o('some text to check'));
    expect(estimateInputTokens('moderations', { input: ['one', 'two words'] }, 'omni-moderation-latest')).toBe(o('one') + o('two words'));
    const parts = [{ type: 'text', text: 'look at this' }, { type: 'image_url', image_url: { url: 'https://example.com/x.png' } }];
    expect(estimateInputTokens('moderations', { input: parts }, 'omni-moderation-latest')).toBe(o('look at this'));
  });

  it('never throws on malformed bodies and counts what it can', () => {
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 20_000; i++) deep = { a: deep };
    const bad: Array<[Parameters<typeof estimateInputTokens>[0], Record<string, unknown>]> = [
      ['chat.completions', {}],
      ['chat.completions', { messages: 'hello' }],
      ['chat.completions', { messages: [null, 5, 'x', { role: 7, content: { text: 'x' }, name: 3, tool_calls: 'no' }], tools: 'x', response_format: 5 }],
      ['chat.completions', { messages: [{ role: 'user', content: [null, 1, { type: 'image_url' }, { type: 'input_audio', input_audio: 5 }] }], tools: [null, 1, { type: 'function' }, { type: 'function', function: 'f' }] }],
      ['chat.completions', { messages: [], tools: [{ type: 'function', function: { name: 'deep', parameters: deep } }] }],
      ['responses', { input: { role: 'user' }, instructions: 5, tools: {}, text: 'x' }],
      ['responses', { input: [1, null, { type: 'message', content: 5 }, { type: 'function_call_output', output: { nested: true } }, { type: 'reasoning', summary: [] }], text: { format: 'json' } }],
      ['embeddings', { input: { a: 1 } }],
      ['embeddings', { input: [null, {}, 'ok', [1, 2]] }],
      ['moderations', { input: 5 }],
      ['moderations', { input: [null, { type: 'text' }, 'ok'] }],
    ];
    for (const [endpoint, body] of bad) {
      const n = estimateInputTokens(endpoint, body, 'gpt-4o');
      expect(Number.isInteger(n) && n >= 0).toBe(true);
    }
    // The one valid message among junk is still counted.
    expect(estimateInputTokens('chat.completions', { messages: [null, 5, { role: 'user', content: 'hello world' }] }, 'gpt-4o')).toBe(3 + 3 + 1 + 2);
    expect(estimateInputTokens('embeddings', { input: [null, {}, 'ok', [1, 2]] }, 'text-embedding-3-small')).toBe(cl('ok') + 2);
    expect(estimateInputTokens('moderations', { input: [null, { type: 'text' }, 'ok'] }, 'omni-moderation-latest')).toBe(o('ok'));
  });
});

describe('outputCap', () => {
  it('chat: max_completion_tokens before max_tokens, times n', () => {
    expect(outputCap('chat.completions', { max_completion_tokens: 100, max_tokens: 999 })).toBe(100);
    expect(outputCap('chat.completions', { max_tokens: 50 })).toBe(50);
    expect(outputCap('chat.completions', { max_completion_tokens: null, max_tokens: 50 })).toBe(50);
    expect(outputCap('chat.completions', { max_completion_tokens: 100, n: 3 })).toBe(300);
    expect(outputCap('chat.completions', { max_tokens: 40, n: 2 })).toBe(80);
    expect(outputCap('chat.completions', { max_completion_tokens: 100, n: 'three' })).toBe(100);
  });

  it('responses: max_output_tokens', () => {
    expect(outputCap('responses', { max_output_tokens: 256 })).toBe(256);
    expect(outputCap('responses', { max_output_tokens: 256, max_completion_tokens: 5 })).toBe(256);
  });

  it('undefined when the app set no usable cap; 0 for endpoints without output', () => {
    expect(outputCap('chat.completions', {})).toBeUndefined();
    expect(outputCap('chat.completions', { n: 4 })).toBeUndefined();
    expect(outputCap('chat.completions', { max_completion_tokens: '100' })).toBeUndefined();
    expect(outputCap('chat.completions', { max_tokens: -1 })).toBeUndefined();
    expect(outputCap('responses', {})).toBeUndefined();
    expect(outputCap('responses', { max_output_tokens: Number.NaN })).toBeUndefined();
    expect(outputCap('embeddings', { max_tokens: 10 })).toBe(0);
    expect(outputCap('moderations', {})).toBe(0);
  });
});
