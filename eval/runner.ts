// Runs a suite through the real envelope: one in-process sidecar per routes file (the same
// startSidecar the `sidecar` command runs, on loopback ports picked by the system), called over
// HTTP in OpenAI's own shapes, so prompt prefix, redaction, schema checks, fallbacks and limits
// apply as in production. Cost, tokens and the model come from the sidecar's own request log line
// (priced with its table). Answers are cached per case and route config hash.
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { z } from 'zod';
import { loadConfig } from '../crds/render.ts';
import { formatProblem } from '../crds/manifests.ts';
import type { SidecarConfig } from '../crds/schema.ts';
import { startSidecar, type RunningSidecar } from '../sidecar/main.ts';
import type { RequestRecord } from '../sidecar/telemetry/log.ts';
import { caseStatus, runGraders, type Answer, type Judge, type Verdict } from './graders.ts';
import type { CaseRun, VersionRun } from './report.ts';
import { endpointOf, inputText, requestBody, type Case, type Suite } from './suite.ts';

/** A problem with what the user gave (routes that do not load, a route the suite names but the file lacks). */
export class EvalUsageError extends Error {}

/** One call's outcome, as cached. */
export interface CallResult {
  answer: Answer;
  latencyMs: number;
  inputTokens: number;
  outputTokens: number;
  costUSD: number;
}

const PATHS = { responses: '/v1/responses', chat: '/v1/chat/completions' } as const;
const RETRYABLE_REFUSALS = new Set(['rate_limited', 'concurrency_limited']);
const MAX_WAITS = 5;

/** A sidecar started in this process for one routes file, and what its log lines said. */
export class Envelope {
  readonly label: string;
  readonly routes: string;
  readonly config: SidecarConfig;
  readonly logLines: string[] = [];
  private running: RunningSidecar | undefined;
  private readonly records = new Map<string, RequestRecord>();
  private readonly waiters = new Map<string, (r: RequestRecord) => void>();

  private constructor(label: string, routes: string, config: SidecarConfig) {
    this.label = label;
    this.routes = routes;
    this.config = config;
  }

  static async start(label: string, routes: string, secretsDir: string): Promise<Envelope> {
    const loaded = await loadConfig(routes);
    if (!loaded.ok) throw new EvalUsageError(loaded.problems.map((p) => formatProblem(p)).join('\n'));
    const env = new Envelope(label, routes, loaded.config);
    // The sidecar's lines come here instead of stdout: request lines give cost and tokens.
    const log = pino(
      { level: 'info', base: { component: 'sidecar' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
      { write: (line: string) => env.onLine(line) },
    );
    env.running = await startSidecar({ configPath: routes, secretsDir, port: 0, adminPort: 0, adminHost: '127.0.0.1', graceSeconds: 5, pollMs: 60_000, log, isolated: true });
    // What /readyz would say: a missing key would fail every case alike, so stop before the first.
    const { ready, reasons } = env.running.sidecar.readiness();
    if (!ready) {
      await env.stop();
      throw new EvalUsageError(`${routes}: the envelope is not ready: ${reasons.join('; ')}`);
    }
    return env;
  }

  get version(): string {
    return this.config.version;
  }

  /** The prompt version of each referenced route, keyed by the reference. */
  prompts(refs: string[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const ref of refs) {
      const r = this.config.routes.find((x) => x.name === ref || `${x.namespace}/${x.name}` === ref);
      if (r) out[ref] = r.prompt?.version ?? '-';
    }
    return out;
  }

  /** Whether a route reference (name or namespace/name) names a route of this file. */
  hasRoute(ref: string): boolean {
    return this.config.routes.some((r) => r.name === ref || `${r.namespace}/${r.name}` === ref);
  }

  private onLine(line: string): void {
    this.logLines.push(line.trimEnd());
    let parsed: { msg?: string; request_id?: string };
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      return;
    }
    if (parsed.msg !== 'request' || !parsed.request_id) return;
    const record = parsed as RequestRecord;
    const waiter = this.waiters.get(record.request_id);
    if (waiter) {
      this.waiters.delete(record.request_id);
      waiter(record);
    } else {
      this.records.set(record.request_id, record);
    }
  }

  /** The request's log line: written when the sidecar finishes the exchange, just after the answer. */
  private record(id: string, timeoutMs = 5000): Promise<RequestRecord | undefined> {
    const have = this.records.get(id);
    if (have) {
      this.records.delete(id);
      return Promise.resolve(have);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  /** One call as an app makes it; the envelope's own rate-limit refusals are waited out like an SDK would. */
  async call(endpoint: 'responses' | 'chat', body: Record<string, unknown>, route: string | undefined): Promise<CallResult> {
    if (!this.running) throw new Error('the envelope is not running');
    const url = `http://127.0.0.1:${this.running.port}${PATHS[endpoint]}`;
    let inputTokens = 0;
    let outputTokens = 0;
    let costUSD = 0;
    for (let attempt = 0; ; attempt++) {
      const id = `eval-${randomUUID()}`;
      const started = performance.now();
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': id, ...(route ? { 'x-envelope-route': route } : {}) },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      const latencyMs = Math.round((performance.now() - started) * 10) / 10;
      const rec = await this.record(id);
      inputTokens += rec?.input_tokens ?? 0;
      outputTokens += rec?.output_tokens ?? 0;
      costUSD += rec?.cost_usd ?? 0;
      const answer = toAnswer(endpoint, res.status, text, res.headers.get('x-envelope-model') ?? rec?.model);
      const wait = Number(res.headers.get('retry-after-ms') ?? Number(res.headers.get('retry-after') ?? 'NaN') * 1000);
      if (res.status === 429 && RETRYABLE_REFUSALS.has(answer.error?.code ?? '') && attempt < MAX_WAITS && wait >= 0 && wait <= 30_000) {
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      return { answer, latencyMs, inputTokens, outputTokens, costUSD };
    }
  }

  async stop(): Promise<void> {
    await this.running?.shutdown();
    this.running = undefined;
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The answer in one shape, from either API's body (or its error body). */
export function toAnswer(endpoint: 'responses' | 'chat', status: number, text: string, model: string | undefined): Answer {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const base = { status, ...(model ? { model } : {}) };
  if (status < 200 || status >= 300 || !isObj(body)) {
    const err = isObj(body) && isObj(body.error) ? body.error : {};
    return { ...base, ok: false, text: '', toolCalls: [], error: { code: typeof err.code === 'string' ? err.code : null, message: typeof err.message === 'string' ? err.message : text.slice(0, 300) } };
  }
  const toolCalls: Answer['toolCalls'] = [];
  let out = '';
  if (endpoint === 'responses') {
    for (const item of Array.isArray(body.output) ? body.output : []) {
      if (!isObj(item)) continue;
      if (item.type === 'function_call') toolCalls.push({ name: String(item.name), arguments: String(item.arguments ?? '') });
      if (item.type === 'message' && Array.isArray(item.content)) {
        for (const part of item.content) if (isObj(part) && part.type === 'output_text' && typeof part.text === 'string') out += part.text;
      }
    }
  } else {
    const choice = Array.isArray(body.choices) && isObj(body.choices[0]) ? body.choices[0] : {};
    const message = isObj(choice.message) ? choice.message : {};
    if (typeof message.content === 'string') out = message.content;
    for (const call of Array.isArray(message.tool_calls) ? message.tool_calls : []) {
      const fn = isObj(call) && isObj(call.function) ? call.function : {};
      toolCalls.push({ name: String(fn.name), arguments: String(fn.arguments ?? '') });
    }
  }
  return { ...base, ok: true, text: out, toolCalls };
}

/** Answers on disk, one file per key: sha256 of the case's request, its route and the config hash. */
export class ResultCache {
  private readonly dir: string | undefined;
  hits = 0;
  constructor(dir: string | undefined) {
    this.dir = dir;
  }

  static key(material: unknown): string {
    return createHash('sha256').update(JSON.stringify(material)).digest('hex');
  }

  async get(key: string): Promise<CallResult | undefined> {
    if (!this.dir) return undefined;
    try {
      const hit = JSON.parse(await readFile(join(this.dir, `${key}.json`), 'utf8')) as CallResult;
      this.hits++;
      return hit;
    } catch {
      return undefined;
    }
  }

  async put(key: string, value: CallResult): Promise<void> {
    // Outages and limits are not the route's answer: a re-run should ask again.
    if (!this.dir || value.answer.status === 0 || value.answer.status >= 500 || value.answer.status === 429 || value.answer.status === 408) return;
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `${key}.${process.pid}.tmp`);
    await writeFile(tmp, JSON.stringify(value));
    await rename(tmp, join(this.dir, `${key}.json`));
  }
}

const VERDICT_SCHEMA = {
  type: 'object',
  properties: { pass: { type: 'boolean' }, score: { type: 'number', minimum: 0, maximum: 1 }, reason: { type: 'string' } },
  required: ['pass', 'score', 'reason'],
  additionalProperties: false,
};
const VerdictShape = z.strictObject({ pass: z.boolean(), score: z.number().min(0).max(1), reason: z.string() });

function answerForJudge(a: Answer): string {
  if (a.toolCalls.length > 0) return a.toolCalls.map((c) => `tool call ${c.name}(${c.arguments})`).join('\n');
  return a.text;
}

export function answerSummary(a: Answer): string {
  if (!a.ok) return `error ${a.status} ${a.error?.code ?? ''}: ${a.error?.message ?? ''}`.slice(0, 300);
  const s = a.toolCalls.length > 0 ? a.toolCalls.map((c) => `${c.name}(${c.arguments})`).join(' ') : a.text;
  return s.length > 300 ? `${s.slice(0, 299)}…` : s;
}

export interface RunOptions {
  suite: Suite;
  routes: string;
  compare?: string;
  secretsDir: string;
  concurrency: number;
  cacheDir?: string;
  /** Called after every case: done, total. */
  progress?: (done: number, total: number, cached: number) => void;
}

export interface RunOutcome {
  baseline: VersionRun;
  candidate?: VersionRun;
  logs: Record<string, string[]>;
}

/** Runs fn over items with at most `limit` in flight. */
export async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

function checkRoutes(suite: Suite, env: Envelope, withJudge: boolean): void {
  const refs = new Set<string>();
  if (suite.route) refs.add(suite.route);
  for (const c of suite.cases) if (c.route) refs.add(c.route);
  if (withJudge && suite.judge?.route) refs.add(suite.judge.route);
  const missing = [...refs].filter((r) => !env.hasRoute(r));
  if (missing.length > 0) throw new EvalUsageError(`${env.routes}: no route named ${missing.join(', ')} (the suite ${suite.file} calls it)`);
}

export async function runEval(opts: RunOptions): Promise<RunOutcome> {
  const { suite } = opts;
  const cache = new ResultCache(opts.cacheDir);
  const envs: Envelope[] = [];
  try {
    const baseline = await Envelope.start('baseline', opts.routes, opts.secretsDir);
    envs.push(baseline);
    checkRoutes(suite, baseline, true);
    if (opts.compare) {
      const candidate = await Envelope.start('candidate', opts.compare, opts.secretsDir);
      envs.push(candidate);
      checkRoutes(suite, candidate, false);
    }
    const judgeCost = new Map<string, number>();
    const judgeFor = (label: string): Judge | undefined => {
      const j = suite.judge;
      if (!j) return undefined;
      return async (rubric: string, input: string, answer: Answer): Promise<Verdict> => {
        const body = {
          ...(j.model ? { model: j.model } : {}),
          instructions: j.prompt.instructions,
          input: `Rubric:\n${rubric}\n\nUser input:\n${input}\n\nAnswer to grade:\n${answerForJudge(answer)}`,
          text: { format: { type: 'json_schema', name: 'verdict', strict: true, schema: VERDICT_SCHEMA } },
        };
        const route = j.route ?? suite.route;
        const key = ResultCache.key({ kind: 'judge', prompt: j.prompt.version, route, config: baseline.version, body });
        const hit = await cache.get(key);
        const result = hit ?? (await baseline.call('responses', body, route));
        // Like a case's, the verdict's cost is what it cost when it was made, cached or not.
        judgeCost.set(label, (judgeCost.get(label) ?? 0) + result.costUSD);
        if (!result.answer.ok) throw new Error(`the judge's call failed: ${result.answer.status} ${result.answer.error?.code ?? ''}: ${result.answer.error?.message ?? ''}`);
        let parsed: unknown;
        try {
          parsed = JSON.parse(result.answer.text);
        } catch {
          throw new Error(`the judge's verdict is not JSON: ${result.answer.text.slice(0, 120)}`);
        }
        const v = VerdictShape.safeParse(parsed);
        if (!v.success) throw new Error(`the judge's verdict does not fit {pass, score, reason}: ${v.error.issues.map((i) => `${i.path.join('.') || '(verdict)'}: ${i.message}`).join('; ')}`);
        // Only a usable verdict is kept: a broken one is asked again next time.
        if (!hit) await cache.put(key, result);
        return v.data;
      };
    };

    const jobs = envs.flatMap((env) => suite.cases.map((c) => ({ env, c })));
    const results = new Map<Envelope, Map<string, CaseRun>>(envs.map((e) => [e, new Map()]));
    const judges = new Map(envs.map((e) => [e, judgeFor(e.label)]));
    let done = 0;
    let cached = 0;
    const runCase = async ({ env, c }: { env: Envelope; c: Case }) => {
      const endpoint = endpointOf(c);
      const body = requestBody(c);
      const route = c.route ?? suite.route;
      const key = ResultCache.key({ kind: 'case', id: c.id, route, config: env.version, endpoint, body });
      let result = await cache.get(key);
      const hit = result !== undefined;
      if (!result) {
        try {
          result = await env.call(endpoint, body, route);
        } catch (e) {
          result = { answer: { status: 0, ok: false, text: '', toolCalls: [], error: { code: 'connection_error', message: (e as Error).message } }, latencyMs: 0, inputTokens: 0, outputTokens: 0, costUSD: 0 };
        }
        await cache.put(key, result);
      }
      const graders = await runGraders(c.graders, result.answer, inputText(c), judges.get(env));
      results.get(env)!.set(c.id, {
        id: c.id,
        tags: c.tags,
        status: caseStatus(graders),
        graders,
        answer: answerSummary(result.answer),
        httpStatus: result.answer.status,
        ...(result.answer.model ? { model: result.answer.model } : {}),
        latencyMs: result.latencyMs,
        inputTokens: result.inputTokens,
        outputTokens: result.outputTokens,
        costUSD: result.costUSD,
        cached: hit,
      });
      done++;
      if (hit) cached++;
      opts.progress?.(done, jobs.length, cached);
    };
    await pool(jobs, opts.concurrency, runCase);

    const version = (env: Envelope): VersionRun => ({
      label: env.label as 'baseline' | 'candidate',
      routes: env.routes,
      configVersion: env.version,
      prompts: env.prompts([...new Set(suite.cases.map((c) => c.route ?? suite.route).filter((r): r is string => r !== undefined))]),
      cases: suite.cases.map((c) => results.get(env)!.get(c.id)!),
      judgeCostUSD: judgeCost.get(env.label) ?? 0,
    });
    const out: RunOutcome = { baseline: version(envs[0]!), logs: Object.fromEntries(envs.map((e) => [e.label, e.logLines])) };
    if (envs[1]) out.candidate = version(envs[1]);
    return out;
  } finally {
    await Promise.all(envs.map((e) => e.stop()));
  }
}
