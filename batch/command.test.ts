// The command in-process with a terminal on stderr: the redrawn bar, which the end-to-end tests
// (pipes, never a terminal) cannot see.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../simulator/index.ts';
import { batchCommand } from './command.ts';

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ batchStepMs: 60, batchLinesPerStep: 1 });
});
afterAll(() => sim.close());

it('redraws one progress bar in place on a terminal and ends it with a newline', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ai-envelope-batch-tty-'));
  const file = join(dir, 'in.jsonl');
  const line = (id: string) => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: id } });
  writeFileSync(file, `${['e1', 'e2', 'e3'].map(line).join('\n')}\n`);
  let out = '';
  let err = '';
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (err += s), tty: true };
  const code = await batchCommand(['submit', '-f', file, '--wait', '--poll-ms', '15'], io, { OPENAI_API_KEY: 'sk-test-tty', OPENAI_BASE_URL: sim.url });
  expect(code).toBe(0);
  expect(out).toMatch(/^batch_[0-9a-f]+\n$/);
  const frames = err.split('\r').slice(1);
  expect(frames.length).toBeGreaterThan(2);
  expect(frames.every((f) => f.startsWith('[') && f.includes('\x1b[K'))).toBe(true);
  expect(frames.at(-1)).toMatch(/^\[#{30}\] 3\/3  100%  completed  \d:\d\d\x1b\[K\n/);
  expect(frames.some((f) => /^\[#{10}\.{20}\] 1\/3 {3}33%  in_progress/.test(f))).toBe(true);
  expect(readFileSync(join(dir, 'in.results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).custom_id)).toEqual(['e1', 'e2', 'e3']);
});
