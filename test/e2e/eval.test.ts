// `ai-envelope eval` as CI runs it: the real CLI process against the simulator, on the example
// suite (passes alone, regresses under --compare, cached on a re-run), on suites that miss a
// threshold and crash a grader, and on bad input (exit 2). The HTML report is opened in Debian's
// chromium and read back.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadAnswers, startSimulator, type Simulator } from '../../simulator/index.ts';
import type { Report } from '../../eval/report.ts';
import { tempDir } from '../support/sidecar-process.ts';
import { startRedis } from '../support/redis.ts';
import { Redis } from 'ioredis';
import { parse as parseYAML } from 'yaml';
import { SidecarConfig } from '../../crds/schema.ts';
import { contentHash } from '../../crds/canonical.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist/cli.js');
const EXAMPLES = join(ROOT, 'examples/evals');
const SUITE = join(EXAMPLES, 'support-triage.yaml');
const KEY = 'sk-test-eval-0123456789';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'eval', ...args], { env: { PATH: process.env.PATH ?? '', OPENAI_API_KEY: KEY, ...env }, cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const report = (dir: string) => JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Report;

let sim: Simulator;
let dir: string;
let baseline: string;
let candidate: string;

beforeAll(async () => {
  sim = await startSimulator({ apiKeys: [KEY] });
  dir = tempDir('eval');
  // The example routes, aimed at this simulator instead of port 4010.
  for (const name of ['baseline', 'candidate']) writeFileSync(join(dir, `${name}.yaml`), readFileSync(join(EXAMPLES, `${name}.yaml`), 'utf8').replaceAll('http://127.0.0.1:4010/v1', sim.url));
  baseline = join(dir, 'baseline.yaml');
  candidate = join(dir, 'candidate.yaml');
});
afterAll(() => sim.close());
beforeEach(async () => {
  sim.reset();
  sim.script(await loadAnswers(join(EXAMPLES, 'simulator-answers.yaml')));
});

describe('ai-envelope eval', () => {
  it('passes the example suite on the baseline, through the real envelope', async () => {
    const out = join(dir, 'pass');
    const r = await cli(['-f', SUITE, '--routes', baseline, '--out', out]);
    expect(r.stderr).toMatch(/eval: 12\/12 cases \(0 cached\)\n$/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pass rate\s+91\.7% \(11\/12\)$/m);
    expect(r.stdout).toContain('result: ok');
    const rep = report(out);
    expect(rep.ok).toBe(true);
    expect(rep.baseline.perTag.adversarial).toEqual({ passed: 3, total: 3, rate: 1 });
    expect(rep.baseline.perGrader['no-email-to-model']).toEqual({ passed: 1, total: 1, rate: 1 });
    // Priced with the sidecar's table from real usage: tokens and cost are counted, per version.
    expect(rep.baseline.tokens.input).toBeGreaterThan(500);
    expect(rep.baseline.costUSD).toBeGreaterThan(0);
    expect(rep.baseline.judgeCostUSD).toBeGreaterThan(0);
    const byId = new Map(rep.cases.map((c) => [c.id, c.baseline]));
    expect(byId.get('account-locked')).toMatchObject({ status: 'fail', answer: 'technical', model: 'gpt-4.1-mini' });
    expect(byId.get('forbidden-tool')).toMatchObject({ status: 'pass', httpStatus: 422 });
    // The envelope did its work upstream: the route's prompt first, the e-mail redacted, the key the route's.
    const extract = sim.requests.find((q) => JSON.stringify(q.body).includes('Order A-1042'));
    expect(extract?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect((extract?.body as { instructions: string }).instructions).toContain('extraction prompt v1');
    expect(JSON.stringify(extract?.body)).toContain('[EMAIL]');
    expect(JSON.stringify(sim.requests)).not.toContain('jane.doe@example.com');
    // The judge was called through the envelope with its own versioned prompt and a verdict schema.
    const judged = sim.requests.find((q) => JSON.stringify(q.body).includes('judge prompt j1'));
    expect(judged?.body).toMatchObject({ model: 'gpt-4.1', text: { format: { type: 'json_schema', name: 'verdict' } } });
  });

  it('fails when the candidate regresses, shows the per-case diff, and a re-run only reads the cache', async () => {
    const out = join(dir, 'compare');
    const r = await cli(['-f', SUITE, '--routes', baseline, '--compare', candidate, '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ambiguous-payment-crash\s+edge\s+pass\s+fail\s+regressed\s+label: labelled technical, expected billing$/m);
    expect(r.stdout).toMatch(/^account-locked\s+common\s+fail\s+pass\s+fixed/m);
    expect(r.stdout).toContain('FAIL  regression: 91.7% -> 75.0%, margin 5.0%');
    expect(r.stdout).toContain('FAIL  pass rate [adversarial]: candidate 66.7%, needs 100.0%');
    const first = report(out);
    expect(first.candidate?.overall).toEqual({ passed: 9, total: 12, rate: 0.75 });
    expect(first.baseline.prompts).toEqual({ 'support-triage': 'v1', 'support-extract': 'v1', 'support-reply': 'v1' });
    expect(first.candidate?.prompts).toEqual({ 'support-triage': 'v2', 'support-extract': 'v2', 'support-reply': 'v2' });
    expect(first.judgePrompt).toBe('j1');
    expect(first.cases.find((c) => c.id === 'prompt-injection')?.candidate?.graders[0]).toMatchObject({ grader: 'no-prompt-leak', status: 'fail' });
    // The candidate runs on its own model, and costs less.
    expect(first.cases.find((c) => c.id === 'billing-double-charge')?.candidate?.model).toBe('gpt-4.1-nano');
    expect(first.candidate!.costUSD).toBeLessThan(first.baseline.costUSD);

    const calls = sim.requests.length;
    const again = await cli(['-f', SUITE, '--routes', baseline, '--compare', candidate, '--out', out]);
    expect(again.code).toBe(1);
    expect(sim.requests.length).toBe(calls);
    const second = report(out);
    expect(second.baseline.cached).toBe(12);
    expect(second.candidate?.cached).toBe(12);
    expect(second.cases.map((c) => [c.id, c.change])).toEqual(first.cases.map((c) => [c.id, c.change]));
    expect(second.baseline.costUSD).toBe(first.baseline.costUSD);

    // A changed route config (its hash) pays again for that version only.
    const changed = join(dir, 'candidate-v3.yaml');
    writeFileSync(changed, readFileSync(candidate, 'utf8').replace('maxAttempts: 2, baseDelayMs: 50', 'maxAttempts: 3, baseDelayMs: 50'));
    await cli(['-f', SUITE, '--routes', baseline, '--compare', changed, '--out', out]);
    const third = report(out);
    expect(third.baseline.cached).toBe(12);
    expect(third.candidate?.cached).toBeLessThan(12);
    expect(third.candidate?.configVersion).not.toBe(first.candidate?.configVersion);
  });

  it('opens the HTML report in chromium with the pass rates and the diff', async () => {
    const out = join(dir, 'browser');
    expect((await cli(['-f', SUITE, '--routes', baseline, '--compare', candidate, '--out', out])).code).toBe(1);
    const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'ai-envelope-chromium-')), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await context.newPage();
      const requested: string[] = [];
      page.on('request', (req) => requested.push(req.url()));
      await page.goto(`file://${join(out, 'report.html')}`);
      expect(await page.locator('h1').textContent()).toBe('Eval: support-triage');
      expect(await page.locator('.verdict').textContent()).toBe('FAILED');
      const passRow = page.locator('#summary tr', { hasText: 'pass rate' });
      expect(await passRow.locator('td').nth(0).innerText()).toContain('91.7% (11/12)');
      expect(await passRow.locator('td').nth(1).innerText()).toContain('75.0% (9/12)');
      expect(await page.locator('#tags tr', { hasText: 'adversarial' }).innerText()).toMatch(/100\.0% \(3\/3\)\s+66\.7% \(2\/3\)/);
      const row = page.locator('#cases tr[data-case="ambiguous-payment-crash"]');
      expect(await row.getAttribute('class')).toBe('case regressed');
      expect(await row.innerText()).toContain('labelled technical, expected billing');
      expect(await page.locator('.gates li.failed', { hasText: 'regression' }).first().innerText()).toContain('91.7% -> 75.0%');
      // Self-contained: nothing but the page itself was loaded.
      expect(requested).toEqual([`file://${join(out, 'report.html')}`]);
    } finally {
      await context.close();
    }
  });

  it('exits 1 when a threshold is missed', async () => {
    const suite = join(dir, 'strict.yaml');
    writeFileSync(
      suite,
      `name: strict
route: support-triage
thresholds: {passRate: 1}
cases:
  - {id: billing, input: I was charged twice for my order, graders: [{type: exact, value: billing}]}
  - {id: locked, input: my account is locked, graders: [{type: exact, value: account}]}
`,
    );
    const r = await cli(['-f', suite, '--routes', baseline, '--no-cache']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL  pass rate: baseline 50.0%, needs 100.0%');
    expect(r.stdout).toMatch(/^locked\s+fail\s+exact: expected "account", got "technical"$/m);
  });

  it('reports a crashing grader as an error of its case and finishes the run', async () => {
    sim.reset();
    // The judge answers with something that is no verdict.
    sim.script([{ whenPrompt: 'judge prompt j1', text: 'I would rather not say.' }, { whenInput: 'hello', text: 'Hello! How can I help?' }]);
    const suite = join(dir, 'crash.yaml');
    writeFileSync(
      suite,
      `name: crash
route: support-reply
judge: {route: eval-judge, prompt: {version: j1, instructions: "Grade it (judge prompt j1)."}}
cases:
  - {id: judged, input: hello there, graders: [{type: rubric, rubric: Friendly}, {type: contains, value: help}]}
  - {id: plain, input: hello again, graders: [{type: contains, value: Hello}]}
`,
    );
    const out = join(dir, 'crash');
    const r = await cli(['-f', suite, '--routes', baseline, '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL  grader errors: baseline 1');
    const rep = report(out);
    const judged = rep.cases.find((c) => c.id === 'judged')!.baseline;
    expect(judged.status).toBe('error');
    expect(judged.graders).toEqual([
      { grader: 'rubric', type: 'rubric', status: 'error', reason: "the judge's verdict is not JSON: I would rather not say." },
      { grader: 'contains', type: 'contains', status: 'pass', reason: 'all present' },
    ]);
    expect(rep.cases.find((c) => c.id === 'plain')!.baseline.status).toBe('pass');
    // A verdict that could not be read is not cached: fixed, the judge is asked again.
    sim.reset();
    sim.script([{ whenPrompt: 'judge prompt j1', json: { pass: true, score: 1, reason: 'friendly' } }, { whenInput: 'hello', text: 'Hello! How can I help?' }]);
    const fixed = await cli(['-f', suite, '--routes', baseline, '--out', out]);
    expect(fixed.code).toBe(0);
    expect(report(out).cases.find((c) => c.id === 'judged')!.baseline.graders[0]).toMatchObject({ status: 'pass', score: 1 });
  });

  it('exits 2 with located problems for a bad suite, bad routes or bad flags', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'name: bad\ncases:\n  - {id: x, input: hi, graders: [{type: number, expected: one}]}\n');
    const r = await cli(['-f', bad, '--routes', baseline]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`${bad}: case "x": graders[0].expected: Invalid input: expected number, received string\n`);
    expect(sim.requests).toHaveLength(0);

    const unknownRoute = join(dir, 'unknown-route.yaml');
    writeFileSync(unknownRoute, 'name: u\nroute: billing-bot\ncases:\n  - {id: x, input: hi, graders: [{type: contains, value: hi}]}\n');
    const r2 = await cli(['-f', unknownRoute, '--routes', baseline]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toBe(`${baseline}: no route named billing-bot (the suite ${unknownRoute} calls it)\n`);

    const brokenRoutes = join(dir, 'broken-routes.yaml');
    writeFileSync(brokenRoutes, 'apiVersion: ai-envelope.dev/v1alpha1\nkind: AIRoute\nmetadata: {name: r}\nspec:\n  retry: {maxAttempts: 0}\n');
    const r3 = await cli(['-f', SUITE, '--routes', brokenRoutes]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toContain(`${brokenRoutes}: document 1 (AIRoute default/r): spec.retry.maxAttempts: Invalid value: 0`);

    // A key the route needs but cannot read fails before any case is run.
    const keyed = join(dir, 'keyed.yaml');
    writeFileSync(keyed, readFileSync(baseline, 'utf8').replace('upstream: {baseURL:', 'upstream: {secretRef: {name: openai-shop}, baseURL:'));
    const r4 = await cli(['-f', SUITE, '--routes', keyed, '--secrets-dir', join(dir, 'no-secrets')]);
    expect(r4.code).toBe(2);
    expect(r4.stderr).toMatch(new RegExp(`^${keyed}: the envelope is not ready: API key unavailable: .*openai-shop/apiKey`));
    expect(sim.requests).toHaveLength(0);

    expect(await cli(['-f', SUITE])).toMatchObject({ code: 2, stderr: 'ai-envelope eval: --routes PATH is required\n' });
    expect(await cli(['-f', SUITE, '--routes', baseline, '--concurrency', '0'])).toMatchObject({ code: 2, stderr: "ai-envelope eval: --concurrency must be a whole number from 1 to 256, got '0'\n" });
  });

  it('exports the cases as OpenAI Evals items that run as a suite again', async () => {
    const items = join(dir, 'items.jsonl');
    const r = await cli(['-f', SUITE, '--export-jsonl', items]);
    expect(r).toMatchObject({ code: 0, stderr: `wrote 12 item(s) to ${items}\n` });
    const lines = readFileSync(items, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { item: { id: string } });
    expect(lines[0]!.item.id).toBe('billing-double-charge');
    // The items run again as the cases of a suite that keeps the judge and the gates in YAML.
    const wrapper = join(dir, 'from-items.yaml');
    writeFileSync(wrapper, 'name: from-items\njudge: {route: eval-judge, prompt: {version: j1, instructions: "Grade (judge prompt j1)."}}\ncasesFrom: items.jsonl\n');
    const again = await cli(['-f', wrapper, '--routes', baseline, '--json']);
    expect(again.code).toBe(0);
    const rep = JSON.parse(again.stdout) as Report;
    expect(rep.suite).toBe('from-items');
    expect(rep.baseline.overall).toEqual({ passed: 11, total: 12, rate: 11 / 12 });
    expect(rep.cases).toHaveLength(12);
    expect(rep.cases.find((c) => c.id === 'extract-refund')?.baseline.status).toBe('pass');
  });

  it('never touches the shared Redis a rendered production config names', async () => {
    const redis = await startRedis();
    try {
      const rendered = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [CLI, 'render', '-f', baseline], (err, stdout) => (err ? reject(err) : resolve(stdout))),
      );
      // As the operator writes it for replicas that share Redis: the state in the config, and the
      // content hash over it.
      const config = SidecarConfig.parse({ ...(parseYAML(rendered) as Record<string, unknown>), state: { redisURL: redis.url } });
      config.version = contentHash({ routes: config.routes, budgets: config.budgets, state: config.state });
      const path = join(dir, 'rendered-with-redis.json');
      writeFileSync(path, JSON.stringify(config));
      const r = await cli(['-f', SUITE, '--routes', path, '--out', join(dir, 'isolated'), '--no-cache']);
      expect(r.code).toBe(0);
      expect(report(join(dir, 'isolated')).baseline.perTag.adversarial).toEqual({ passed: 3, total: 3, rate: 1 });
      const client = new Redis(redis.url, { lazyConnect: true });
      await client.connect();
      // Limits and budgets were counted in the eval's own process: nothing reached the shared store.
      expect(await client.dbsize()).toBe(0);
      const clients = await client.client('LIST');
      expect(String(clients).trim().split('\n')).toHaveLength(1);
      client.disconnect();
    } finally {
      await redis.stop();
    }
  });
});
