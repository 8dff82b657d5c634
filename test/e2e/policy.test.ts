// Calls the envelope refuses, and how: OpenAI's error shape, an envelope code, and a process that
// keeps serving afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { routeManifest, simRoute, startEnv, type Env } from '../support/fixtures.ts';

let env: Env;
beforeAll(async () => {
  env = await startEnv({
    routes: (sim) => [
      routeManifest('chat', simRoute(sim, { endpoints: ['chat.completions'], model: { default: 'gpt-4.1-mini', allowed: ['gpt-4.1-mini'] }, limits: { maxRequestBytes: 2048 } })),
      routeManifest('embed', simRoute(sim, { endpoints: ['embeddings'], model: { allowed: ['text-embedding-3-small'] } })),
    ],
  });
});
afterAll(async () => {
  await env?.close();
});

async function raw(path: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${env.sidecar.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: res.status, headers: res.headers, body: (await res.json()) as { error: Record<string, unknown> } };
}

function expectEnvelopeError(body: { error: Record<string, unknown> }, code: string) {
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(body.error.type).toBe('envelope_error');
  expect(body.error.code).toBe(code);
  expect(String(body.error.message).length).toBeGreaterThan(10);
}

describe('refusals', () => {
  it('refuses a model outside the allow-list, as an SDK error the app can read', async () => {
    const call = (headers: Record<string, string>) =>
      env.client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }, { headers }).catch((e: unknown) => e) as Promise<InstanceType<typeof OpenAI.APIError>>;
    // Without a route header no route claims the model; with one, that route's allow-list refuses it.
    expect((await call({})).code).toBe('route_not_found');
    const err = await call({ 'x-envelope-route': 'chat' });
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(err.code).toBe('model_not_allowed');
    expect(err.message).toContain('gpt-4o');
    expect(err.headers?.get('x-should-retry')).toBe('false');
  });

  it('refuses an endpoint the route does not allow', async () => {
    const r = await raw('/embeddings', JSON.stringify({ model: 'text-embedding-3-small', input: 'x' }), { 'x-envelope-route': 'chat' });
    expect(r.status).toBe(403);
    expectEnvelopeError(r.body, 'endpoint_not_allowed');
  });

  it('names the missing route and the routes that exist', async () => {
    const r = await raw('/chat/completions', JSON.stringify({ model: 'gpt-4.1-mini', messages: [] }), { 'x-envelope-route': 'nope' });
    expect(r.status).toBe(404);
    expectEnvelopeError(r.body, 'route_not_found');
    expect(r.body.error.message).toContain('shop/chat');
  });

  it('explains bad JSON, a body that is not an object, and a bad stream flag', async () => {
    const bad = await raw('/chat/completions', '{"model": "gpt-4.1-mini",', { 'x-envelope-route': 'chat' });
    expect(bad.status).toBe(400);
    expectEnvelopeError(bad.body, 'invalid_request');
    expect(bad.body.error.message).toContain('not valid JSON');
    const arr = await raw('/chat/completions', '[1,2]', { 'x-envelope-route': 'chat' });
    expectEnvelopeError(arr.body, 'invalid_request');
    const flag = await raw('/chat/completions', JSON.stringify({ model: 'gpt-4.1-mini', messages: [], stream: 'yes' }), { 'x-envelope-route': 'chat' });
    expect(flag.body.error.param).toBe('stream');
  });

  it('refuses an oversized body with 413 and keeps serving', async () => {
    const big = JSON.stringify({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'x'.repeat(5000) }] });
    const r = await raw('/chat/completions', big, { 'x-envelope-route': 'chat' });
    expect(r.status).toBe(413);
    expectEnvelopeError(r.body, 'request_too_large');
    expect(r.body.error.message).toContain('2048');
    const ok = await env.client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'still here?' }] });
    expect(ok.choices).toHaveLength(1);
  });

  it('answers unknown paths with 404 in the same shape', async () => {
    const r = await raw('/images/generations', '{}');
    expect(r.status).toBe(404);
    expectEnvelopeError(r.body, 'invalid_request');
  });

  it('never sent any refused call upstream', () => {
    expect(env.sim.requests.filter((r) => JSON.stringify(r.body ?? '').includes('gpt-4o'))).toHaveLength(0);
    expect(env.sim.requests.filter((r) => r.path === '/v1/embeddings')).toHaveLength(0);
  });
});
