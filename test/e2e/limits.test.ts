// Rate, token and concurrency limits, as an app with the official SDK meets them.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { routeManifest, simRoute, startEnv, type Env } from '../support/fixtures.ts';

let env: Env;
let app: OpenAI;
beforeAll(async () => {
  env = await startEnv({
    routes: (sim) => [
      routeManifest('rpm', simRoute(sim, { limits: { route: { requestsPerMinute: 5 } } })),
      routeManifest('tpm', simRoute(sim, { limits: { maxOutputTokens: 40, route: { tokensPerMinute: 400 } } })),
      routeManifest('users', simRoute(sim, { limits: { perUser: { requestsPerMinute: 2 } } })),
      routeManifest('narrow', simRoute(sim, { limits: { concurrency: 2, queue: { maxWaiting: 1, maxWaitMs: 2000 } } })),
      routeManifest('tiny', simRoute(sim, { limits: { route: { tokensPerMinute: 100 } } })),
    ],
  });
  app = new OpenAI({ apiKey: 'sk-test-app', baseURL: env.sidecar.url, maxRetries: 0 });
});
afterAll(async () => {
  await env?.close();
});
beforeEach(() => env.sim.reset());

const chat = (route: string, extra: Record<string, string> = {}, content = 'hello there') =>
  app.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content }] }, { headers: { 'x-envelope-route': route, ...extra } }).withResponse();
const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);

describe('requests per minute', () => {
  it('admits exactly the limit, reports it in OpenAI headers, then refuses with an exact retry-after', async () => {
    const remaining: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { response } = await chat('rpm');
      expect(response.headers.get('x-ratelimit-limit-requests')).toBe('5');
      remaining.push(response.headers.get('x-ratelimit-remaining-requests') ?? '');
      expect(response.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+(\.\d+)?(ms|s)$|^\d+m[\d.]+s$/);
    }
    expect(remaining).toEqual(['4', '3', '2', '1', '0']);
    const err = await failure(chat('rpm'));
    expect(err?.status).toBe(429);
    expect(err?.code).toBe('rate_limited');
    expect(err?.message).toContain('requestsPerMinute (5)');
    const after = Number(err?.headers?.get('retry-after'));
    const afterMs = Number(err?.headers?.get('retry-after-ms'));
    expect(after).toBeGreaterThanOrEqual(1);
    expect(after).toBeLessThanOrEqual(61);
    expect(afterMs).toBeGreaterThan(55_000);
    expect(afterMs).toBeLessThanOrEqual(61_000);
    expect(env.sim.requests).toHaveLength(5);
  });
});

describe('tokens per minute', () => {
  it('reserves input plus the output cap, then settles to the real usage', async () => {
    const first = await chat('tpm');
    const sentCap = (env.sim.requests[0]?.body as { max_completion_tokens: number }).max_completion_tokens;
    expect(sentCap).toBe(40);
    const remaining1 = Number(first.response.headers.get('x-ratelimit-remaining-tokens'));
    const reserved1 = 400 - remaining1;
    expect(reserved1).toBeGreaterThan(40);
    const used1 = first.data.usage!.total_tokens;
    expect(used1).toBeLessThan(reserved1);
    const second = await chat('tpm');
    const remaining2 = Number(second.response.headers.get('x-ratelimit-remaining-tokens'));
    // The first call now counts what it used, not what it reserved.
    expect(remaining2).toBe(400 - used1 - reserved1);
  });

  it('refuses, as final, a call whose worst case can never fit the limit', async () => {
    const err = await failure(app.chat.completions.create({ model: 'gpt-4.1-mini', max_completion_tokens: 500, messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-envelope-route': 'tiny' } }));
    expect(err?.status).toBe(429);
    expect(err?.headers?.get('x-should-retry')).toBe('false');
    expect(err?.message).toContain('tokensPerMinute (100)');
  });
});

describe('per-user limits', () => {
  it('counts each x-envelope-user apart', async () => {
    await chat('users', { 'x-envelope-user': 'alice' });
    await chat('users', { 'x-envelope-user': 'alice' });
    const err = await failure(chat('users', { 'x-envelope-user': 'alice' }));
    expect(err?.code).toBe('rate_limited');
    expect(err?.message).toContain('per-user');
    expect((await chat('users', { 'x-envelope-user': 'bob' })).data.choices).toHaveLength(1);
  });
});

describe('concurrency', () => {
  it('runs up to the limit, queues a bounded number, refuses the rest', async () => {
    env.sim.fault({ type: 'delay', ms: 400, times: 10 });
    const results = await Promise.all(Array.from({ length: 5 }, () => failure(chat('narrow'))));
    const refused = results.filter((e) => e !== undefined);
    expect(refused).toHaveLength(2);
    for (const e of refused) {
      expect(e?.status).toBe(429);
      expect(e?.code).toBe('concurrency_limited');
    }
    expect(env.sim.requests).toHaveLength(3);
    // Never more than two at the upstream at once: the third started after one finished.
    const starts = env.sim.requests.map((r) => r.at).sort((a, b) => a - b);
    expect(starts[2]! - starts[0]!).toBeGreaterThanOrEqual(350);
  });

  it('frees an idempotency key whose call was refused for concurrency', async () => {
    env.sim.fault({ type: 'delay', ms: 300, times: 3 });
    const busy = Array.from({ length: 3 }, () => failure(chat('narrow')));
    await new Promise((r) => setTimeout(r, 50));
    const refused = await failure(chat('narrow', { 'idempotency-key': 'busy-1' }));
    expect(refused?.code).toBe('concurrency_limited');
    await Promise.all(busy);
    // The key was not left claimed: the same call now goes through instead of waiting forever.
    const again = await chat('narrow', { 'idempotency-key': 'busy-1' });
    expect(again.data.choices).toHaveLength(1);
  });
});
