// A cost scenario: per route, the traffic and token figures a launch expects. Read from YAML or
// JSON, validated with zod; every problem names the file and the field path, as the manifest and
// suite loaders do.
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ModelPrice } from '../crds/schema.ts';
import { formatPath } from '../crds/manifests.ts';

const Share = z.number({ error: 'must be a number from 0 to 1' }).min(0, 'must be from 0 to 1').max(1, 'must be from 0 to 1');
const Tokens = z.number({ error: 'must be a number of tokens' }).min(0, 'must not be negative');
const TokenPair = z.strictObject({ input: Tokens, output: Tokens.default(0) });

export const ScenarioRoute = z
  .strictObject({
    /** The AIRoute's name; budgets and `--routes` manifests are matched by it. */
    name: z.string().min(1, 'must not be empty'),
    /** Default: the namespace of the AIRoute of this name in --routes, else `default`. */
    namespace: z.string().min(1).optional(),
    /** The AIRoute's labels, for AIBudget routeSelectors (taken from `--routes` when given there). */
    labels: z.record(z.string(), z.string()).optional(),
    model: z.string().min(1, 'must not be empty').optional(),
    requestsPerDay: z.number({ error: 'must be a number' }).min(0, 'must not be negative').optional(),
    tokens: z.strictObject({ typical: TokenPair, worst: TokenPair.optional() }).optional(),
    /** Share of input tokens served from the prompt cache, in the typical case. */
    cachedShare: Share.default(0),
    /** Extra attempts per request that reached the model (0.02: two retries per hundred calls). */
    retryRate: z.number({ error: 'must be a number' }).min(0, 'must not be negative').max(10, 'must be at most 10 extra attempts per request').default(0),
    /** Share of requests streamed: priced as the others; reported only. */
    streamingShare: Share.default(0),
    /** Share of requests sent through the Batch API today, at the batch price. */
    batchShare: Share.default(0),
    /** Share of requests that could go through the Batch API (a 24-hour window suits them). */
    batchableShare: Share.optional(),
    /** End users sharing this route's traffic evenly, for per-user budgets; else the scenario's. */
    users: z.number().int('must be a whole number').positive('must be greater than 0').optional(),
    /** Cheaper models to price the same traffic on; default: the cheaper models of the same family. */
    compare: z.array(z.string().min(1)).optional(),
    /** With --from-eval: which cases of the eval report measure this route (no tags: every case). */
    eval: z.strictObject({ tags: z.array(z.string().min(1)).optional(), version: z.enum(['baseline', 'candidate']).optional() }).optional(),
  })
  .superRefine((r, ctx) => {
    if (r.batchableShare !== undefined && r.batchableShare < r.batchShare) ctx.addIssue({ code: 'custom', path: ['batchableShare'], message: 'must not be below batchShare (the share already in batch is batchable)' });
    const t = r.tokens;
    if (t?.worst && (t.worst.input < t.typical.input || t.worst.output < t.typical.output)) ctx.addIssue({ code: 'custom', path: ['tokens', 'worst'], message: 'must not be below tokens.typical' });
  });
export type ScenarioRoute = z.output<typeof ScenarioRoute>;

export const Scenario = z.strictObject({
  name: z.string().min(1).optional(),
  /** Days in the month the estimate is for (and the length of a monthly budget period). */
  days: z.number().int('must be a whole number').min(1, 'must be at least 1').max(366, 'must be at most 366').default(30),
  /** USD per 1M tokens, over the built-in table (and over an AIRoute's spec.prices). */
  prices: z.record(z.string().min(1), ModelPrice).default({}),
  users: z.number().int('must be a whole number').positive('must be greater than 0').optional(),
  routes: z.array(ScenarioRoute).default([]),
});
export type Scenario = z.output<typeof Scenario>;

export class ScenarioError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.problems = problems;
  }
}

/** Validates a parsed scenario; problems read `FILE: routes[1].cachedShare: must be from 0 to 1`. */
export function parseScenario(value: unknown, file: string): Scenario {
  const r = Scenario.safeParse(value ?? {}, { reportInput: true });
  if (!r.success) {
    throw new ScenarioError(
      r.error.issues.flatMap((i) => {
        if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${file}: ${formatPath([...i.path, k])}: unknown field`);
        const missing = i.code === 'invalid_type' && i.input === undefined;
        return [`${file}: ${formatPath(i.path) || '(scenario)'}: ${missing ? 'required field is missing' : i.message}`];
      }),
    );
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  r.data.routes.forEach((route, i) => {
    const id = `${route.namespace ?? '(any)'}/${route.name}`;
    if (seen.has(id)) problems.push(`${file}: routes[${i}].name: route ${id} is listed twice`);
    seen.add(id);
  });
  if (problems.length > 0) throw new ScenarioError(problems);
  return r.data;
}

/** Reads a scenario file (YAML, of which JSON is a subset); throws ScenarioError. */
export async function loadScenario(file: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ScenarioError([`${file}: ${(e as Error).message}`]);
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new ScenarioError(doc.errors.map((e) => `${file}: line ${e.linePos?.[0]?.line ?? '?'}, column ${e.linePos?.[0]?.col ?? '?'}: ${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`));
  }
  const value: unknown = doc.toJS();
  if (value !== null && value !== undefined && (typeof value !== 'object' || Array.isArray(value))) throw new ScenarioError([`${file}: a scenario must be a mapping with routes`]);
  return parseScenario(value, file);
}
