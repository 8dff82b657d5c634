// The sidecar as an app sees it: the official SDK, pointed at the sidecar, against the simulator.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { toFile } from 'openai';
import { startEnv, TEST_KEY, type Env } from '../support/fixtures.ts';

let env: Env;
beforeAll(async () => {
  env = await startEnv();
});
afterAll(async () => {
  await env?.close();
});
beforeEach(() => env.sim.reset());

const lastUpstream = (path: string) => {
  const hits = env.sim.requests.filter((r) => r.path === path);
  return hits[hits.length - 1]!;
};

describe('model calls', () => {
  it('proxies a chat completion with the route key, project and envelope headers', async () => {
    const { data, response } = await env.client.chat.completions
      .create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Where is my order?' }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toContain('Where is my order?');
    expect(data.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-envelope-route')).toBe('shop/main');
    expect(response.headers.get('x-envelope-model')).toBe('gpt-4.1-mini');
    expect(response.headers.get('x-envelope-attempts')).toBe('1');
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    expect(response.headers.get('x-upstream-request-id')).toMatch(/^req_/);
    const up = lastUpstream('/v1/chat/completions');
    expect(up.headers.authorization).toBe(`Bearer ${TEST_KEY}`);
    expect(up.headers['openai-project']).toBe('proj_test');
    expect(up.headers['x-client-request-id']).toBe(response.headers.get('x-request-id'));
  });

  it('resolves aliases and the default model', async () => {
    const viaAlias = await env.client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'hi' }] });
    expect(viaAlias.model).toContain('gpt-4.1-nano');
    expect((lastUpstream('/v1/chat/completions').body as { model: string }).model).toBe('gpt-4.1-nano');
    const res = await fetch(`${env.sidecar.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'no model given' }] }),
    });
    expect(res.status).toBe(200);
    expect((lastUpstream('/v1/chat/completions').body as { model: string }).model).toBe('gpt-4.1-mini');
  });

  it('honours the request id the app sends', async () => {
    const { response } = await env.client.responses.create({ input: 'hi', model: 'gpt-4.1-mini' }, { headers: { 'x-request-id': 'app-trace-42' } }).withResponse();
    expect(response.headers.get('x-request-id')).toBe('app-trace-42');
    const line = await env.sidecar.waitForLog((l) => l.msg === 'request' && l.request_id === 'app-trace-42');
    expect(line.route).toBe('shop/main');
  });

  it('streams chat as it arrives and hides the usage chunk the app did not ask for', async () => {
    env.sim.setOptions({ streamDelayMs: 30 });
    try {
      const started = Date.now();
      const stream = await env.client.chat.completions.create({ model: 'gpt-4.1-mini', stream: true, messages: [{ role: 'user', content: 'tell me a short story please' }] });
      const arrivals: number[] = [];
      let text = '';
      let sawUsage = false;
      for await (const chunk of stream) {
        arrivals.push(Date.now() - started);
        text += chunk.choices[0]?.delta?.content ?? '';
        if (chunk.usage) sawUsage = true;
        expect(chunk.choices.length).toBeGreaterThan(0);
      }
      expect(text).toContain('tell me a short story');
      expect(sawUsage).toBe(false);
      // Passed through event by event, not buffered: the chunks arrived spread over time.
      expect(arrivals[arrivals.length - 1]! - arrivals[0]!).toBeGreaterThanOrEqual(60);
      const up = lastUpstream('/v1/chat/completions').body as { stream_options: { include_usage: boolean } };
      expect(up.stream_options.include_usage).toBe(true);
      const line = await env.sidecar.waitForLog((l) => l.msg === 'request' && l.stream === true && l.endpoint === 'chat.completions');
      expect(line.output_tokens).toBeGreaterThan(0);
      expect(line.ttft_ms).toBeGreaterThan(0);
      expect(line.ttft_ms as number).toBeLessThan(line.latency_ms as number);
    } finally {
      env.sim.setOptions({ streamDelayMs: 0 });
    }
  });

  it('keeps the usage chunk when the app asked for it', async () => {
    const stream = await env.client.chat.completions.create({ model: 'gpt-4.1-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'count me' }] });
    let usage: unknown;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    expect(usage).toMatchObject({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) });
  });

  it('proxies the Responses API, plain and streamed', async () => {
    const plain = await env.client.responses.create({ model: 'gpt-4.1-mini', input: 'Summarise my ticket' });
    expect(plain.output_text).toContain('Summarise my ticket');
    const stream = env.client.responses.stream({ model: 'gpt-4.1-mini', input: 'Stream it' });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    const final = await stream.finalResponse();
    expect(types[0]).toBe('response.created');
    expect(types).toContain('response.output_text.delta');
    expect(types[types.length - 1]).toBe('response.completed');
    expect(final.usage?.output_tokens).toBeGreaterThan(0);
    const line = await env.sidecar.waitForLog((l) => l.msg === 'request' && l.stream === true && l.endpoint === 'responses');
    expect(line.input_tokens).toBe(final.usage?.input_tokens);
    expect(line.output_tokens).toBe(final.usage?.output_tokens);
  });

  it('proxies embeddings (the SDK asks for base64) and moderations', async () => {
    const emb = await env.client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] });
    expect(emb.data).toHaveLength(2);
    expect(emb.data[0]?.embedding).toHaveLength(1536);
    expect((lastUpstream('/v1/embeddings').body as { encoding_format: string }).encoding_format).toBe('base64');
    const mod = await env.client.moderations.create({ model: 'omni-moderation-latest', input: 'a friendly hello' });
    expect(mod.results[0]?.flagged).toBe(false);
  });
});

describe('what never crosses', () => {
  it("drops the app's authorization and its envelope headers", async () => {
    await env.client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-envelope-user': 'user-7', cookie: 'a=b' } });
    const up = lastUpstream('/v1/chat/completions');
    expect(up.headers.authorization).toBe(`Bearer ${TEST_KEY}`);
    expect(JSON.stringify(up.headers)).not.toContain('sk-test-placeholder-from-app');
    expect(up.headers['x-envelope-user']).toBeUndefined();
    expect(up.headers.cookie).toBeUndefined();
    const line = await env.sidecar.waitForLog((l) => l.msg === 'request' && typeof l.user === 'string');
    expect(line.user).not.toBe('user-7');
    expect(line.user).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('other endpoints', () => {
  it('lists only the allowed models, with aliases', async () => {
    const ids: string[] = [];
    for await (const m of env.client.models.list()) ids.push(m.id);
    expect(ids.sort()).toEqual(['fast', 'gpt-4.1-mini', 'gpt-4.1-nano', 'omni-moderation-latest', 'text-embedding-3-small']);
    expect((await env.client.models.retrieve('fast')).id).toBe('gpt-4.1-nano');
    await expect(env.client.models.retrieve('gpt-4o')).rejects.toMatchObject({ status: 403, code: 'model_not_allowed' });
  });

  it('uploads a batch file the policy leaves alone unchanged, streams downloads, and passes batches on', async () => {
    const content = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ custom_id: `c${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4.1-mini', messages: [{ role: 'user', content: `n${i}` }] } })).join('\n');
    const file = await env.client.files.create({ file: await toFile(Buffer.from(content), 'batch.jsonl'), purpose: 'batch' });
    expect(file.bytes).toBe(Buffer.byteLength(content));
    const back = await (await env.client.files.content(file.id)).text();
    expect(back).toBe(content);
    const batch = await env.client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    expect((await env.client.batches.retrieve(batch.id)).id).toBe(batch.id);
    expect(lastUpstream('/v1/files').headers.authorization).toBe(`Bearer ${TEST_KEY}`);
  });
});

describe('telemetry', () => {
  it('writes one log line per request and OpenTelemetry-named metrics', async () => {
    // Counted by request id: a line of an earlier test may still be on its way in.
    await env.client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'metrics' }] }, { headers: { 'x-request-id': 'telemetry-ok' } });
    await env.client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'refused' }] }, { headers: { 'x-request-id': 'telemetry-refused' } }).catch(() => undefined);
    await env.sidecar.waitForLog((l) => l.msg === 'request' && l.error_code === 'model_not_allowed');
    await new Promise((r) => setTimeout(r, 100));
    const lines = env.sidecar.requestLogs().filter((l) => String(l.request_id).startsWith('telemetry-'));
    expect(lines.map((l) => l.request_id).sort()).toEqual(['telemetry-ok', 'telemetry-refused']);
    const metrics = await (await fetch(`${env.sidecar.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/gen_ai_client_token_usage_bucket\{.*gen_ai_token_type="input".*\}/);
    expect(metrics).toMatch(/gen_ai_client_operation_duration_seconds_count\{.*gen_ai_request_model="gpt-4.1-mini"/);
    expect(metrics).toMatch(/ai_envelope_requests_total\{route="shop\/main",endpoint="chat.completions",status="403",error_code="model_not_allowed",prompt_version=""\} 1/);
    // The event loop's delay is still sampled (every 100 ms, not prom-client's 10: an idle sidecar sleeps).
    expect(metrics).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
    const usage = (await (await fetch(`${env.sidecar.adminUrl}/usage`)).json()) as { routes: Record<string, { requests: number; input_tokens: number }> };
    expect(usage.routes['shop/main']?.requests).toBeGreaterThan(0);
    expect(usage.routes['shop/main']?.input_tokens).toBeGreaterThan(0);
  });
});

describe('an app that hangs up mid-stream', () => {
  it('closes the upstream stream and still writes exactly one record', async () => {
    env.sim.setOptions({ streamDelayMs: 20 });
    try {
      const before = env.sidecar.requestLogs().length;
      const controller = new AbortController();
      const stream = await env.client.chat.completions.create(
        { model: 'gpt-4.1-mini', stream: true, messages: [{ role: 'user', content: 'LONG_REPLY then I leave' }] },
        { signal: controller.signal, headers: { 'x-request-id': 'leaver-1' } },
      );
      let n = 0;
      await (async () => {
        for await (const _ of stream) if (++n === 3) controller.abort();
      })().catch(() => undefined);
      const line = await env.sidecar.waitForLog((l) => l.msg === 'request' && l.request_id === 'leaver-1');
      expect(line.status).toBe(499);
      expect(line.error_code).toBe('client_closed');
      await new Promise((r) => setTimeout(r, 300));
      expect(env.sidecar.requestLogs().length - before).toBe(1);
      const metrics = await (await fetch(`${env.sidecar.adminUrl}/metrics`)).text();
      expect(metrics).toMatch(/ai_envelope_in_flight_requests\{route="shop\/main"\} 0/);
      expect(metrics).toMatch(/ai_envelope_requests_total\{route="shop\/main",endpoint="chat.completions",status="499",error_code="client_closed",prompt_version=""\} 1/);
    } finally {
      env.sim.setOptions({ streamDelayMs: 0 });
    }
  });
});
