import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { applyPrompt, minimiseData, setSafetyIdentifier, userHash } from './shaping.ts';
import { validateRequest } from './validate.ts';
import { EnvelopeError } from '../errors.ts';

describe('userHash', () => {
  const hmac = (key: string, user: string) => createHmac('sha256', key).update(user).digest('hex');

  it('is the HMAC-SHA256 of the user under the key, remembered or not, past its memory bounds', () => {
    for (let round = 0; round < 2; round++) {
      expect(userHash('sk-test-a', 'alice')).toBe(hmac('sk-test-a', 'alice'));
      expect(userHash('sk-test-b', 'alice')).toBe(hmac('sk-test-b', 'alice'));
    }
    expect(userHash('sk-test-a', 'alice')).not.toBe(userHash('sk-test-b', 'alice'));
    // More users and keys than are remembered: answers stay right while the maps are emptied.
    for (let i = 0; i < 25_000; i += 997) expect(userHash('sk-test-a', `user-${i}`)).toBe(hmac('sk-test-a', `user-${i}`));
    for (let i = 0; i < 12_000; i++) userHash('sk-test-c', `user-${i}`);
    for (let k = 0; k < 40; k++) expect(userHash(`sk-test-rotated-${k}`, 'alice')).toBe(hmac(`sk-test-rotated-${k}`, 'alice'));
    expect(userHash('sk-test-c', 'user-11999')).toBe(hmac('sk-test-c', 'user-11999'));
  });
});

describe('minimiseData', () => {
  it('forces store and drops metadata on model calls only', () => {
    const body: Record<string, unknown> = { store: true, metadata: { ticket: '1' } };
    minimiseData('responses', body, { store: false, dropMetadata: true });
    expect(body).toEqual({ store: false });
    const emb: Record<string, unknown> = { metadata: {} };
    minimiseData('embeddings', emb, { store: false, dropMetadata: true });
    expect(emb).toEqual({ metadata: {} });
    const keep: Record<string, unknown> = { store: true };
    minimiseData('chat.completions', keep, { dropMetadata: false });
    expect(keep).toEqual({ store: true });
  });
});

describe('setSafetyIdentifier', () => {
  it('hashes the user with the key and removes raw ids', () => {
    const body: Record<string, unknown> = { user: 'alice@example.com' };
    setSafetyIdentifier('chat.completions', body, 'alice@example.com', 'k1');
    expect(body.user).toBeUndefined();
    expect(body.safety_identifier).toBe(`ae-${userHash('k1', 'alice@example.com').slice(0, 32)}`);
    expect(JSON.stringify(body)).not.toContain('alice');
    const other: Record<string, unknown> = {};
    setSafetyIdentifier('chat.completions', other, 'alice@example.com', 'k2');
    expect(other.safety_identifier).not.toBe(body.safety_identifier);
  });
  it("hashes an id the app put in the body itself", () => {
    const body: Record<string, unknown> = { safety_identifier: 'bob' };
    setSafetyIdentifier('responses', body, undefined, 'k');
    expect(body.safety_identifier).toBe(`ae-${userHash('k', 'bob').slice(0, 32)}`);
  });
});

describe('applyPrompt', () => {
  const prompt = { version: 'v3', instructions: 'You triage support tickets.' };
  it('prefixes Responses instructions and keeps the app’s after them', () => {
    const body: Record<string, unknown> = { instructions: 'Be brief.' };
    applyPrompt('responses', body, prompt, 'shop/triage');
    expect(body.instructions).toBe('You triage support tickets.\n\nBe brief.');
    expect(body.prompt_cache_key).toBe('shop/triage@v3');
  });
  it('puts a system message first in chat, and keeps an app cache key', () => {
    const body: Record<string, unknown> = { messages: [{ role: 'user', content: 'hi' }], prompt_cache_key: 'mine' };
    applyPrompt('chat.completions', body, prompt, 'shop/triage');
    expect(body.messages).toEqual([{ role: 'system', content: prompt.instructions }, { role: 'user', content: 'hi' }]);
    expect(body.prompt_cache_key).toBe('mine');
  });
});

describe('validateRequest', () => {
  const param = (fn: () => void) => {
    try {
      fn();
    } catch (e) {
      return (e as EnvelopeError).param;
    }
    return 'passed';
  };
  it('names the field that is wrong', () => {
    expect(param(() => validateRequest('chat.completions', { messages: [] }, [], 'r'))).toBe('messages');
    expect(param(() => validateRequest('chat.completions', { messages: [{ role: 'robot', content: 'x' }] }, [], 'r'))).toBe('messages[0].role');
    expect(param(() => validateRequest('chat.completions', { messages: [{ role: 'user', content: 5 }] }, [], 'r'))).toBe('messages[0].content');
    expect(param(() => validateRequest('chat.completions', { messages: [{ role: 'user', content: 'x' }], n: 0 }, [], 'r'))).toBe('n');
    expect(param(() => validateRequest('responses', { input: 'x', max_output_tokens: 8 }, [], 'r'))).toBe('max_output_tokens');
    expect(param(() => validateRequest('responses', {}, [], 'r'))).toBe('input');
    expect(param(() => validateRequest('embeddings', { input: [1, 'a'] }, [], 'r'))).toBe('input');
    expect(param(() => validateRequest('embeddings', { input: 'a', encoding_format: 'hex' }, [], 'r'))).toBe('encoding_format');
    expect(param(() => validateRequest('moderations', { input: 3 }, [], 'r'))).toBe('input');
  });
  it('refuses forbidden parameters and passes good bodies', () => {
    expect(param(() => validateRequest('chat.completions', { messages: [{ role: 'user', content: 'x' }], logprobs: true }, ['logprobs'], 'r'))).toBe('logprobs');
    expect(param(() => validateRequest('chat.completions', { messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }], n: 2, temperature: 0.2 }, ['logprobs'], 'r'))).toBe('passed');
    expect(param(() => validateRequest('responses', { previous_response_id: 'resp_1' }, [], 'r'))).toBe('passed');
    expect(param(() => validateRequest('embeddings', { input: [[1, 2], [3]] }, [], 'r'))).toBe('passed');
  });
});
