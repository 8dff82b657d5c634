import { ApiError, invalidParam, invalidType, missingParam } from './errors.ts';
import { json, type Reply } from './reply.ts';
import type { HandlerCtx } from './state.ts';
import { countTokens } from './tokens.ts';
import { jsonObject, optionalInt, requireModel } from './validate.ts';

const MAX_INPUTS = 2048;
const MAX_TOKENS_PER_INPUT = 8192;
const MAX_TOKENS_PER_REQUEST = 300_000;

export function nativeDimensions(model: string): number {
  return model.endsWith('-large') ? 3072 : 1536;
}

export function createEmbeddings(ctx: HandlerCtx): Reply {
  const body = jsonObject(ctx);
  const model = requireModel(ctx, body, 'embed');
  const inputs = normaliseInput(body.input);
  const format = body.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') {
    throw invalidParam('encoding_format', "value must be one of 'float' or 'base64'.");
  }
  const native = nativeDimensions(model);
  const dims = optionalInt(body, 'dimensions', 1, native) ?? native;
  if (body.dimensions != null && !model.startsWith('text-embedding-3')) {
    throw new ApiError(400, 'This model does not support specifying dimensions.', { param: 'dimensions' });
  }

  let total = 0;
  for (const input of inputs) {
    const tokens = typeof input === 'string' ? countTokens(input, model) : input.length;
    if (tokens > MAX_TOKENS_PER_INPUT) {
      throw new ApiError(
        400,
        `This model's maximum context length is ${MAX_TOKENS_PER_INPUT} tokens, however you requested ${tokens} tokens (${tokens} in your prompt; 0 for the completion). Please reduce your prompt; or completion length.`,
      );
    }
    total += tokens;
  }
  if (total > MAX_TOKENS_PER_REQUEST) {
    throw new ApiError(400, `Requested ${total} tokens, max ${MAX_TOKENS_PER_REQUEST} tokens per request`, {
      param: 'input',
      code: 'max_tokens_per_request',
    });
  }

  const data = inputs.map((input, index) => {
    const vec = embed(model, typeof input === 'string' ? input : input.join(','), dims);
    const embedding = format === 'base64' ? float32LE(vec).toString('base64') : Array.from(vec);
    return { object: 'embedding', index, embedding };
  });
  const usage = { prompt_tokens: total, total_tokens: total };
  return json({ object: 'list', data, model, usage }, { model, tokens: total, billed: usage });
}

/** Little-endian on every host, as the SDK's decoder assumes. */
function float32LE(vec: Float32Array): Buffer {
  const buf = Buffer.alloc(vec.length * 4);
  vec.forEach((v, i) => buf.writeFloatLE(v, i * 4));
  return buf;
}

function normaliseInput(v: unknown): (string | number[])[] {
  if (v === undefined || v === null) throw missingParam('input');
  if (typeof v === 'string') {
    if (v === '') throw invalidParam('input', 'empty string. Expected a non-empty string.', 'empty_string');
    return [v];
  }
  if (!Array.isArray(v)) throw invalidType('input', 'a string or an array', v);
  if (v.length === 0) throw invalidParam('input', 'empty array. Expected an array with minimum length 1, but got an empty array instead.', 'empty_array');
  if (v.length > MAX_INPUTS) {
    throw invalidParam('input', `array too long. Expected an array with maximum length ${MAX_INPUTS}, but got an array with length ${v.length} instead.`, 'array_above_max_length');
  }
  // A flat array of integers is one tokenised input, not many.
  if (v.every((x) => typeof x === 'number')) return [checkTokens(v as number[], 'input')];
  return v.map((x, i) => {
    if (typeof x === 'string') {
      if (x === '') throw invalidParam(`input[${i}]`, 'empty string. Expected a non-empty string.', 'empty_string');
      return x;
    }
    if (Array.isArray(x) && x.length > 0 && x.every((t) => typeof t === 'number')) return checkTokens(x as number[], `input[${i}]`);
    throw invalidType(`input[${i}]`, 'a string or an array of integers', x);
  });
}

function checkTokens(tokens: number[], param: string): number[] {
  if (!tokens.every((t) => Number.isInteger(t) && t >= 0)) throw invalidType(param, 'an array of non-negative integers', tokens);
  return tokens;
}

/**
 * A unit-norm float32 vector seeded by the model and input, so equal inputs give
 * equal vectors. Asking for fewer dimensions gives the renormalised prefix of the
 * full vector, as shortened text-embedding-3 vectors are.
 */
export function embed(model: string, text: string, dims: number): Float32Array {
  const next = prng(fnv1a(`${model}\u0000${text}`));
  const raw = new Float64Array(dims);
  let sum = 0;
  for (let i = 0; i < dims; i++) {
    const x = next() * 2 - 1;
    raw[i] = x;
    sum += x * x;
  }
  const norm = Math.sqrt(sum) || 1;
  const out = new Float32Array(dims);
  for (let i = 0; i < dims; i++) out[i] = raw[i]! / norm;
  return out;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** mulberry32: small, fast, good enough for test vectors. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
