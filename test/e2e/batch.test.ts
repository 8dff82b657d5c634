// `ai-envelope batch` as a user runs it: the built command against the simulator directly and
// through a sidecar process, with the results read back from the files it writes.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSimulator, type Simulator } from '../../simulator/index.ts';
import { startEnv, TEST_KEY, type Env } from '../support/fixtures.ts';
import { tempDir } from '../support/sidecar-process.ts';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const SIM_KEY = 'sk-test-batch-cli';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the command with a clean environment: stdout and stderr are pipes, so never a terminal. */
function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'batch', ...args], { env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

const chat = (customId: string, model: string, content: string) =>
  JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content }] } });

function writeInput(dir: string, name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

const readJsonl = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);

describe('against the simulator', () => {
  let sim: Simulator;
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    sim = await startSimulator({ apiKeys: [SIM_KEY], batchStepMs: 100, batchLinesPerStep: 1 });
    dir = tempDir('batch');
    env = { OPENAI_API_KEY: SIM_KEY, OPENAI_BASE_URL: sim.url };
  });
  afterAll(() => sim.close());
  beforeEach(() => sim.reset());

  it('checks the file before uploading anything and names each bad line', async () => {
    const file = writeInput(dir, 'bad.jsonl', [chat('a', 'gpt-4.1-mini', 'hi'), '{"custom_id": "b"', chat('a', 'gpt-4.1-mini', 'again'), JSON.stringify({ custom_id: 'c', method: 'POST', url: '/v1/embeddings', body: {} })]);
    const r = await run(['submit', '-f', file, '--wait'], env);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${file}:2: not valid JSON`));
    expect(lines.slice(1)).toEqual([
      `${file}:3: custom_id 'a' repeats line 1`,
      `${file}:4: url '/v1/embeddings' differs from '/v1/chat/completions' on line 1: a batch has one endpoint`,
      `ai-envelope batch: ${file} has 3 problem(s); nothing was uploaded`,
    ]);
    expect(r.stdout).toBe('');
    expect(sim.requests).toHaveLength(0);
    expect(existsSync(join(dir, 'bad.results.jsonl'))).toBe(false);
  });

  it('waits with progress lines, writes results in input order and reports the failed request', async () => {
    const file = writeInput(dir, 'mixed.jsonl', [chat('q1', 'gpt-4.1-mini', 'Where is my parcel?'), chat('q2', 'no-such-model', 'x'), chat('q3', 'gpt-4.1-nano', 'Refund please')]);
    const errors = join(dir, 'mixed.errors.jsonl');
    const r = await run(['submit', '-f', file, '--wait', '--poll-ms', '20', '--errors', errors], env);
    expect(r.code).toBe(3);
    const id = r.stdout.trim();
    expect(id).toMatch(/^batch_[0-9a-f]+$/);

    // Off a terminal: one plain line per change, counts only ever growing, ending complete.
    const progress = r.stderr.split('\n').filter((l) => l.startsWith(`${id} `) && l.includes(' done ('));
    const parsed = progress.map((l) => /^batch_\w+ (\w+) (\d+)\/(\d+) done \((\d+) completed, (\d+) failed\) after \d+:\d\d$/.exec(l));
    expect(parsed.every(Boolean)).toBe(true);
    expect(progress.at(-1)).toMatch(/ completed 3\/3 done \(2 completed, 1 failed\)/);
    const done = parsed.map((m) => Number(m![2]));
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(new Set(done.filter((d) => d > 0 && d < 3)).size).toBeGreaterThan(0);
    expect(r.stderr).not.toContain('\r');

    expect(r.stderr).toContain('failed: q2: 404 model_not_found: The model `no-such-model` does not exist');
    expect(r.stderr).toContain(`${id} completed: 3 request(s), 2 succeeded, 1 failed; results in ${join(dir, 'mixed.results.jsonl')}`);

    // The simulator writes successes and failures to two files; the results follow the input.
    const results = readJsonl(join(dir, 'mixed.results.jsonl'));
    expect(results.map((l) => l.custom_id)).toEqual(['q1', 'q2', 'q3']);
    expect(results.map((l) => l.response.status_code)).toEqual([200, 404, 200]);
    expect(results[0]!.response.body.choices[0].message.content).toBe('Simulated reply to: Where is my parcel?');
    expect(readJsonl(errors).map((l) => l.custom_id)).toEqual(['q2']);

    const upload = sim.requests.find((q) => q.path === '/v1/files')!;
    expect(upload.headers['content-type']).toMatch(/^multipart\/form-data/);
    expect(upload.headers.authorization).toBe(`Bearer ${SIM_KEY}`);
    expect(sim.requests.find((q) => q.path === '/v1/batches')!.body).toMatchObject({ endpoint: '/v1/chat/completions', completion_window: '24h' });

    // status and results later, by id: the order comes from the uploaded input file.
    const status = await run(['status', id], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^status +completed$/m);
    expect(status.stdout).toMatch(/^requests +3 total, 2 completed, 1 failed$/m);
    expect(status.stdout).toMatch(/^usage +\d+ input \(0 cached\), \d+ output \(0 reasoning\), \d+ total tokens$/m);
    expect(status.stdout).toMatch(/^completed +\d{4}-\d\d-\d\dT/m);
    const again = await run(['results', id], env);
    expect(again.code).toBe(3);
    expect(again.stdout.trim().split('\n').map((l) => JSON.parse(l).custom_id)).toEqual(['q1', 'q2', 'q3']);
    expect(again.stderr).toContain('failed: q2: 404 model_not_found');
  });

  it('exits 0 when every request succeeds, and 4 for results of a batch still running', async () => {
    const file = writeInput(dir, 'good.jsonl', [chat('z', 'gpt-4.1-mini', 'one'), chat('y', 'gpt-4.1-mini', 'two')]);
    const out = join(dir, 'good-out.jsonl');
    const r = await run(['submit', '-f', file, '--wait', '--poll-ms', '20', '--out', out], env);
    expect(r.stderr).toContain('2 request(s), 2 succeeded, 0 failed');
    expect(r.code).toBe(0);
    expect(readJsonl(out).map((l) => l.custom_id)).toEqual(['z', 'y']);

    sim.setOptions({ batchStepMs: 60_000 });
    try {
      const submitted = await run(['submit', '-f', file], env);
      expect(submitted.code).toBe(0);
      expect(submitted.stderr).toContain(`follow it with: ai-envelope batch status ${submitted.stdout.trim()}`);
      const early = await run(['results', submitted.stdout.trim()], env);
      expect(early.code).toBe(4);
      expect(early.stderr).toMatch(/validating 0\/0 done .*not finished yet/);
    } finally {
      sim.setOptions({ batchStepMs: 100 });
    }
  });

  it('prints what the server refused and exits 1', async () => {
    const file = writeInput(dir, 'moderate.jsonl', [JSON.stringify({ custom_id: 'm', method: 'POST', url: '/v1/images', body: {} })]);
    const refused = await run(['submit', '-f', file], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/POST \/batches: 400 invalid_value: Invalid 'endpoint': value must be one of/);
    const missing = await run(['status', 'batch_nope'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe("ai-envelope batch: GET /batches/batch_nope: 404 invalid_request_error: No batch found with id 'batch_nope'.\n");
    const wrongKey = await run(['status', 'batch_nope'], { ...env, OPENAI_API_KEY: 'sk-test-wrong-key' });
    expect(wrongKey.stderr).toMatch(/401 invalid_api_key/);
    expect((await run(['status'], env)).code).toBe(2);
    expect((await run(['submit', '-f', file, '--out', file, '--wait'], env)).stderr).toContain('--out would overwrite the input file');
  });
});

describe('through a sidecar', () => {
  let envir: Env;
  let dir: string;
  beforeAll(async () => {
    envir = await startEnv();
    envir.sim.setOptions({ batchStepMs: 40 });
    dir = tempDir('batch-sidecar');
  });
  afterAll(() => envir?.close());

  it('submits with the route header and no key of its own; the sidecar adds the key', async () => {
    const file = writeInput(dir, 'in.jsonl', [chat('b', 'gpt-4.1-mini', 'first'), chat('a', 'gpt-4.1-nano', 'second')]);
    const r = await run(['submit', '-f', file, '--wait', '--poll-ms', '20', '--route', 'main', '--base-url', envir.sidecar.url]);
    expect(r.stderr).toContain('2 request(s), 2 succeeded, 0 failed');
    expect(r.code).toBe(0);
    expect(readJsonl(join(dir, 'in.results.jsonl')).map((l) => [l.custom_id, l.response.body.model])).toEqual([
      ['b', expect.stringContaining('gpt-4.1-mini')],
      ['a', expect.stringContaining('gpt-4.1-nano')],
    ]);
    const upstream = envir.sim.requests.filter((q) => q.path.startsWith('/v1/files') || q.path.startsWith('/v1/batches'));
    expect(upstream.length).toBeGreaterThanOrEqual(4);
    for (const q of upstream) expect(q.headers.authorization).toBe(`Bearer ${TEST_KEY}`);
  });

  it('shows the sidecar\'s own error for an unknown route', async () => {
    const file = writeInput(dir, 'other.jsonl', [chat('x', 'gpt-4.1-mini', 'hi')]);
    const r = await run(['submit', '-f', file, '--route', 'nope', '--base-url', envir.sidecar.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ai-envelope batch: POST \/files: 404 route_not_found: No route named 'nope'/);
  });
});
