// A stand-in tokenizer: deterministic and cheap, close enough to o200k on
// English for budgets and limits to behave plausibly. Callers must not expect
// real tokenizer counts.

export function countTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

const MAX_PIECE = 10;

/**
 * Splits output text into the pieces the simulator counts as completion tokens
 * and streams as deltas. Joining the pieces gives back the text exactly.
 */
export function outputPieces(text: string): string[] {
  const pieces: string[] = [];
  for (const m of text.matchAll(/\s*\S+|\s+/g)) {
    let word = m[0];
    // Long runs (JSON, URLs) would otherwise be one token and one delta.
    while (word.length > MAX_PIECE) {
      pieces.push(word.slice(0, MAX_PIECE));
      word = word.slice(MAX_PIECE);
    }
    if (word.length > 0) pieces.push(word);
  }
  return pieces;
}

export function countOutputTokens(text: string): number {
  return outputPieces(text).length;
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
