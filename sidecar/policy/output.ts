// Output contracts: the answer shape a route guarantees its app (a JSON Schema every text answer
// satisfies) and the tools the model may call (an allow-list, with arguments checked against each
// tool's own `parameters`). Pure functions over parsed wire bodies; the pipeline decides what to do
// with a violation (reject, fall back, or repair with `repairRequest`).
//
// Decisions:
// - A refusal is not a schema violation: it is the model declining, re-asking would not change it,
//   and the SDKs surface it to the app as a refusal. Its tool calls are still checked.
// - With a schema, an answer with no text, no refusal and no tool calls (e.g. cut by the token cap,
//   or only reasoning) is a violation: the app was promised JSON and got nothing.
// - Text is only held to the schema when the answer makes no tool calls: the schema describes the
//   final answer, and text beside tool calls is an interim remark.
// - Tool arguments are checked only when the route has `allowedTools`: that is the route opting in
//   to a tool contract. A tool's own `parameters` that cannot be compiled is skipped (the app
//   declared it and OpenAI accepted it; blocking every call of a working app over a schema dialect
//   detail would be worse), but the arguments must still be JSON.
// - Custom (free-form) tools and the legacy chat `function_call` are subject to the allow-list too,
//   so neither is a way around it.
import { compileSchema, MAX_ERRORS, parseJson, SchemaError, type SchemaCheck } from './json-schema.ts';

export type OutputEndpoint = 'chat.completions' | 'responses';

export interface ToolCall {
  id: string;
  name: string;
  /** JSON text for function tools; the raw input for custom tools. */
  arguments: string;
  /** Absent for function tools. `custom`: a free-form custom tool; `legacy`: chat's deprecated `function_call`. */
  kind?: 'custom' | 'legacy';
}

export interface Answer {
  text: string | undefined;
  refusal: string | undefined;
  toolCalls: ToolCall[];
}

export type Violation = { code: 'output_invalid' | 'tool_not_allowed'; message: string; errors: string[] };

type Json = Record<string, unknown>;

function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

// ---------------------------------------------------------------------------------------------
// Asking for structured output

const strictCache = new WeakMap<object, boolean>();

/**
 * When the route has a jsonSchema and the app asked for no structured output, asks the API for it in
 * the endpoint's own format. An explicit `{type: "text"}` counts as asking for none (it is the
 * default); an app's own `json_object` or `json_schema` is left alone and its answers are still
 * checked against the route's schema. The schema object is shared, not copied: bodies are only
 * serialised after this. Returns whether it set the format.
 */
export function requestStructuredOutput(endpoint: OutputEndpoint, body: Json, schema: Json, name?: string): boolean {
  const formatName = safeName(name);
  if (endpoint === 'chat.completions') {
    if (!asksNoFormat(body.response_format)) return false;
    body.response_format = { type: 'json_schema', json_schema: { name: formatName, schema, strict: isStrictCompatible(schema) } };
    return true;
  }
  const text = body.text;
  if (text !== undefined && text !== null && !isRecord(text)) return false;
  if (isRecord(text) && !asksNoFormat(text.format)) return false;
  // Other `text` settings (verbosity) are kept.
  body.text = { ...(isRecord(text) ? text : {}), format: { type: 'json_schema', name: formatName, schema, strict: isStrictCompatible(schema) } };
  return true;
}

function asksNoFormat(format: unknown): boolean {
  return format === undefined || format === null || (isRecord(format) && format.type === 'text');
}

// OpenAI accepts [a-zA-Z0-9_-]{1,64}; a route name like "shop.summaries" is made to fit.
function safeName(name: string | undefined): string {
  const cleaned = (name ?? '').replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64);
  return cleaned === '' ? 'output' : cleaned;
}

// Keywords OpenAI's strict mode rejects, or is not documented to accept. Erring towards `false` is
// cheap (the API still follows the schema loosely and the sidecar validates anyway), whereas a wrong
// `true` makes every call fail with a 400.
const NOT_STRICT = new Set([
  'allOf', 'oneOf', 'not', 'if', 'then', 'else', 'dependentRequired', 'dependentSchemas', 'dependencies',
  'patternProperties', 'unevaluatedProperties', 'propertyNames', 'minProperties', 'maxProperties',
  'unevaluatedItems', 'contains', 'minContains', 'maxContains', 'uniqueItems', 'prefixItems', 'additionalItems',
  'minLength', 'maxLength',
]);
const MAX_STRICT_PROPERTIES = 5000;
const MAX_STRICT_DEPTH = 10;

/**
 * Whether a schema meets OpenAI's strict-mode rules: the root is an object (not a union), every
 * object forbids additional properties and requires all of its properties, only supported keywords
 * appear, and the size limits hold. Cached per schema object.
 */
export function isStrictCompatible(schema: Json): boolean {
  let known = strictCache.get(schema);
  if (known === undefined) {
    known = isObjectSchema(schema) && schema.type === 'object' && strictNode(schema, 0, { properties: 0 });
    strictCache.set(schema, known);
  }
  return known;
}

function isObjectSchema(node: Json): boolean {
  const t = node.type;
  return t === 'object' || (Array.isArray(t) && t.includes('object')) || node.properties !== undefined;
}

function strictNode(node: unknown, depth: number, count: { properties: number }): boolean {
  // Boolean schemas (`items: true`) are not part of the supported subset.
  if (!isRecord(node)) return false;
  for (const key of Object.keys(node)) if (NOT_STRICT.has(key)) return false;
  const children: unknown[] = [];
  if (isObjectSchema(node)) {
    if (depth >= MAX_STRICT_DEPTH || node.additionalProperties !== false) return false;
    const props = node.properties ?? {};
    if (!isRecord(props)) return false;
    const names = Object.keys(props);
    const required = Array.isArray(node.required) ? node.required : [];
    if (!names.every((n) => required.includes(n))) return false;
    count.properties += names.length;
    if (count.properties > MAX_STRICT_PROPERTIES) return false;
    for (const n of names) if (!strictNode(props[n], depth + 1, count)) return false;
  }
  if (node.items !== undefined) children.push(node.items);
  if (node.anyOf !== undefined) {
    if (!Array.isArray(node.anyOf)) return false;
    children.push(...node.anyOf);
  }
  for (const defs of [node.$defs, node.definitions]) {
    if (defs === undefined) continue;
    if (!isRecord(defs)) return false;
    children.push(...Object.values(defs));
  }
  return children.every((c) => strictNode(c, depth, count));
}

// ---------------------------------------------------------------------------------------------
// Reading answers

/** The assistant output of a non-streaming answer (chat: choices[0].message; responses: the output items). */
export function answerOf(endpoint: OutputEndpoint, json: unknown): Answer {
  if (!isRecord(json)) return emptyAnswer();
  if (endpoint === 'chat.completions') {
    const choices = Array.isArray(json.choices) ? json.choices : [];
    const choice = choices.find((c) => isRecord(c) && c.index === 0) ?? choices[0];
    const message = isRecord(choice) ? choice.message : undefined;
    return isRecord(message) ? chatMessageAnswer(message) : emptyAnswer();
  }
  return responsesOutputAnswer(Array.isArray(json.output) ? json.output : []);
}

function emptyAnswer(): Answer {
  return { text: undefined, refusal: undefined, toolCalls: [] };
}

function chatMessageAnswer(message: Json): Answer {
  const toolCalls: ToolCall[] = [];
  if (Array.isArray(message.tool_calls)) {
    for (const call of message.tool_calls) {
      if (!isRecord(call)) continue;
      const id = str(call.id) ?? '';
      if (isRecord(call.custom)) toolCalls.push({ id, name: str(call.custom.name) ?? '', arguments: str(call.custom.input) ?? '', kind: 'custom' });
      else if (isRecord(call.function)) toolCalls.push({ id, name: str(call.function.name) ?? '', arguments: str(call.function.arguments) ?? '' });
    }
  }
  if (isRecord(message.function_call)) {
    toolCalls.push({ id: '', name: str(message.function_call.name) ?? '', arguments: str(message.function_call.arguments) ?? '', kind: 'legacy' });
  }
  return { text: str(message.content), refusal: str(message.refusal), toolCalls };
}

// Text is every output_text part of every message item, joined as the SDK's `output_text` does.
function responsesOutputAnswer(output: unknown[]): Answer {
  const texts: string[] = [];
  const refusals: string[] = [];
  const toolCalls: ToolCall[] = [];
  for (const item of output) {
    if (!isRecord(item)) continue;
    if (item.type === 'message') {
      if (!Array.isArray(item.content)) continue;
      for (const part of item.content) {
        if (!isRecord(part)) continue;
        if (part.type === 'output_text' && typeof part.text === 'string') texts.push(part.text);
        else if (part.type === 'refusal' && typeof part.refusal === 'string') refusals.push(part.refusal);
      }
    } else if (item.type === 'function_call') {
      toolCalls.push({ id: str(item.call_id) ?? '', name: str(item.name) ?? '', arguments: str(item.arguments) ?? '' });
    } else if (item.type === 'custom_tool_call') {
      toolCalls.push({ id: str(item.call_id) ?? '', name: str(item.name) ?? '', arguments: str(item.input) ?? '', kind: 'custom' });
    }
  }
  return {
    text: texts.length > 0 ? texts.join('') : undefined,
    refusal: refusals.length > 0 ? refusals.join('') : undefined,
    toolCalls,
  };
}

interface ChatToolState {
  id: string;
  name: string;
  args: string[];
  custom: boolean;
}

interface ResponsesItemState {
  type: string;
  callId: string;
  name: string;
  args: string[];
  argsDone: string | undefined;
  /** content_index → accumulated part. */
  parts: Map<number, { type: 'output_text' | 'refusal'; chunks: string[]; done: string | undefined }>;
  /** The complete item from response.output_item.done, which wins over the fragments. */
  done: Json | undefined;
}

/**
 * Rebuilds the Answer of a stream from its event payloads (already JSON-parsed): chat chunks, or
 * Responses events. Fragments are kept as arrays and joined only when `answer()` is asked for.
 */
export class StreamAnswer {
  readonly #endpoint: OutputEndpoint;
  // chat
  #text: string[] | undefined;
  #refusal: string[] | undefined;
  readonly #tools = new Map<number, ChatToolState>();
  #legacy: { name: string; args: string[] } | undefined;
  // responses
  readonly #items = new Map<number | string, ResponsesItemState>();
  readonly #itemKeys = new Map<string, number | string>();
  #final: Json | undefined;

  constructor(endpoint: OutputEndpoint) {
    this.#endpoint = endpoint;
  }

  push(event: unknown): void {
    if (!isRecord(event)) return;
    if (this.#endpoint === 'chat.completions') this.#pushChat(event);
    else this.#pushResponses(event);
  }

  answer(): Answer {
    return this.#endpoint === 'chat.completions' ? this.#chatAnswer() : this.#responsesAnswer();
  }

  #pushChat(chunk: Json): void {
    if (!Array.isArray(chunk.choices)) return;
    const choice = chunk.choices.find((c) => isRecord(c) && (c.index === 0 || c.index === undefined));
    if (!isRecord(choice) || !isRecord(choice.delta)) return;
    const delta = choice.delta;
    if (typeof delta.content === 'string') (this.#text ??= []).push(delta.content);
    if (typeof delta.refusal === 'string') (this.#refusal ??= []).push(delta.refusal);
    if (Array.isArray(delta.tool_calls)) {
      delta.tool_calls.forEach((frag, position) => {
        if (!isRecord(frag)) return;
        const index = typeof frag.index === 'number' ? frag.index : position;
        let state = this.#tools.get(index);
        if (!state) {
          state = { id: '', name: '', args: [], custom: false };
          this.#tools.set(index, state);
        }
        if (typeof frag.id === 'string' && frag.id !== '') state.id = frag.id;
        const body = isRecord(frag.custom) ? frag.custom : isRecord(frag.function) ? frag.function : undefined;
        if (isRecord(frag.custom) || frag.type === 'custom') state.custom = true;
        if (!body) return;
        // The name comes whole in one fragment; some compatible servers repeat it, so it is set, not appended.
        if (typeof body.name === 'string' && body.name !== '') state.name = body.name;
        const piece = state.custom ? body.input : body.arguments;
        if (typeof piece === 'string') state.args.push(piece);
      });
    }
    if (isRecord(delta.function_call)) {
      const legacy = (this.#legacy ??= { name: '', args: [] });
      if (typeof delta.function_call.name === 'string' && delta.function_call.name !== '') legacy.name = delta.function_call.name;
      if (typeof delta.function_call.arguments === 'string') legacy.args.push(delta.function_call.arguments);
    }
  }

  #chatAnswer(): Answer {
    const toolCalls: ToolCall[] = [...this.#tools.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, s]) => (s.custom ? { id: s.id, name: s.name, arguments: s.args.join(''), kind: 'custom' as const } : { id: s.id, name: s.name, arguments: s.args.join('') }));
    if (this.#legacy) toolCalls.push({ id: '', name: this.#legacy.name, arguments: this.#legacy.args.join(''), kind: 'legacy' });
    return { text: this.#text?.join(''), refusal: this.#refusal?.join(''), toolCalls };
  }

  #pushResponses(event: Json): void {
    const type = event.type;
    if (typeof type !== 'string') return;
    if (type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') {
      if (isRecord(event.response) && Array.isArray(event.response.output)) this.#final = event.response;
      return;
    }
    if (type === 'response.output_item.added' || type === 'response.output_item.done') {
      const item = event.item;
      if (!isRecord(item)) return;
      const state = this.#itemState(event, str(item.id));
      if (!state) return;
      if (typeof item.type === 'string') state.type = item.type;
      if (typeof item.call_id === 'string') state.callId = item.call_id;
      if (typeof item.name === 'string' && item.name !== '') state.name = item.name;
      if (type === 'response.output_item.done') state.done = item;
      return;
    }
    const state = this.#itemState(event, str(event.item_id));
    if (!state) return;
    const contentIndex = typeof event.content_index === 'number' ? event.content_index : 0;
    switch (type) {
      case 'response.output_text.delta':
      case 'response.refusal.delta': {
        const delta = str(event.delta);
        if (delta !== undefined) this.#part(state, contentIndex, type === 'response.refusal.delta' ? 'refusal' : 'output_text').chunks.push(delta);
        return;
      }
      case 'response.output_text.done':
        this.#part(state, contentIndex, 'output_text').done = str(event.text);
        return;
      case 'response.refusal.done':
        this.#part(state, contentIndex, 'refusal').done = str(event.refusal);
        return;
      case 'response.function_call_arguments.delta':
      case 'response.custom_tool_call_input.delta': {
        const delta = str(event.delta);
        if (delta !== undefined) state.args.push(delta);
        return;
      }
      case 'response.function_call_arguments.done':
        state.argsDone = str(event.arguments);
        if (typeof event.name === 'string' && event.name !== '') state.name = event.name;
        return;
      case 'response.custom_tool_call_input.done':
        state.argsDone = str(event.input);
        return;
    }
  }

  // Items are ordered by output_index; events that carry only item_id are matched through the id
  // seen when the item was added.
  #itemState(event: Json, itemId: string | undefined): ResponsesItemState | undefined {
    let key: number | string | undefined = itemId !== undefined ? this.#itemKeys.get(itemId) : undefined;
    if (key === undefined) key = typeof event.output_index === 'number' ? event.output_index : itemId;
    if (key === undefined) return undefined;
    if (itemId !== undefined) this.#itemKeys.set(itemId, key);
    let state = this.#items.get(key);
    if (!state) {
      state = { type: '', callId: '', name: '', args: [], argsDone: undefined, parts: new Map(), done: undefined };
      this.#items.set(key, state);
    }
    return state;
  }

  #part(state: ResponsesItemState, index: number, type: 'output_text' | 'refusal') {
    let part = state.parts.get(index);
    if (!part) {
      part = { type, chunks: [], done: undefined };
      state.parts.set(index, part);
      // Text deltas can arrive without an output_item.added (a trimmed stream); they belong to a message.
      if (state.type === '') state.type = 'message';
    }
    return part;
  }

  #responsesAnswer(): Answer {
    if (this.#final) return answerOf('responses', this.#final);
    const keys = [...this.#items.keys()].sort((a, b) => (typeof a === 'number' && typeof b === 'number' ? a - b : typeof a === 'number' ? -1 : typeof b === 'number' ? 1 : 0));
    const output: Json[] = [];
    for (const key of keys) {
      const s = this.#items.get(key);
      if (!s) continue;
      if (s.done) {
        output.push(s.done);
        continue;
      }
      const args = s.argsDone ?? s.args.join('');
      if (s.type === 'function_call') output.push({ type: 'function_call', call_id: s.callId, name: s.name, arguments: args });
      else if (s.type === 'custom_tool_call') output.push({ type: 'custom_tool_call', call_id: s.callId, name: s.name, input: args });
      else if (s.type === 'message') {
        const content = [...s.parts.entries()]
          .sort(([a], [b]) => a - b)
          .map(([, p]) => {
            const value = p.done ?? p.chunks.join('');
            return p.type === 'refusal' ? { type: 'refusal', refusal: value } : { type: 'output_text', text: value };
          });
        output.push({ type: 'message', role: 'assistant', content });
      }
    }
    return responsesOutputAnswer(output);
  }
}

// ---------------------------------------------------------------------------------------------
// Checking answers

/**
 * Checks an answer against the route's output contract. Returns undefined when it holds.
 * Throws SchemaError when the route's own jsonSchema cannot be compiled: that is a configuration
 * fault, to be caught at config load with `compileSchema`, not something to blame the model for.
 */
export function checkAnswer(
  endpoint: OutputEndpoint,
  answer: Answer,
  requestBody: Json,
  policy: { jsonSchema?: Record<string, unknown>; allowedTools?: string[] },
): Violation | undefined {
  const errors: string[] = [];
  let total = 0;
  const note = (list: string[], count: number) => {
    for (const e of list) if (errors.length < MAX_ERRORS) errors.push(e);
    total += count;
  };

  if (policy.jsonSchema && answer.toolCalls.length === 0) {
    const validate = compileSchema(policy.jsonSchema);
    const hasText = answer.text !== undefined && answer.text.trim() !== '';
    if (!hasText && answer.refusal === undefined) {
      note(['(root): the answer has no text; expected JSON matching the schema'], 1);
    } else if (hasText) {
      const parsed = parseJson(answer.text ?? '');
      if (!parsed.ok) note([parsed.error], 1);
      else {
        const r = validate(parsed.value, MAX_ERRORS - errors.length);
        note(r.errors, r.total);
      }
    }
  }

  const refused: string[] = [];
  if (policy.allowedTools && answer.toolCalls.length > 0) {
    const allowed = new Set(policy.allowedTools);
    const allowedList = policy.allowedTools.length > 0 ? policy.allowedTools.join(', ') : 'none';
    let declared: Map<string, unknown> | undefined;
    for (const call of answer.toolCalls) {
      const label = `tool ${quoteName(call.name)}`;
      if (!allowed.has(call.name)) {
        refused.push(quoteName(call.name));
        note([`${label} is not allowed (allowed: ${allowedList})`], 1);
        continue;
      }
      // A custom tool's input is free text by design: only its name is governed.
      if (call.kind === 'custom') continue;
      const parsed = parseJson(call.arguments);
      if (!parsed.ok) {
        note([`${label} arguments: ${parsed.error}`], 1);
        continue;
      }
      declared ??= declaredParameters(endpoint, requestBody);
      const validate = toolValidator(declared.get(call.name));
      if (!validate) continue;
      const r = validate(parsed.value, Math.max(MAX_ERRORS - errors.length, 0));
      note(r.errors.map((e) => `${label} arguments: ${e}`), r.total);
    }
  }

  if (total === 0) return undefined;
  if (total > errors.length) errors.push(`…and ${total - errors.length} more`);
  if (refused.length > 0) {
    return { code: 'tool_not_allowed', message: `the answer calls ${refused.length === 1 ? 'a tool' : 'tools'} this route does not allow: ${[...new Set(refused)].join(', ')}`, errors };
  }
  const message = answer.toolCalls.length > 0 ? "tool call arguments do not satisfy the tools' parameters" : "the answer does not satisfy the route's output schema";
  return { code: 'output_invalid', message, errors };
}

function quoteName(name: string): string {
  return `'${name.length > 64 ? `${name.slice(0, 63)}…` : name}'`;
}

function toolValidator(parameters: unknown): SchemaCheck | undefined {
  if (!isRecord(parameters)) return undefined;
  try {
    return compileSchema(parameters);
  } catch (e) {
    if (e instanceof SchemaError) return undefined;
    throw e;
  }
}

// Each tool's declared parameters by name. Chat: tools[].function (and the legacy functions[]);
// Responses: tools[] of type function. Custom tools have no JSON parameters.
function declaredParameters(endpoint: OutputEndpoint, body: Json): Map<string, unknown> {
  const found = new Map<string, unknown>();
  const tools = Array.isArray(body.tools) ? body.tools : [];
  for (const tool of tools) {
    if (!isRecord(tool)) continue;
    const def = endpoint === 'chat.completions' ? tool.function : tool.type === 'function' ? tool : undefined;
    if (isRecord(def) && typeof def.name === 'string') found.set(def.name, def.parameters);
  }
  if (endpoint === 'chat.completions' && Array.isArray(body.functions)) {
    for (const fn of body.functions) if (isRecord(fn) && typeof fn.name === 'string' && !found.has(fn.name)) found.set(fn.name, fn.parameters);
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Repair

const NOT_EXECUTED = 'Not executed: this answer was rejected by policy (see the next message).';

/**
 * The follow-up request for `onInvalid: repair`: the original request, then the rejected answer,
 * then a user message listing the errors and asking for a corrected answer. Rejected tool calls get
 * a "not executed" result each, because both APIs refuse a conversation with a call left unanswered.
 * The original body is not modified.
 */
export function repairRequest(endpoint: OutputEndpoint, body: Json, answer: Answer, errors: string[]): Json {
  const hasText = answer.text !== undefined && answer.text !== '';
  const correction = correctionText(answer, errors);
  if (endpoint === 'chat.completions') {
    const prior = Array.isArray(body.messages) ? body.messages : [];
    const added: Json[] = [];
    const calls = answer.toolCalls.filter((c) => c.kind !== 'legacy');
    const legacy = answer.toolCalls.find((c) => c.kind === 'legacy');
    if (hasText || answer.toolCalls.length > 0) {
      const assistant: Json = { role: 'assistant', content: hasText ? answer.text : null };
      if (calls.length > 0) {
        assistant.tool_calls = calls.map((c) =>
          c.kind === 'custom' ? { id: c.id, type: 'custom', custom: { name: c.name, input: c.arguments } } : { id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } },
        );
      } else if (legacy) {
        assistant.function_call = { name: legacy.name, arguments: legacy.arguments };
      }
      added.push(assistant);
      if (calls.length > 0) for (const c of calls) added.push({ role: 'tool', tool_call_id: c.id, content: NOT_EXECUTED });
      else if (legacy) added.push({ role: 'function', name: legacy.name, content: NOT_EXECUTED });
    }
    added.push({ role: 'user', content: correction });
    return { ...body, messages: [...prior, ...added] };
  }
  const input = body.input;
  const prior: unknown[] = typeof input === 'string' ? [{ role: 'user', content: input }] : Array.isArray(input) ? input : [];
  const added: Json[] = [];
  if (hasText) added.push({ role: 'assistant', content: answer.text });
  for (const c of answer.toolCalls) {
    if (c.kind === 'custom') added.push({ type: 'custom_tool_call', call_id: c.id, name: c.name, input: c.arguments });
    else added.push({ type: 'function_call', call_id: c.id, name: c.name, arguments: c.arguments });
  }
  for (const c of answer.toolCalls) {
    added.push({ type: c.kind === 'custom' ? 'custom_tool_call_output' : 'function_call_output', call_id: c.id, output: NOT_EXECUTED });
  }
  added.push({ role: 'user', content: correction });
  return { ...body, input: [...prior, ...added] };
}

function correctionText(answer: Answer, errors: string[]): string {
  const ask =
    answer.toolCalls.length > 0
      ? 'Answer again: call only the allowed tools, with arguments that match their parameters.'
      : 'Answer again with only a JSON value that satisfies the required JSON Schema, and nothing else.';
  return ['Your previous answer was rejected because it breaks the required output contract:', ...errors.map((e) => `- ${e}`), ask].join('\n');
}
