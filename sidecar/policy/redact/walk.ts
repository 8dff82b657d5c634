// The texts of a request body, by endpoint: visiting them, and redacting them in place.
import { type Findings, type Redactor, mergeFindings } from './kinds.ts';

export type TextEndpoint = 'chat.completions' | 'responses' | 'embeddings' | 'moderations';

type Obj = Record<string, unknown>;
type TextFn = (text: string) => string | undefined;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function visitField(holder: Obj, key: string, fn: TextFn): void {
  const v = holder[key];
  if (typeof v !== 'string') return;
  const r = fn(v);
  if (typeof r === 'string' && r !== v) holder[key] = r;
}

function visitElement(holder: unknown[], i: number, fn: TextFn): void {
  const v = holder[i];
  if (typeof v !== 'string') return;
  const r = fn(v);
  if (typeof r === 'string' && r !== v) holder[i] = r;
}

/** A string, or parts of which those of the given types carry `text`. */
function visitContent(holder: Obj, key: string, partTypes: ReadonlySet<unknown>, fn: TextFn): void {
  const v = holder[key];
  if (typeof v === 'string') return visitField(holder, key, fn);
  for (const part of asArray(v)) if (isObj(part) && partTypes.has(part.type)) visitField(part, 'text', fn);
}

const CHAT_PARTS: ReadonlySet<unknown> = new Set(['text']);
const RESPONSES_PARTS: ReadonlySet<unknown> = new Set(['input_text', 'output_text']);

function chatTexts(body: Obj, fn: TextFn): void {
  for (const m of asArray(body.messages)) {
    if (!isObj(m)) continue;
    visitContent(m, 'content', CHAT_PARTS, fn);
    for (const call of asArray(m.tool_calls)) {
      if (!isObj(call)) continue;
      if (isObj(call.function)) visitField(call.function, 'arguments', fn);
      if (isObj(call.custom)) visitField(call.custom, 'input', fn);
    }
    // The deprecated single function call carries arguments the same way.
    if (isObj(m.function_call)) visitField(m.function_call, 'arguments', fn);
  }
}

function responsesTexts(body: Obj, fn: TextFn): void {
  visitField(body, 'instructions', fn);
  if (typeof body.input === 'string') return visitField(body, 'input', fn);
  for (const item of asArray(body.input)) {
    if (!isObj(item)) continue;
    switch (item.type) {
      case undefined:
      case 'message':
        visitContent(item, 'content', RESPONSES_PARTS, fn);
        break;
      case 'function_call':
        visitField(item, 'arguments', fn);
        break;
      case 'custom_tool_call':
        visitField(item, 'input', fn);
        break;
      case 'function_call_output':
      case 'custom_tool_call_output':
        visitContent(item, 'output', RESPONSES_PARTS, fn);
        break;
    }
  }
}

function embeddingTexts(body: Obj, fn: TextFn): void {
  if (typeof body.input === 'string') return visitField(body, 'input', fn);
  // Token arrays (numbers) are left alone: they are not text.
  const input = asArray(body.input);
  for (let i = 0; i < input.length; i++) visitElement(input, i, fn);
}

function moderationTexts(body: Obj, fn: TextFn): void {
  if (typeof body.input === 'string') return visitField(body, 'input', fn);
  const input = asArray(body.input);
  for (let i = 0; i < input.length; i++) {
    const x = input[i];
    if (typeof x === 'string') visitElement(input, i, fn);
    else if (isObj(x) && x.type === 'text') visitField(x, 'text', fn);
  }
}

/**
 * Calls fn on every text the user supplied in the body; fn may return a replacement. Mutates in
 * place. Only text is visited: never the model, tool definitions, images, audio or files. A
 * malformed body is walked as far as its shape allows, without throwing.
 */
export function mapTexts(endpoint: TextEndpoint, body: Record<string, unknown>, fn: (text: string) => string | undefined): void {
  if (!isObj(body)) return;
  switch (endpoint) {
    case 'chat.completions':
      return chatTexts(body, fn);
    case 'responses':
      return responsesTexts(body, fn);
    case 'embeddings':
      return embeddingTexts(body, fn);
    case 'moderations':
      return moderationTexts(body, fn);
  }
}

/** Redacts every text part of a request body in place; returns what was found (summed). */
export function redactBody(endpoint: TextEndpoint, body: Record<string, unknown>, redactor: Redactor): Findings {
  let findings: Findings = {};
  mapTexts(endpoint, body, (text) => {
    const r = redactor.redact(text);
    findings = mergeFindings(findings, r.findings);
    return r.text;
  });
  return findings;
}
