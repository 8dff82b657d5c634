// Input token estimates for admission: token windows and budget reservations are charged before
// the call, so an estimate must not fall below what OpenAI then bills, or a budget could be
// overspent. Text is counted with the model's real tokenizer; the per-message and per-tool
// overheads follow OpenAI's published counting guide (openai-cookbook, "How to count tokens with
// tiktoken"); what cannot be counted from the body (images, audio, files) is charged at a
// documented worst case. The real usage settles every call, so erring high only costs headroom.
import { loadCounter, type TokenCounter } from './bpe.ts';

export type Encoding = 'o200k_base' | 'cl100k_base';
export type TokenEndpoint = 'chat.completions' | 'responses' | 'embeddings' | 'moderations';

/** Which tokenizer OpenAI uses for a model; anything unrecognised gets the current one, o200k. */
export function encodingFor(model: string): Encoding {
  const m = baseModel(model);
  if (/^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4|chatgpt-4o)/.test(m)) return 'o200k_base';
  if (m === 'gpt-4' || m.startsWith('gpt-4-') || m.startsWith('gpt-3.5') || m.startsWith('text-embedding-')) return 'cl100k_base';
  return 'o200k_base';
}

/** Fine-tuned models (`ft:gpt-4o-mini-2024-07-18:org::id`) tokenize as their base model. */
function baseModel(model: string): string {
  return model.startsWith('ft:') ? (model.slice(3).split(':')[0] ?? '') : model;
}

// --- Tokenizer loading -----------------------------------------------------------------------

// One encoding's rank table is ~4 MB (off the collected heap, bpe.ts) and ~70 ms to build, and a
// pod usually needs only one: each is built (synchronously: estimates are made inline) on first
// use, never at import.
const encoders = new Map<Encoding, TokenCounter>();

function encoder(encoding: Encoding): TokenCounter {
  let enc = encoders.get(encoding);
  if (!enc) {
    enc = loadCounter(encoding);
    encoders.set(encoding, enc);
  }
  return enc;
}

/** The encodings built so far, in the order they were needed. */
export function loadedEncodings(): Encoding[] {
  return [...encoders.keys()];
}

/** Loads the tokenizers these models need now, so the first call does not pay for it. */
export function warmTokenizers(models: Iterable<string>): void {
  for (const m of models) encoder(encodingFor(m));
}

// The library's BPE is quadratic in the length of one pre-token: a 1 MB run of one letter takes
// minutes. Runs of (non-)space longer than this are cut into pieces; a cut loses the merges across
// it, so it can add a token but in practice never removes one, and no natural word is this long.
const MAX_RUN = 256;

const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);

function countWith(enc: TokenCounter, text: string): number {
  if (text.length <= MAX_RUN) return enc.countTokens(text);
  let total = 0;
  let pieceStart = 0;
  let runStart = 0;
  let runSpace = isSpace(text.charCodeAt(0));
  for (let i = 1; i < text.length; i++) {
    const space = isSpace(text.charCodeAt(i));
    if (space !== runSpace) {
      runSpace = space;
      runStart = i;
    } else if (i - runStart >= MAX_RUN) {
      // Never between the halves of a surrogate pair.
      const cut = (text.charCodeAt(i) & 0xfc00) === 0xdc00 ? i + 1 : i;
      total += enc.countTokens(text.slice(pieceStart, cut));
      pieceStart = runStart = cut;
    }
  }
  return total + enc.countTokens(pieceStart === 0 ? text : text.slice(pieceStart));
}

// The same long texts come back call after call: system prompts, tool descriptions, schemas, the
// growing history of a conversation. BPE over them was a fifth of the sidecar's allocations, while
// a Map lookup costs one hash of the string. Least recently used entries go first; short texts
// are cheaper to count than to remember, and the total size is bounded so memory stays flat.
const MEMO_MIN_CHARS = 64;
const MEMO_MAX_CHARS = 4_000_000;

class CountMemo {
  private readonly counts = new Map<string, number>();
  chars = 0;

  get(text: string): number | undefined {
    const n = this.counts.get(text);
    if (n !== undefined) {
      // Re-inserting moves the entry to the young end of the Map's order.
      this.counts.delete(text);
      this.counts.set(text, n);
    }
    return n;
  }

  set(text: string, n: number): void {
    if (text.length > MEMO_MAX_CHARS / 16) return;
    this.counts.set(text, n);
    this.chars += text.length;
    for (const old of this.counts.keys()) {
      if (this.chars <= MEMO_MAX_CHARS) break;
      this.counts.delete(old);
      this.chars -= old.length;
    }
  }
}

const memos = new WeakMap<TokenCounter, CountMemo>();

function countMemoized(enc: TokenCounter, text: string): number {
  if (text.length < MEMO_MIN_CHARS) return countWith(enc, text);
  let memo = memos.get(enc);
  if (!memo) memos.set(enc, (memo = new CountMemo()));
  let n = memo.get(text);
  if (n === undefined) memo.set(text, (n = countWith(enc, text)));
  return n;
}

/** Characters of text whose count is remembered for a model's encoding (bounded by MEMO_MAX_CHARS). */
export function rememberedChars(model: string): number {
  return memos.get(encoder(encodingFor(model)))?.chars ?? 0;
}

export { MEMO_MAX_CHARS };

export function countTokens(text: string, model: string): number {
  return countMemoized(encoder(encodingFor(model)), text);
}

// --- Overheads (OpenAI's counting guide) -----------------------------------------------------

/** Every message is wrapped in start/role/end markers. */
const PER_MESSAGE = 3;
/** A `name` replaces the role marker and costs one more. */
const PER_NAME = 1;
/** The assistant turn the reply is written into. */
const REPLY_PRIMING = 3;
/** An assistant tool call, like a message, has its own markers around name and arguments. */
const PER_TOOL_CALL = 3;
/**
 * Function definitions are rendered as a TypeScript-like namespace in the system prompt: the guide
 * measures 7 tokens per function, 3 per property (and per enum value), 12 to close the list.
 * Instead of the compact rendering, the parameter schema is counted as its JSON (always longer)
 * on top of those, and +1 joins the name to the description.
 */
const PER_FUNCTION = 7 + 1;
const PER_PROPERTY = 3;
const FUNCTIONS_END = 12;

// --- Media -----------------------------------------------------------------------------------
// OpenAI bills images by their pixel size, which a proxy does not decode: `detail: low` is a fixed
// budget, anything else is charged as the largest image the model's rule allows.
//
// Tile rule (gpt-4o, gpt-4.1, gpt-4.5, and unknown models): 85 tokens, plus 170 per 512 px tile of
// the image scaled into 2048x2048 and then to a 768 px short side. At most 4x2 tiles survive that
// scaling (e.g. 2048x768), hence 85 + 8 * 170 = 1445. The o-series (75 + 150/tile) and gpt-5
// (70 + 140/tile) stay below it.
const TILE_IMAGE = { low: 85, high: 85 + 8 * 170 };
// gpt-4o-mini bills the same rule at ~33x the tokens (2833 + 5667/tile), priced to match gpt-4o.
const MINI_TILE_IMAGE = { low: 2833, high: 2833 + 8 * 5667 };
// Patch rule (small 4.1/5 models, o4-mini): 32 px patches, capped at 1536, times a per-model
// multiplier from OpenAI's vision guide (third-party measurements report lower multipliers for the
// gpt-5 small models: the guide's higher ones are kept). It has no low-detail mode.
const patchImage = (multiplier: number) => {
  const tokens = Math.ceil(1536 * multiplier);
  return { low: tokens, high: tokens };
};
const IMAGE_RULES: Array<[RegExp, { low: number; high: number }]> = [
  [/^gpt-4o-mini/, MINI_TILE_IMAGE],
  [/^gpt-4\.1-mini|^gpt-5(\.\d+)?-mini/, patchImage(1.62)],
  [/^gpt-4\.1-nano|^gpt-5(\.\d+)?-nano/, patchImage(2.46)],
  [/^o4-mini/, patchImage(1.72)],
];

function imageTokens(model: string, detail: unknown): number {
  const m = baseModel(model);
  const rule = IMAGE_RULES.find(([re]) => re.test(m))?.[1] ?? TILE_IMAGE;
  return detail === 'low' ? rule.low : rule.high;
}

// Audio input is 10 tokens a second; no accepted codec goes below 8 kbit/s (1 kB/s, 1333 base64
// characters), so one token per 100 base64 characters bounds the duration from above.
const AUDIO_B64_CHARS_PER_TOKEN = 100;
// A file (PDF) is billed as its extracted text plus an image of every page, neither knowable
// without parsing it. A flat charge sized for a ~10-page PDF (text plus a page image each); larger
// files are under-reserved and corrected when the call settles.
const FILE_TOKENS = 25_000;

// --- Body walking ----------------------------------------------------------------------------

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

class Counter {
  private readonly enc: TokenCounter;
  private readonly model: string;

  constructor(model: string) {
    this.model = model;
    this.enc = encoder(encodingFor(model));
  }

  text(v: unknown): number {
    return typeof v === 'string' && v !== '' ? countMemoized(this.enc, v) : 0;
  }

  json(v: unknown): number {
    if (v === undefined || v === null) return 0;
    try {
      return this.text(JSON.stringify(v));
    } catch {
      // Only pathological nesting gets here; the upstream rejects such a body anyway.
      return 0;
    }
  }

  /** A message's content: a string or a list of parts (Chat and Responses part types). */
  content(v: unknown): number {
    if (typeof v === 'string') return this.text(v);
    let total = 0;
    for (const part of asArray(v)) {
      if (typeof part === 'string') total += this.text(part);
      else if (isObj(part)) total += this.part(part);
    }
    return total;
  }

  private part(p: Obj): number {
    switch (p.type) {
      case 'image_url':
        return imageTokens(this.model, isObj(p.image_url) ? p.image_url.detail : undefined);
      case 'input_image':
        return imageTokens(this.model, p.detail);
      case 'input_audio': {
        const data = isObj(p.input_audio) ? p.input_audio.data : p.data;
        return typeof data === 'string' ? Math.ceil(data.length / AUDIO_B64_CHARS_PER_TOKEN) : 0;
      }
      case 'file':
      case 'input_file':
        return FILE_TOKENS;
      case 'refusal':
        return this.text(p.refusal);
      default:
        return this.text(p.text);
    }
  }

  /** Function tool definitions (either API's shape, or legacy `functions`) and other tools. */
  tools(tools: unknown, legacyFunctions: unknown): number {
    let total = 0;
    let functions = 0;
    for (const t of asArray(tools)) {
      if (!isObj(t)) continue;
      const def = t.type === 'function' ? (isObj(t.function) ? t.function : t) : undefined;
      if (def) {
        total += this.functionDef(def);
        functions++;
      } else {
        // Built-in and custom tools have no published rendering: their definition as JSON.
        total += this.json(t);
      }
    }
    for (const f of asArray(legacyFunctions)) {
      if (!isObj(f)) continue;
      total += this.functionDef(f);
      functions++;
    }
    return functions > 0 ? total + FUNCTIONS_END : total;
  }

  private functionDef(def: Obj): number {
    return PER_FUNCTION + this.text(def.name) + this.text(def.description) + this.json(def.parameters) + PER_PROPERTY * schemaEntries(def.parameters, 0);
  }

  /** A structured-output schema is sent to the model with its name. */
  schema(format: unknown): number {
    if (!isObj(format) || format.type !== 'json_schema') return 0;
    const f = isObj(format.json_schema) ? format.json_schema : format;
    return this.text(f.name) + this.json(f.schema);
  }
}

/** Properties and enum values anywhere in a JSON schema: each gets its own line when rendered. */
function schemaEntries(schema: unknown, depth: number): number {
  if (depth > 32 || typeof schema !== 'object' || schema === null) return 0;
  let n = 0;
  if (Array.isArray(schema)) {
    for (const s of schema) n += schemaEntries(s, depth + 1);
    return n;
  }
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'properties' && isObj(v)) n += Object.keys(v).length;
    else if (k === 'enum' && Array.isArray(v)) n += v.length;
    n += schemaEntries(v, depth + 1);
  }
  return n;
}

function chatTokens(c: Counter, body: Obj): number {
  let total = REPLY_PRIMING;
  for (const m of asArray(body.messages)) {
    if (!isObj(m)) continue;
    total += PER_MESSAGE + c.text(m.role) + c.content(m.content) + c.text(m.refusal) + c.text(m.tool_call_id);
    if (typeof m.name === 'string') total += PER_NAME + c.text(m.name);
    for (const call of asArray(m.tool_calls)) {
      if (!isObj(call)) continue;
      const fn = isObj(call.function) ? call.function : isObj(call.custom) ? call.custom : {};
      total += PER_TOOL_CALL + c.text(fn.name) + c.text(fn.arguments) + c.text(fn.input);
    }
    if (isObj(m.function_call)) total += PER_TOOL_CALL + c.text(m.function_call.name) + c.text(m.function_call.arguments);
  }
  return total + c.tools(body.tools, body.functions) + c.schema(body.response_format);
}

function responsesTokens(c: Counter, body: Obj): number {
  let total = REPLY_PRIMING;
  // Instructions are a developer message in front of the input.
  if (typeof body.instructions === 'string') total += PER_MESSAGE + c.text('developer') + c.text(body.instructions);
  if (typeof body.input === 'string') total += PER_MESSAGE + c.text('user') + c.text(body.input);
  for (const item of asArray(body.input)) {
    if (!isObj(item)) continue;
    switch (item.type) {
      case undefined:
      case 'message':
        total += PER_MESSAGE + c.text(item.role) + c.content(item.content);
        break;
      case 'function_call':
        total += PER_TOOL_CALL + c.text(item.name) + c.text(item.arguments);
        break;
      case 'custom_tool_call':
        total += PER_TOOL_CALL + c.text(item.name) + c.text(item.input);
        break;
      case 'function_call_output':
      case 'custom_tool_call_output':
        total += PER_MESSAGE + (typeof item.output === 'string' || Array.isArray(item.output) ? c.content(item.output) : c.json(item.output));
        break;
      default:
        // Reasoning, references, built-in tool calls: no published rendering; their JSON.
        total += c.json(item);
    }
  }
  const text = isObj(body.text) ? body.text.format : undefined;
  return total + c.tools(body.tools, undefined) + c.schema(text);
}

function embeddingTokens(c: Counter, input: unknown): number {
  if (typeof input === 'string') return c.text(input);
  if (!Array.isArray(input)) return 0;
  // An array of numbers is one input already in tokens; otherwise each element is an input.
  if (input.length > 0 && input.every((x) => typeof x === 'number')) return input.length;
  let total = 0;
  for (const x of input) {
    if (typeof x === 'string') total += c.text(x);
    else if (Array.isArray(x)) total += x.length;
  }
  return total;
}

function moderationTokens(c: Counter, input: unknown): number {
  if (typeof input === 'string') return c.text(input);
  let total = 0;
  for (const x of asArray(input)) {
    if (typeof x === 'string') total += c.text(x);
    else if (isObj(x) && x.type === 'text') total += c.text(x.text);
  }
  return total;
}

/**
 * An upper bound, as close as the body allows, of the input tokens OpenAI will bill. Never throws
 * on a malformed body: what has the wrong shape is skipped (the caller validates separately).
 * Not visible here: input stored upstream (`previous_response_id`, file ids), billed on top.
 */
export function estimateInputTokens(endpoint: TokenEndpoint, body: Record<string, unknown>, model: string): number {
  const c = new Counter(model);
  switch (endpoint) {
    case 'chat.completions':
      return chatTokens(c, body);
    case 'responses':
      return responsesTokens(c, body);
    case 'embeddings':
      return embeddingTokens(c, body.input);
    case 'moderations':
      return moderationTokens(c, body.input);
    default:
      return 0;
  }
}

const tokenCount = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.ceil(v) : undefined);

/**
 * The most output the call can bill, from the app's own cap; undefined when it set none (the
 * caller then assumes the model's maximum). Chat caps every one of the `n` choices.
 */
export function outputCap(endpoint: TokenEndpoint, body: Record<string, unknown>): number | undefined {
  switch (endpoint) {
    case 'chat.completions': {
      const cap = tokenCount(body.max_completion_tokens) ?? tokenCount(body.max_tokens);
      if (cap === undefined) return undefined;
      const n = typeof body.n === 'number' && Number.isInteger(body.n) && body.n > 1 ? body.n : 1;
      return cap * n;
    }
    case 'responses':
      return tokenCount(body.max_output_tokens);
    default:
      return 0;
  }
}
