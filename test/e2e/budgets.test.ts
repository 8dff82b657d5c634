// Budgets: never overspent when they block, degrade and alert when told to, per user, across a
// restart, and counting the streams an app walks away from.
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import OpenAI from 'openai';
import { routeManifest, simRoute, startEnv, type Env } from '../support/fixtures.ts';
import { startSidecarProcess } from '../support/sidecar-process.ts';

let env: Env | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

function budget(name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIBudget', metadata: { name, namespace: 'shop' }, spec: { period: 'monthly', ...spec } };
}

interface Usage {
  budgets: Record<string, { spent_usd: number; reserved_usd: number; limit_usd?: number; users: Record<string, { spent_usd: number }> }>;
}
const usage = async (e: Env, adminUrl = e.sidecar.adminUrl) => (await (await fetch(`${adminUrl}/usage`)).json()) as Usage;
const row = (u: Usage, name: string) => Object.entries(u.budgets).find(([k]) => k.startsWith(`shop/${name}@`))?.[1];

describe('a blocking budget', () => {
  it('is never overspent by 200 concurrent calls', async () => {
    // gpt-4.1-mini: $0.40 in, $1.60 out per 1M tokens. A call here reserves about $0.00004.
    const limitUSD = 0.002;
    const e = (env = await startEnv({
      routes: (sim) => [routeManifest('main', simRoute(sim, { limits: { maxOutputTokens: 20 } }), 'shop', { team: 'a' }), budget('tight', { limitUSD, onExhausted: 'block' })],
    }));
    const app = new OpenAI({ apiKey: 'sk-test-app', baseURL: e.sidecar.url, maxRetries: 0 });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        app.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: `question number ${i}` }] }).then(
          () => 'ok',
          (err: InstanceType<typeof OpenAI.APIError>) => err,
        ),
      ),
    );
    const ok = results.filter((r) => r === 'ok').length;
    const refused = results.filter((r) => r !== 'ok') as Array<InstanceType<typeof OpenAI.APIError>>;
    expect(ok).toBeGreaterThan(10);
    expect(refused.length).toBeGreaterThan(0);
    for (const err of refused) {
      expect(err.status).toBe(429);
      expect(err.code).toBe('budget_exhausted');
      expect(err.message).toContain("Budget 'shop/tight'");
      expect(err.headers?.get('x-should-retry')).toBe('false');
    }
    // Refused calls never reached the upstream.
    expect(e.sim.requests).toHaveLength(ok);
    // Settlement and the log line follow the answer: wait for all 200 records.
    for (let i = 0; i < 100 && e.sidecar.requestLogs().length < 200; i++) await new Promise((r) => setTimeout(r, 20));
    expect(e.sidecar.requestLogs()).toHaveLength(200);
    const logged = e.sidecar.requestLogs().reduce((sum, l) => sum + ((l.cost_usd as number | undefined) ?? 0), 0);
    const spent = row(await usage(e), 'tight');
    expect(spent?.spent_usd).toBeCloseTo(logged, 12);
    expect(spent?.spent_usd).toBeLessThanOrEqual(limitUSD);
    expect(spent?.reserved_usd).toBe(0);
  });

  it('keeps its spend across a restart', async () => {
    const e = (env = await startEnv({
      routes: (sim) => [routeManifest('main', simRoute(sim)), budget('monthly', { limitUSD: 100, onExhausted: 'block' })],
      stateDir: true,
    }));
    await e.client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'spend a little' }] });
    await e.client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'and a little more' }] });
    const before = row(await usage(e), 'monthly')?.spent_usd ?? 0;
    expect(before).toBeGreaterThan(0);
    expect(await e.sidecar.stop('SIGTERM')).toBe(0);
    const again = await startSidecarProcess({ config: e.configPath, secretsDir: e.secrets.root, args: ['--state-dir', join(e.dir, 'state')] });
    try {
      expect(row(await usage(e, again.adminUrl), 'monthly')?.spent_usd).toBe(before);
    } finally {
      await again.stop('SIGKILL');
    }
  });
});

describe('degrade and alert', () => {
  it('moves calls to degradeTo once the budget is spent, and says so', async () => {
    const e = (env = await startEnv({
      routes: (sim) => [routeManifest('main', simRoute(sim, { limits: { maxOutputTokens: 20 } })), budget('soft', { limitUSD: 0.00001, onExhausted: 'degrade', degradeTo: 'gpt-4.1-nano', alertAt: [0.5, 1] })],
    }));
    const first = await e.client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'this one spends the budget' }] }).withResponse();
    expect(first.response.headers.get('x-envelope-degraded')).toBeNull();
    const second = await e.client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'now cheaper' }] }).withResponse();
    expect(second.response.headers.get('x-envelope-degraded')).toBe('shop/soft');
    expect(second.response.headers.get('x-envelope-model')).toBe('gpt-4.1-nano');
    expect((e.sim.requests[1]?.body as { model: string }).model).toBe('gpt-4.1-nano');
    // Alerts are logged at settlement, just after the answer: wait for the lines to arrive.
    await e.sidecar.waitForLog((l) => l.event === 'budget_alert' && l.threshold === 1);
    const alerts = e.sidecar.logs().filter((l) => l.event === 'budget_alert');
    expect(alerts.map((a) => a.threshold)).toEqual([0.5, 1]);
    const metrics = await (await fetch(`${e.sidecar.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/ai_envelope_budget_alerts_total\{budget="shop\/soft",threshold="0.5"\} 1/);
    expect(metrics).toMatch(/^ai_envelope_budget_limit_usd\{budget="shop\/soft"\} 0\.00001$/m);
  });
});

describe('per-user budgets', () => {
  it('stop one user without stopping the others', async () => {
    const e = (env = await startEnv({
      routes: (sim) => [routeManifest('main', simRoute(sim, { limits: { maxOutputTokens: 20 } })), budget('users', { limitUSD: 10, perUserLimitUSD: 0.00005, onExhausted: 'block' })],
    }));
    const call = (user: string) =>
      e.client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-envelope-user': user } }).then(
        () => 'ok',
        (err: InstanceType<typeof OpenAI.APIError>) => err.code,
      );
    const alice: string[] = [];
    for (let i = 0; i < 6; i++) alice.push((await call('alice')) as string);
    expect(alice).toContain('budget_exhausted');
    expect(await call('bob')).toBe('ok');
    const u = row(await usage(e), 'users');
    expect(Object.keys(u?.users ?? {})).toHaveLength(2);
    for (const spent of Object.values(u?.users ?? {})) expect(spent.spent_usd).toBeLessThanOrEqual(0.00005);
  });
});

describe('a stream the app abandons', () => {
  it('is still counted against the budget', async () => {
    const e = (env = await startEnv({ routes: (sim) => [routeManifest('main', simRoute(sim)), budget('monthly', { limitUSD: 100 })] }));
    e.sim.setOptions({ streamDelayMs: 20 });
    const controller = new AbortController();
    const stream = await e.client.chat.completions.create({ model: 'gpt-4.1-mini', stream: true, messages: [{ role: 'user', content: 'LONG_REPLY and then I leave' }] }, { signal: controller.signal, headers: { 'x-request-id': 'abandon-1' } });
    let n = 0;
    await (async () => {
      for await (const _ of stream) if (++n === 5) controller.abort();
    })().catch(() => undefined);
    const line = await e.sidecar.waitForLog((l) => l.msg === 'request' && l.request_id === 'abandon-1');
    expect(line.status).toBe(499);
    expect(line.usage_estimated).toBe(true);
    expect(line.output_tokens as number).toBeGreaterThanOrEqual(4);
    expect(line.cost_usd as number).toBeGreaterThan(0);
    expect(row(await usage(e), 'monthly')?.spent_usd).toBeCloseTo(line.cost_usd as number, 12);
  });
});
