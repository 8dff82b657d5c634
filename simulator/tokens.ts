// Token counting as OpenAI bills it: text with the model's real tokenizer (gpt-tokenizer's
// o200k_base or cl100k_base), message and tool overheads as OpenAI's counting guide gives them
// (openai-cookbook, "How to count tokens with tiktoken"). Kept apart from the sidecar's estimator
// on purpose: the simulator stands for the upstream, so the two can check each other.
import { createRequire } from 'node:module';

type Encoding = 'o200k_base' | 'cl100k_base';

interface Encoder {
  encode(text: string, options: { disallowedSpecial: Set<string> }): number[];
}

interface Tokenizer {
  encoder: Encoder;
  /** Each token's text, or its bytes when they are not valid UTF-8 alone; indexed by token id. */
  ranks: ReadonlyArray<string | number[]>;
}

function encodingFor(model: string): Encoding {
  const m = model.startsWith('ft:') ? (model.slice(3).split(':')[0] ?? '') : model;
  if (/^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4|chatgpt-4o)/.test(m)) return 'o200k_base';
  if (m === 'gpt-4' || m.startsWith('gpt-4-') || m.startsWith('gpt-3.5') || m.startsWith('text-embedding-')) return 'cl100k_base';
  return 'o200k_base';
}

// Loaded on first use: a merge table is tens of MB and most test runs need one encoding. The
// ranks module is the one the encoder itself loads, so reading it costs nothing more.
const require = createRequire(import.meta.url);
const tokenizers = new Map<Encoding, Tokenizer>();

function tokenizerFor(model: string): Tokenizer {
  const encoding = encodingFor(model);
  let t = tokenizers.get(encoding);
  if (!t) {
    const encoder = require(`gpt-tokenizer/encoding/${encoding}`) as Encoder;
    const ranks = (require(`gpt-tokenizer/bpeRanks/${encoding}`) as { default: Tokenizer['ranks'] }).default;
    t = { encoder, ranks };
    tokenizers.set(encoding, t);
  }
  return t;
}

// The API bills text that spells a special token as ordinary text.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

export function countTokens(text: string, model: string): number {
  return text === '' ? 0 : tokenizerFor(model).encoder.encode(text, PLAIN_TEXT).length;
}

/** One streamed delta and the tokens it stands for (more than one only to complete a character). */
export interface Piece {
  text: string;
  tokens: number;
}

/**
 * Splits output text into its tokens, as the real API streams them: one delta per token, except
 * that tokens holding part of a character's UTF-8 bytes travel with the rest of it. Joining the
 * pieces gives back the text exactly.
 */
export function outputPieces(text: string, model: string): Piece[] {
  const { encoder, ranks } = tokenizerFor(model);
  // A decoder of our own, per call: the library's decode() shares one streaming decoder, in which
  // a partial character is left behind for whatever is decoded next.
  const decoder = new TextDecoder();
  const pieces: Piece[] = [];
  let pending = 0;
  for (const token of encoder.encode(text, PLAIN_TEXT)) {
    const r = ranks[token] ?? [];
    const s = decoder.decode(typeof r === 'string' ? UTF8.encode(r) : Uint8Array.from(r), { stream: true });
    pending++;
    if (s !== '') {
      pieces.push({ text: s, tokens: pending });
      pending = 0;
    }
  }
  const rest = decoder.decode();
  if (rest !== '' || pending > 0) pieces.push({ text: rest, tokens: pending });
  return pieces;
}

const UTF8 = new TextEncoder();

export function countOutputTokens(text: string, model: string): number {
  return countTokens(text, model);
}

// --- Prompt overheads ------------------------------------------------------------------------

/** Markers around every message. */
export const PER_MESSAGE = 3;
/** The assistant turn the reply is primed with. */
export const REPLY_PRIMING = 3;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));

// Images are billed by size, which the simulator does not decode: `low` is OpenAI's fixed 85, any
// other detail is charged as a 1024x1024 image under the tile rule (85 + 4 tiles of 170).
const IMAGE_LOW = 85;
const IMAGE_DEFAULT = 765;

/** A message's content: a string, or parts whose text is counted and whose images are charged. */
export function contentTokens(content: unknown, model: string): number {
  if (typeof content === 'string') return countTokens(content, model);
  if (!Array.isArray(content)) return 0;
  let total = 0;
  for (const p of content) {
    if (!isObj(p)) continue;
    if (typeof p.text === 'string') total += countTokens(p.text, model);
    else if (p.type === 'image_url') total += isObj(p.image_url) && p.image_url.detail === 'low' ? IMAGE_LOW : IMAGE_DEFAULT;
    else if (p.type === 'input_image') total += p.detail === 'low' ? IMAGE_LOW : IMAGE_DEFAULT;
  }
  return total;
}

/** A tool call the model made earlier, replayed in the input: its markers, name and arguments. */
export function toolCallTokens(name: unknown, args: unknown, model: string): number {
  return PER_MESSAGE + (typeof name === 'string' ? countTokens(name, model) : 0) + (typeof args === 'string' ? countTokens(args, model) : 0);
}

/**
 * Tool definitions as the counting guide measures them for gpt-4o: 7 per function plus
 * `name:description`, 3 to open the properties, per property 3 plus `key:type:description`, enums
 * 3 per value (less 3 per enum), 12 to close the list. Other tools count as their JSON.
 */
export function toolDefinitionTokens(tools: unknown, model: string): number {
  if (!Array.isArray(tools)) return 0;
  let total = 0;
  let functions = 0;
  for (const t of tools) {
    if (!isObj(t)) continue;
    if (t.type !== 'function') {
      total += countTokens(JSON.stringify(t), model);
      continue;
    }
    functions++;
    const def = isObj(t.function) ? t.function : t;
    total += 7 + countTokens(`${str(def.name)}:${str(def.description)}`, model);
    const props = isObj(def.parameters) && isObj(def.parameters.properties) ? def.parameters.properties : {};
    const entries = Object.entries(props);
    if (entries.length > 0) total += 3;
    for (const [key, p] of entries) {
      const prop = isObj(p) ? p : {};
      total += 3;
      if (Array.isArray(prop.enum)) {
        total -= 3;
        for (const v of prop.enum) total += 3 + countTokens(String(v), model);
      }
      total += countTokens(`${key}:${str(prop.type)}:${str(prop.description)}`, model);
    }
  }
  return functions > 0 ? total + 12 : total;
}

/** A structured-output schema travels to the model as its JSON. */
export function schemaTokens(schema: unknown, model: string): number {
  return schema === undefined || schema === null ? 0 : countTokens(JSON.stringify(schema), model);
}

/** Reasoning models spend this many hidden tokens before visible output; they count against output caps. */
export const REASONING_TOKENS = 16;

export function isReasoningModel(model: string): boolean {
  return /^o\d/.test(model) || model.startsWith('gpt-5');
}

/**
 * Cached share reported when the caller sets `prompt_cache_key` and the prompt
 * reaches the real API's 1024-token caching floor: half the prompt, rounded
 * down to the 128-token increments the real cache works in.
 */
export function cachedTokens(promptTokens: number, cacheKey: unknown): number {
  if (typeof cacheKey !== 'string' || cacheKey === '' || promptTokens < 1024) return 0;
  return Math.max(1024, Math.floor(promptTokens / 2 / 128) * 128);
}
