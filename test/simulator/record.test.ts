// How many requests the simulator keeps: all of them in process (tests read them back), the
// latest 1,000 from the CLI (a long-running simulator stays bounded), none for a load test.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type RecordedRequest, type Simulator } from '../../simulator/index.ts';
import { KEY } from './helpers.ts';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

const chat = (origin: string, content: string) =>
  fetch(`${origin}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content }] }),
  }).then((r) => r.text());
const contents = (requests: RecordedRequest[]) => requests.map((r) => (r.body as { messages: { content: string }[] }).messages[0]!.content);

describe('in process', () => {
  let sim: Simulator | undefined;
  afterEach(() => sim?.close());

  it('keeps every request unless told otherwise, then the latest recordLimit', async () => {
    sim = await startSimulator();
    const origin = sim.url.replace(/\/v1$/, '');
    for (const c of ['a', 'b', 'c']) await chat(origin, c);
    expect(contents(sim.requests)).toEqual(['a', 'b', 'c']);
    sim.setOptions({ recordLimit: 2 });
    expect(contents(sim.requests)).toEqual(['b', 'c']);
    await chat(origin, 'd');
    expect(contents(sim.requests)).toEqual(['c', 'd']);
    sim.setOptions({ recordLimit: 0 });
    await chat(origin, 'e');
    expect(sim.requests).toEqual([]);
  });

  it('refuses a limit that is not a number of 0 or more, over the control API too', async () => {
    sim = await startSimulator();
    expect(() => sim!.setOptions({ recordLimit: -1 })).toThrow(/recordLimit must be a number, 0 or more; got -1/);
    const res = await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/options`, { method: 'POST', body: JSON.stringify({ recordLimit: '5' }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/got "5"/);
  });
});

async function cli(args: string[], use: (origin: string) => Promise<void>): Promise<void> {
  const child = spawn(process.execPath, [CLI, 'simulator', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const first = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
    await use(`http://127.0.0.1:${(JSON.parse(first) as { port: number }).port}`);
  } finally {
    child.kill('SIGTERM');
  }
}

describe('the CLI', () => {
  it('keeps the latest 1,000 requests by default', async () => {
    await cli([], async (origin) => {
      for (let i = 0; i < 1_010; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => chat(origin, String(i + j))));
      const kept = (await (await fetch(`${origin}/_sim/requests`)).json()) as RecordedRequest[];
      expect(kept).toHaveLength(1_000);
      expect(new Set(contents(kept))).toEqual(new Set(Array.from({ length: 1_000 }, (_, i) => String(i + 10))));
    });
  });

  it('keeps none with --record-limit 0', async () => {
    await cli(['--record-limit', '0'], async (origin) => {
      expect(await chat(origin, 'x')).toContain('chat.completion');
      expect(await (await fetch(`${origin}/_sim/requests`)).json()).toEqual([]);
    });
  });
});
