import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderConfig } from '../../crds/render.ts';
import { AIRoute } from '../../crds/schema.ts';
import { compileConfig, type RuntimeRoute } from '../config/runtime.ts';
import { EnvelopeError } from '../errors.ts';
import { priceFor, worstCaseNano } from '../policy/prices.ts';
import { estimateInputTokens } from '../policy/tokens.ts';
import { governBatchFile } from './govern.ts';
import { Journal } from './journal.ts';
import { JOB_RETENTION_MS, Ledger, type LedgerEvent } from './ledger.ts';

function route(spec: Record<string, unknown>): RuntimeRoute {
  const r = AIRoute.parse({ apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIRoute', metadata: { name: 'main', namespace: 'shop' }, spec: { model: { default: 'gpt-4.1-mini', allowed: ['gpt-4.1-mini', 'text-embedding-3-small'] }, endpoints: ['chat.completions', 'embeddings', 'files', 'batches'], ...spec } });
  return compileConfig(renderConfig([r], []), '/secrets').routes[0] as RuntimeRoute;
}
const line = (id: string, body: Record<string, unknown>, url = '/v1/chat/completions') => JSON.stringify({ custom_id: id, method: 'POST', url, body });
const refusal = (fn: () => unknown): EnvelopeError => {
  try {
    fn();
  } catch (e) {
    if (e instanceof EnvelopeError) return e;
    throw e;
  }
  throw new Error('not refused');
};

describe('governBatchFile', () => {
  it('reserves each line at the batch price: input estimate plus the clamped cap', () => {
    const r = route({ limits: { maxOutputTokens: 100 } });
    const body = { model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'hello there' }] };
    const g = governBatchFile(r, `${line('a', { ...body, max_completion_tokens: 9999 })}\n\n${line('b', body)}\n`);
    expect(g.lines).toBe(2);
    const price = priceFor('gpt-4.1-mini');
    if (!price) throw new Error('no price');
    const one = worstCaseNano(estimateInputTokens('chat.completions', body, 'gpt-4.1-mini'), 100, price, { batch: true });
    expect(g.reserveNano).toBe(2 * one);
    // Half the online worst case.
    expect(one).toBeLessThanOrEqual(Math.ceil(worstCaseNano(estimateInputTokens('chat.completions', body, 'gpt-4.1-mini'), 100, price) / 2));
    expect(g.text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { body: { max_completion_tokens: number } }).body.max_completion_tokens)).toEqual([100, 100]);
  });

  it('fills the default model and resolves nothing the route does not allow', () => {
    const g = governBatchFile(route({}), line('a', { messages: [{ role: 'user', content: 'x' }] }));
    expect((JSON.parse(g.text) as { body: { model: string } }).body.model).toBe('gpt-4.1-mini');
  });

  it('refuses mixed urls, bad JSON, streaming and blocked personal data, with line numbers', () => {
    const r = route({ input: { redact: ['email'], onMatch: 'block' } });
    const text = [
      line('a', { messages: [{ role: 'user', content: 'ok' }] }),
      '{not json',
      line('c', { model: 'text-embedding-3-small', input: 'x' }, '/v1/embeddings'),
      line('d', { stream: true, messages: [] }),
      line('e', { messages: [{ role: 'user', content: 'mail me at a@b.example' }] }),
    ].join('\n');
    const e = refusal(() => governBatchFile(r, text));
    expect(e.status).toBe(400);
    expect(e.param).toBe('file');
    expect(e.message).toContain('4 of 5 lines');
    expect(e.message).toContain('line 2: The line is not valid JSON');
    expect(e.message).toContain("line 3 (custom_id 'c'): Every line of a batch must name the same url");
    expect(e.message).toContain("line 4 (custom_id 'd'): A batched request cannot stream");
    expect(e.message).toContain("line 5 (custom_id 'e'): The input contains email");
    expect(e.message).not.toContain('a@b.example');
  });

  it('refuses an endpoint the route does not allow, and an empty file', () => {
    const r = route({ endpoints: ['files', 'batches', 'embeddings'] });
    expect(refusal(() => governBatchFile(r, line('a', { messages: [] }))).message).toContain('does not allow the chat.completions endpoint');
    expect(refusal(() => governBatchFile(r, '\n\n')).message).toContain('has no requests');
  });
});

describe('Ledger', () => {
  it('queues deferred calls by route and endpoint, and compacts to what is live', () => {
    const l = new Ledger();
    const q = (id: string, at: number): LedgerEvent => ({ t: 'queued', id, route: 'shop/main', endpoint: 'chat.completions', body: { n: id }, worst_nano: 5, at });
    for (const e of [q('j1', 0), q('j2', 1), q('j3', 2)]) l.apply(e);
    l.apply({ t: 'batch', id: 'batch_1', route: 'shop/main', file_id: 'file_1', url: '/v1/chat/completions', reserve_nano: 10, at: 3 });
    l.apply({ t: 'submitted', ids: ['j1', 'j2'], batch_id: 'batch_1' });
    expect(l.queues().get('shop/main|chat.completions')?.map((j) => j.id)).toEqual(['j3']);
    expect(l.jobs.get('j1')?.body).toBeUndefined();
    l.apply({ t: 'settled', id: 'batch_1', status: 'completed', cost_nano: 7, output_file_id: 'file_o', error_file_id: null });
    const again = new Ledger();
    for (const e of l.compact(10)) again.apply(e);
    expect(again.batches.get('batch_1')?.settled?.costNano).toBe(7);
    expect(again.jobs.get('j1')?.batchId).toBe('batch_1');
    expect(again.queues().get('shop/main|chat.completions')?.[0]?.body).toEqual({ n: 'j3' });
    // Past the retention, only the still-queued call is kept.
    const later = new Ledger();
    for (const e of l.compact(JOB_RETENTION_MS + 10)) later.apply(e);
    expect([...later.jobs.keys()]).toEqual(['j3']);
    expect(later.batches.size).toBe(0);
  });
});

describe('Journal', () => {
  it('replays what was appended and skips a torn last line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ai-envelope-journal-'));
    const errors: Error[] = [];
    const { journal } = await Journal.open<{ n: number }>(dir, 'j.jsonl', (e) => errors.push(e));
    await journal.append({ n: 1 });
    await journal.append({ n: 2 });
    await journal.close();
    appendFileSync(join(dir, 'j.jsonl'), '{"n":3');
    const reopened = await Journal.open<{ n: number }>(dir, 'j.jsonl', (e) => errors.push(e));
    expect(reopened.events).toEqual([{ n: 1 }, { n: 2 }]);
    expect(errors).toHaveLength(1);
    await reopened.journal.rewrite([{ n: 2 }]);
    await reopened.journal.append({ n: 4 });
    await reopened.journal.close();
    expect(readFileSync(join(dir, 'j.jsonl'), 'utf8')).toBe('{"n":2}\n{"n":4}\n');
  });
});
