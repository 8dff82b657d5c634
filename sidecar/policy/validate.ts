// Request bodies checked per endpoint before anything is counted or sent: the shape of the fields
// the envelope relies on, with a message and `param` that name the field. Checks are written out
// rather than a schema library's, because this runs on every call and most fields pass through
// untouched: only what the envelope reads or bounds is checked; the upstream checks the rest.
import type { Endpoint } from '../../crds/schema.ts';
import { EnvelopeError } from '../errors.ts';

const CHAT_ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

function fail(param: string, message: string): never {
  throw new EnvelopeError('invalid_request', message, { param });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function positiveInt(body: Record<string, unknown>, name: string, min = 1): void {
  const v = body[name];
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(name, `'${name}' must be a whole number of at least ${min}.`);
}

function numberIn(body: Record<string, unknown>, name: string, lo: number, hi: number): void {
  const v = body[name];
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !(v >= lo && v <= hi)) fail(name, `'${name}' must be a number from ${lo} to ${hi}.`);
}

function optionalArray(body: Record<string, unknown>, name: string): void {
  const v = body[name];
  if (v !== undefined && v !== null && !Array.isArray(v)) fail(name, `'${name}' must be an array.`);
}

function optionalObject(body: Record<string, unknown>, name: string): void {
  const v = body[name];
  if (v !== undefined && v !== null && !isObject(v)) fail(name, `'${name}' must be an object.`);
}

function checkChat(body: Record<string, unknown>): void {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) fail('messages', "'messages' must be a non-empty array of messages.");
  messages.forEach((m, i) => {
    if (!isObject(m)) fail(`messages[${i}]`, `'messages[${i}]' must be an object with a role and content.`);
    if (typeof m.role !== 'string' || !CHAT_ROLES.has(m.role)) fail(`messages[${i}].role`, `'messages[${i}].role' must be one of ${[...CHAT_ROLES].join(', ')}.`);
    const c = m.content;
    if (c !== undefined && c !== null && typeof c !== 'string' && !Array.isArray(c)) fail(`messages[${i}].content`, `'messages[${i}].content' must be a string or an array of content parts.`);
  });
  positiveInt(body, 'max_completion_tokens');
  positiveInt(body, 'max_tokens');
  positiveInt(body, 'n');
  numberIn(body, 'temperature', 0, 2);
  numberIn(body, 'top_p', 0, 1);
  optionalArray(body, 'tools');
  optionalObject(body, 'response_format');
  optionalObject(body, 'stream_options');
  optionalObject(body, 'metadata');
}

function checkResponses(body: Record<string, unknown>): void {
  const input = body.input;
  if (input === undefined || input === null) {
    if (body.previous_response_id === undefined && body.prompt === undefined) fail('input', "'input' is required: a string or an array of input items.");
  } else if (typeof input !== 'string' && !Array.isArray(input)) {
    fail('input', "'input' must be a string or an array of input items.");
  }
  if (body.instructions !== undefined && body.instructions !== null && typeof body.instructions !== 'string') fail('instructions', "'instructions' must be a string.");
  positiveInt(body, 'max_output_tokens', 16);
  numberIn(body, 'temperature', 0, 2);
  numberIn(body, 'top_p', 0, 1);
  optionalArray(body, 'tools');
  optionalObject(body, 'text');
  optionalObject(body, 'metadata');
}

function checkEmbeddings(body: Record<string, unknown>): void {
  const input = body.input;
  const ok =
    typeof input === 'string' ||
    (Array.isArray(input) && input.length > 0 && (input.every((x) => typeof x === 'string') || input.every((x) => typeof x === 'number') || input.every((x) => Array.isArray(x))));
  if (!ok) fail('input', "'input' must be a string, an array of strings, an array of token ids, or an array of token-id arrays.");
  if (Array.isArray(input) && input.length > 2048 && typeof input[0] !== 'number') fail('input', `'input' has ${input.length} items; the API takes at most 2048 per request.`);
  if (body.encoding_format !== undefined && body.encoding_format !== 'float' && body.encoding_format !== 'base64') fail('encoding_format', "'encoding_format' must be 'float' or 'base64'.");
  positiveInt(body, 'dimensions');
}

function checkModerations(body: Record<string, unknown>): void {
  const input = body.input;
  if (typeof input !== 'string' && !Array.isArray(input)) fail('input', "'input' must be a string, an array of strings, or an array of content parts.");
}

const CHECKS: Partial<Record<Endpoint, (body: Record<string, unknown>) => void>> = {
  'chat.completions': checkChat,
  responses: checkResponses,
  embeddings: checkEmbeddings,
  moderations: checkModerations,
};

export function validateRequest(endpoint: Endpoint, body: Record<string, unknown>, forbidden: readonly string[], route: string): void {
  for (const name of forbidden) {
    if (body[name] !== undefined) fail(name, `The parameter '${name}' is not allowed on route '${route}' (input.forbiddenParameters).`);
  }
  CHECKS[endpoint]?.(body);
}
