// Retries, their bounds, and timeouts: what the sidecar does when the upstream misbehaves.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { routeManifest, simRoute, startEnv, type Env } from '../support/fixtures.ts';

let env: Env;
let tight: OpenAI;
beforeAll(async () => {
  env = await startEnv({
    routes: (sim) => [
      routeManifest('main', simRoute(sim)),
      routeManifest('tight', simRoute(sim, { timeouts: { requestSeconds: 1, streamIdleSeconds: 1 }, retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 } })),
    ],
  });
  tight = new OpenAI({ apiKey: 'sk-test-app', baseURL: env.sidecar.url, maxRetries: 2, defaultHeaders: { 'x-envelope-route': 'tight' } });
});
afterAll(async () => {
  await env?.close();
});
beforeEach(() => env.sim.reset());

const chat = (client: OpenAI = env.client, content = 'hello') =>
  client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content }] }, { headers: client === env.client ? { 'x-envelope-route': 'main' } : {} });
const upstreamCalls = () => env.sim.requests.filter((r) => r.path === '/v1/chat/completions').length;

describe('retries', () => {
  it('retries server errors and connection resets, then succeeds', async () => {
    env.sim.fault({ type: 'error', status: 500, times: 1 });
    env.sim.fault({ type: 'reset', times: 1 });
    const { data, response } = await chat().withResponse();
    expect(data.choices[0]?.message.content).toBeTruthy();
    expect(response.headers.get('x-envelope-attempts')).toBe('3');
    expect(upstreamCalls()).toBe(3);
  });

  it('gives up after maxAttempts and tells the SDK not to multiply them', async () => {
    env.sim.fault({ type: 'error', status: 503, times: 20 });
    const err = await chat().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect((err as InstanceType<typeof OpenAI.APIError>).headers?.get('x-should-retry')).toBe('false');
    // 3 attempts by the sidecar, and the SDK (maxRetries 2) did not repeat them.
    expect(upstreamCalls()).toBe(3);
    const line = await env.sidecar.waitForLog((l) => l.msg === 'request' && l.status === 503);
    expect(line.attempts).toBe(3);
  });

  it('never retries insufficient_quota', async () => {
    env.sim.fault({ type: 'insufficient_quota', times: 5 });
    const err = (await chat().catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(429);
    expect(err.code).toBe('insufficient_quota');
    expect(upstreamCalls()).toBe(1);
  });

  it('waits at least what retry-after-ms asks', async () => {
    env.sim.fault({ type: 'error', status: 429, retryAfterMs: 400, times: 1 });
    await chat();
    const [first, second] = env.sim.requests.filter((r) => r.path === '/v1/chat/completions');
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(400);
  });

  it('does not wait past the deadline: a long retry-after ends the call at once', async () => {
    env.sim.fault({ type: 'error', status: 429, retryAfter: 30, times: 5 });
    const started = Date.now();
    const err = (await chat(tight).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(429);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(upstreamCalls()).toBe(1);
  });

  it('retries a malformed body and reports it when it persists', async () => {
    env.sim.fault({ type: 'malformed', times: 1 });
    expect((await chat()).choices).toHaveLength(1);
    env.sim.reset();
    env.sim.fault({ type: 'malformed', times: 10 });
    const err = (await chat().catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(502);
    expect(err.code).toBe('upstream_unavailable');
    expect(upstreamCalls()).toBe(3);
  });
});

describe('timeouts', () => {
  it('bounds the whole call, retries included, by requestSeconds', async () => {
    env.sim.fault({ type: 'delay', ms: 3000, times: 5 });
    const started = Date.now();
    const err = (await chat(tight).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    const took = Date.now() - started;
    expect(err.status).toBe(504);
    expect(err.code).toBe('upstream_timeout');
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(2000);
    expect(upstreamCalls()).toBe(1);
  });

  it('ends a stream that goes silent with an error the SDK raises', async () => {
    env.sim.fault({ type: 'stall_mid_stream', afterEvents: 2, ms: 4000 });
    const stream = await tight.chat.completions.create({ model: 'gpt-4.1-mini', stream: true, messages: [{ role: 'user', content: 'a long answer please' }] });
    const started = Date.now();
    let chunks = 0;
    const err = await (async () => {
      for await (const _ of stream) chunks++;
    })().catch((e: unknown) => e);
    expect(chunks).toBeGreaterThanOrEqual(1);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as { code?: string }).code).toBe('upstream_timeout');
    expect(Date.now() - started).toBeLessThan(2500);
    expect(upstreamCalls()).toBe(1);
    const line = await env.sidecar.waitForLog((l) => l.msg === 'request' && l.error_code === 'upstream_timeout' && l.stream === true);
    expect(line.status).toBe(200);
  });

  it('ends a stream cut by the upstream with an error, without retrying it', async () => {
    env.sim.fault({ type: 'reset_mid_stream', afterEvents: 3 });
    const stream = env.client.responses.stream({ model: 'gpt-4.1-mini', input: 'stream then break' }, { headers: { 'x-envelope-route': 'main' } });
    const err = await (async () => {
      for await (const _ of stream) {
        // consume
      }
    })().catch((e: unknown) => e);
    expect(err).toBeTruthy();
    expect(env.sim.requests.filter((r) => r.path === '/v1/responses')).toHaveLength(1);
    await env.sidecar.waitForLog((l) => l.msg === 'request' && l.endpoint === 'responses' && l.error_code === 'upstream_unavailable', 3000).catch(() => { throw new Error(JSON.stringify(env.sidecar.requestLogs().slice(-3))); });
  });
});
