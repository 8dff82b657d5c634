// Invariant 1: the key goes to the configured upstream's authorization header and nowhere else.
// A canary key is planted, every kind of call and failure is exercised, and then every place a
// key could leak is searched for it: answers (bodies and headers), logs, metrics, admin pages,
// and everything the upstream received apart from that one header.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toFile } from 'openai';
import { routeManifest, simRoute, startEnv, type Env } from '../support/fixtures.ts';

const CANARY = `sk-test-canary-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
let env: Env;
const seen: string[] = [];

async function capture(p: Promise<{ response: Response; data: unknown }>) {
  try {
    const { response, data } = await p;
    seen.push(JSON.stringify(data), JSON.stringify([...response.headers]));
  } catch (err) {
    const e = err as { message?: string; error?: unknown; headers?: Headers };
    seen.push(String(e.message), JSON.stringify(e.error ?? null), JSON.stringify([...(e.headers ?? new Headers())]));
  }
}

beforeAll(async () => {
  env = await startEnv({ key: CANARY, routes: (sim) => [routeManifest('main', simRoute(sim))], env: { LOG_LEVEL: 'debug' } });
});
afterAll(async () => {
  await env?.close();
});

describe('canary key', () => {
  it('appears only in the upstream authorization header', async () => {
    const c = env.client;
    const chat = (content: string) => c.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content }] }).withResponse();
    await capture(chat('plain'));
    await capture(c.responses.create({ model: 'gpt-4.1-mini', input: 'plain' }).withResponse());
    await capture(c.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }).withResponse());
    // The upstream's 401 quotes the key it was given, as OpenAI's does (partly).
    env.sim.fault({ type: 'error', status: 401, message: `Incorrect API key provided: ${CANARY}.`, times: 1 });
    await capture(chat('rejected key'));
    // Any other upstream error that echoes it.
    env.sim.fault({ type: 'error', status: 400, message: `bad request near ${CANARY}`, times: 1 });
    await capture(chat('echo'));
    env.sim.fault({ type: 'error', status: 500, times: 5 });
    await capture(chat('retries exhausted'));
    await capture(c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'refused' }] }).withResponse());
    const stream = await c.chat.completions.create({ model: 'gpt-4.1-mini', stream: true, messages: [{ role: 'user', content: 'stream' }] });
    for await (const chunk of stream) seen.push(JSON.stringify(chunk));
    env.sim.fault({ type: 'reset_mid_stream', afterEvents: 2 });
    try {
      for await (const chunk of await c.chat.completions.create({ model: 'gpt-4.1-mini', stream: true, messages: [{ role: 'user', content: 'broken' }] })) seen.push(JSON.stringify(chunk));
    } catch (err) {
      seen.push(String(err));
    }
    await capture(c.files.create({ file: await toFile(Buffer.from('{"a":1}\n'), 'f.jsonl'), purpose: 'batch' }).withResponse());
    await capture(c.models.list().withResponse());
    for (const path of ['/metrics', '/usage', '/readyz', '/healthz']) seen.push(await (await fetch(env.sidecar.adminUrl + path)).text());
    await env.sidecar.stop('SIGTERM');

    expect(env.sim.requests.length).toBeGreaterThan(10);
    expect(seen.join('\n')).not.toContain(CANARY);
    expect(env.sidecar.output()).not.toContain(CANARY);
    expect(env.sidecar.output()).not.toContain(CANARY.slice(-12));
    for (const r of env.sim.requests) {
      expect(r.headers.authorization).toBe(`Bearer ${CANARY}`);
      const { authorization: _auth, ...rest } = r.headers;
      expect(JSON.stringify(rest)).not.toContain(CANARY);
      expect(JSON.stringify(r.body ?? null)).not.toContain(CANARY);
    }
  });
});
