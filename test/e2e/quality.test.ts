// Quality signals through the real CLI with the official SDK: repeated inputs, answers that met
// (or needed help to meet) the output contract, refused tools, and the app's own verdicts on the
// feedback endpoint, all as metrics by route, model and prompt version and as log fields.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { routeManifest, simRoute, startEnv, type Env } from '../support/fixtures.ts';

const schema = { type: 'object', properties: { category: { type: 'string', enum: ['billing', 'shipping'] } }, required: ['category'], additionalProperties: false };
const tools = (...names: string[]) => names.map((name) => ({ type: 'function' as const, function: { name, parameters: { type: 'object', properties: {} } } }));

let env: Env;
const client = (route: string, user?: string) =>
  new OpenAI({ apiKey: 'sk-test-app', baseURL: env.sidecar.url, maxRetries: 0, defaultHeaders: { 'x-envelope-route': route, ...(user ? { 'x-envelope-user': user } : {}) } });
const ask = (route: string, content: string, user?: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  client(route, user).chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content }], ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming, { headers }).withResponse();
const metrics = async () => (await fetch(`${env.sidecar.adminUrl}/metrics`)).text();
const series = (text: string, name: string, labels: Record<string, string>) => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
};
const record = async (id: string) => env.sidecar.waitForLog((l) => l.msg === 'request' && l.request_id === id);
const feedback = (body: unknown) =>
  fetch(`${env.sidecar.url.replace(/\/v1$/, '')}/envelope/feedback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

beforeAll(async () => {
  env = await startEnv({
    routes: (sim) => [
      routeManifest('triage', simRoute(sim, { prompt: { version: 'v7', instructions: 'Categorise tickets.' }, output: { jsonSchema: schema, onInvalid: 'repair' } })),
      routeManifest('tools', simRoute(sim, { output: { allowedTools: ['lookup_order'] } })),
    ],
  });
});
afterAll(async () => {
  await env?.close();
});

describe('quality signals', () => {
  it('marks the same input from the same user within the window as a repeat, and no other', async () => {
    const first = await ask('triage', 'my invoice is wrong', 'user-1');
    const again = await ask('triage', 'my invoice is wrong', 'user-1');
    const otherUser = await ask('triage', 'my invoice is wrong', 'user-2');
    const otherText = await ask('triage', 'my invoice is still wrong', 'user-1');
    const ids = [first, again, otherUser, otherText].map((r) => r.response.headers.get('x-request-id') as string);
    const logged = await Promise.all(ids.map(record));
    expect(logged.map((l) => l.repeat === true)).toEqual([false, true, false, false]);
    const m = await metrics();
    expect(series(m, 'ai_envelope_quality_signals_total', { route: 'shop/triage', prompt_version: 'v7', signal: 'repeated_input' })).toBe(1);
  });

  it('counts answers that met the output contract, and those that needed a repair', async () => {
    const before = await metrics();
    const valid = (l: string) => series(l, 'ai_envelope_quality_signals_total', { route: 'shop/triage', gen_ai_request_model: 'gpt-4.1-mini', prompt_version: 'v7', signal: 'output_valid' });
    const repaired = (l: string) => series(l, 'ai_envelope_quality_signals_total', { route: 'shop/triage', signal: 'output_repaired' });
    const fixed = await ask('triage', 'BROKEN_JSON');
    expect(JSON.parse(fixed.data.choices[0]?.message.content ?? '')).toEqual({ category: 'billing' });
    const line = await record(fixed.response.headers.get('x-request-id') as string);
    expect(line).toMatchObject({ output_checked: true, output_action: 'repaired' });
    const after = await metrics();
    expect(valid(after) - valid(before)).toBe(1);
    expect(repaired(after) - repaired(before)).toBe(1);
  });

  it('counts a tool call refused by the allow-list', async () => {
    const err = await ask('tools', 'CALL_TOOL now', undefined, { tools: tools('delete_account') }).catch((e: InstanceType<typeof OpenAI.APIError>) => e);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('tool_not_allowed');
    await env.sidecar.waitForLog((l) => l.msg === 'request' && l.error_code === 'tool_not_allowed');
    expect(series(await metrics(), 'ai_envelope_quality_signals_total', { route: 'shop/tools', signal: 'tool_refused' })).toBe(1);
  });

  it('takes the app’s verdict on an answer by request id, once, and says what is wrong otherwise', async () => {
    const { response } = await ask('triage', 'parcel lost', 'user-3', {}, { 'x-envelope-feedback': 'true' });
    const id = response.headers.get('x-request-id') as string;
    // A call that did not ask to be reported on is not remembered.
    const unasked = (await ask('triage', 'parcel found', 'user-3')).response.headers.get('x-request-id') as string;
    expect((await feedback({ request_id: unasked, outcome: 'accepted' })).status).toBe(404);

    const res = await feedback({ request_id: id, outcome: 'edited' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ object: 'envelope.feedback', request_id: id, outcome: 'edited', route: 'shop/triage' });
    expect(series(await metrics(), 'ai_envelope_feedback_total', { route: 'shop/triage', gen_ai_request_model: 'gpt-4.1-mini', prompt_version: 'v7', outcome: 'edited' })).toBe(1);
    const line = await env.sidecar.waitForLog((l) => l.msg === 'request' && l.feedback_for === id);
    expect(line).toMatchObject({ endpoint: 'feedback', status: 200, route: 'shop/triage', prompt_version: 'v7', feedback: 'edited' });

    const twice = await feedback({ request_id: id, outcome: 'accepted' });
    expect(twice.status).toBe(409);
    expect(twice.headers.get('x-should-retry')).toBe('false');
    expect(((await twice.json()) as { error: { message: string } }).error.message).toContain("already has the feedback 'edited'");

    const unknown = await feedback({ request_id: 'req_never_seen', outcome: 'accepted' });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { type: 'envelope_error', code: 'invalid_request', param: 'request_id' } });

    const badOutcome = await feedback({ request_id: id, outcome: 'loved' });
    expect(badOutcome.status).toBe(400);
    expect(await badOutcome.json()).toMatchObject({ error: { code: 'invalid_request', param: 'outcome' } });
    const extraField = await feedback({ request_id: id, outcome: 'accepted', comment: 'nice' });
    expect(((await extraField.json()) as { error: { message: string } }).error.message).toContain('comment');
    const notJSON = await feedback('{"request_id":');
    expect(notJSON.status).toBe(400);
    // Refused reports count nothing.
    expect(series(await metrics(), 'ai_envelope_feedback_total', { route: 'shop/triage', outcome: 'accepted' })).toBe(0);
  });
});
