import { fillSchema } from './schema-fill.ts';
import { isReasoningModel, outputPieces, REASONING_TOKENS } from './tokens.ts';

// The word that makes the simulated model call a tool when tools are offered.
export const TOOL_TRIGGER = 'CALL_TOOL';
// The word that makes the reply long (about 400 tokens), so output caps can bite.
export const LONG_TRIGGER = 'LONG_REPLY';
// Words that make structured output misbehave, as real models sometimes do: JSON cut off before
// its end, or well-formed JSON that ignores the schema.
export const BROKEN_JSON_TRIGGER = 'BROKEN_JSON';
export const WRONG_JSON_TRIGGER = 'WRONG_JSON';

const FILLER = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit'];

export interface FunctionTool {
  name: string;
  parameters: unknown;
}

export function replyText(lastUserText: string | undefined): string {
  if (lastUserText === undefined || lastUserText.trim() === '') return 'Simulated reply.';
  const reply = `Simulated reply to: ${lastUserText.slice(0, 60)}`;
  if (!lastUserText.includes(LONG_TRIGGER)) return reply;
  const words = Array.from({ length: 400 }, (_, i) => FILLER[i % FILLER.length]);
  return `${reply}\n\n${words.join(' ')}.`;
}

/** Concatenated text of a message's content: a string or a list of parts with `text`. */
export function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((p) => (typeof p === 'object' && p !== null && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
    .join('');
}

/**
 * Picks the tool the simulated model calls, if any: a function forced by
 * tool_choice, or the first tool when tool_choice is `required` or the last
 * user message says CALL_TOOL (unless tool_choice is `none`).
 */
export function chooseTool(tools: FunctionTool[], toolChoice: unknown, lastUserText: string | undefined): FunctionTool | undefined {
  if (tools.length === 0 || toolChoice === 'none') return undefined;
  if (typeof toolChoice === 'object' && toolChoice !== null) {
    const c = toolChoice as { type?: unknown; name?: unknown; function?: { name?: unknown } };
    const forced = c.type === 'function' ? (c.function?.name ?? c.name) : undefined;
    if (typeof forced === 'string') return tools.find((t) => t.name === forced);
  }
  if (toolChoice === 'required') return tools[0];
  if (lastUserText !== undefined && new RegExp(`\\b${TOOL_TRIGGER}\\b`).test(lastUserText)) return tools[0];
  return undefined;
}

export function toolArguments(tool: FunctionTool): string {
  return JSON.stringify(fillSchema(tool.parameters ?? { type: 'object', properties: {} }));
}

/** Reply content for a structured-output request, or undefined for plain text. */
export function structuredContent(kind: unknown, schema: unknown, plain: string, model = ''): string | undefined {
  if (kind === 'json_schema') {
    const filled = JSON.stringify(fillSchema(schema));
    if (plain.includes(BROKEN_JSON_TRIGGER)) return filled.slice(0, Math.max(1, filled.length - 3));
    // `WRONG_JSON@<model>` misbehaves only on that model, so a fallback model can answer well.
    const wrong = new RegExp(`${WRONG_JSON_TRIGGER}(?:@([\\w.-]+))?`).exec(plain);
    if (wrong && (wrong[1] === undefined || wrong[1] === model)) return JSON.stringify({ unexpected: true });
    return filled;
  }
  if (kind === 'json_object') return JSON.stringify({ reply: plain });
  return undefined;
}

export interface Generated {
  /** Visible output, already cut to the cap. */
  text: string;
  pieces: string[];
  truncated: boolean;
  reasoningTokens: number;
  /** Visible plus reasoning tokens, as usage reports them. */
  outputTokens: number;
}

/** Applies the output cap; reasoning models spend their hidden tokens first, as the real ones do. */
export function generate(model: string, fullText: string, maxTokens: number | undefined): Generated {
  const all = outputPieces(fullText, model);
  let reasoning = isReasoningModel(model) ? REASONING_TOKENS : 0;
  if (maxTokens !== undefined && reasoning > maxTokens) reasoning = maxTokens;
  const budget = maxTokens === undefined ? Infinity : maxTokens - reasoning;
  const pieces: string[] = [];
  let visible = 0;
  for (const p of all) {
    if (visible + p.tokens > budget) break;
    pieces.push(p.text);
    visible += p.tokens;
  }
  const truncated = pieces.length < all.length;
  return { text: pieces.join(''), pieces, truncated, reasoningTokens: reasoning, outputTokens: reasoning + visible };
}
