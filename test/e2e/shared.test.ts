// Two replicas of one app: two sidecar processes sharing one real redis-server. A limit of N
// admits N between them, not 2N; a budget holds across both; losing Redis degrades to local
// enforcement, loudly, and the spend made meanwhile reaches Redis when it returns.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startRedis } from '../support/redis.ts';
import { routeManifest, simRoute, startEnv, type Env } from '../support/fixtures.ts';
import { startSidecarProcess, type SidecarProcess } from '../support/sidecar-process.ts';

let redis: Awaited<ReturnType<typeof startRedis>>;
let env: Env;
let second: SidecarProcess;
let clients: OpenAI[];

beforeAll(async () => {
  redis = await startRedis();
  env = await startEnv({
    routes: (sim) => [
      routeManifest('limited', simRoute(sim, { limits: { route: { requestsPerMinute: 10 } } }), 'shop', { team: 'a' }),
      routeManifest('budgeted', simRoute(sim, { limits: { maxOutputTokens: 20 } }), 'shop', { team: 'b' }),
      { apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIBudget', metadata: { name: 'shared', namespace: 'shop' }, spec: { routeSelector: { matchLabels: { team: 'b' } }, limitUSD: 0.0005, onExhausted: 'block' } },
    ],
    args: ['--redis-url', redis.url],
  });
  second = await startSidecarProcess({ config: env.configPath, secretsDir: env.secrets.root, args: ['--redis-url', redis.url, '--state-dir', join(env.dir, 'state-2')] });
  clients = [env.sidecar, second].map((s) => new OpenAI({ apiKey: 'sk-test-app', baseURL: s.url, maxRetries: 0 }));
});
afterAll(async () => {
  await second?.stop('SIGKILL');
  await env?.close();
  await redis?.stop();
});

const call = (client: OpenAI, route: string) =>
  client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'hello' }] }, { headers: { 'x-envelope-route': route } }).then(
    () => 'ok',
    (e: InstanceType<typeof OpenAI.APIError>) => e.code ?? String(e.status),
  );

describe('two sidecars, one Redis', () => {
  it('admit a limit of N exactly once between them', async () => {
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => call(clients[i % 2]!, 'limited')));
    expect(results.filter((r) => r === 'ok')).toHaveLength(10);
    expect(results.filter((r) => r === 'rate_limited')).toHaveLength(20);
  });

  it('share one budget, never overspent', async () => {
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => call(clients[i % 2]!, 'budgeted')));
    expect(results.filter((r) => r === 'budget_exhausted').length).toBeGreaterThan(0);
    const usage = (await (await fetch(`${second.adminUrl}/usage`)).json()) as { state_backend: string; budgets: Record<string, { spent_usd: number }> };
    expect(usage.state_backend).toBe('redis');
    const spent = Object.entries(usage.budgets).find(([k]) => k.startsWith('shop/shared@'))?.[1].spent_usd ?? 0;
    expect(spent).toBeGreaterThan(0);
    expect(spent).toBeLessThanOrEqual(0.0005);
  });

  it('fall back to local enforcement when Redis goes away, and say so', async () => {
    await redis.stop();
    // Still serving: limits now count in this sidecar alone until Redis is back.
    expect(await call(clients[0]!, 'limited')).toBe('ok');
    const line = await env.sidecar.waitForLog((l) => l.event === 'state_backend' && l.backend === 'local');
    expect(String(line.reason)).toBeTruthy();
    const metrics = await (await fetch(`${env.sidecar.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/ai_envelope_state_backend\{backend="local"\} 1/);
  });
});
