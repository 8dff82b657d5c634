import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODELS, startSimulator, type Simulator } from '../../simulator/index.ts';
import { client, errorBody, raw, tok } from './helpers.ts';

let sim: Simulator;
let openai: OpenAI;

beforeAll(async () => {
  sim = await startSimulator();
  openai = client(sim);
});
afterAll(() => sim.close());

const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

describe('embeddings', () => {
  it('returns deterministic unit-norm float vectors with usage', async () => {
    const a = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'], encoding_format: 'float' });
    expect(a.object).toBe('list');
    expect(a.data.map((d) => [d.object, d.index])).toEqual([['embedding', 0], ['embedding', 1]]);
    expect(a.data[0]!.embedding).toHaveLength(1536);
    expect(norm(a.data[0]!.embedding)).toBeCloseTo(1, 5);
    expect(a.data[0]!.embedding).not.toEqual(a.data[1]!.embedding);
    // Embedding models count with cl100k_base.
    const t = tok('alpha', 'cl100k_base') + tok('beta', 'cl100k_base');
    expect(a.usage).toEqual({ prompt_tokens: t, total_tokens: t });
    const again = await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'alpha', encoding_format: 'float' });
    expect(again.data[0]!.embedding).toEqual(a.data[0]!.embedding);
  });

  it('sends base64 by default; the SDK decodes exactly the float vector', async () => {
    sim.reset();
    const viaBase64 = await openai.embeddings.create({ model: 'text-embedding-3-large', input: 'gamma' });
    expect((sim.requests[0]!.body as { encoding_format?: string }).encoding_format).toBe('base64');
    const viaFloat = await openai.embeddings.create({ model: 'text-embedding-3-large', input: 'gamma', encoding_format: 'float' });
    expect(viaBase64.data[0]!.embedding).toHaveLength(3072);
    expect(viaBase64.data[0]!.embedding).toEqual(viaFloat.data[0]!.embedding);
    expect(norm(viaBase64.data[0]!.embedding)).toBeCloseTo(1, 5);
    const wire = await raw(sim, '/embeddings', { body: JSON.stringify({ model: 'text-embedding-3-small', input: 'gamma', encoding_format: 'base64' }) });
    expect(typeof JSON.parse(wire.text).data[0].embedding).toBe('string');
  });

  it('honours dimensions and token-array inputs', async () => {
    const r = await openai.embeddings.create({ model: 'text-embedding-3-small', input: [[1, 2, 3], [4, 5]], dimensions: 256, encoding_format: 'float' });
    expect(r.data.map((d) => d.embedding.length)).toEqual([256, 256]);
    expect(norm(r.data[1]!.embedding)).toBeCloseTo(1, 5);
    expect(r.usage.prompt_tokens).toBe(5);
  });

  it('rejects more than 2048 inputs and empty input', async () => {
    const tooMany = await openai.embeddings.create({ model: 'text-embedding-3-small', input: Array(2049).fill('x') }).catch((e: unknown) => e);
    expect(tooMany).toBeInstanceOf(OpenAI.BadRequestError);
    expect((tooMany as InstanceType<typeof OpenAI.APIError>).param).toBe('input');
    const empty = await raw(sim, '/embeddings', { body: JSON.stringify({ model: 'text-embedding-3-small', input: '' }) });
    expect(empty.status).toBe(400);
    expect(errorBody(empty.text).param).toBe('input');
  });
});

describe('moderations', () => {
  it('flags trigger words and reports every category', async () => {
    const r = await openai.moderations.create({ model: 'omni-moderation-latest', input: ['I will FLAGME you', 'stop harassing me', 'a nice day'] });
    expect(r.id).toMatch(/^modr-/);
    expect(r.model).toBe('omni-moderation-latest');
    expect(r.results.map((x) => x.flagged)).toEqual([true, true, false]);
    expect(r.results[0]!.categories.violence).toBe(true);
    expect(r.results[0]!.categories.harassment).toBe(false);
    expect(r.results[1]!.categories.harassment).toBe(true);
    expect(r.results[0]!.category_scores.violence).toBeGreaterThan(0.5);
    expect(r.results[2]!.category_scores.violence).toBeLessThan(0.01);
    const categories = [
      'hate', 'hate/threatening', 'harassment', 'harassment/threatening', 'illicit', 'illicit/violent', 'self-harm',
      'self-harm/intent', 'self-harm/instructions', 'sexual', 'sexual/minors', 'violence', 'violence/graphic',
    ].sort();
    for (const res of r.results) {
      expect(Object.keys(res.categories).sort()).toEqual(categories);
      expect(Object.keys(res.category_scores).sort()).toEqual(categories);
      expect(Object.keys(res.category_applied_input_types).sort()).toEqual(categories);
      expect(res.category_applied_input_types.hate).toEqual(['text']);
    }
  });

  it('gives one result for a multimodal input, with image types where images count', async () => {
    const r = await openai.moderations.create({
      model: 'omni-moderation-latest',
      input: [
        { type: 'text', text: 'hello' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
      ],
    });
    expect(r.results).toHaveLength(1);
    expect(r.results[0]!.flagged).toBe(false);
    expect(r.results[0]!.category_applied_input_types.violence).toEqual(['text', 'image']);
    expect(r.results[0]!.category_applied_input_types.hate).toEqual(['text']);
  });
});

describe('models', () => {
  it('lists, retrieves and 404s', async () => {
    const ids = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids).toEqual(DEFAULT_MODELS);
    expect(ids).toEqual(expect.arrayContaining(['gpt-4.1-mini', 'gpt-5', 'text-embedding-3-small', 'omni-moderation-latest']));
    const m = await openai.models.retrieve('gpt-4o');
    expect(m).toMatchObject({ id: 'gpt-4o', object: 'model', owned_by: 'system' });
    const missing = await openai.models.retrieve('gpt-0').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
  });
});
