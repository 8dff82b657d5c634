// An eval suite: cases (an input in the Responses or Chat shape, tags, graders) and the suite's
// gates. Read from YAML or JSONL (bare cases, or OpenAI Evals data-source lines `{"item": ...}`),
// validated with zod; every problem names the file, the case and the field.
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { schemaProblem } from '../sidecar/policy/json-schema.ts';

/** A dotted path into structured output: `customer.order_id`, `items[0].sku` or `items.0.sku`. */
const FieldPath = z.string().min(1).regex(/^[\w-]+(\[\d+\]|\.[\w-]+)*$/, 'must be a dotted path like order.id or items[0].sku');
const Texts = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
const Schema = z.record(z.string(), z.unknown()).superRefine((schema, ctx) => {
  const problem = schemaProblem(schema);
  if (problem) ctx.addIssue({ code: 'custom', message: `not a usable JSON Schema: ${problem}` });
});
const base = { name: z.string().min(1).optional() };

const Exact = z.strictObject({ type: z.literal('exact'), ...base, value: z.string(), caseSensitive: z.boolean().default(true) });
const Contains = z.strictObject({ type: z.literal('contains'), ...base, value: Texts, caseSensitive: z.boolean().default(false) });
const NotContains = z.strictObject({ type: z.literal('not_contains'), ...base, value: Texts, caseSensitive: z.boolean().default(false) });
const Regex = z
  .strictObject({ type: z.literal('regex'), ...base, pattern: z.string().min(1), flags: z.string().regex(/^[imsu]*$/, 'flags may only be i, m, s, u').default('') })
  .superRefine((g, ctx) => {
    try {
      new RegExp(g.pattern, g.flags);
    } catch (e) {
      ctx.addIssue({ code: 'custom', path: ['pattern'], message: (e as Error).message });
    }
  });
const JsonSchema = z.strictObject({ type: z.literal('json_schema'), ...base, schema: Schema });
const Fields = z.strictObject({ type: z.literal('fields'), ...base, equals: z.record(FieldPath, z.unknown()).refine((r) => Object.keys(r).length > 0, 'needs at least one field') });
const ToolCall = z.strictObject({ type: z.literal('tool_call'), ...base, tool: z.string().min(1), arguments: z.record(z.string(), z.unknown()).optional(), exactArguments: z.boolean().default(false) });
const Label = z
  .strictObject({ type: z.literal('label'), ...base, labels: z.array(z.string().min(1)).min(1), expected: z.string().optional(), field: FieldPath.optional(), caseSensitive: z.boolean().default(false) })
  .refine((g) => g.expected === undefined || g.labels.includes(g.expected), { path: ['expected'], message: 'must be one of labels' });
const NumberClose = z.strictObject({ type: z.literal('number'), ...base, expected: z.number(), tolerance: z.number().min(0).default(0), relative: z.boolean().default(false), field: FieldPath.optional() });
const Rubric = z.strictObject({ type: z.literal('rubric'), ...base, rubric: z.string().min(1), minScore: z.number().min(0).max(1).default(0.5) });
const EnvelopeError = z.strictObject({ type: z.literal('error'), ...base, code: z.string().min(1) });

export const GRADER_TYPES = ['exact', 'contains', 'not_contains', 'regex', 'json_schema', 'fields', 'tool_call', 'label', 'number', 'rubric', 'error'] as const;

const Grader = z.discriminatedUnion('type', [Exact, Contains, NotContains, Regex, JsonSchema, Fields, ToolCall, Label, NumberClose, Rubric, EnvelopeError], {
  error: (iss) => (iss.code === 'invalid_union' ? `unknown grader type: expected one of ${GRADER_TYPES.join(', ')}` : undefined),
});
export type Grader = z.output<typeof Grader>;

const Message = z.looseObject({ role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']) });
const Params = z.record(z.string(), z.unknown()).superRefine((p, ctx) => {
  for (const k of ['input', 'messages', 'instructions', 'stream']) {
    if (k in p) ctx.addIssue({ code: 'custom', path: [k], message: k === 'stream' ? 'evals read whole answers; streams are not graded' : `belongs on the case, not in params` });
  }
});

export const Case = z
  .strictObject({
    id: z.string().regex(/^[\w.-]{1,100}$/, 'must be 1-100 letters, digits, dots, dashes or underscores'),
    description: z.string().optional(),
    tags: z.array(z.string().regex(/^[\w.-]{1,50}$/, 'must be a word like common, edge, adversarial or regression')).default([]),
    /** The route (name or namespace/name) to call; else the suite's. */
    route: z.string().min(1).optional(),
    /** Responses shape: a string or input items; instructions beside it. */
    input: z.union([z.string().min(1), z.array(z.unknown()).min(1)]).optional(),
    instructions: z.string().optional(),
    /** Chat Completions shape. */
    messages: z.array(Message).min(1).optional(),
    /** Any other request fields: model, tools, tool_choice, text, response_format, caps. */
    params: Params.default({}),
    graders: z.array(Grader).min(1, 'needs at least one grader'),
  })
  .superRefine((c, ctx) => {
    if ((c.input === undefined) === (c.messages === undefined)) ctx.addIssue({ code: 'custom', path: ['input'], message: 'give exactly one of input (Responses) or messages (Chat)' });
    if (c.messages !== undefined && c.instructions !== undefined) ctx.addIssue({ code: 'custom', path: ['instructions'], message: 'instructions go with input; with messages use a system message' });
  });
export type Case = z.output<typeof Case>;

const Rate = z.number().min(0).max(1);
const SuiteFields = {
  name: z.string().min(1),
  description: z.string().optional(),
  route: z.string().min(1).optional(),
  defaults: z.strictObject({ params: Params.default({}), tags: z.array(z.string()).default([]) }).default({ params: {}, tags: [] }),
  judge: z
    .strictObject({
      route: z.string().min(1).optional(),
      model: z.string().min(1).optional(),
      prompt: z.strictObject({ version: z.string().min(1), instructions: z.string().min(1) }),
    })
    .optional(),
  thresholds: z.strictObject({ passRate: Rate.optional(), tags: z.record(z.string(), Rate).default({}), graders: z.record(z.string(), Rate).default({}) }).default({ tags: {}, graders: {} }),
  regression: z.strictObject({ margin: Rate.default(0) }).default({ margin: 0 }),
  /**
   * An OpenAI Evals JSONL data source (relative to the suite file): a path, whose items are cases,
   * or {file, case}, where `case` is a case template filled from each item's `{{item.field}}`.
   */
  casesFrom: z.union([z.string().min(1), z.strictObject({ file: z.string().min(1), case: z.record(z.string(), z.unknown()) })]).optional(),
};
const SuiteFile = z.strictObject({ ...SuiteFields, cases: z.array(z.unknown()).default([]) });

export interface Suite {
  name: string;
  description?: string;
  file: string;
  route?: string;
  judge?: { route?: string; model?: string; prompt: { version: string; instructions: string } };
  thresholds: { passRate?: number; tags: Record<string, number>; graders: Record<string, number> };
  regression: { margin: number };
  cases: Case[];
}

export class SuiteError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.problems = problems;
  }
}

/** `graders[1].pattern` from zod's path. */
function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(case)';
}

function issues(err: z.ZodError, where: string): string[] {
  return err.issues.map((i) => `${where}${fieldPath(i.path)}: ${i.message}`);
}

function caseLabel(raw: unknown, fallback: string): string {
  const id = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id ? `case "${id}"` : fallback;
}

/** Parses one raw case (defaults merged in), collecting located problems. */
function parseCase(raw: unknown, where: string, defaults: { params: Record<string, unknown>; tags: string[] }, problems: string[]): Case | undefined {
  const r = Case.safeParse(raw);
  if (!r.success) {
    problems.push(...issues(r.error, `${where}: `));
    return undefined;
  }
  // A case's null removes a default parameter (a case that offers no tools, say).
  const params = Object.fromEntries(Object.entries({ ...defaults.params, ...r.data.params }).filter(([, v]) => v !== null));
  return { ...r.data, params, tags: [...new Set([...defaults.tags, ...r.data.tags])] };
}

/** One JSONL line: an OpenAI Evals data-source line `{"item": {...}, "sample"?: ...}` or a bare case. */
function caseOfLine(value: unknown): unknown {
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && 'item' in value) return (value as { item: unknown }).item;
  return value;
}

const PLACEHOLDER = /\{\{\s*item\.([\w.[\]-]+)\s*\}\}/g;

/**
 * Fills a case template from an item, as OpenAI's testing criteria reference `{{item.field}}`: a
 * string that is only a placeholder takes the field's value as it is (a number, a list), one
 * with text around it takes the value as text. A field the item lacks is a problem.
 */
export function fillTemplate(template: unknown, item: unknown, missing: string[]): unknown {
  if (typeof template === 'string') {
    const whole = /^\{\{\s*item\.([\w.[\]-]+)\s*\}\}$/.exec(template);
    const lookup = (path: string) => {
      let node: unknown = item;
      for (const part of path.replaceAll(/\[(\d+)\]/g, '.$1').split('.')) node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[part] : undefined;
      if (node === undefined) missing.push(`item.${path}`);
      return node;
    };
    if (whole) return lookup(whole[1]!);
    return template.replaceAll(PLACEHOLDER, (_, path: string) => {
      const v = lookup(path);
      return typeof v === 'string' ? v : JSON.stringify(v ?? null);
    });
  }
  if (Array.isArray(template)) return template.map((t) => fillTemplate(t, item, missing));
  if (typeof template === 'object' && template !== null) return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, fillTemplate(v, item, missing)]));
  return template;
}

function parseJsonl(text: string, file: string, defaults: { params: Record<string, unknown>; tags: string[] }, problems: string[], template?: Record<string, unknown>): Case[] {
  const cases: Case[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      problems.push(`${file}: line ${i + 1}: not JSON: ${(e as Error).message}`);
      return;
    }
    let raw = caseOfLine(value);
    if (template) {
      const missing: string[] = [];
      raw = fillTemplate({ id: `${basename(file).replace(/\.jsonl$/i, '')}-${i + 1}`, ...template }, raw, missing);
      if (missing.length > 0) {
        problems.push(`${file}: line ${i + 1}: ${[...new Set(missing)].join(', ')}: not in the item (the case template of casesFrom uses it)`);
        return;
      }
    }
    const c = parseCase(raw, `${file}: line ${i + 1} (${caseLabel(raw, 'no id')})`, defaults, problems);
    if (c) cases.push(c);
  });
  return cases;
}

function checkSuite(suite: Suite, problems: string[]): void {
  const seen = new Set<string>();
  for (const c of suite.cases) {
    if (seen.has(c.id)) problems.push(`${suite.file}: case "${c.id}": id: used by more than one case`);
    seen.add(c.id);
    c.graders.forEach((g, i) => {
      if (g.type === 'rubric' && !suite.judge) problems.push(`${suite.file}: case "${c.id}": graders[${i}]: a rubric needs the suite's judge (judge.prompt, and judge.route unless the suite's route judges)`);
    });
  }
  if (suite.cases.length === 0) problems.push(`${suite.file}: cases: the suite has no cases`);
}

/** Reads a suite from YAML (a suite document) or JSONL (one case per line); throws SuiteError. */
export async function loadSuite(file: string): Promise<Suite> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new SuiteError([`${file}: ${(e as Error).message}`]);
  }
  const problems: string[] = [];
  let suite: Suite;
  if (/\.jsonl$/i.test(file)) {
    const name = file.replace(/^.*\//, '').replace(/\.jsonl$/i, '');
    suite = { name, file, thresholds: { tags: {}, graders: {} }, regression: { margin: 0 }, cases: parseJsonl(text, file, { params: {}, tags: [] }, problems) };
  } else {
    const doc = parseDocument(text);
    if (doc.errors.length > 0) {
      const message = (m: string) => (m.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
      throw new SuiteError(doc.errors.map((e) => `${file}: line ${e.linePos?.[0]?.line ?? '?'}, column ${e.linePos?.[0]?.col ?? '?'}: ${message(e.message)}`));
    }
    const parsed = SuiteFile.safeParse(doc.toJS());
    if (!parsed.success) throw new SuiteError(issues(parsed.error, `${file}: `));
    const s = parsed.data;
    const cases: Case[] = [];
    s.cases.forEach((raw, i) => {
      const c = parseCase(raw, `${file}: ${caseLabel(raw, `cases[${i}]`)}`, s.defaults, problems);
      if (c) cases.push(c);
    });
    if (s.casesFrom) {
      const source = typeof s.casesFrom === 'string' ? { file: s.casesFrom, case: undefined } : s.casesFrom;
      const from = resolve(dirname(file), source.file);
      let jsonl: string | undefined;
      try {
        jsonl = await readFile(from, 'utf8');
      } catch (e) {
        problems.push(`${file}: casesFrom: ${(e as Error).message}`);
      }
      if (jsonl !== undefined) cases.push(...parseJsonl(jsonl, from, s.defaults, problems, source.case));
    }
    suite = {
      name: s.name,
      file,
      ...(s.description ? { description: s.description } : {}),
      ...(s.route ? { route: s.route } : {}),
      ...(s.judge ? { judge: s.judge } : {}),
      thresholds: s.thresholds,
      regression: s.regression,
      cases,
    };
  }
  if (problems.length === 0) checkSuite(suite, problems);
  if (problems.length > 0) throw new SuiteError(problems);
  return suite;
}

/**
 * The suite's cases as an OpenAI Evals JSONL data source: one `{"item": case}` per line, each with
 * its route and the defaults merged in, so an item stands on its own.
 */
export function toEvalsJsonl(suite: Suite): string {
  return suite.cases.map((c) => `${JSON.stringify({ item: { ...c, ...(c.route ?? suite.route ? { route: c.route ?? suite.route } : {}) } })}\n`).join('');
}

/** Which API a case calls. */
export function endpointOf(c: Case): 'responses' | 'chat' {
  return c.messages !== undefined ? 'chat' : 'responses';
}

/** The request body a case sends, in the API's own shape. */
export function requestBody(c: Case): Record<string, unknown> {
  if (c.messages !== undefined) return { ...c.params, messages: c.messages };
  return { ...c.params, input: c.input, ...(c.instructions !== undefined ? { instructions: c.instructions } : {}) };
}

/** The case's input as text, for a judge and for the report. */
export function inputText(c: Case): string {
  const text = (content: unknown): string =>
    typeof content === 'string' ? content : Array.isArray(content) ? content.map((p) => (typeof p === 'object' && p !== null && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : '')).join('') : '';
  if (c.messages !== undefined) return c.messages.filter((m) => m.role === 'user').map((m) => text(m.content)).join('\n');
  if (typeof c.input === 'string') return c.input;
  return (c.input ?? []).map((i) => (typeof i === 'object' && i !== null && (i as { role?: unknown }).role === 'user' ? text((i as { content?: unknown }).content) : '')).filter(Boolean).join('\n');
}
