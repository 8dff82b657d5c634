import { decideAnswer, promptTextOf, type Decided } from './answers.ts';
import { ApiError, invalidParam, invalidType, missingParam } from './errors.ts';
import { chooseTool, generate, replyText, structuredContent, textOf, toolArguments, type FunctionTool } from './generate.ts';
import { ids, nowSeconds } from './ids.ts';
import { json, sseData, type Reply, type SseEvent } from './reply.ts';
import type { HandlerCtx } from './state.ts';
import { cachedTokens, contentTokens, countOutputTokens, countTokens, isReasoningModel, outputPieces, PER_MESSAGE, REPLY_PRIMING, schemaTokens, toolCallTokens, toolDefinitionTokens } from './tokens.ts';
import { isObj, jsonObject, optionalBool, optionalInt, requireModel, type Obj } from './validate.ts';

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
const FINGERPRINT = 'fp_sim0000001';

interface ChoicePlan {
  content: string | null;
  contentPieces: string[];
  toolCall: { id: string; name: string; arguments: string } | undefined;
  finishReason: 'stop' | 'length' | 'tool_calls';
  reasoningTokens: number;
  completionTokens: number;
}

export function chatCompletions(ctx: HandlerCtx): Reply {
  const body = jsonObject(ctx);
  const model = requireModel(ctx, body, 'generate');
  const messages = checkMessages(body.messages);
  const n = optionalInt(body, 'n', 1, 128) ?? 1;
  const stream = optionalBool(body, 'stream') ?? false;
  if (body.stream_options != null && !stream) {
    throw new ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", {
      param: 'stream_options',
      code: 'invalid_value',
    });
  }
  if (body.max_tokens != null && isReasoningModel(model)) {
    throw new ApiError(400, "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", {
      param: 'max_tokens',
      code: 'unsupported_parameter',
    });
  }
  const maxTokens = optionalInt(body, 'max_completion_tokens', 1) ?? optionalInt(body, 'max_tokens', 1);
  const tools = functionTools(body.tools);

  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  const lastUserText = lastUser ? textOf(lastUser.content) : undefined;
  const promptTokens = chatPromptTokens(model, messages, body.tools, body.response_format);
  const cached = cachedTokens(promptTokens, body.prompt_cache_key);

  const plans: ChoicePlan[] = [];
  const scripted = decideAnswer(ctx.state.answers, { model, lastUserText, promptText: promptTextOf(undefined, messages), toolNames: tools.map((t) => t.name), toolChoice: body.tool_choice });
  for (let i = 0; i < n; i++) plans.push(planChoice(model, body, tools, lastUserText, maxTokens, scripted));
  const completionTokens = plans.reduce((s, p) => s + p.completionTokens, 0);
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: plans.reduce((s, p) => s + p.reasoningTokens, 0),
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
  const note = { model, tokens: promptTokens + (maxTokens ?? completionTokens), billed: usage };
  const id = ids.chat();
  const created = nowSeconds();

  if (stream) {
    const includeUsage = isObj(body.stream_options) && body.stream_options.include_usage === true;
    return { kind: 'sse', events: streamEvents(id, created, model, plans, includeUsage ? usage : undefined), usage: note };
  }
  return json(
    {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: plans.map((p, index) => ({
        index,
        message: {
          role: 'assistant',
          content: p.content,
          refusal: null,
          annotations: [],
          ...(p.toolCall
            ? { tool_calls: [{ id: p.toolCall.id, type: 'function', function: { name: p.toolCall.name, arguments: p.toolCall.arguments } }] }
            : {}),
        },
        logprobs: null,
        finish_reason: p.finishReason,
      })),
      usage,
      service_tier: 'default',
      system_fingerprint: FINGERPRINT,
    },
    note,
  );
}

function planChoice(model: string, body: Obj, tools: FunctionTool[], lastUserText: string | undefined, maxTokens: number | undefined, scripted?: Decided): ChoicePlan {
  const tool = scripted ? (scripted.kind === 'tool' ? { name: scripted.name, parameters: undefined } : undefined) : chooseTool(tools, body.tool_choice, lastUserText);
  if (tool) {
    const args = scripted?.kind === 'tool' ? scripted.arguments : toolArguments(tool);
    const reasoning = generate(model, '', undefined).reasoningTokens;
    return {
      content: null,
      contentPieces: [],
      toolCall: { id: ids.toolCall(), name: tool.name, arguments: args },
      finishReason: 'tool_calls',
      reasoningTokens: reasoning,
      completionTokens: reasoning + countOutputTokens(tool.name + args, model),
    };
  }
  const plain = replyText(lastUserText);
  const fmt = isObj(body.response_format) ? body.response_format : {};
  const schema = isObj(fmt.json_schema) ? fmt.json_schema.schema : undefined;
  const text = scripted?.kind === 'text' ? scripted.text : (structuredContent(fmt.type, schema, plain, model) ?? plain);
  const gen = generate(model, text, maxTokens);
  return {
    content: gen.text,
    contentPieces: gen.pieces,
    toolCall: undefined,
    finishReason: gen.truncated ? 'length' : 'stop',
    reasoningTokens: gen.reasoningTokens,
    completionTokens: gen.outputTokens,
  };
}

function streamEvents(id: string, created: number, model: string, plans: ChoicePlan[], usage: unknown): SseEvent[] {
  const chunk = (choices: unknown[], extra: Obj = {}) =>
    sseData({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      service_tier: 'default',
      system_fingerprint: FINGERPRINT,
      choices,
      ...(usage !== undefined ? { usage: null } : {}),
      ...extra,
    });
  const choice = (index: number, delta: Obj, finish: string | null = null) => ({ index, delta, logprobs: null, finish_reason: finish });

  const events: SseEvent[] = [];
  plans.forEach((p, index) => {
    if (p.toolCall) {
      const call = p.toolCall;
      events.push(
        chunk([
          choice(index, {
            role: 'assistant',
            content: null,
            tool_calls: [{ index: 0, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }],
            refusal: null,
          }),
        ]),
      );
      for (const piece of outputPieces(call.arguments, model)) {
        events.push(chunk([choice(index, { tool_calls: [{ index: 0, function: { arguments: piece.text } }] })]));
      }
    } else {
      events.push(chunk([choice(index, { role: 'assistant', content: '', refusal: null })]));
      for (const piece of p.contentPieces) events.push(chunk([choice(index, { content: piece })]));
    }
    events.push(chunk([choice(index, {}, p.finishReason)]));
  });
  if (usage !== undefined) events.push(chunk([], { usage }));
  events.push({ data: '[DONE]' });
  return events;
}

interface Message {
  role: string;
  content: unknown;
  name?: unknown;
  tool_calls?: unknown;
}

function checkMessages(v: unknown): Message[] {
  if (v === undefined || v === null) throw missingParam('messages');
  if (!Array.isArray(v)) throw invalidType('messages', 'an array', v);
  if (v.length === 0) {
    throw invalidParam('messages', 'empty array. Expected an array with minimum length 1, but got an empty array instead.', 'empty_array');
  }
  v.forEach((m, i) => {
    if (!isObj(m)) throw invalidType(`messages[${i}]`, 'an object', m);
    if (m.role === undefined) throw missingParam(`messages[${i}].role`);
    if (typeof m.role !== 'string' || !ROLES.has(m.role)) {
      throw invalidParam(
        `messages[${i}].role`,
        `value must be one of 'system', 'assistant', 'user', 'function', 'tool', or 'developer'.`,
      );
    }
  });
  return v as Message[];
}

function functionTools(v: unknown): FunctionTool[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidType('tools', 'an array', v);
  const out: FunctionTool[] = [];
  v.forEach((t, i) => {
    if (!isObj(t) || t.type !== 'function') return;
    const fn = t.function;
    if (!isObj(fn) || typeof fn.name !== 'string') throw missingParam(`tools[${i}].function.name`);
    out.push({ name: fn.name, parameters: fn.parameters });
  });
  return out;
}

/**
 * 3 tokens per message plus its role and content, a name plus 1 more, replayed tool calls, 3 to
 * prime the reply; tool definitions and a json_schema response format on top.
 */
export function chatPromptTokens(model: string, messages: Message[], tools: unknown, responseFormat?: unknown): number {
  let total = REPLY_PRIMING;
  for (const m of messages) {
    total += PER_MESSAGE + countTokens(m.role, model) + contentTokens(m.content, model);
    if (typeof m.name === 'string') total += 1 + countTokens(m.name, model);
    if (Array.isArray(m.tool_calls)) {
      for (const call of m.tool_calls) {
        const fn = isObj(call) && isObj(call.function) ? call.function : {};
        total += toolCallTokens(fn.name, fn.arguments, model);
      }
    }
  }
  total += toolDefinitionTokens(tools, model);
  if (isObj(responseFormat) && responseFormat.type === 'json_schema' && isObj(responseFormat.json_schema)) {
    total += schemaTokens(responseFormat.json_schema.schema, model);
  }
  return total;
}
