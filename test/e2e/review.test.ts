// The human review queue through the real CLI with the official SDK: an answer that breaks the
// output contract (plain and streamed) and an input moderation flags are held, never returned;
// the app gets review_pending with an id and later the outcome; reviewers work the queue on the
// admin port and with `ai-envelope review`, with their route's token; nothing is lost across a
// restart; an approved input goes through once.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { routeManifest, simRoute, startEnv, type Env } from '../support/fixtures.ts';
import { startSidecarProcess, type SidecarProcess } from '../support/sidecar-process.ts';
import { startRedis } from '../support/redis.ts';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const TOKEN = 'reviewers-token-for-tests-0123';
const schema = { type: 'object', properties: { category: { type: 'string', enum: ['billing', 'shipping'] } }, required: ['category'], additionalProperties: false };
const reviewed = { tokenSecretRef: { name: 'reviewers', key: 'token' }, retentionHours: 24 };

let env: Env;
let sidecar: SidecarProcess;
type APIError = InstanceType<typeof OpenAI.APIError>;
const client = (route: string) => new OpenAI({ apiKey: 'sk-test-app', baseURL: sidecar.url, defaultHeaders: { 'x-envelope-route': route } });
const ask = (route: string, content: string, headers: Record<string, string> = {}) => client(route).chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content }] }, { headers });
const refusal = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a refusal'); }, (e: unknown) => e as APIError);
const admin = (path: string, init: RequestInit = {}, token = TOKEN) =>
  fetch(`${sidecar.adminUrl}${path}`, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}) } });
const outcome = async (id: string) => (await fetch(`${sidecar.url.replace(/\/v1$/, '')}/envelope/reviews/${id}`)).json() as Promise<Record<string, unknown>>;
const review = (args: string[], extraEnv: Record<string, string> = {}) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [CLI, 'review', ...args, '--url', sidecar.adminUrl], { env: { PATH: process.env.PATH ?? '', AI_ENVELOPE_REVIEW_TOKEN: TOKEN, ...extraEnv } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
const metric = async (labels: string) => {
  const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('ai_envelope_reviews_total{') && labels.split(',').every((p) => l.includes(p)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
};

beforeAll(async () => {
  env = await startEnv({
    routes: (sim) => [
      routeManifest('held', simRoute(sim, { output: { jsonSchema: schema, onInvalid: 'review' }, review: reviewed })),
      routeManifest('moderated', simRoute(sim, { moderation: { input: true, onFlagged: 'review' }, review: reviewed })),
      routeManifest('other-team', simRoute(sim, { output: { jsonSchema: schema, onInvalid: 'review' }, review: { tokenSecretRef: { name: 'other-reviewers', key: 'token' } } })),
    ],
    stateDir: true,
  });
  env.secrets.write('reviewers', { token: `${TOKEN}\n` });
  env.secrets.write('other-reviewers', { token: 'another-team-token-4567' });
  // The secrets exist now; a sidecar started on the same state folder is the one under test.
  await env.sidecar.stop('SIGTERM');
  sidecar = await startSidecarProcess({ config: env.configPath, secretsDir: env.secrets.root, args: ['--state-dir', join(env.dir, 'state')] });
});
afterAll(async () => {
  await sidecar?.stop('SIGKILL');
  await env?.close();
});

describe('review queue', () => {
  let answerId = '';

  it('holds an answer that breaks the contract: 409 review_pending with an id, final, nothing half-valid', async () => {
    const err = await refusal(ask('held', 'BROKEN_JSON'));
    expect(err.status).toBe(409);
    expect(err.code).toBe('review_pending');
    answerId = err.headers?.get('x-envelope-review-id') ?? '';
    expect(answerId).toMatch(/^rev_[0-9a-f]{24}$/);
    expect(err.message).toContain(answerId);
    expect(err.headers?.get('x-should-retry')).toBe('false');
    // One upstream call: neither the sidecar nor the SDK retried a held answer.
    expect(env.sim.requests.filter((r) => r.path === '/v1/chat/completions')).toHaveLength(1);
    expect(await outcome(answerId)).toMatchObject({ object: 'envelope.review', id: answerId, status: 'pending', reason: 'output_invalid', route: 'shop/held' });
    expect(await outcome(answerId)).not.toHaveProperty('output_text');
    expect(await metric('route="shop/held",reason="output_invalid",event="held"')).toBe(1);
  });

  it('shows content to the route’s reviewers only', async () => {
    expect((await admin('/reviews', {}, '')).status).toBe(401);
    expect(((await (await admin('/reviews', {}, 'another-team-token-4567')).json()) as { data: unknown[] }).data).toEqual([]);
    expect((await admin(`/reviews/${answerId}`, {}, 'another-team-token-4567')).status).toBe(404);
    const list = (await (await admin('/reviews?status=pending')).json()) as { data: Array<{ id: string; reason: string }> };
    expect(list.data.map((i) => i.id)).toEqual([answerId]);
    const shown = (await (await admin(`/reviews/${answerId}`)).json()) as { request: { messages: unknown[] }; answer: string; details: string[] };
    expect(JSON.stringify(shown.request.messages)).toContain('BROKEN_JSON');
    expect(shown.answer).toBeTruthy();
    expect(shown.details.join(' ')).toContain('not valid JSON');
    const listed = await review(['list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(answerId);
    expect((await review(['list'], { AI_ENVELOPE_REVIEW_TOKEN: 'wrong-token' })).stdout).toBe('no reviews\n');
  });

  it('keeps the queue across a restart', async () => {
    expect(await sidecar.stop('SIGTERM')).toBe(0);
    sidecar = await startSidecarProcess({ config: env.configPath, secretsDir: env.secrets.root, args: ['--state-dir', join(env.dir, 'state')] });
    expect(await outcome(answerId)).toMatchObject({ status: 'pending' });
    expect((await review(['show', answerId])).stdout).toContain('BROKEN_JSON');
  });

  it('takes an edit that meets the schema, refuses one that does not, and gives the app the outcome', async () => {
    const bad = await review(['edit', answerId, '--output-text', '{"category": "refunds"}']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('output schema');
    const good = await review(['edit', answerId, '--output-text', '{"category": "billing"}', '--reviewer', 'ana', '--note', 'fixed the JSON']);
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ status: 'edited', decision: { reviewer: 'ana', answer: '{"category": "billing"}' } });
    const again = await review(['approve', answerId]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already decided');
    const out = await outcome(answerId);
    expect(out).toMatchObject({ status: 'edited', output_text: '{"category": "billing"}' });
    // The app sees the outcome, not the reviewers' notes.
    expect(JSON.stringify(out)).not.toContain('fixed the JSON');
    const decided = await sidecar.waitForLog((l) => l.event === 'review_decided');
    expect(decided).toMatchObject({ review_id: answerId, status: 'edited', reviewer: 'ana' });
    expect(JSON.stringify(decided)).not.toContain('billing');
    expect(await metric('route="shop/held",event="edited"')).toBe(1);
  });

  it('holds a streamed answer that breaks the contract, ending the stream with review_pending', async () => {
    const stream = await client('held').chat.completions.create({ model: 'gpt-4.1-mini', stream: true, messages: [{ role: 'user', content: 'BROKEN_JSON' }] });
    const ended = await (async () => {
      for await (const _ of stream) {
        // drain
      }
    })().then(() => undefined, (e: unknown) => e as APIError);
    expect((ended as { code?: string }).code).toBe('review_pending');
    const held = await sidecar.waitForLog((l) => l.msg === 'request' && l.stream === true && typeof l.review_id === 'string');
    expect(await outcome(held.review_id as string)).toMatchObject({ status: 'pending', reason: 'output_invalid' });
  });

  it('holds flagged input, and lets it through once after a reviewer approves it', async () => {
    const err = await refusal(ask('moderated', 'FLAGME please'));
    expect(err.code).toBe('review_pending');
    const id = err.headers?.get('x-envelope-review-id') as string;
    expect(await outcome(id)).toMatchObject({ status: 'pending', reason: 'moderation_flagged' });
    const modelCalls = () => env.sim.requests.filter((r) => r.path === '/v1/chat/completions').length;
    const before = modelCalls();
    // Not yet approved: the id alone opens nothing.
    expect((await refusal(ask('moderated', 'FLAGME please', { 'x-envelope-review-id': id }))).code).toBe('review_pending');
    const pendingIds = ((await (await admin('/reviews?status=pending')).json()) as { data: Array<{ id: string }> }).data.map((i) => i.id);
    for (const other of pendingIds.filter((p) => p !== id)) await admin(`/reviews/${other}/reject`, { method: 'POST', body: '{}' });

    expect((await review(['approve', id, '--note', 'a quote from a novel'])).code).toBe(0);
    expect(await outcome(id)).toMatchObject({ status: 'approved' });
    // Another input with the same id is not let through; the approved one is, once.
    expect((await refusal(ask('moderated', 'FLAGME something else', { 'x-envelope-review-id': id }))).code).toBe('review_pending');
    const through = await ask('moderated', 'FLAGME please', { 'x-envelope-review-id': id });
    expect(through.choices).toHaveLength(1);
    expect(modelCalls()).toBe(before + 1);
    expect((await refusal(ask('moderated', 'FLAGME please', { 'x-envelope-review-id': id }))).code).toBe('review_pending');
    expect(await metric('route="shop/moderated",event="released"')).toBe(1);
  });

  it('explains what is wrong with a decision, in OpenAI’s error shape', async () => {
    const err = await refusal(ask('held', 'BROKEN_JSON'));
    const id = err.headers?.get('x-envelope-review-id') as string;
    const notJSON = await admin(`/reviews/${id}/approve`, { method: 'POST', body: '{"note":' });
    expect(notJSON.status).toBe(400);
    expect(await notJSON.json()).toMatchObject({ error: { type: 'envelope_error', code: 'invalid_request' } });
    const stray = await admin(`/reviews/${id}/approve`, { method: 'POST', body: JSON.stringify({ output_text: 'x' }) });
    expect(((await stray.json()) as { error: { param: string } }).error.param).toBe('output_text');
    const unknownField = await admin(`/reviews/${id}/reject`, { method: 'POST', body: JSON.stringify({ verdict: 'no' }) });
    expect(((await unknownField.json()) as { error: { message: string } }).error.message).toContain('verdict');
    expect((await admin(`/reviews/${id}/shred`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect((await review(['approve'])).code).toBe(2);
    expect((await review(['list'], { AI_ENVELOPE_REVIEW_TOKEN: '' })).stderr).toContain('reviewer token is needed');
  });
});

describe('review queue shared through Redis', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let shared: Env;
  let second: SidecarProcess;
  beforeAll(async () => {
    redis = await startRedis();
    shared = await startEnv({ routes: (sim) => [routeManifest('held', simRoute(sim, { output: { jsonSchema: schema, onInvalid: 'review' }, review: reviewed }))] });
    shared.secrets.write('reviewers', { token: TOKEN });
    await shared.sidecar.stop('SIGTERM');
    shared.sidecar = await startSidecarProcess({ config: shared.configPath, secretsDir: shared.secrets.root, args: ['--redis-url', redis.url] });
    second = await startSidecarProcess({ config: shared.configPath, secretsDir: shared.secrets.root, args: ['--redis-url', redis.url] });
  });
  afterAll(async () => {
    await second?.stop('SIGKILL');
    await shared?.close();
    await redis?.stop();
  });

  it('holds at one replica, is decided at another, and the outcome is read back at the first', async () => {
    const app = new OpenAI({ apiKey: 'sk-test-app', baseURL: shared.sidecar.url, defaultHeaders: { 'x-envelope-route': 'held' } });
    const err = await refusal(app.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'BROKEN_JSON' }] }));
    const id = err.headers?.get('x-envelope-review-id') as string;
    const atSecond = (path: string, init: RequestInit = {}) => fetch(`${second.adminUrl}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } });
    const listed = (await (await atSecond('/reviews?status=pending')).json()) as { data: Array<{ id: string }> };
    expect(listed.data.map((i) => i.id)).toEqual([id]);
    expect((await atSecond(`/reviews/${id}/edit`, { method: 'POST', body: JSON.stringify({ output_text: '{"category": "shipping"}' }) })).status).toBe(200);
    const read = await (await fetch(`${shared.sidecar.url.replace(/\/v1$/, '')}/envelope/reviews/${id}`)).json();
    expect(read).toMatchObject({ status: 'edited', output_text: '{"category": "shipping"}' });
  });
});
