// Content contracts through the real CLI with the official SDK: what goes in is allowed and
// minimal, what comes out is usable, plain and streamed.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { routeManifest, simRoute, startEnv, type Env } from '../support/fixtures.ts';

const schema = { type: 'object', properties: { category: { type: 'string', enum: ['billing', 'shipping'] } }, required: ['category'], additionalProperties: false };
const EMAIL = 'jane.doe@example.com';
const CARD = '4111 1111 1111 1111';
const KEY = 'sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789';

let env: Env;
const client = (route: string) => new OpenAI({ apiKey: 'sk-test-app', baseURL: env.sidecar.url, maxRetries: 0, defaultHeaders: { 'x-envelope-route': route } });
const say = (route: string, content: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  client(route).chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content }], ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming, { headers }).withResponse();
const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
const upstream = (path = '/v1/chat/completions') => env.sim.requests.filter((r) => r.path === path);
const lastBody = (path?: string) => upstream(path).at(-1)?.body as Record<string, unknown>;

beforeAll(async () => {
  env = await startEnv({
    routes: (sim) => {
      const r = (name: string, spec: Record<string, unknown>) => routeManifest(name, simRoute(sim, spec));
      return [
        r('redact', { input: { redact: ['email', 'credit_card', 'secret'], onMatch: 'redact' }, logging: { content: 'redacted' } }),
        r('block', { input: { redact: ['email', 'credit_card'], onMatch: 'block' } }),
        r('moderated', { moderation: { input: true, onUnavailable: 'block' } }),
        r('moderated-open', { moderation: { input: true, onUnavailable: 'allow' } }),
        r('shaped', {
          data: { store: false, dropMetadata: true },
          prompt: { version: 'v3', instructions: 'You triage support tickets.' },
          input: { forbiddenParameters: ['logprobs'] },
          logging: { content: 'full' },
        }),
        r('reject', { output: { jsonSchema: schema, onInvalid: 'reject' } }),
        r('repair', { output: { jsonSchema: schema, onInvalid: 'repair' } }),
        r('fallback', { model: { allowed: ['gpt-4.1-mini', 'gpt-4.1-nano'], fallbacks: ['gpt-4.1-nano'] }, output: { jsonSchema: schema, onInvalid: 'fallback' } }),
        r('tools', { output: { allowedTools: ['lookup_order'] } }),
      ];
    },
  });
});
afterAll(async () => {
  await env?.close();
});
beforeEach(() => env.sim.reset());

describe('redaction', () => {
  it('replaces personal data and secrets with typed placeholders before the call, plain and streamed', async () => {
    const text = `Mail ${EMAIL}, card ${CARD}, my key is ${KEY}`;
    await say('redact', text, {}, { 'x-request-id': 'redact-1' });
    const sent = JSON.stringify(lastBody());
    for (const v of [EMAIL, CARD, KEY]) expect(sent).not.toContain(v);
    expect(sent).toContain('[EMAIL]');
    expect(sent).toContain('[CREDIT_CARD]');
    expect(sent).toContain('[SECRET]');
    const line = await env.sidecar.waitForLog((l) => l.request_id === 'redact-1');
    expect(line.redactions).toEqual({ email: 1, credit_card: 1, secret: 1 });
    // logging.content: redacted logs the text, after redaction.
    expect(String(line.prompt)).toContain('[EMAIL]');
    expect(JSON.stringify(line)).not.toContain(EMAIL);
    const stream = await client('redact').chat.completions.create({ model: 'gpt-4.1-mini', stream: true, messages: [{ role: 'user', content: text }] });
    for await (const _ of stream) {
      // drain
    }
    expect(JSON.stringify(lastBody())).not.toContain(EMAIL);
    const metrics = await (await fetch(`${env.sidecar.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/ai_envelope_redactions_total\{route="shop\/redact",kind="email",action="redacted"\} 2/);
  });

  it('blocks with the kinds found and never the values', async () => {
    const err = await failure(say('block', `Contact ${EMAIL} or charge ${CARD}`));
    expect(err?.status).toBe(400);
    expect(err?.code).toBe('pii_blocked');
    expect(err?.message).toContain('credit_card, email');
    expect(err?.message).not.toContain(EMAIL);
    expect(upstream()).toHaveLength(0);
    expect(env.sidecar.output()).not.toContain(EMAIL);
  });
});

describe('moderation', () => {
  it('refuses flagged input with its categories, before the model is called', async () => {
    const err = await failure(say('moderated', 'FLAGME right now'));
    expect(err?.status).toBe(400);
    expect(err?.code).toBe('moderation_flagged');
    expect(err?.message).toContain('violence');
    expect(upstream('/v1/moderations')).toHaveLength(1);
    expect(upstream()).toHaveLength(0);
    expect((await say('moderated', 'a kind question')).data.choices).toHaveLength(1);
  });

  it('fails closed when the moderation endpoint is down, or open when the route says so', async () => {
    env.sim.fault({ type: 'error', status: 500, path: '/v1/moderations', times: 100 });
    const err = await failure(say('moderated', 'FLAGME while moderation is down'));
    expect(err?.status).toBe(503);
    expect(err?.message).toContain('could not be moderated');
    expect(upstream()).toHaveLength(0);
    const open = await say('moderated-open', 'a question while moderation is down', {}, { 'x-request-id': 'mod-open' });
    expect(open.data.choices).toHaveLength(1);
    await env.sidecar.waitForLog((l) => l.event === 'moderation_unavailable' && l.request_id === 'mod-open');
  });
});

describe('data minimisation, user ids and the prompt', () => {
  it('forces store off, drops metadata, hashes the user and puts the route prompt first', async () => {
    await say('shaped', 'Where is my parcel?', { store: true, metadata: { ticket: 'T-1' }, user: 'alice@example.com' }, { 'x-envelope-user': 'alice@example.com', 'x-request-id': 'shaped-1' });
    const body = lastBody();
    expect(body.store).toBe(false);
    expect(body.metadata).toBeUndefined();
    expect(body.user).toBeUndefined();
    expect(body.safety_identifier).toMatch(/^ae-[0-9a-f]{32}$/);
    expect(JSON.stringify(body)).not.toContain('alice');
    expect((body.messages as unknown[])[0]).toEqual({ role: 'system', content: 'You triage support tickets.' });
    expect(body.prompt_cache_key).toBe('shop/shaped@v3');
    const line = await env.sidecar.waitForLog((l) => l.request_id === 'shaped-1');
    expect(line.prompt_version).toBe('v3');
    expect(String(line.prompt)).toContain('Where is my parcel?');
    expect(String(line.completion)).toContain('Simulated reply');
  });

  it('puts the prompt before the app’s instructions in the Responses API', async () => {
    await client('shaped').responses.create({ model: 'gpt-4.1-mini', input: 'hi', instructions: 'Be brief.' });
    expect(lastBody('/v1/responses').instructions).toBe('You triage support tickets.\n\nBe brief.');
  });

  it('refuses a forbidden parameter by name', async () => {
    const err = await failure(say('shaped', 'x', { logprobs: true }));
    expect(err?.status).toBe(400);
    expect(err?.param).toBe('logprobs');
  });

  it('logs no text at all by default', async () => {
    await say('reject', 'nothing of this in the logs', {}, { 'x-request-id': 'quiet-1' });
    const line = await env.sidecar.waitForLog((l) => l.request_id === 'quiet-1');
    expect(line.prompt).toBeUndefined();
    expect(env.sidecar.output()).not.toContain('nothing of this in the logs');
  });
});

describe('structured output', () => {
  it('asks the API for the route schema and passes answers that satisfy it', async () => {
    const { data } = await say('reject', 'Categorise: my invoice is wrong');
    expect(JSON.parse(data.choices[0]?.message.content ?? '')).toEqual({ category: 'billing' });
    const sent = lastBody() as { response_format: { type: string; json_schema: { schema: unknown; strict: boolean } } };
    expect(sent.response_format.type).toBe('json_schema');
    expect(sent.response_format.json_schema.schema).toEqual(schema);
    expect(sent.response_format.json_schema.strict).toBe(true);
    const r = await client('reject').responses.create({ model: 'gpt-4.1-mini', input: 'Categorise: parcel lost' });
    expect(JSON.parse(r.output_text)).toEqual({ category: 'billing' });
    expect((lastBody('/v1/responses').text as { format: { type: string } }).format.type).toBe('json_schema');
  });

  it('rejects broken and schema-breaking JSON with 422 and located errors', async () => {
    const broken = await failure(say('reject', 'BROKEN_JSON'));
    expect(broken?.status).toBe(422);
    expect(broken?.code).toBe('output_invalid');
    expect(broken?.message).toContain('not valid JSON');
    const wrong = await failure(say('reject', 'WRONG_JSON'));
    expect(wrong?.code).toBe('output_invalid');
    expect(wrong?.message).toContain("'category'");
  });

  it('repairs once with the validation errors', async () => {
    const { data } = await say('repair', 'BROKEN_JSON', {}, { 'x-request-id': 'repair-1' });
    expect(JSON.parse(data.choices[0]?.message.content ?? '')).toEqual({ category: 'billing' });
    const calls = upstream();
    expect(calls).toHaveLength(2);
    expect(JSON.stringify(calls[1]?.body)).toContain('not valid JSON');
    const line = await env.sidecar.waitForLog((l) => l.request_id === 'repair-1');
    expect(line.output_action).toBe('repaired');
    // Both calls were billed, and both are counted.
    const usage = calls.length;
    expect(usage).toBe(2);
    expect(line.cost_usd as number).toBeGreaterThan(0);
  });

  it('hands an invalid answer to the fallback model', async () => {
    const { data, response } = await say('fallback', 'WRONG_JSON@gpt-4.1-mini');
    expect(JSON.parse(data.choices[0]?.message.content ?? '')).toEqual({ category: 'billing' });
    expect(response.headers.get('x-envelope-model')).toBe('gpt-4.1-nano');
  });

  it('checks a stream when it completes and ends it with an error the SDK raises', async () => {
    const run = async (content: string) => {
      const stream = await client('reject').chat.completions.create({ model: 'gpt-4.1-mini', stream: true, messages: [{ role: 'user', content }] });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      return text;
    };
    expect(JSON.parse(await run('fine'))).toEqual({ category: 'billing' });
    const err = (await run('WRONG_JSON').catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.code).toBe('output_invalid');
  });
});

describe('tools', () => {
  const tools = (first: string, second: string): OpenAI.ChatCompletionTool[] =>
    [first, second].map((name) => ({ type: 'function', function: { name, parameters: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] } } }));

  it('passes calls to allowed tools and refuses others, plain and streamed', async () => {
    const ok = await say('tools', 'CALL_TOOL for order 7', { tools: tools('lookup_order', 'delete_account') });
    expect(ok.data.choices[0]?.message.tool_calls?.[0]).toMatchObject({ function: { name: 'lookup_order' } });
    const err = await failure(say('tools', 'CALL_TOOL now', { tools: tools('delete_account', 'lookup_order') }));
    expect(err?.status).toBe(422);
    expect(err?.code).toBe('tool_not_allowed');
    expect(err?.message).toContain('delete_account');
    const stream = await client('tools').chat.completions.create({ model: 'gpt-4.1-mini', stream: true, tools: tools('delete_account', 'lookup_order'), messages: [{ role: 'user', content: 'CALL_TOOL now' }] });
    const streamed = await (async () => {
      for await (const _ of stream) {
        // drain
      }
    })().catch((e: unknown) => e);
    expect((streamed as { code?: string }).code).toBe('tool_not_allowed');
  });
});
