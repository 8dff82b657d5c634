import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../simulator/index.ts';
import { client } from './helpers.ts';

let sim: Simulator;
let openai: OpenAI;
const STEP_MS = 20;

beforeAll(async () => {
  sim = await startSimulator({ batchStepMs: STEP_MS });
  openai = client(sim);
});
afterAll(() => sim.close());

const jsonl = (rows: unknown[]) => Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

async function upload(content: Buffer, name = 'in.jsonl') {
  return openai.files.create({ file: await toFile(content, name), purpose: 'batch' });
}

async function waitFor(id: string, done: (s: string) => boolean) {
  const seen: string[] = [];
  for (let i = 0; i < 100; i++) {
    const b = await openai.batches.retrieve(id);
    if (seen.at(-1) !== b.status) seen.push(b.status);
    if (done(b.status)) return { batch: b, seen };
    await new Promise((r) => setTimeout(r, STEP_MS / 2));
  }
  throw new Error(`batch ${id} stuck; saw ${seen.join(' -> ')}`);
}

describe('files', () => {
  it('uploads multipart, lists, retrieves, downloads and deletes', async () => {
    const content = Buffer.from('{"a":1}\n{"b":"\u00e9\\r\\n--"}\n');
    const f = await upload(content, 'x.jsonl');
    expect(f).toMatchObject({ object: 'file', bytes: content.length, filename: 'x.jsonl', purpose: 'batch', status: 'processed' });
    expect(f.id).toMatch(/^file-/);
    expect((await openai.files.retrieve(f.id)).bytes).toBe(content.length);
    const listed = [];
    for await (const x of openai.files.list()) listed.push(x.id);
    expect(listed).toContain(f.id);
    const body = Buffer.from(await (await openai.files.content(f.id)).arrayBuffer());
    expect(body.equals(content)).toBe(true);
    expect(await openai.files.delete(f.id)).toEqual({ id: f.id, object: 'file', deleted: true });
    expect(await openai.files.retrieve(f.id).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('rejects a batch file that is not .jsonl and a missing purpose', async () => {
    const bad = await openai.files.create({ file: await toFile(Buffer.from('x'), 'x.txt'), purpose: 'batch' }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    const form = new FormData();
    form.append('file', new Blob(['x']), 'a.jsonl');
    const res = await fetch(`${sim.url}/files`, { method: 'POST', body: form, headers: { authorization: 'Bearer k' } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe('purpose');
  });
});

describe('batches', () => {
  it('runs validating -> in_progress -> finalizing -> completed and writes output and error files', async () => {
    const input = await upload(
      jsonl([
        { custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello world' }] } },
        { custom_id: 'b', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-5-mini', messages: [{ role: 'user', content: 'Hello world' }] } },
        { custom_id: 'c', method: 'POST', url: '/v1/chat/completions', body: { model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] } },
      ]),
    );
    const created = await openai.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { job: 'j1' } });
    expect(created).toMatchObject({ object: 'batch', status: 'validating', input_file_id: input.id, metadata: { job: 'j1' }, output_file_id: null });
    expect(created.id).toMatch(/^batch_/);

    const { batch, seen: polled } = await waitFor(created.id, (s) => s === 'completed');
    // Polling may miss a short step under load (the first poll included); what it saw must still be in lifecycle order.
    const seen = [created.status, ...polled];
    const order = ['validating', 'in_progress', 'finalizing', 'completed'];
    expect(seen.map((s) => order.indexOf(s))).toEqual([...seen.map((s) => order.indexOf(s))].sort());
    expect(batch.request_counts).toEqual({ total: 3, completed: 2, failed: 1 });
    for (const at of [batch.in_progress_at, batch.finalizing_at, batch.completed_at]) expect(at).toBeGreaterThanOrEqual(batch.created_at);

    const out = (await (await openai.files.content(batch.output_file_id!)).text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(out.map((l) => l.custom_id)).toEqual(['a', 'b']);
    expect(out[0].id).toMatch(/^batch_req_/);
    expect(out[0].error).toBeNull();
    expect(out[0].response.status_code).toBe(200);
    expect(out[0].response.request_id).toMatch(/^req_/);
    expect(out[0].response.body.choices[0].message.content).toBe('Simulated reply to: Hello world');

    const errs = (await (await openai.files.content(batch.error_file_id!)).text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(errs).toHaveLength(1);
    expect(errs[0].response.status_code).toBe(404);
    expect(errs[0].response.body.error.code).toBe('model_not_found');

    // Usage in the Responses shape, summed from the chat usages.
    const a = out[0].response.body.usage;
    const b = out[1].response.body.usage;
    expect(batch.usage).toEqual({
      input_tokens: a.prompt_tokens + b.prompt_tokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: a.completion_tokens + b.completion_tokens,
      output_tokens_details: { reasoning_tokens: b.completion_tokens_details.reasoning_tokens },
      total_tokens: a.total_tokens + b.total_tokens,
    });

    const listed = [];
    for await (const x of openai.batches.list()) listed.push(x.id);
    expect(listed).toContain(created.id);
  });

  it('fails validation on a bad line and can cancel', async () => {
    const bad = await upload(Buffer.from('{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{}}\nnot json\n'));
    const failed = await openai.batches.create({ input_file_id: bad.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const { batch } = await waitFor(failed.id, (s) => s === 'failed');
    expect(batch.errors!.data!.map((e) => [e.code, e.line])).toEqual([['invalid_url', 1], ['invalid_json_line', 2]]);

    const good = await upload(jsonl([{ custom_id: 'e', method: 'POST', url: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: 'hi' } }]));
    const b = await openai.batches.create({ input_file_id: good.id, endpoint: '/v1/embeddings', completion_window: '24h' });
    const cancelling = await openai.batches.cancel(b.id);
    expect(cancelling.status).toBe('cancelling');
    const { batch: cancelled } = await waitFor(b.id, (s) => s === 'cancelled');
    expect(cancelled.cancelled_at).not.toBeNull();
    expect(cancelled.output_file_id).toBeNull();
    const again = await openai.batches.cancel(b.id).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(OpenAI.BadRequestError);
  });
});

describe('batch lifecycle in steps', () => {
  const chatLines = (n: number, model = 'gpt-4.1-mini') =>
    jsonl(Array.from({ length: n }, (_, i) => ({ custom_id: `r${i}`, method: 'POST', url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content: `line ${i}` }] } })));

  async function runTo(id: string, status: string) {
    return (await waitFor(id, (s) => s === status)).batch;
  }

  it('has every field of the real batch object and counts lines as they run', async () => {
    const slow = await startSimulator({ batchStepMs: STEP_MS, batchLinesPerStep: 1 });
    const c = client(slow);
    try {
      const input = await c.files.create({ file: await toFile(chatLines(3), 'in.jsonl'), purpose: 'batch' });
      const created = await c.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      expect(Object.keys(created).sort()).toEqual(
        ['cancelled_at', 'cancelling_at', 'completed_at', 'completion_window', 'created_at', 'endpoint', 'error_file_id', 'errors', 'expired_at', 'expires_at', 'failed_at', 'finalizing_at', 'id', 'in_progress_at', 'input_file_id', 'metadata', 'model', 'object', 'output_file_id', 'request_counts', 'status', 'usage'].sort(),
      );
      expect(created.expires_at).toBe(created.created_at + 86_400);
      const counts: string[] = [];
      for (let i = 0; i < 200; i++) {
        const b = await c.batches.retrieve(created.id);
        const seen = `${b.status}:${b.request_counts!.completed}/${b.request_counts!.total}`;
        if (counts.at(-1) !== seen) counts.push(seen);
        if (b.status === 'completed') break;
        await new Promise((r) => setTimeout(r, STEP_MS / 4));
      }
      // One line per step: at least one partial count is seen between none and all.
      expect(counts.at(-1)).toBe('completed:3/3');
      expect(counts.some((s) => /^in_progress:[12]\/3$/.test(s))).toBe(true);
      const b = await c.batches.retrieve(created.id);
      expect(b.model).toBe('gpt-4.1-mini');
      const output = await c.files.retrieve(b.output_file_id!);
      expect(output).toMatchObject({ object: 'file', purpose: 'batch_output', filename: `batch_${b.id}_output.jsonl`, status: 'processed' });
      expect(output.bytes).toBe(Buffer.byteLength(await (await c.files.content(output.id)).text()));
    } finally {
      await slow.close();
    }
  });

  it('cancels mid-run: lines that ran are kept, the rest are batch_cancelled in the error file', async () => {
    const slow = await startSimulator({ batchStepMs: 60, batchLinesPerStep: 1 });
    const c = client(slow);
    try {
      const input = await c.files.create({ file: await toFile(chatLines(20), 'in.jsonl'), purpose: 'batch' });
      const created = await c.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      let b = created;
      while (b.request_counts!.completed === 0) {
        await new Promise((r) => setTimeout(r, 20));
        b = await c.batches.retrieve(created.id);
      }
      expect((await c.batches.cancel(created.id)).status).toBe('cancelling');
      const cancelled = await (async () => {
        for (;;) {
          const x = await c.batches.retrieve(created.id);
          if (x.status === 'cancelled') return x;
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const ran = cancelled.request_counts!.completed;
      expect(ran).toBeGreaterThan(0);
      expect(ran).toBeLessThan(20);
      expect(cancelled.cancelling_at).not.toBeNull();
      const out = (await (await c.files.content(cancelled.output_file_id!)).text()).trim().split('\n');
      expect(out).toHaveLength(ran);
      const errs = (await (await c.files.content(cancelled.error_file_id!)).text()).trim().split('\n').map((l) => JSON.parse(l));
      expect(errs).toHaveLength(20 - ran);
      expect(errs[0]).toMatchObject({ custom_id: `r${ran}`, response: null, error: { code: 'batch_cancelled' } });
      expect(errs[0].id).toMatch(/^batch_req_/);
    } finally {
      await slow.close();
    }
  });

  it('expires a batch still running when its window closes', async () => {
    const slow = await startSimulator({ batchStepMs: 30, batchLinesPerStep: 1, batchWindowMs: 100 });
    const c = client(slow);
    try {
      const input = await c.files.create({ file: await toFile(chatLines(50), 'in.jsonl'), purpose: 'batch' });
      const created = await c.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      let b = created;
      for (let i = 0; i < 100 && b.status !== 'expired'; i++) {
        await new Promise((r) => setTimeout(r, 20));
        b = await c.batches.retrieve(created.id);
      }
      expect(b.status).toBe('expired');
      expect(b.expired_at).toBeGreaterThanOrEqual(b.created_at);
      expect(b.completed_at).toBeNull();
      const ran = b.request_counts!.completed + b.request_counts!.failed;
      expect(ran).toBeLessThan(50);
      const errs = (await (await c.files.content(b.error_file_id!)).text()).trim().split('\n').map((l) => JSON.parse(l));
      expect(errs).toHaveLength(50 - ran);
      expect(errs.every((e) => e.response === null && e.error.code === 'batch_expired')).toBe(true);
    } finally {
      await slow.close();
    }
  });
});
