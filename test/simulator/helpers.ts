import OpenAI from 'openai';
import type { Simulator } from '../../simulator/index.ts';

export const KEY = 'sk-test-sim';

export function client(sim: Simulator, opts: { maxRetries?: number; apiKey?: string } = {}): OpenAI {
  return new OpenAI({ apiKey: opts.apiKey ?? KEY, baseURL: sim.url, maxRetries: opts.maxRetries ?? 0 });
}

/** A raw call, for what the SDK hides: exact bytes, headers, status. */
export async function raw(sim: Simulator, path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) {
  const res = await fetch(`${sim.url}${path}`, {
    method: init.method ?? 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Asserts OpenAI's error body: exactly the four keys, all present. */
export function errorBody(text: string): { message: string; type: string; param: string | null; code: string | null } {
  const parsed = JSON.parse(text) as { error: Record<string, unknown> };
  if (Object.keys(parsed).join() !== 'error') throw new Error(`unexpected top-level keys: ${Object.keys(parsed).join()}`);
  const keys = Object.keys(parsed.error).sort().join();
  if (keys !== 'code,message,param,type') throw new Error(`unexpected error keys: ${keys}`);
  return parsed.error as never;
}

export function sseDataLines(text: string): string[] {
  return text
    .split('\n\n')
    .filter((b) => b.trim() !== '')
    .map((b) => {
      const data = b.split('\n').find((l) => l.startsWith('data: '));
      if (!data) throw new Error(`event without data: ${b}`);
      return data.slice('data: '.length);
    });
}

export const GO_DURATION = /^(\d+h)?(\d+m)?(\d+(\.\d+)?(ms|s))$|^0s$/;

// Expected token counts come from the tokenizer itself, never from hard-coded numbers, so the
// tests check the simulator's counting rules rather than one tokenizer version's output.
import { decode as decodeO200k, encode as encodeO200k } from 'gpt-tokenizer/encoding/o200k_base';
import { encode as encodeCl100k } from 'gpt-tokenizer/encoding/cl100k_base';

const PLAIN = { disallowedSpecial: new Set<string>() };

/** Tokens of a text under o200k_base (every chat model these tests use) or cl100k_base (embeddings). */
export function tok(text: string, encoding: 'o200k_base' | 'cl100k_base' = 'o200k_base'): number {
  return (encoding === 'o200k_base' ? encodeO200k : encodeCl100k)(text, PLAIN).length;
}

/** The first n o200k tokens of a text, decoded: what an output cap of n leaves. */
export function firstTokens(text: string, n: number): string {
  return decodeO200k(encodeO200k(text, PLAIN).slice(0, n));
}

/** OpenAI's rule for plain messages: 3 to prime the reply, and per message 3 plus role and content. */
export function promptTokens(messages: Array<{ role: string; content: string }>): number {
  return messages.reduce((sum, m) => sum + 3 + tok(m.role) + tok(m.content), 3);
}
