// Fallback models, the circuit breaker under a simulated outage, and idempotency keys.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { routeManifest, simRoute, startEnv, type Env } from '../support/fixtures.ts';

let env: Env;
let app: OpenAI;
beforeAll(async () => {
  env = await startEnv({
    routes: (sim) => [
      routeManifest(
        'main',
        simRoute(sim, {
          model: { default: 'gpt-4.1-mini', allowed: ['gpt-4.1-mini', 'gpt-4.1-nano'], fallbacks: ['gpt-4.1-nano'] },
          retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 10 },
          circuitBreaker: { minimumCalls: 4, failureRatio: 0.5, windowSeconds: 30, openSeconds: 1, halfOpenProbes: 1 },
        }),
      ),
      routeManifest('alone', simRoute(sim, { model: { allowed: ['gpt-4.1-mini'] }, retry: { maxAttempts: 1, baseDelayMs: 5, maxDelayMs: 10 }, circuitBreaker: { minimumCalls: 2, openSeconds: 30 } })),
    ],
  });
  app = new OpenAI({ apiKey: 'sk-test-app', baseURL: env.sidecar.url, maxRetries: 0, defaultHeaders: { 'x-envelope-route': 'main' } });
});
afterAll(async () => {
  await env?.close();
});
beforeEach(() => env.sim.reset());

const ask = (client = app, headers: Record<string, string> = {}) => client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'hi' }] }, { headers }).withResponse();
const hits = (model: string) => env.sim.requests.filter((r) => (r.body as { model?: string } | undefined)?.model === model).length;

describe('fallbacks', () => {
  it('move to the next model on 5xx and say which model served', async () => {
    env.sim.fault({ type: 'error', status: 500, model: 'gpt-4.1-mini', times: 2 });
    const { data, response } = await ask();
    expect(response.headers.get('x-envelope-model')).toBe('gpt-4.1-nano');
    expect(data.model).toContain('gpt-4.1-nano');
    expect(hits('gpt-4.1-mini')).toBe(2);
    expect(hits('gpt-4.1-nano')).toBe(1);
    const line = await env.sidecar.waitForLog((l) => l.msg === 'request' && l.fallback_from === 'gpt-4.1-mini');
    expect(line.model).toBe('gpt-4.1-nano');
    expect(line.attempts).toBe(3);
  });

  it("never fall back on the caller's own 4xx", async () => {
    env.sim.fault({ type: 'error', status: 400, model: 'gpt-4.1-mini', message: 'bad parameter' });
    const err = (await ask().catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(400);
    expect(hits('gpt-4.1-nano')).toBe(0);
  });
});

describe('circuit breaker', () => {
  it('opens under an outage, sends calls straight to the fallback, and closes after a good probe', async () => {
    env.sim.fault({ type: 'error', status: 503, model: 'gpt-4.1-mini', times: 1000 });
    for (let i = 0; i < 4; i++) expect((await ask()).response.headers.get('x-envelope-model')).toBe('gpt-4.1-nano');
    const open = await env.sidecar.waitForLog((l) => l.event === 'circuit' && l.state === 'open');
    expect(open.model).toBe('gpt-4.1-mini');
    const primaryBefore = hits('gpt-4.1-mini');
    for (let i = 0; i < 5; i++) await ask();
    // Open: the primary is not even tried.
    expect(hits('gpt-4.1-mini')).toBe(primaryBefore);
    const metrics = await (await fetch(`${env.sidecar.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/ai_envelope_circuit_state\{upstream="[^"]+",gen_ai_request_model="gpt-4.1-mini"\} 2/);
    env.sim.clearFaults();
    await new Promise((r) => setTimeout(r, 1100));
    expect((await ask()).response.headers.get('x-envelope-model')).toBe('gpt-4.1-mini');
    await env.sidecar.waitForLog((l) => l.event === 'circuit' && l.state === 'closed');
  });

  it('answers circuit_open at once when no fallback is left', async () => {
    env.sim.fault({ type: 'error', status: 500, times: 1000 });
    const alone = new OpenAI({ apiKey: 'sk-test-app', baseURL: env.sidecar.url, maxRetries: 0, defaultHeaders: { 'x-envelope-route': 'alone' } });
    for (let i = 0; i < 2; i++) expect(((await ask(alone).catch((e: unknown) => e)) as { status: number }).status).toBe(500);
    const before = env.sim.requests.length;
    const err = (await ask(alone).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(503);
    expect(err.code).toBe('circuit_open');
    expect(env.sim.requests.length).toBe(before);
  });
});

describe('idempotency-key', () => {
  it('replays the stored answer for the same key and body, once upstream', async () => {
    const headers = { 'idempotency-key': 'order-77-summary' };
    const first = await ask(app, headers);
    const second = await ask(app, headers);
    expect(second.data.id).toBe(first.data.id);
    expect(second.response.headers.get('x-envelope-idempotent-replay')).toBe('true');
    expect(env.sim.requests).toHaveLength(1);
  });

  it('makes a concurrent duplicate wait for the first instead of calling twice', async () => {
    env.sim.fault({ type: 'delay', ms: 300 });
    const headers = { 'idempotency-key': 'concurrent-1' };
    const [a, b] = await Promise.all([ask(app, headers), ask(app, headers)]);
    expect(a.data.id).toBe(b.data.id);
    expect(env.sim.requests).toHaveLength(1);
  });

  it('refuses the same key with another body', async () => {
    await ask(app, { 'idempotency-key': 'k-3' });
    const err = (await app.chat.completions
      .create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'something else' }] }, { headers: { 'idempotency-key': 'k-3' } })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(409);
    expect(err.message).toContain('k-3');
  });
});
