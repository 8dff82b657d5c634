// A sidecar over time: config reloads, key rotation under traffic, readiness, graceful drain.
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import OpenAI from 'openai';
import { routeManifest, simRoute, startEnv, writeManifests, type Env } from '../support/fixtures.ts';
import { startRedis } from '../support/redis.ts';

let env: Env | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const metric = async (e: Env, pattern: RegExp) => {
  const text = await (await fetch(`${e.sidecar.adminUrl}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
};

describe('config reload', () => {
  it('swaps in a new config, and keeps the last good one when a change is invalid', async () => {
    const e = (env = await startEnv());
    const first = await e.sidecar.waitForLog((l) => l.event === 'config_loaded');
    writeManifests(e.configPath, [routeManifest('main', simRoute(e.sim)), routeManifest('extra', simRoute(e.sim, { model: { allowed: ['gpt-4.1-nano'] } }))]);
    const second = await e.sidecar.waitForLog((l) => l.event === 'config_loaded' && l.version !== first.version);
    expect(second.routes).toEqual(['shop/extra', 'shop/main']);
    const viaExtra = await e.client.chat.completions.create({ model: 'gpt-4.1-nano', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-envelope-route': 'extra' } });
    expect(viaExtra.choices).toHaveLength(1);

    writeFileSync(e.configPath, 'apiVersion: ai-envelope.dev/v1alpha1\nkind: AIRoute\nmetadata: {name: main}\nspec: {retry: {maxAttempts: 0}}\n');
    const rejected = await e.sidecar.waitForLog((l) => l.event === 'config_rejected');
    expect(String(rejected.problems)).toContain('spec.retry.maxAttempts');
    expect(rejected.version_in_force).toBe(second.version);
    // Still serving with the last good config, and saying why the new one was refused.
    const still = await e.client.chat.completions.create({ model: 'gpt-4.1-nano', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-envelope-route': 'extra' } });
    expect(still.choices).toHaveLength(1);
    const ready = await fetch(`${e.sidecar.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { config_error: string[] }).config_error[0]).toContain('maxAttempts');
    expect(await metric(e, /ai_envelope_config_reloads_total\{result="failure"\} (\d+)/)).toBe(1);
    expect(e.sidecar.proc.exitCode).toBeNull();
  });
});

describe('key rotation', () => {
  it('rotates the key under traffic without failing a single request', async () => {
    const e = (env = await startEnv());
    const app = new OpenAI({ apiKey: 'sk-test-app', baseURL: e.sidecar.url, maxRetries: 0 });
    const newKey = 'sk-test-rotated-fedcba9876543210';
    let stop = false;
    let ok = 0;
    const failures: unknown[] = [];
    const worker = async () => {
      while (!stop) {
        try {
          await app.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'ping' }] });
          ok++;
        } catch (err) {
          failures.push(err);
        }
      }
    };
    const workers = Array.from({ length: 6 }, worker);
    await new Promise((r) => setTimeout(r, 300));
    // The harshest order: the Secret changes and the old key is revoked in the same instant.
    e.secrets.write('openai', { apiKey: newKey });
    e.sim.setApiKeys([newKey]);
    await e.sidecar.waitForLog((l) => l.event === 'key_rotated');
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(workers);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(20);
    const auth = e.sim.requests.map((r) => r.headers.authorization);
    expect(auth[auth.length - 1]).toBe(`Bearer ${newKey}`);
    expect(e.sidecar.output()).not.toContain(newKey);
  });

  it('is not ready until its key is mounted, and says which one is missing', async () => {
    const e = (env = await startEnv({ routes: (sim) => [routeManifest('main', simRoute(sim, { upstream: { baseURL: sim.url, secretRef: { name: 'late', key: 'apiKey' } } }))] }));
    const before = await fetch(`${e.sidecar.adminUrl}/readyz`);
    expect(before.status).toBe(503);
    expect(JSON.stringify(await before.json())).toContain('late/apiKey');
    const err = (await e.client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'x' }] }).catch((x: unknown) => x)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(503);
    expect(err.code).toBe('key_unavailable');
    e.secrets.write('late', { apiKey: 'sk-test-e2e-0123456789abcdef' });
    for (let i = 0; i < 50 && (await fetch(`${e.sidecar.adminUrl}/readyz`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await fetch(`${e.sidecar.adminUrl}/readyz`)).status).toBe(200);
    expect((await e.client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'x' }] })).choices).toHaveLength(1);
  });
});

describe('graceful shutdown', () => {
  it('on SIGTERM stops accepting, finishes the stream in flight, and exits 0', async () => {
    const e = (env = await startEnv());
    e.sim.setOptions({ streamDelayMs: 4 });
    const stream = await e.client.chat.completions.create({ model: 'gpt-4.1-mini', stream: true, messages: [{ role: 'user', content: 'LONG_REPLY please' }] });
    const it = stream[Symbol.asyncIterator]();
    let text = ((await it.next()).value as OpenAI.ChatCompletionChunk).choices[0]?.delta.content ?? '';
    const exited = e.sidecar.stop('SIGTERM');
    await e.sidecar.waitForLog((l) => l.event === 'draining');
    // New connections are refused while the old stream goes on.
    await expect(fetch(`${e.sidecar.url}/models`)).rejects.toThrow();
    let chunks = 1;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      chunks++;
      text += (r.value as OpenAI.ChatCompletionChunk).choices[0]?.delta.content ?? '';
    }
    expect(chunks).toBeGreaterThan(20);
    expect(text).toContain('LONG_REPLY');
    expect(await exited).toBe(0);
    const line = e.sidecar.requestLogs().find((l) => l.stream === true);
    expect(line?.status).toBe(200);
    expect(line?.error_code).toBeUndefined();
    expect(e.sidecar.logs().some((l) => l.event === 'stopped')).toBe(true);
  });

  it('exits on SIGTERM within its grace period when the shared Redis has gone away', async () => {
    const redis = await startRedis();
    try {
      // Limits, budgets and the review queue all live in Redis here.
      const review = { tokenSecretRef: { name: 'reviewers', key: 'token' }, retentionHours: 24 };
      const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'], additionalProperties: false };
      const e = (env = await startEnv({ routes: (sim) => [routeManifest('held', simRoute(sim, { output: { jsonSchema: schema, onInvalid: 'review' }, review }))], args: ['--redis-url', redis.url, '--grace-seconds', '1'] }));
      e.secrets.write('reviewers', { token: 'test-review-token' });
      await expect(e.client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'BROKEN_JSON' }] })).rejects.toThrow();
      await redis.stop();
      const exited = e.sidecar.stop('SIGTERM');
      // Well past the grace period: a sidecar still waiting on the store by then never leaves.
      const outcome = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
      expect(outcome).toBe(0);
    } finally {
      await redis.stop();
    }
  });
});
