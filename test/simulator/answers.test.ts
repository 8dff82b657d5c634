// Scripted answers: the content changes with the input, prompt and model; everything else about
// the reply (usage, caps, streams, tool-call shapes) stays what the simulator always sends.
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSimulator, loadAnswers, type Simulator } from '../../simulator/index.ts';
import { tempDir } from '../support/sidecar-process.ts';
import { client, tok } from './helpers.ts';

let sim: Simulator;
let openai: OpenAI;
beforeAll(async () => {
  sim = await startSimulator();
  openai = client(sim);
});
afterAll(() => sim.close());
beforeEach(() => sim.reset());

const LOOKUP = { type: 'function' as const, name: 'lookup_order', parameters: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] }, strict: false };

describe('scripted answers', () => {
  it('answer by input, prompt and model, first match wins, and count their tokens', async () => {
    sim.script([
      { whenInput: 'refund', whenPrompt: 'triage v2', text: 'billing' },
      { whenInput: 'refund', model: 'gpt-4.1-nano', text: 'shipping' },
      { whenInput: 'refund', text: 'other' },
    ]);
    const ask = (model: string, instructions?: string) => openai.responses.create({ model, input: 'I want a refund', ...(instructions ? { instructions } : {}) });
    const v2 = await ask('gpt-4.1-mini', 'Support triage v2: answer with one label.');
    expect(v2.output_text).toBe('billing');
    expect(v2.usage?.output_tokens).toBe(tok('billing'));
    expect((await ask('gpt-4.1-nano')).output_text).toBe('shipping');
    expect((await ask('gpt-4.1-mini')).output_text).toBe('other');
    // No rule for this input: the usual canned reply.
    expect((await openai.responses.create({ model: 'gpt-4.1-mini', input: 'hello' })).output_text).toBe('Simulated reply to: hello');
    // Chat: a system message is part of the prompt.
    const chat = await openai.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'system', content: 'triage v2' }, { role: 'user', content: 'refund please' }] });
    expect(chat.choices[0]!.message.content).toBe('billing');
  });

  it('give structured output as JSON and call tools only when offered', async () => {
    sim.script([
      { whenInput: 'order A-17', toolCall: { name: 'lookup_order', arguments: { order_id: 'A-17' } } },
      { whenInput: 'order A-17', json: { category: 'shipping', priority: 'high' } },
    ]);
    const called = await openai.responses.create({ model: 'gpt-4.1-mini', input: 'Where is order A-17?', tools: [LOOKUP] });
    const call = called.output.find((o) => o.type === 'function_call');
    expect(call).toMatchObject({ name: 'lookup_order', arguments: '{"order_id":"A-17"}' });
    // Without the tool on offer, the next rule answers.
    const plain = await openai.responses.create({ model: 'gpt-4.1-mini', input: 'Where is order A-17?' });
    expect(JSON.parse(plain.output_text)).toEqual({ category: 'shipping', priority: 'high' });
    // Chat streams carry the scripted tool call in fragments, as always.
    const stream = await openai.chat.completions.create({
      model: 'gpt-4.1-mini',
      stream: true,
      messages: [{ role: 'user', content: 'Where is order A-17?' }],
      tools: [{ type: 'function', function: { name: 'lookup_order', parameters: LOOKUP.parameters } }],
    });
    let args = '';
    for await (const chunk of stream) args += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
    expect(JSON.parse(args)).toEqual({ order_id: 'A-17' });
  });

  it('still obey the output cap', async () => {
    sim.script([{ whenInput: 'long', text: 'word '.repeat(200) }]);
    const r = await openai.responses.create({ model: 'gpt-4.1-mini', input: 'long', max_output_tokens: 16 });
    expect(r.status).toBe('incomplete');
    expect(r.usage?.output_tokens).toBe(16);
  });

  it('are set, listed and cleared over the control API, refusing bad rules whole', async () => {
    const base = sim.url.replace(/\/v1$/, '');
    const post = (body: unknown) => fetch(`${base}/_sim/answers`, { method: 'POST', body: JSON.stringify(body) });
    const bad = await post([{ whenInput: 'a', text: 'b' }, { whenInput: 'c' }]);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toBe("answer 2: needs exactly one of 'text', 'json' or 'toolCall'");
    expect(await (await fetch(`${base}/_sim/answers`)).json()).toEqual([]);
    expect((await post({ whenInput: 'ping', text: 'pong' })).status).toBe(204);
    expect((await openai.responses.create({ model: 'gpt-4.1-mini', input: 'ping' })).output_text).toBe('pong');
    expect((await fetch(`${base}/_sim/answers`, { method: 'DELETE' })).status).toBe(204);
    expect((await openai.responses.create({ model: 'gpt-4.1-mini', input: 'ping' })).output_text).toBe('Simulated reply to: ping');
  });

  it('load from a YAML file, naming the file in errors', async () => {
    const dir = tempDir('answers');
    const good = join(dir, 'answers.yaml');
    writeFileSync(good, 'answers:\n  - whenInput: hi\n    text: hello\n');
    expect(await loadAnswers(good)).toEqual([{ whenInput: 'hi', text: 'hello' }]);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, '- whenInput: hi\n  colour: red\n  text: x\n');
    await expect(loadAnswers(bad)).rejects.toThrow(`${bad}: answer 1: unknown field 'colour'`);
  });
});
