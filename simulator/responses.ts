import { decideAnswer, promptTextOf } from './answers.ts';
import { ApiError, invalidParam, invalidType } from './errors.ts';
import { chooseTool, generate, replyText, structuredContent, textOf, toolArguments, type FunctionTool } from './generate.ts';
import { ids, nowSeconds } from './ids.ts';
import { json, sseData, type Reply, type SseEvent } from './reply.ts';
import type { HandlerCtx } from './state.ts';
import { cachedTokens, contentTokens, countOutputTokens, countTokens, isReasoningModel, outputPieces, PER_MESSAGE, REPLY_PRIMING, schemaTokens, toolCallTokens, toolDefinitionTokens } from './tokens.ts';
import { isObj, jsonObject, optionalBool, optionalInt, requireModel, type Obj } from './validate.ts';

const MIN_OUTPUT_TOKENS = 16;
const INPUT_ROLES = new Set(['user', 'assistant', 'system', 'developer']);

type Item = Obj & { id: string; type: string };

export function createResponse(ctx: HandlerCtx): Reply {
  const body = jsonObject(ctx);
  const model = requireModel(ctx, body, 'generate');
  const items = inputItems(body.input);
  if (body.instructions != null && typeof body.instructions !== 'string') throw invalidType('instructions', 'a string', body.instructions);
  const maxOutput = optionalInt(body, 'max_output_tokens', MIN_OUTPUT_TOKENS);
  const stream = optionalBool(body, 'stream') ?? false;
  const store = optionalBool(body, 'store') ?? true;
  const prev = body.previous_response_id;
  if (prev != null && (typeof prev !== 'string' || !ctx.state.responses.has(prev))) {
    throw new ApiError(404, `Previous response with id '${String(prev)}' not found.`, { param: 'previous_response_id' });
  }
  const tools = functionTools(body.tools);
  const format = isObj(body.text) && isObj(body.text.format) ? body.text.format : { type: 'text' };

  const lastUser = [...items].reverse().find((m) => m.role === 'user');
  const lastUserText = lastUser ? textOf(lastUser.content) : undefined;
  const inputTokens = responsesInputTokens(model, typeof body.instructions === 'string' ? body.instructions : undefined, items, body.tools, format);
  const cached = cachedTokens(inputTokens, body.prompt_cache_key);

  const output: Item[] = [];
  let truncated = false;
  let textPieces: string[] = [];
  let outputTokens: number;
  let reasoningTokens: number;
  const scripted = decideAnswer(ctx.state.answers, { model, lastUserText, promptText: promptTextOf(body.instructions, items), toolNames: tools.map((t) => t.name), toolChoice: body.tool_choice });
  const tool = scripted ? (scripted.kind === 'tool' ? { name: scripted.name, parameters: undefined } : undefined) : chooseTool(tools, body.tool_choice, lastUserText);
  if (tool) {
    const args = scripted?.kind === 'tool' ? scripted.arguments : toolArguments(tool);
    reasoningTokens = generate(model, '', undefined).reasoningTokens;
    outputTokens = reasoningTokens + countOutputTokens(tool.name + args, model);
    if (reasoningTokens > 0) output.push(reasoningItem());
    output.push({ id: ids.functionCall(), type: 'function_call', status: 'completed', arguments: args, call_id: ids.toolCall(), name: tool.name });
  } else {
    const plain = replyText(lastUserText);
    const text = scripted?.kind === 'text' ? scripted.text : (structuredContent(format.type, format.schema, plain, model) ?? plain);
    const gen = generate(model, text, maxOutput);
    truncated = gen.truncated;
    textPieces = gen.pieces;
    reasoningTokens = gen.reasoningTokens;
    outputTokens = gen.outputTokens;
    if (reasoningTokens > 0) output.push(reasoningItem());
    // A reasoning model that spent the whole cap before writing produces no message at all.
    if (gen.pieces.length > 0 || !truncated) {
      output.push({
        id: ids.message(),
        type: 'message',
        status: truncated ? 'incomplete' : 'completed',
        content: [{ type: 'output_text', annotations: [], logprobs: [], text: gen.text }],
        role: 'assistant',
      });
    }
  }

  const usage = {
    input_tokens: inputTokens,
    input_tokens_details: { cached_tokens: cached, cache_write_tokens: 0 },
    output_tokens: outputTokens,
    output_tokens_details: { reasoning_tokens: reasoningTokens },
    total_tokens: inputTokens + outputTokens,
  };
  const base = baseResponse(body, model, format, maxOutput, store);
  const final = {
    ...base,
    status: truncated ? 'incomplete' : 'completed',
    completed_at: truncated ? null : nowSeconds(),
    incomplete_details: truncated ? { reason: 'max_output_tokens' } : null,
    output,
    usage,
  };
  if (store) ctx.state.responses.set(final.id, final);
  const note = { model, tokens: inputTokens + (maxOutput ?? outputTokens), billed: usage };
  if (stream) return { kind: 'sse', events: streamEvents(model, base, final, output, textPieces), usage: note };
  return json(final, note);
}

export function getResponse(ctx: HandlerCtx): Reply {
  const id = ctx.params[0]!;
  const found = ctx.state.responses.get(id);
  if (!found) throw new ApiError(404, `Response with id '${id}' not found.`, { param: 'response_id' });
  return json(found);
}

function reasoningItem(): Item {
  return { id: ids.reasoning(), type: 'reasoning', summary: [] };
}

/** Fields of the response object that do not depend on the generated output. */
function baseResponse(body: Obj, model: string, format: Obj, maxOutput: number | undefined, store: boolean) {
  const reasoning = isObj(body.reasoning) ? body.reasoning : {};
  const reasons = isReasoningModel(model);
  return {
    id: ids.response(),
    object: 'response',
    created_at: nowSeconds(),
    status: 'in_progress',
    access_programs: null,
    background: false,
    completed_at: null as number | null,
    conversation: null,
    error: null,
    incomplete_details: null as unknown,
    instructions: typeof body.instructions === 'string' ? body.instructions : null,
    max_output_tokens: maxOutput ?? null,
    max_tool_calls: null,
    model,
    output: [] as Item[],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    prompt: null,
    prompt_cache_key: body.prompt_cache_key ?? null,
    prompt_cache_retention: null,
    reasoning: { effort: reasoning.effort ?? (reasons ? 'medium' : null), summary: reasoning.summary ?? null },
    safety_identifier: body.safety_identifier ?? null,
    service_tier: 'default',
    store,
    temperature: body.temperature ?? 1,
    text: { format, verbosity: 'medium' },
    tool_choice: body.tool_choice ?? 'auto',
    tools: echoTools(body.tools),
    top_logprobs: 0,
    top_p: body.top_p ?? 1,
    truncation: body.truncation ?? 'disabled',
    usage: null as unknown,
    user: body.user ?? null,
    metadata: isObj(body.metadata) ? body.metadata : {},
  };
}

/** `textPieces` are the message's deltas as generate() counted them, so deltas and usage agree. */
function streamEvents(model: string, base: Obj, final: Obj, output: Item[], textPieces: string[]): SseEvent[] {
  const events: SseEvent[] = [];
  const emit = (type: string, fields: Obj) => events.push(sseData({ type, ...fields, sequence_number: events.length }, type));

  emit('response.created', { response: base });
  emit('response.in_progress', { response: base });
  output.forEach((item, output_index) => {
    if (item.type === 'message') {
      const part = (item.content as Obj[])[0]!;
      const text = part.text as string;
      const at = { item_id: item.id, output_index };
      emit('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', content: [] } });
      emit('response.content_part.added', { ...at, content_index: 0, part: { ...part, text: '' } });
      for (const delta of textPieces) {
        emit('response.output_text.delta', { ...at, content_index: 0, delta, logprobs: [] });
      }
      emit('response.output_text.done', { ...at, content_index: 0, text, logprobs: [] });
      emit('response.content_part.done', { ...at, content_index: 0, part });
      emit('response.output_item.done', { output_index, item });
    } else if (item.type === 'function_call') {
      const args = item.arguments as string;
      const at = { item_id: item.id, output_index };
      emit('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', arguments: '' } });
      for (const { text: delta } of outputPieces(args, model)) emit('response.function_call_arguments.delta', { ...at, delta });
      emit('response.function_call_arguments.done', { ...at, arguments: args });
      emit('response.output_item.done', { output_index, item });
    } else {
      emit('response.output_item.added', { output_index, item });
      emit('response.output_item.done', { output_index, item });
    }
  });
  emit(final.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: final });
  return events;
}

interface InputMessage {
  role?: string;
  content?: unknown;
  type?: string;
  output?: unknown;
  name?: unknown;
  arguments?: unknown;
}

function inputItems(input: unknown): InputMessage[] {
  if (input === undefined || input === null) return [];
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  if (!Array.isArray(input)) throw invalidType('input', 'a string or an array', input);
  return input.map((item, i) => {
    if (!isObj(item)) throw invalidType(`input[${i}]`, 'an object', item);
    const isMessage = item.type === undefined || item.type === 'message';
    if (isMessage && (typeof item.role !== 'string' || !INPUT_ROLES.has(item.role))) {
      throw invalidParam(`input[${i}].role`, "value must be one of 'user', 'assistant', 'system', or 'developer'.");
    }
    return item as InputMessage;
  });
}

function functionTools(v: unknown): FunctionTool[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidType('tools', 'an array', v);
  return v.filter((t): t is Obj => isObj(t) && t.type === 'function' && typeof t.name === 'string').map((t) => ({ name: t.name as string, parameters: t.parameters }));
}

/** The real API echoes function tools with their defaults filled in. */
function echoTools(v: unknown): unknown[] {
  if (!Array.isArray(v)) return [];
  return v.map((t) =>
    isObj(t) && t.type === 'function'
      ? { type: 'function', name: t.name, description: t.description ?? null, parameters: t.parameters ?? null, strict: t.strict ?? true }
      : t,
  );
}

/**
 * Same rules as chat: instructions are a developer message, each message 3 plus its role and
 * content, replayed calls and their outputs like messages, 3 to prime the reply; other items by
 * their JSON; tool definitions and a json_schema format on top.
 */
export function responsesInputTokens(model: string, instructions: string | undefined, items: InputMessage[], tools: unknown, format?: Obj): number {
  let total = REPLY_PRIMING;
  if (instructions !== undefined) total += PER_MESSAGE + countTokens('developer', model) + countTokens(instructions, model);
  for (const item of items) {
    if (item.type === undefined || item.type === 'message') total += PER_MESSAGE + countTokens(item.role ?? '', model) + contentTokens(item.content, model);
    else if (item.type === 'function_call') total += toolCallTokens(item.name, item.arguments, model);
    else if (item.type === 'function_call_output') {
      const out = item.output;
      total += PER_MESSAGE + (typeof out === 'string' || Array.isArray(out) ? contentTokens(out, model) : countTokens(JSON.stringify(out ?? ''), model));
    } else total += countTokens(JSON.stringify(item), model);
  }
  total += toolDefinitionTokens(tools, model);
  if (format?.type === 'json_schema') total += schemaTokens(format.schema, model);
  return total;
}
