import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../simulator/index.ts';
import { client, errorBody, GO_DURATION, KEY, raw } from './helpers.ts';

let sim: Simulator;
let openai: OpenAI;

beforeAll(async () => {
  sim = await startSimulator();
  openai = client(sim);
});
afterEach(() => {
  sim.reset();
  sim.setOptions({ streamDelayMs: 0, latencyMs: 0, apiKeys: undefined });
});
afterAll(() => sim.close());

const chat = (o: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming> = {}, c: OpenAI = openai) =>
  c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello world' }], ...o });
const fail = (p: Promise<unknown>) => p.then(() => expect.unreachable('expected a failure'), (e: unknown) => e);

describe('error faults', () => {
  it('500: the SDK retries it, and gives up with InternalServerError', async () => {
    sim.fault({ type: 'error', status: 500, times: 3, retryAfterMs: 5 });
    const err = await fail(chat({}, client(sim, { maxRetries: 2 })));
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as InstanceType<typeof OpenAI.APIError>).type).toBe('server_error');
    expect(sim.requests).toHaveLength(3);
    expect(sim.requests.map((r) => r.headers['x-stainless-retry-count'])).toEqual(['0', '1', '2']);
  });

  it('500 once: a retry succeeds', async () => {
    sim.fault({ type: 'error', status: 500, retryAfterMs: 5 });
    const r = await chat({}, client(sim, { maxRetries: 2 }));
    expect(r.choices[0]!.message.content).toBe('Simulated reply to: Hello world');
    expect(sim.requests).toHaveLength(2);
  });

  it('429 rate limit: type requests, remaining 0, Go-style resets, retry-after when asked', async () => {
    sim.fault({ type: 'error', status: 429, retryAfter: 2 });
    const err = (await fail(chat())) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.code).toBe('rate_limit_exceeded');
    expect(err.type).toBe('requests');
    expect(err.message).toMatch(/Rate limit reached for gpt-4o-mini/);
    expect(err.headers!.get('retry-after')).toBe('2');
    expect(err.headers!.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(err.headers!.get('x-ratelimit-reset-requests')).toBe('2s');
    expect(err.headers!.get('x-ratelimit-reset-tokens')).toMatch(GO_DURATION);
  });

  it('insufficient_quota: 429 without retry-after', async () => {
    sim.fault({ type: 'insufficient_quota' });
    const err = (await fail(chat())) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.code).toBe('insufficient_quota');
    expect(err.type).toBe('insufficient_quota');
    expect(err.headers!.get('retry-after')).toBeNull();
  });

  it('401 and 503 defaults, custom code and headers', async () => {
    sim.fault({ type: 'error', status: 401 });
    const auth = (await fail(chat())) as InstanceType<typeof OpenAI.APIError>;
    expect(auth).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(auth.code).toBe('invalid_api_key');
    sim.fault({ type: 'error', status: 503, code: 'overloaded', headers: { 'x-extra': 'yes' } });
    const busy = (await fail(chat())) as InstanceType<typeof OpenAI.APIError>;
    expect(busy.status).toBe(503);
    expect(busy.message).toMatch(/overloaded/);
    expect(busy.code).toBe('overloaded');
    expect(busy.headers!.get('x-extra')).toBe('yes');
  });

  it('matches faults by path, model and times', async () => {
    sim.fault({ type: 'error', status: 500, model: 'gpt-4o', times: 2 });
    sim.fault({ type: 'error', status: 400, path: '/v1/embeddings' });
    await chat(); // gpt-4o-mini: no match
    await expect(chat({ model: 'gpt-4o' })).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    await expect(chat({ model: 'gpt-4o' })).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    await chat({ model: 'gpt-4o' });
    await expect(openai.embeddings.create({ model: 'text-embedding-3-small', input: 'x' })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'x' });
  });
});

describe('transport faults', () => {
  it('delay holds the response back, then answers normally', async () => {
    sim.fault({ type: 'delay', ms: 150 });
    const t0 = Date.now();
    const r = await chat();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(r.choices[0]!.finish_reason).toBe('stop');
  });

  it('reset drops the connection: APIConnectionError, and a retry gets through', async () => {
    sim.fault({ type: 'reset' });
    expect(await fail(chat())).toBeInstanceOf(OpenAI.APIConnectionError);
    sim.fault({ type: 'reset' });
    const r = await chat({}, client(sim, { maxRetries: 1 }));
    expect(r.object).toBe('chat.completion');
    expect(sim.requests).toHaveLength(3);
  });

  it('reset_mid_stream delivers N events then breaks the stream', async () => {
    sim.fault({ type: 'reset_mid_stream', afterEvents: 3 });
    await chat(); // a plain call does not consume a stream fault
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello world' }], stream: true });
    const got: unknown[] = [];
    const err = await (async () => {
      for await (const c of stream) got.push(c);
    })().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(got).toHaveLength(3);
  });

  it('stall_mid_stream goes quiet, then finishes', async () => {
    sim.fault({ type: 'stall_mid_stream', afterEvents: 2, ms: 200 });
    const stream = await openai.responses.create({ model: 'gpt-4o', input: 'hi', stream: true });
    const times: number[] = [];
    let last;
    for await (const e of stream) {
      times.push(Date.now());
      last = e;
    }
    expect(last!.type).toBe('response.completed');
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(190);
  });

  it('malformed answers 200 with a body that is not JSON', async () => {
    sim.fault({ type: 'malformed' });
    const err = await fail(chat());
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(OpenAI.APIError);
    sim.fault({ type: 'malformed' });
    const res = await raw(sim, '/chat/completions', { body: JSON.stringify({ model: 'gpt-4o', messages: [] }) });
    expect(res.status).toBe(200);
    expect(() => JSON.parse(res.text)).toThrow();
  });

  it('streamDelayMs and latencyMs slow things down', async () => {
    sim.setOptions({ latencyMs: 60, streamDelayMs: 10 });
    const t0 = Date.now();
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello world' }], stream: true });
    let n = 0;
    for await (const _ of stream) n++;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(60 + (n - 1) * 10 - 5);
  });
});

describe('auth and recording', () => {
  it('401s a wrong or missing key in OpenAI shape, only when keys are set', async () => {
    sim.setApiKeys(['sk-right-key-123456']);
    const wrong = (await fail(chat())) as InstanceType<typeof OpenAI.APIError>;
    expect(wrong).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(wrong.code).toBe('invalid_api_key');
    expect(wrong.message).not.toContain(KEY);
    await chat({}, client(sim, { apiKey: 'sk-right-key-123456' }));
    const missing = await raw(sim, '/models', { method: 'GET', headers: { authorization: '' } });
    expect(missing.status).toBe(401);
    expect(errorBody(missing.text).code).toBe('invalid_api_key');
    sim.setApiKeys(undefined);
    await chat();
    const none = await raw(sim, '/models', { method: 'GET', headers: { authorization: '' } });
    expect(none.status).toBe(401);
  });

  it('records every request, rejected ones too', async () => {
    sim.setApiKeys(['other']);
    await fail(chat());
    sim.setApiKeys(undefined);
    await raw(sim, '/models?limit=3', { method: 'GET', headers: { 'X-Custom': 'A' } });
    const [rejected, listed] = sim.requests;
    expect(rejected).toMatchObject({ method: 'POST', path: '/v1/chat/completions', body: { model: 'gpt-4o-mini' } });
    expect(rejected!.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(rejected!.rawBodyBytes).toBe(Buffer.byteLength(JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello world' }] })));
    expect(listed).toMatchObject({ method: 'GET', path: '/v1/models', query: { limit: '3' }, body: undefined, rawBodyBytes: 0 });
    expect(listed!.headers['x-custom']).toBe('A');
    expect(listed!.at).toBeLessThanOrEqual(Date.now());
  });

  it('close() ends promptly with idle keep-alive sockets and a stalled stream', async () => {
    const other = await startSimulator();
    await other.close(); // closing an unused simulator is fine
    const s = await startSimulator();
    const c = client(s);
    await c.models.list();
    s.fault({ type: 'stall_mid_stream', afterEvents: 1, ms: 60_000 });
    const stream = await c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true });
    const consumed = (async () => {
      for await (const _ of stream);
    })().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    await s.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    await consumed;
  });
});
