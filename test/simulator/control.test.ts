import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RecordedRequest, type Simulator } from '../../simulator/index.ts';
import { client } from './helpers.ts';

let sim: Simulator;
let openai: OpenAI;
let base: string;

beforeAll(async () => {
  sim = await startSimulator({ apiKeys: ['sk-test-sim'] });
  openai = client(sim);
  base = sim.url.replace(/\/v1$/, '');
});
afterAll(() => sim.close());

// No authorization header: the control API must not need the key.
const control = (method: string, path: string, body?: unknown) =>
  fetch(`${base}/_sim/${path}`, { method, ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}) });

describe('control API', () => {
  it('queues faults over HTTP without a key and without being recorded', async () => {
    const res = await control('POST', 'faults', { type: 'error', status: 429, path: '/v1/chat/completions' });
    expect(res.status).toBe(204);
    const err = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);

    const listed = await control('GET', 'requests');
    expect(listed.status).toBe(200);
    const requests = (await listed.json()) as RecordedRequest[];
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v1/chat/completions']);
    expect(requests[0]!.body).toMatchObject({ model: 'gpt-4o' });
  });

  it('clears faults and requests, accepts a list of faults, rejects bad ones', async () => {
    expect((await control('POST', 'faults', [{ type: 'error', status: 500 }, { type: 'delay', ms: 1 }])).status).toBe(204);
    expect((await control('DELETE', 'faults')).status).toBe(204);
    await openai.models.list();
    expect((await control('DELETE', 'requests')).status).toBe(204);
    expect(sim.requests).toHaveLength(0);

    const bad = await control('POST', 'faults', { type: 'explode' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/unknown fault type/);
    const noStatus = await control('POST', 'faults', { type: 'error' });
    expect(noStatus.status).toBe(400);
    // Nothing was queued by the rejected calls.
    await expect(openai.models.list()).resolves.toBeDefined();
  });

  it('changes options over HTTP', async () => {
    expect((await control('POST', 'options', { apiKeys: ['another'] })).status).toBe(204);
    await expect(openai.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    expect((await control('POST', 'options', { apiKeys: ['sk-test-sim'] })).status).toBe(204);
    await expect(openai.models.list()).resolves.toBeDefined();
  });
});
