// `npm start`: the quick start. Runs the real `ai-envelope sidecar` process with the example
// routes in front of the local OpenAI simulator, then plays a short client session with the
// official SDK and shows, call by call, what the envelope did. `--serve` keeps both running.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startSimulator } from '../simulator/index.ts';
import { countTokens } from '../simulator/tokens.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEMO_KEY = 'sk-test-demo-key-not-real';
const serve = process.argv.includes('--serve');

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);

interface LogLine {
  msg: string;
  event?: string;
  [k: string]: unknown;
}

async function main(): Promise<void> {
  const sim = await startSimulator({ apiKeys: [DEMO_KEY], streamDelayMs: 15 });
  // The simulator loads its tokenizers on first use; load them now so the timings below are the sidecar's.
  for (const model of ['gpt-4.1-mini', 'text-embedding-3-small']) countTokens('warm up', model);
  const work = mkdtempSync(join(tmpdir(), 'ai-envelope-demo-'));
  // The example routes point at the simulator's usual port; aim them at this one.
  const routes = readFileSync(join(ROOT, 'examples/routes.yaml'), 'utf8').replaceAll('http://127.0.0.1:4010/v1', sim.url);
  writeFileSync(join(work, 'routes.yaml'), routes);
  // A folder laid out like a mounted Secret volume.
  const secret = join(work, 'secrets', 'openai-shop');
  mkdirSync(join(secret, '..v1'), { recursive: true });
  writeFileSync(join(secret, '..v1', 'apiKey'), DEMO_KEY);
  symlinkSync('..v1', join(secret, '..data'));
  symlinkSync(join('..data', 'apiKey'), join(secret, 'apiKey'));

  const args = [join(ROOT, 'dist/cli.js'), 'sidecar', '-f', join(work, 'routes.yaml'), '--secrets-dir', join(work, 'secrets')];
  if (!serve) args.push('--port', '0', '--admin-port', '0');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const logs: LogLine[] = [];
  let buffered = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) logs.push(JSON.parse(l) as LogLine);
  });
  const waitFor = async (pred: (l: LogLine) => boolean): Promise<LogLine> => {
    for (let i = 0; i < 200; i++) {
      const hit = logs.find(pred);
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('the sidecar did not log what was expected; is the build current? (npm run build)');
  };
  const started = await waitFor((l) => l.event === 'started');
  const base = `http://127.0.0.1:${String(started.port)}`;
  const admin = `http://127.0.0.1:${String(started.admin_port)}`;

  console.log(bold('ai-envelope quick start'));
  console.log(`  simulator (stands in for api.openai.com): ${sim.url}`);
  console.log(`  sidecar proxy: ${base}/v1   admin: ${admin}   routes: examples/routes.yaml`);
  console.log(`  the app's SDK holds a placeholder key; the real one is in a Secret only the sidecar reads\n`);

  const client = new OpenAI({ apiKey: 'placeholder-the-sidecar-holds-the-key', baseURL: `${base}/v1`, maxRetries: 2 });
  const record = (id: string) => waitFor((l) => l.msg === 'request' && l.request_id === id);
  let n = 0;
  const step = async (title: string, call: (headers: Record<string, string>) => Promise<string>) => {
    const id = `demo-${++n}`;
    console.log(bold(`${n}. ${title}`));
    let outcome: string;
    try {
      outcome = await call({ 'x-request-id': id, 'x-envelope-user': 'customer-42' });
    } catch (err) {
      const e = err as { status?: number; code?: string; message?: string };
      outcome = `refused: ${e.status ?? ''} ${e.code ?? ''}: ${e.message ?? String(err)}`;
    }
    const r = await record(id);
    console.log(`   app got:  ${outcome}`);
    const tokens = r.input_tokens !== undefined ? `, tokens in/out ${String(r.input_tokens)}/${String(r.output_tokens)}` : '';
    const ttft = r.ttft_ms !== undefined ? `, first token after ${String(r.ttft_ms)} ms` : '';
    const cost = typeof r.cost_usd === 'number' && r.cost_usd > 0 ? `, cost $${r.cost_usd.toFixed(8)}` : '';
    console.log(
      dim(`   envelope: route ${String(r.route ?? '-')}, model ${String(r.model ?? '-')}, status ${String(r.status)}${r.error_code ? ` (${String(r.error_code)})` : ''}, attempts ${String(r.attempts)}${tokens}${cost}${ttft}, ${String(r.latency_ms)} ms\n`),
    );
  };

  await step('A chat call that names an alias ("fast")', async (headers) => {
    const res = await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'Where is order 1234?' }] }, { headers });
    return JSON.stringify(res.choices[0]?.message.content);
  });
  await step('A streamed Responses call', async (headers) => {
    const stream = client.responses.stream({ model: 'gpt-4.1-mini', input: 'Summarise ticket 77 in one line' }, { headers });
    let deltas = 0;
    for await (const ev of stream) if (ev.type === 'response.output_text.delta') deltas++;
    return `${deltas} text deltas, then: ${JSON.stringify((await stream.finalResponse()).output_text)}`;
  });
  sim.fault({ type: 'error', status: 503, times: 2 });
  await step('The upstream is overloaded twice (503): the sidecar retries with backoff', async (headers) => {
    const res = await client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Are you there?' }] }, { headers });
    return JSON.stringify(res.choices[0]?.message.content);
  });
  sim.fault({ type: 'insufficient_quota', times: 1 });
  await step('The account is out of quota: never retried, and the SDK is told not to retry either', async (headers) => {
    await client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Hello?' }] }, { headers });
    return 'ok';
  });
  await step('A model the route does not allow', async (headers) => {
    await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Use the big one' }] }, { headers: { ...headers, 'x-envelope-route': 'support-triage' } });
    return 'ok';
  });
  await step('Embeddings go to the route that allows them', async (headers) => {
    const res = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'blue running shoes' }, { headers });
    return `a vector of ${res.data[0]?.embedding.length ?? 0} floats`;
  });

  const upstreamCalls = sim.requests.length;
  const leaked = sim.requests.some((r) => r.headers.authorization !== `Bearer ${DEMO_KEY}`);
  console.log(bold('What the upstream saw'));
  console.log(`   ${upstreamCalls} calls, every one with the route's key from the Secret${leaked ? ' (NOT: check the config)' : ''}; the app's placeholder never left the pod`);
  const usage = (await (await fetch(`${admin}/usage`)).json()) as {
    routes: Record<string, { requests: number; input_tokens: number; output_tokens: number; cost_usd: number }>;
    budgets: Record<string, { spent_usd: number; limit_usd?: number }>;
  };
  console.log(bold('\n/usage on the admin port'));
  for (const [route, u] of Object.entries(usage.routes)) {
    console.log(`   ${route}: ${u.requests} requests, ${u.input_tokens} input and ${u.output_tokens} output tokens, $${u.cost_usd.toFixed(8)}`);
  }
  for (const [budget, b] of Object.entries(usage.budgets)) console.log(`   budget ${budget}: $${b.spent_usd.toFixed(8)} spent of $${String(b.limit_usd ?? '?')}`);
  const metrics = (await (await fetch(`${admin}/metrics`)).text()).split('\n').filter((l) => /^(ai_envelope_retries_total|ai_envelope_requests_total)\{/.test(l));
  console.log(bold('\nA few lines of /metrics'));
  for (const l of metrics.slice(0, 8)) console.log(`   ${l}`);

  if (serve) {
    console.log(bold(`\nServing until Ctrl-C. Try: curl ${base}/v1/chat/completions -H 'content-type: application/json' -d '{"messages":[{"role":"user","content":"hi"}]}' -H 'x-envelope-route: support-triage'`));
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  } else {
    console.log(dim('\n(npm start -- --serve keeps the sidecar on 127.0.0.1:4141 and the simulator running)'));
  }
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await sim.close();
  rmSync(work, { recursive: true, force: true });
}

await main();
