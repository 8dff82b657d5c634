// Governed Batch API jobs and deferred calls, end to end: the official SDK against the real
// sidecar process, the simulator as upstream running batches through their lifecycle.
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { DEFAULT_MODELS } from '../../simulator/index.ts';
import { routeManifest, simRoute, startEnv, type Env } from '../support/fixtures.ts';
import { startSidecarProcess, type SidecarProcess } from '../support/sidecar-process.ts';

let env: Env | undefined;
let extra: SidecarProcess | undefined;
afterEach(async () => {
  await extra?.stop('SIGKILL');
  extra = undefined;
  await env?.close();
  env = undefined;
});

const budget = (name: string, limitUSD: number) => ({ apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIBudget', metadata: { name, namespace: 'shop' }, spec: { period: 'monthly', limitUSD, onExhausted: 'block' } });
const jsonl = (lines: unknown[]) => lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
const chatLine = (id: string, content: string, extraBody: Record<string, unknown> = {}) => ({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4.1-mini', messages: [{ role: 'user', content }], ...extraBody } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Usage {
  budgets: Record<string, { spent_usd: number; reserved_usd: number }>;
}
const budgetRow = async (adminUrl: string, name: string) => {
  const u = (await (await fetch(`${adminUrl}/usage`)).json()) as Usage;
  return Object.entries(u.budgets).find(([k]) => k.startsWith(`shop/${name}@`))?.[1];
};

async function until<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** The batch price of gpt-4.1-mini: $0.40 in, $1.60 out per 1M tokens, halved; nano-dollars rounded up per line. */
function batchCost(lines: Array<{ response: { body: { usage: { prompt_tokens: number; completion_tokens: number } } } }>): number {
  let nano = 0;
  for (const l of lines) nano += Math.ceil((l.response.body.usage.prompt_tokens * 400_000 + l.response.body.usage.completion_tokens * 1_600_000) / 2000);
  return nano / 1e9;
}

interface Job {
  id: string;
  status: string;
  custom_id: string;
  batch_id: string | null;
  response?: { status_code: number; body: { choices?: Array<{ message: { content: string } }>; error?: { code: string } } };
  error?: { code: string; message: string };
}
const job = async (sidecar: SidecarProcess, id: string) => (await (await fetch(`${sidecar.url}/envelope/deferred/${id}`)).json()) as Job;
const defer = async (client: OpenAI, content: string, model = 'gpt-4.1-mini', headers: Record<string, string> = {}) => {
  const { data, response } = await client.chat.completions.create({ model, messages: [{ role: 'user', content }] }, { headers }).withResponse();
  expect(response.status).toBe(202);
  return data as unknown as Job;
};

describe('governed batch uploads', () => {
  it('refuses a file whose lines break the route policy, naming line numbers and custom_ids', async () => {
    const e = (env = await startEnv({ routes: (sim) => [routeManifest('main', simRoute(sim, { input: { forbiddenParameters: ['logprobs'] } }))] }));
    const file = jsonl([
      chatLine('ok-1', 'fine'),
      chatLine('bad-model', 'hi', { model: 'gpt-5' }),
      chatLine('ok-1', 'duplicate id'),
      chatLine('forbidden', 'hi', { logprobs: true }),
    ]);
    const err = await e.client.files.create({ file: await toFile(Buffer.from(file), 'in.jsonl'), purpose: 'batch' }).catch((x: unknown) => x as InstanceType<typeof OpenAI.APIError>);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    const apiErr = err as InstanceType<typeof OpenAI.APIError>;
    expect(apiErr.status).toBe(400);
    expect(apiErr.message).toContain('3 of 4 lines');
    expect(apiErr.message).toContain("line 2 (custom_id 'bad-model'): Model 'gpt-5' is not allowed");
    expect(apiErr.message).toContain("line 3 (custom_id 'ok-1'): The custom_id 'ok-1' is used by an earlier line");
    expect(apiErr.message).toContain("line 4 (custom_id 'forbidden'): The parameter 'logprobs' is not allowed");
    expect((apiErr.error as { type: string }).type).toBe('envelope_error');
    expect(e.sim.requests.filter((r) => r.path.startsWith('/v1/files'))).toHaveLength(0);
  });

  it('refuses an upload over batch.maxUploadBytes', async () => {
    const e = (env = await startEnv({ routes: (sim) => [routeManifest('main', simRoute(sim, { batch: { maxUploadBytes: 2000 } }))] }));
    const file = jsonl(Array.from({ length: 50 }, (_, i) => chatLine(`l${i}`, 'a fairly ordinary question')));
    const err = (await e.client.files.create({ file: await toFile(Buffer.from(file), 'in.jsonl'), purpose: 'batch' }).catch((x: unknown) => x)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(413);
    expect(err.message).toContain('batch.maxUploadBytes');
  });

  it('uploads the governed copy, reserves at the batch price and settles from the output usage', async () => {
    const e = (env = await startEnv({
      routes: (sim) => [
        routeManifest('main', simRoute(sim, { limits: { maxOutputTokens: 40 }, input: { redact: ['email'] }, prompt: { version: 'v1', instructions: 'You are the shop assistant.' } })),
        budget('monthly', 50),
      ],
    }));
    const file = jsonl([chatLine('a', 'my email is jane@example.com', { max_completion_tokens: 5000 }), chatLine('b', 'second question')]);
    const uploaded = await e.client.files.create({ file: await toFile(Buffer.from(file), 'in.jsonl'), purpose: 'batch' });
    // What the upstream holds is the governed copy.
    const stored = (await (await e.client.files.content(uploaded.id)).text()).trim().split('\n').map((l) => JSON.parse(l) as { custom_id: string; body: { max_completion_tokens: number; messages: Array<{ role: string; content: string }> } });
    expect(stored.map((l) => l.custom_id)).toEqual(['a', 'b']);
    expect(stored[0]?.body.max_completion_tokens).toBe(40);
    expect(stored[0]?.body.messages[0]).toEqual({ role: 'system', content: 'You are the shop assistant.' });
    expect(stored[0]?.body.messages[1]?.content).not.toContain('jane@example.com');
    expect(stored[0]?.body.messages[1]?.content).toContain('[EMAIL');

    const batch = await e.client.batches.create({ input_file_id: uploaded.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const reserved = await budgetRow(e.sidecar.adminUrl, 'monthly');
    expect(reserved?.reserved_usd).toBeGreaterThan(0);
    expect(reserved?.spent_usd).toBe(0);
    const done = await until(async () => {
      const b = await e.client.batches.retrieve(batch.id);
      return b.status === 'completed' ? b : undefined;
    }, 'the batch to complete');
    const output = (await (await e.client.files.content(done.output_file_id as string)).text()).trim().split('\n').map((l) => JSON.parse(l));
    const row = await budgetRow(e.sidecar.adminUrl, 'monthly');
    expect(row?.reserved_usd).toBe(0);
    expect(row?.spent_usd).toBeCloseTo(batchCost(output), 12);
    const settled = await e.sidecar.waitForLog((l) => l.event === 'batch_settled');
    expect(settled).toMatchObject({ batch_id: batch.id, status: 'completed', lines: 2 });
    const metrics = await (await fetch(`${e.sidecar.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/ai_envelope_batch_settlements_total\{route="shop\/main",status="completed"\} 1/);
  });

  it('refuses a batch that a blocking budget cannot cover, and files not governed here', async () => {
    const e = (env = await startEnv({ routes: (sim) => [routeManifest('main', simRoute(sim)), budget('tiny', 0.0001)] }));
    // No output cap: each line reserves the model's maximum output, more than $0.0001 at any price.
    const uploaded = await e.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine('a', 'hi')])), 'in.jsonl'), purpose: 'batch' });
    const err = (await e.client.batches.create({ input_file_id: uploaded.id, endpoint: '/v1/chat/completions', completion_window: '24h' }).catch((x: unknown) => x)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(429);
    expect(err.code).toBe('budget_exhausted');
    expect(err.message).toContain("Budget 'shop/tiny' cannot cover this batch of 1 requests");
    expect(e.sim.requests.filter((r) => r.path === '/v1/batches')).toHaveLength(0);
    const stray = (await e.client.batches.create({ input_file_id: 'file-not-from-here', endpoint: '/v1/chat/completions', completion_window: '24h' }).catch((x: unknown) => x)) as InstanceType<typeof OpenAI.APIError>;
    expect(stray.status).toBe(400);
    expect(stray.message).toContain('was not uploaded through route');
  });

  it('releases the reservation of a cancelled batch, charging nothing that did not run', async () => {
    const e = (env = await startEnv({ routes: (sim) => [routeManifest('main', simRoute(sim, { limits: { maxOutputTokens: 20 } })), budget('monthly', 50)] }));
    e.sim.setOptions({ batchStepMs: 1000 });
    const uploaded = await e.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine('a', 'hi')])), 'in.jsonl'), purpose: 'batch' });
    const batch = await e.client.batches.create({ input_file_id: uploaded.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    expect((await budgetRow(e.sidecar.adminUrl, 'monthly'))?.reserved_usd).toBeGreaterThan(0);
    await e.client.batches.cancel(batch.id);
    await until(async () => ((await e.client.batches.retrieve(batch.id)).status === 'cancelled' ? true : undefined), 'the cancel');
    expect(await e.sidecar.waitForLog((l) => l.event === 'batch_settled')).toMatchObject({ batch_id: batch.id, status: 'cancelled', cost_usd: 0 });
    expect(await budgetRow(e.sidecar.adminUrl, 'monthly')).toMatchObject({ spent_usd: 0, reserved_usd: 0 });
  });

  it('settles a batch nobody asks about, by polling', async () => {
    const e = (env = await startEnv({ routes: (sim) => [routeManifest('main', simRoute(sim, { limits: { maxOutputTokens: 20 }, batch: { pollSeconds: 1 } })), budget('monthly', 50)] }));
    const uploaded = await e.client.files.create({ file: await toFile(Buffer.from(jsonl([chatLine('a', 'hi'), chatLine('b', 'there')])), 'in.jsonl'), purpose: 'batch' });
    const batch = await e.client.batches.create({ input_file_id: uploaded.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const settled = await e.sidecar.waitForLog((l) => l.event === 'batch_settled', 15_000);
    expect(settled.batch_id).toBe(batch.id);
    const row = await budgetRow(e.sidecar.adminUrl, 'monthly');
    expect(row?.reserved_usd).toBe(0);
    expect(row?.spent_usd).toBeCloseTo(settled.cost_usd as number, 12);
    expect(settled.cost_usd as number).toBeGreaterThan(0);
  });
});

describe('deferred calls', () => {
  it('answer at once with ids, run as one batch, and report failed lines per custom_id', async () => {
    const e = (env = await startEnv({ routes: (sim) => [routeManifest('main', simRoute(sim, { mode: 'batch', limits: { maxOutputTokens: 30 }, batch: { maxRequests: 3, maxAgeSeconds: 3600, pollSeconds: 1 } }))] }));
    // The upstream does not serve gpt-4.1-nano: that call fails in the batch, the others do not.
    e.sim.setOptions({ models: DEFAULT_MODELS.filter((m) => m !== 'gpt-4.1-nano') });
    const a = await defer(e.client, 'first deferred question');
    const b = await defer(e.client, 'second deferred question');
    expect(a.status).toBe('queued');
    expect(a.id).toMatch(/^defer_/);
    expect((await job(e.sidecar, a.id)).status).toBe('queued');
    expect(e.sim.requests.filter((r) => r.path === '/v1/chat/completions')).toHaveLength(0);
    const c = await defer(e.client, 'this model is gone', 'gpt-4.1-nano');
    const finished = await until(async () => {
      const j = await job(e.sidecar, a.id);
      return j.status === 'completed' ? j : undefined;
    }, 'deferred results');
    expect(finished.response?.status_code).toBe(200);
    expect(finished.response?.body.choices?.[0]?.message.content).toBeTruthy();
    expect((await job(e.sidecar, b.id)).status).toBe('completed');
    const failed = await job(e.sidecar, c.id);
    expect(failed.status).toBe('failed');
    expect(failed.custom_id).toBe(c.id);
    expect(failed.error?.code).toBe('model_not_found');
    // One batch carried all three, and no call went to the model directly.
    expect(e.sim.requests.filter((r) => r.path === '/v1/batches' && r.method === 'POST')).toHaveLength(1);
    expect(e.sim.requests.filter((r) => r.path === '/v1/chat/completions')).toHaveLength(0);
    const unknown = await fetch(`${e.sidecar.url}/envelope/deferred/defer_nope`);
    expect(unknown.status).toBe(404);
  });

  it('survive a restart while queued and another while their batch runs', async () => {
    const e = (env = await startEnv({
      routes: (sim) => [routeManifest('main', simRoute(sim, { limits: { maxOutputTokens: 20 }, batch: { maxRequests: 100, maxAgeSeconds: 2, pollSeconds: 1 } })), budget('monthly', 50)],
      stateDir: true,
    }));
    const args = ['--state-dir', join(e.dir, 'state')];
    const headers = { 'x-envelope-defer': 'true' };
    const a = await defer(e.client, 'queued before a crash', 'gpt-4.1-mini', headers);
    const b = await defer(e.client, 'also queued', 'gpt-4.1-mini', headers);
    await e.sidecar.stop('SIGKILL');

    // Slow batches, so the next crash lands while this one runs.
    e.sim.setOptions({ batchStepMs: 1500 });
    const second = (extra = await startSidecarProcess({ config: e.configPath, secretsDir: e.secrets.root, args }));
    const submitted = await second.waitForLog((l) => l.event === 'batch_submitted', 10_000);
    expect(submitted.calls).toBe(2);
    expect((await job(second, a.id)).status).toBe('submitted');
    expect((await budgetRow(second.adminUrl, 'monthly'))?.reserved_usd).toBeGreaterThan(0);
    await second.stop('SIGKILL');

    const third = (extra = await startSidecarProcess({ config: e.configPath, secretsDir: e.secrets.root, args }));
    const done = await until(async () => {
      const j = await job(third, a.id);
      return j.status === 'completed' ? j : undefined;
    }, 'results after two restarts', 20_000);
    expect(done.batch_id).toBe(submitted.batch_id);
    expect(done.response?.body.choices?.[0]?.message.content).toBeTruthy();
    expect((await job(third, b.id)).status).toBe('completed');
    const settled = await third.waitForLog((l) => l.event === 'batch_settled');
    const row = await budgetRow(third.adminUrl, 'monthly');
    // The reservation kept across both restarts was replaced by the batch's cost, once.
    expect(row?.reserved_usd).toBe(0);
    expect(settled.cost_usd as number).toBeGreaterThan(0);
    expect(row?.spent_usd).toBeCloseTo(settled.cost_usd as number, 12);
    expect(e.sim.requests.filter((r) => r.path === '/v1/batches' && r.method === 'POST')).toHaveLength(1);
    // A call without the header still goes straight to the model.
    const client = new OpenAI({ apiKey: 'sk-test-placeholder-from-app', baseURL: third.url, maxRetries: 0 });
    const direct = await client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'now please' }] });
    expect(direct.choices[0]?.message.content).toBeTruthy();
    expect(e.sim.requests.filter((r) => r.path === '/v1/chat/completions')).toHaveLength(1);
  });
});
