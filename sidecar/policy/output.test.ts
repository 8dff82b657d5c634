import { describe, expect, it } from 'vitest';
import { compileCount, SchemaError } from './json-schema.ts';
import { answerOf, checkAnswer, isStrictCompatible, repairRequest, requestStructuredOutput, StreamAnswer, type Answer, type OutputEndpoint } from './output.ts';

// A schema that meets OpenAI's strict rules.
const ticketSchema = (): Record<string, unknown> => ({
  type: 'object',
  properties: {
    category: { type: 'string', enum: ['billing', 'shipping', 'other'] },
    items: {
      type: 'array',
      items: { type: 'object', properties: { sku: { type: 'string' }, price: { type: 'number' } }, required: ['sku', 'price'], additionalProperties: false },
    },
    note: { type: ['string', 'null'] },
  },
  required: ['category', 'items', 'note'],
  additionalProperties: false,
});

const lookupOrderParams = { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'], additionalProperties: false };
const createTicketParams = { type: 'object', properties: { subject: { type: 'string' }, priority: { type: 'integer', minimum: 1, maximum: 3 } }, required: ['subject'] };

const chatRequest = (): Record<string, unknown> => ({
  model: 'gpt-4.1-mini',
  messages: [
    { role: 'system', content: 'You are a support agent.' },
    { role: 'user', content: 'Where is order 42?' },
  ],
  tools: [
    { type: 'function', function: { name: 'lookup_order', description: 'Find an order', parameters: lookupOrderParams } },
    { type: 'function', function: { name: 'create_ticket', parameters: createTicketParams } },
    { type: 'function', function: { name: 'delete_account', parameters: { type: 'object', properties: {} } } },
  ],
});

const responsesRequest = (): Record<string, unknown> => ({
  model: 'gpt-4.1-mini',
  instructions: 'You are a support agent.',
  input: 'Where is order 42?',
  tools: [
    { type: 'function', name: 'lookup_order', parameters: lookupOrderParams, strict: true },
    { type: 'function', name: 'create_ticket', parameters: createTicketParams, strict: false },
    { type: 'web_search' },
  ],
});

const validText = '{"category":"billing","items":[{"sku":"A-1","price":9.5}],"note":null}';
const policy = { jsonSchema: ticketSchema(), allowedTools: ['lookup_order', 'create_ticket'] };

// --- realistic wire bodies --------------------------------------------------------------------

const chatCompletion = (message: Record<string, unknown>, finish = 'stop') => ({
  id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT',
  object: 'chat.completion',
  created: 1_767_000_000,
  model: 'gpt-4.1-mini-2025-04-14',
  choices: [{ index: 0, message: { role: 'assistant', refusal: null, annotations: [], ...message }, logprobs: null, finish_reason: finish }],
  usage: { prompt_tokens: 80, completion_tokens: 20, total_tokens: 100 },
  service_tier: 'default',
  system_fingerprint: 'fp_1',
});

const chatToolCalls = chatCompletion(
  {
    content: null,
    tool_calls: [
      { id: 'call_abc', type: 'function', function: { name: 'lookup_order', arguments: '{"order_id":"42"}' } },
      { id: 'call_def', type: 'function', function: { name: 'create_ticket', arguments: '{"subject":"Late order","priority":2}' } },
    ],
  },
  'tool_calls',
);

const response = (output: unknown[]) => ({
  id: 'resp_68af',
  object: 'response',
  created_at: 1_767_000_000,
  status: 'completed',
  error: null,
  incomplete_details: null,
  model: 'gpt-4.1-mini-2025-04-14',
  output,
  usage: { input_tokens: 80, output_tokens: 20, total_tokens: 100 },
});

const reasoningItem = { type: 'reasoning', id: 'rs_1', summary: [] };
const messageItem = (text: string) => ({
  type: 'message',
  id: 'msg_1',
  status: 'completed',
  role: 'assistant',
  content: [{ type: 'output_text', text, annotations: [] }],
});
const fnItem = (id: string, callId: string, name: string, args: string) => ({ type: 'function_call', id, call_id: callId, name, arguments: args, status: 'completed' });

const responsesToolCalls = response([
  reasoningItem,
  fnItem('fc_1', 'call_abc', 'lookup_order', '{"order_id":"42"}'),
  fnItem('fc_2', 'call_def', 'create_ticket', '{"subject":"Late order","priority":2}'),
]);

describe('requestStructuredOutput', () => {
  it('chat: sets response_format json_schema with the schema, a valid name and strict', () => {
    const body = chatRequest();
    const schema = ticketSchema();
    expect(requestStructuredOutput('chat.completions', body, schema, 'shop.tickets v2')).toBe(true);
    expect(body.response_format).toEqual({ type: 'json_schema', json_schema: { name: 'shop_tickets_v2', schema, strict: true } });
    expect((body.response_format as { json_schema: { schema: unknown } }).json_schema.schema).toBe(schema);
  });

  it('responses: sets text.format and keeps the other text settings', () => {
    const body = { ...responsesRequest(), text: { verbosity: 'low' } };
    const schema = ticketSchema();
    expect(requestStructuredOutput('responses', body, schema)).toBe(true);
    expect(body.text).toEqual({ verbosity: 'low', format: { type: 'json_schema', name: 'output', schema, strict: true } });
    const bare = responsesRequest();
    requestStructuredOutput('responses', bare, schema);
    expect(bare.text).toEqual({ format: { type: 'json_schema', name: 'output', schema, strict: true } });
    expect(bare.response_format).toBeUndefined();
  });

  it('replaces an explicit text format (the default), but never an app’s own structured format', () => {
    const schema = ticketSchema();
    const textChat: Record<string, unknown> = { response_format: { type: 'text' } };
    expect(requestStructuredOutput('chat.completions', textChat, schema)).toBe(true);
    expect((textChat.response_format as { type: string }).type).toBe('json_schema');

    for (const own of [{ type: 'json_object' }, { type: 'json_schema', json_schema: { name: 'mine', schema: { type: 'object' } } }]) {
      const chat: Record<string, unknown> = { response_format: own };
      expect(requestStructuredOutput('chat.completions', chat, schema)).toBe(false);
      expect(chat.response_format).toBe(own);
      const resp: Record<string, unknown> = { text: { format: own } };
      expect(requestStructuredOutput('responses', resp, schema)).toBe(false);
      expect(resp.text).toEqual({ format: own });
    }
  });

  it('asks for strict only when the schema meets the strict rules', () => {
    const loose = { type: 'object', properties: { a: { type: 'string' }, b: { type: 'number' } }, required: ['a'], additionalProperties: false };
    const body: Record<string, unknown> = {};
    requestStructuredOutput('chat.completions', body, loose);
    expect(body.response_format).toMatchObject({ json_schema: { strict: false } });
  });
});

describe('isStrictCompatible', () => {
  const strictOk = ticketSchema();
  it('accepts a schema whose every object is closed and fully required, including $defs, anyOf and nullable types', () => {
    expect(isStrictCompatible(strictOk)).toBe(true);
    expect(
      isStrictCompatible({
        type: 'object',
        properties: { tree: { $ref: '#/$defs/node' }, value: { anyOf: [{ type: 'string' }, { type: 'object', properties: { n: { type: 'number' } }, required: ['n'], additionalProperties: false }] } },
        required: ['tree', 'value'],
        additionalProperties: false,
        $defs: { node: { type: 'object', properties: { children: { type: 'array', items: { $ref: '#/$defs/node' } } }, required: ['children'], additionalProperties: false } },
      }),
    ).toBe(true);
  });

  it('rejects each way a schema can break the rules', () => {
    const cases: Record<string, unknown>[] = [];
    const open = ticketSchema();
    delete open.additionalProperties;
    cases.push(open);
    const nestedOpen = ticketSchema() as { properties: { items: { items: Record<string, unknown> } } };
    nestedOpen.properties.items.items.additionalProperties = true;
    cases.push(nestedOpen);
    const optional = ticketSchema();
    optional.required = ['category', 'items'];
    cases.push(optional);
    cases.push({ anyOf: [ticketSchema()] }); // root must be an object, not a union
    cases.push({ type: 'array', items: { type: 'string' } });
    cases.push({ ...ticketSchema(), allOf: [{ required: ['note'] }] });
    cases.push({ type: 'object', properties: { s: { type: 'string', minLength: 2 } }, required: ['s'], additionalProperties: false });
    cases.push({ type: 'object', properties: { t: { $ref: '#/$defs/x' } }, required: ['t'], additionalProperties: false, $defs: { x: { type: 'object', properties: { y: { type: 'string' } } } } });
    let deep: Record<string, unknown> = { type: 'object', properties: {}, required: [], additionalProperties: false };
    for (let i = 0; i < 11; i++) deep = { type: 'object', properties: { d: deep }, required: ['d'], additionalProperties: false };
    cases.push(deep);
    for (const c of cases) expect(isStrictCompatible(c), JSON.stringify(c)).toBe(false);
  });
});

describe('answerOf', () => {
  it('chat: text, refusal and tool calls from choices[0].message', () => {
    expect(answerOf('chat.completions', chatCompletion({ content: validText }))).toEqual({ text: validText, refusal: undefined, toolCalls: [] });
    expect(answerOf('chat.completions', chatCompletion({ content: null, refusal: "I'm sorry, I can't help with that." }))).toEqual({
      text: undefined,
      refusal: "I'm sorry, I can't help with that.",
      toolCalls: [],
    });
    expect(answerOf('chat.completions', chatToolCalls)).toEqual({
      text: undefined,
      refusal: undefined,
      toolCalls: [
        { id: 'call_abc', name: 'lookup_order', arguments: '{"order_id":"42"}' },
        { id: 'call_def', name: 'create_ticket', arguments: '{"subject":"Late order","priority":2}' },
      ],
    });
  });

  it('chat: custom tool calls and the legacy function_call are tool calls too', () => {
    const a = answerOf(
      'chat.completions',
      chatCompletion({ content: null, tool_calls: [{ id: 'call_1', type: 'custom', custom: { name: 'run_sql', input: 'DROP TABLE users' } }], function_call: { name: 'old_fn', arguments: '{}' } }),
    );
    expect(a.toolCalls).toEqual([
      { id: 'call_1', name: 'run_sql', arguments: 'DROP TABLE users', kind: 'custom' },
      { id: '', name: 'old_fn', arguments: '{}', kind: 'legacy' },
    ]);
  });

  it('responses: output_text of message items, refusal parts, function_call items; reasoning ignored', () => {
    expect(answerOf('responses', response([reasoningItem, messageItem(validText)]))).toEqual({ text: validText, refusal: undefined, toolCalls: [] });
    expect(
      answerOf('responses', response([{ type: 'message', id: 'msg_2', role: 'assistant', status: 'completed', content: [{ type: 'refusal', refusal: 'I cannot do that.' }] }])),
    ).toEqual({ text: undefined, refusal: 'I cannot do that.', toolCalls: [] });
    expect(answerOf('responses', responsesToolCalls).toolCalls).toEqual([
      { id: 'call_abc', name: 'lookup_order', arguments: '{"order_id":"42"}' },
      { id: 'call_def', name: 'create_ticket', arguments: '{"subject":"Late order","priority":2}' },
    ]);
    const twoParts = response([{ ...messageItem('{"a":'), content: [{ type: 'output_text', text: '{"a":', annotations: [] }, { type: 'output_text', text: '1}', annotations: [] }] }]);
    expect(answerOf('responses', twoParts).text).toBe('{"a":1}');
  });

  it('returns an empty answer for bodies without output', () => {
    const empty = { text: undefined, refusal: undefined, toolCalls: [] };
    expect(answerOf('chat.completions', { choices: [] })).toEqual(empty);
    expect(answerOf('responses', response([reasoningItem]))).toEqual(empty);
    expect(answerOf('responses', null)).toEqual(empty);
  });
});

// --- streams ------------------------------------------------------------------------------------

const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  created: 1_767_000_000,
  model: 'gpt-4.1-mini-2025-04-14',
  system_fingerprint: 'fp_1',
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  usage: null,
});
const usageChunk = { id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 80, completion_tokens: 20, total_tokens: 100 } };

function feed(endpoint: OutputEndpoint, events: unknown[]): Answer {
  const s = new StreamAnswer(endpoint);
  for (const e of events) s.push(e);
  return s.answer();
}

describe('StreamAnswer: chat', () => {
  it('joins content fragments into the same answer as the non-streaming body', () => {
    const pieces = ['{"category":"bil', 'ling","items":[{"sku":"A-1",', '"price":9.5}],"note":null}'];
    const events = [chunk({ role: 'assistant', content: '', refusal: null }), ...pieces.map((p) => chunk({ content: p })), chunk({}, 'stop'), usageChunk];
    expect(feed('chat.completions', events)).toEqual(answerOf('chat.completions', chatCompletion({ content: validText })));
  });

  it('joins tool-call fragments by index across chunks, for several calls', () => {
    const events = [
      chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_abc', type: 'function', function: { name: 'lookup_order', arguments: '' } }], refusal: null }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"ord' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: 'er_id":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"42"}' } }] }),
      chunk({ tool_calls: [{ index: 1, id: 'call_def', type: 'function', function: { name: 'create_ticket', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 1, function: { arguments: '{"subject":"Late' } }] }),
      chunk({ tool_calls: [{ index: 1, function: { arguments: ' order","priority":2}' } }] }),
      chunk({}, 'tool_calls'),
      usageChunk,
    ];
    expect(feed('chat.completions', events)).toEqual(answerOf('chat.completions', chatToolCalls));
  });

  it('keeps tool calls apart when fragments of different calls interleave, and ordered by index', () => {
    const events = [
      chunk({ tool_calls: [{ index: 1, id: 'call_def', type: 'function', function: { name: 'create_ticket', arguments: '{"subject":' } }] }),
      chunk({ tool_calls: [{ index: 0, id: 'call_abc', type: 'function', function: { name: 'lookup_order', arguments: '{"order_id"' } }] }),
      chunk({ tool_calls: [{ index: 1, function: { arguments: '"Late order","priority":2}' } }, { index: 0, function: { arguments: ':"42"}' } }] }),
    ];
    expect(feed('chat.completions', events).toolCalls).toEqual(answerOf('chat.completions', chatToolCalls).toolCalls);
  });

  it('rebuilds a refusal and ignores non-chunk payloads', () => {
    const events = [chunk({ role: 'assistant', content: null, refusal: '' }), chunk({ refusal: "I'm sorry, " }), chunk({ refusal: "I can't help with that." }), '[DONE]', null, { error: { message: 'x' } }];
    expect(feed('chat.completions', events)).toEqual({ text: undefined, refusal: "I'm sorry, I can't help with that.", toolCalls: [] });
  });
});

// A Responses stream as the API sends it (sequence numbers included), for the given final response.
function responsesStream(final: ReturnType<typeof response>, withTerminal = true): unknown[] {
  const seq = { n: 0 };
  const ev = (type: string, fields: Record<string, unknown>) => ({ type, sequence_number: seq.n++, ...fields });
  const events: unknown[] = [ev('response.created', { response: { ...final, status: 'in_progress', output: [] } }), ev('response.in_progress', { response: { ...final, status: 'in_progress', output: [] } })];
  final.output.forEach((item, outputIndex) => {
    const it = item as Record<string, unknown>;
    if (it.type === 'function_call') {
      events.push(ev('response.output_item.added', { output_index: outputIndex, item: { ...it, arguments: '', status: 'in_progress' } }));
      const args = it.arguments as string;
      for (let k = 0; k < args.length; k += 7) events.push(ev('response.function_call_arguments.delta', { item_id: it.id, output_index: outputIndex, delta: args.slice(k, k + 7) }));
      events.push(ev('response.function_call_arguments.done', { item_id: it.id, output_index: outputIndex, arguments: args }));
    } else if (it.type === 'message') {
      events.push(ev('response.output_item.added', { output_index: outputIndex, item: { ...it, content: [], status: 'in_progress' } }));
      (it.content as { type: string; text?: string; refusal?: string }[]).forEach((part, contentIndex) => {
        const value = part.text ?? part.refusal ?? '';
        const kind = part.type === 'refusal' ? 'refusal' : 'output_text';
        events.push(ev('response.content_part.added', { item_id: it.id, output_index: outputIndex, content_index: contentIndex, part: { type: part.type, text: '' } }));
        for (let k = 0; k < value.length; k += 5) events.push(ev(`response.${kind}.delta`, { item_id: it.id, output_index: outputIndex, content_index: contentIndex, delta: value.slice(k, k + 5) }));
        events.push(ev(`response.${kind}.done`, { item_id: it.id, output_index: outputIndex, content_index: contentIndex, [kind === 'refusal' ? 'refusal' : 'text']: value }));
        events.push(ev('response.content_part.done', { item_id: it.id, output_index: outputIndex, content_index: contentIndex, part }));
      });
    } else {
      events.push(ev('response.output_item.added', { output_index: outputIndex, item: it }));
    }
    events.push(ev('response.output_item.done', { output_index: outputIndex, item: it }));
  });
  if (withTerminal) events.push(ev('response.completed', { response: final }));
  return events;
}

// The same stream without the complete items, so only the fragments can rebuild the answer.
function fragmentsOnly(events: unknown[]): unknown[] {
  return events.filter((e) => {
    const t = (e as { type: string }).type;
    return t !== 'response.output_item.done' && t !== 'response.completed' && !t.endsWith('.done');
  });
}

describe('StreamAnswer: responses', () => {
  const textResponse = response([reasoningItem, messageItem(validText)]);
  const refusalResponse = response([{ type: 'message', id: 'msg_2', role: 'assistant', status: 'completed', content: [{ type: 'refusal', refusal: 'I cannot do that.' }] }]);

  it('equals the non-stream answer, with the terminal event and from fragments alone', () => {
    for (const final of [textResponse, responsesToolCalls, refusalResponse]) {
      const expected = answerOf('responses', final);
      const events = responsesStream(final);
      expect(feed('responses', events)).toEqual(expected);
      expect(feed('responses', responsesStream(final, false))).toEqual(expected);
      expect(feed('responses', fragmentsOnly(events))).toEqual(expected);
    }
  });

  it('prefers the full response of the terminal event over the fragments', () => {
    const events = responsesStream(textResponse, false);
    events.push({ type: 'response.incomplete', sequence_number: 999, response: response([messageItem('{"category":"other"')]) });
    expect(feed('responses', events).text).toBe('{"category":"other"');
  });

  it('joins function-call argument deltas per item when calls interleave, matching events by item_id', () => {
    const events = [
      { type: 'response.output_item.added', output_index: 0, item: { type: 'function_call', id: 'fc_1', call_id: 'call_abc', name: 'lookup_order', arguments: '' } },
      { type: 'response.output_item.added', output_index: 1, item: { type: 'function_call', id: 'fc_2', call_id: 'call_def', name: 'create_ticket', arguments: '' } },
      { type: 'response.function_call_arguments.delta', item_id: 'fc_2', delta: '{"subject":"Late order",' },
      { type: 'response.function_call_arguments.delta', item_id: 'fc_1', delta: '{"order_id":' },
      { type: 'response.function_call_arguments.delta', item_id: 'fc_2', delta: '"priority":2}' },
      { type: 'response.function_call_arguments.delta', item_id: 'fc_1', delta: '"42"}' },
    ];
    expect(feed('responses', events)).toEqual(answerOf('responses', responsesToolCalls));
  });
});

// --- checking ----------------------------------------------------------------------------------

const textAnswer = (text: string | undefined): Answer => ({ text, refusal: undefined, toolCalls: [] });

describe('checkAnswer: the schema', () => {
  it('passes a valid answer', () => {
    expect(checkAnswer('chat.completions', textAnswer(validText), chatRequest(), policy)).toBeUndefined();
    expect(checkAnswer('responses', answerOf('responses', response([messageItem(validText)])), responsesRequest(), policy)).toBeUndefined();
  });

  it('reports schema violations with located errors', () => {
    const v = checkAnswer('chat.completions', textAnswer('{"items":[{"sku":"A-1","price":"9.50"}],"note":null,"extra":true}'), chatRequest(), policy);
    expect(v).toEqual({
      code: 'output_invalid',
      message: "the answer does not satisfy the route's output schema",
      errors: ["(root): must have required property 'category'", "(root): must NOT have additional property 'extra'", '/items/0/price: must be number'],
    });
  });

  it('reports broken JSON with its position and without the answer text', () => {
    const text = '{"category":"billing","items":[], }';
    const v = checkAnswer('chat.completions', textAnswer(text), chatRequest(), policy);
    expect(v?.code).toBe('output_invalid');
    expect(v?.errors).toEqual([`not valid JSON: Expected property name, got '}' at position ${text.lastIndexOf('}')}`]);
    expect(JSON.stringify(v)).not.toContain('billing');
  });

  it('caps the errors and says how many more there were', () => {
    const items = Array.from({ length: 30 }, () => ({ sku: 1, price: 'x' }));
    const v = checkAnswer('chat.completions', textAnswer(JSON.stringify({ category: 'billing', items, note: null })), chatRequest(), policy);
    expect(v?.errors).toHaveLength(11);
    expect(v?.errors[0]).toBe('/items/0/sku: must be string');
    expect(v?.errors[10]).toBe('…and 50 more');
  });

  it('does not treat a refusal as a schema violation', () => {
    const refusal = answerOf('chat.completions', chatCompletion({ content: null, refusal: "I'm sorry, I can't help with that." }));
    expect(checkAnswer('chat.completions', refusal, chatRequest(), policy)).toBeUndefined();
  });

  it('treats an answer with no text, refusal or tool call as a violation: the app was promised JSON', () => {
    const v = checkAnswer('responses', answerOf('responses', response([reasoningItem])), responsesRequest(), { jsonSchema: ticketSchema() });
    expect(v?.errors).toEqual(['(root): the answer has no text; expected JSON matching the schema']);
    expect(checkAnswer('responses', answerOf('responses', response([reasoningItem])), responsesRequest(), { allowedTools: ['x'] })).toBeUndefined();
  });

  it('does not hold text beside tool calls to the schema', () => {
    const answer: Answer = { text: 'Let me look that up.', refusal: undefined, toolCalls: answerOf('chat.completions', chatToolCalls).toolCalls };
    expect(checkAnswer('chat.completions', answer, chatRequest(), policy)).toBeUndefined();
  });

  it('throws SchemaError for a route schema that cannot compile: a config fault, not the model’s', () => {
    expect(() => checkAnswer('chat.completions', textAnswer('{}'), chatRequest(), { jsonSchema: { type: 'objekt' } })).toThrow(SchemaError);
  });

  it('compiles the route schema once: later checks reuse it', () => {
    const route = { jsonSchema: { ...ticketSchema(), description: 'compile-once probe' }, allowedTools: ['lookup_order', 'create_ticket'] };
    checkAnswer('chat.completions', textAnswer(validText), chatRequest(), route);
    const before = compileCount();
    for (let i = 0; i < 50; i++) {
      checkAnswer('chat.completions', textAnswer(validText), chatRequest(), route);
      checkAnswer('chat.completions', answerOf('chat.completions', chatToolCalls), chatRequest(), route);
    }
    expect(compileCount()).toBe(before);
  });
});

describe('checkAnswer: tools', () => {
  const call = (name: string, args: string, id = 'call_1') => ({ text: undefined, refusal: undefined, toolCalls: [{ id, name, arguments: args }] });

  it('passes allowed calls with valid arguments (chat and responses tool shapes)', () => {
    expect(checkAnswer('chat.completions', answerOf('chat.completions', chatToolCalls), chatRequest(), policy)).toBeUndefined();
    expect(checkAnswer('responses', answerOf('responses', responsesToolCalls), responsesRequest(), policy)).toBeUndefined();
  });

  it('rejects a tool outside the allow-list', () => {
    const v = checkAnswer('chat.completions', call('delete_account', '{}'), chatRequest(), policy);
    expect(v).toEqual({
      code: 'tool_not_allowed',
      message: 'the answer calls a tool this route does not allow: \'delete_account\'',
      errors: ["tool 'delete_account' is not allowed (allowed: lookup_order, create_ticket)"],
    });
    expect(checkAnswer('chat.completions', call('x', '{}'), chatRequest(), { allowedTools: [] })?.errors).toEqual(["tool 'x' is not allowed (allowed: none)"]);
  });

  it('governs custom tools and the legacy function_call by name too', () => {
    const custom: Answer = { text: undefined, refusal: undefined, toolCalls: [{ id: 'c', name: 'run_sql', arguments: 'DROP TABLE users', kind: 'custom' }] };
    expect(checkAnswer('chat.completions', custom, chatRequest(), policy)?.code).toBe('tool_not_allowed');
    expect(checkAnswer('chat.completions', custom, chatRequest(), { allowedTools: ['run_sql'] })).toBeUndefined();
    const legacy: Answer = { text: undefined, refusal: undefined, toolCalls: [{ id: '', name: 'delete_account', arguments: '{}', kind: 'legacy' }] };
    expect(checkAnswer('chat.completions', legacy, chatRequest(), policy)?.code).toBe('tool_not_allowed');
  });

  it('validates arguments against the tool’s own parameters, per endpoint shape', () => {
    const chat = checkAnswer('chat.completions', call('lookup_order', '{"order_id":42}'), chatRequest(), policy);
    expect(chat).toEqual({ code: 'output_invalid', message: "tool call arguments do not satisfy the tools' parameters", errors: ["tool 'lookup_order' arguments: /order_id: must be string"] });
    const resp = checkAnswer('responses', call('create_ticket', '{"priority":7}'), responsesRequest(), policy);
    expect(resp?.errors).toEqual(["tool 'create_ticket' arguments: (root): must have required property 'subject'", "tool 'create_ticket' arguments: /priority: must be <= 3"]);
  });

  it('reports arguments that are not JSON', () => {
    const v = checkAnswer('responses', call('lookup_order', '{"order_id": "42"'), responsesRequest(), policy);
    expect(v?.errors).toEqual(["tool 'lookup_order' arguments: not valid JSON: Unexpected end of input at position 17"]);
  });

  it('lists every problem when several calls are wrong, with tool_not_allowed taking precedence', () => {
    const answer: Answer = {
      text: undefined,
      refusal: undefined,
      toolCalls: [
        { id: 'a', name: 'lookup_order', arguments: '{}' },
        { id: 'b', name: 'delete_account', arguments: '{}' },
      ],
    };
    const v = checkAnswer('chat.completions', answer, chatRequest(), policy);
    expect(v?.code).toBe('tool_not_allowed');
    expect(v?.errors).toEqual(["tool 'lookup_order' arguments: (root): must have required property 'order_id'", "tool 'delete_account' is not allowed (allowed: lookup_order, create_ticket)"]);
  });

  it('does not check tools when the route has no allow-list', () => {
    expect(checkAnswer('chat.completions', call('delete_account', 'not json'), chatRequest(), { jsonSchema: ticketSchema() })).toBeUndefined();
  });

  it('still requires JSON arguments when a tool declares no usable parameters', () => {
    const body = chatRequest();
    (body.tools as unknown[]).push({ type: 'function', function: { name: 'broken', parameters: { type: 'objekt' } } }, { type: 'function', function: { name: 'bare' } });
    const route = { allowedTools: ['broken', 'bare'] };
    expect(checkAnswer('chat.completions', call('broken', '{"anything":1}'), body, route)).toBeUndefined();
    expect(checkAnswer('chat.completions', call('bare', '{}'), body, route)).toBeUndefined();
    expect(checkAnswer('chat.completions', call('bare', '{'), body, route)?.errors).toEqual(["tool 'bare' arguments: not valid JSON: Unexpected end of input at position 1"]);
  });

  it('compiles tool parameters once even though every request body is parsed afresh', () => {
    const fresh = () => JSON.parse(JSON.stringify(chatRequest())) as Record<string, unknown>;
    const bad = call('lookup_order', '{"order_id":1}');
    checkAnswer('chat.completions', bad, fresh(), policy);
    const before = compileCount();
    for (let i = 0; i < 20; i++) expect(checkAnswer('chat.completions', bad, fresh(), policy)?.code).toBe('output_invalid');
    expect(compileCount()).toBe(before);
  });
});

describe('repairRequest', () => {
  it('chat: appends the rejected answer and a user message listing the errors; the original body is untouched', () => {
    const body: Record<string, unknown> = { ...chatRequest(), response_format: { type: 'json_schema' } };
    const snapshot = structuredClone(body);
    const errors = ['/items/0/price: must be number'];
    const out = repairRequest('chat.completions', body, textAnswer('{"category":"billing","items":[{"sku":"A","price":"1"}],"note":null}'), errors);
    expect(body).toEqual(snapshot);
    expect(out.model).toBe('gpt-4.1-mini');
    expect(out.response_format).toEqual({ type: 'json_schema' });
    const messages = out.messages as Record<string, unknown>[];
    expect(messages.slice(0, 2)).toEqual(snapshot.messages);
    expect(messages[2]).toEqual({ role: 'assistant', content: '{"category":"billing","items":[{"sku":"A","price":"1"}],"note":null}' });
    expect(messages[3]?.role).toBe('user');
    expect(messages[3]?.content).toContain('- /items/0/price: must be number');
    expect(messages[3]?.content).toMatch(/JSON Schema/);
    expect(messages).toHaveLength(4);
  });

  it('chat: rejected tool calls are answered with a not-executed tool message each, as the API requires', () => {
    const answer = answerOf('chat.completions', chatToolCalls);
    const out = repairRequest('chat.completions', chatRequest(), answer, ["tool 'lookup_order' arguments: /order_id: must be string"]);
    const added = (out.messages as Record<string, unknown>[]).slice(2);
    expect(added[0]).toEqual({
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: 'call_abc', type: 'function', function: { name: 'lookup_order', arguments: '{"order_id":"42"}' } },
        { id: 'call_def', type: 'function', function: { name: 'create_ticket', arguments: '{"subject":"Late order","priority":2}' } },
      ],
    });
    expect(added.slice(1, 3).map((m) => [m.role, m.tool_call_id])).toEqual([
      ['tool', 'call_abc'],
      ['tool', 'call_def'],
    ]);
    expect(added[3]?.role).toBe('user');
    expect(added[3]?.content).toContain("- tool 'lookup_order' arguments: /order_id: must be string");
    expect(added).toHaveLength(4);
  });

  it('responses: turns a string input into a user item, then appends the answer and the correction', () => {
    const body = responsesRequest();
    const out = repairRequest('responses', body, textAnswer('{"category":1}'), ['/category: must be string']);
    expect(body.input).toBe('Where is order 42?');
    expect(out.instructions).toBe('You are a support agent.');
    const input = out.input as Record<string, unknown>[];
    expect(input.slice(0, 2)).toEqual([
      { role: 'user', content: 'Where is order 42?' },
      { role: 'assistant', content: '{"category":1}' },
    ]);
    expect(input[2]?.role).toBe('user');
    expect(input[2]?.content).toContain('- /category: must be string');
    expect(input).toHaveLength(3);
  });

  it('responses: keeps item inputs and pairs each rejected function call with an output', () => {
    const prior = [{ role: 'user', content: [{ type: 'input_text', text: 'Where is order 42?' }] }];
    const out = repairRequest('responses', { ...responsesRequest(), input: prior, previous_response_id: 'resp_prev' }, answerOf('responses', responsesToolCalls), ["tool 'x' is not allowed (allowed: none)"]);
    expect(out.previous_response_id).toBe('resp_prev');
    const input = out.input as Record<string, unknown>[];
    expect(input[0]).toBe(prior[0]);
    expect(input.slice(1, 5).map((i) => [i.type, i.call_id])).toEqual([
      ['function_call', 'call_abc'],
      ['function_call', 'call_def'],
      ['function_call_output', 'call_abc'],
      ['function_call_output', 'call_def'],
    ]);
    expect(input[1]).toEqual({ type: 'function_call', call_id: 'call_abc', name: 'lookup_order', arguments: '{"order_id":"42"}' });
    expect(input[5]?.role).toBe('user');
    expect(input[5]?.content).toMatch(/allowed tools/);
    expect(input).toHaveLength(6);
  });
});
