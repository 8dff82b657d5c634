// One usage shape for the two the API speaks (Chat Completions' prompt/completion tokens and the
// Responses API's input/output tokens; embeddings report prompt tokens only).

export interface Usage {
  input: number;
  output: number;
  /** Part of `input`, billed at the cached price. */
  cached: number;
  /** Part of `output`. */
  reasoning: number;
}

type Loose = Record<string, unknown> | undefined;

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);

export function normaliseUsage(raw: unknown): Usage | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const u = raw as Record<string, unknown>;
  if ('input_tokens' in u || 'output_tokens' in u) {
    return {
      input: num(u.input_tokens),
      output: num(u.output_tokens),
      cached: num((u.input_tokens_details as Loose)?.cached_tokens),
      reasoning: num((u.output_tokens_details as Loose)?.reasoning_tokens),
    };
  }
  if ('prompt_tokens' in u || 'completion_tokens' in u) {
    return {
      input: num(u.prompt_tokens),
      output: num(u.completion_tokens),
      cached: num((u.prompt_tokens_details as Loose)?.cached_tokens),
      reasoning: num((u.completion_tokens_details as Loose)?.reasoning_tokens),
    };
  }
  return undefined;
}
