// Graders: pure checks of one answer. Only the rubric needs the outside world, and it gets it as
// a judge function, so every grader is tested without a network. A grader that throws is reported
// as an error for its case; it never ends the run.
import { isDeepStrictEqual } from 'node:util';
import { compileSchema, type SchemaCheck } from '../sidecar/policy/json-schema.ts';
import type { Grader } from './suite.ts';

/** What a case's call produced, in one shape for both APIs. */
export interface Answer {
  /** HTTP status of the envelope's answer. */
  status: number;
  ok: boolean;
  /** The assistant's text (empty for a tool call or an error). */
  text: string;
  toolCalls: Array<{ name: string; arguments: string }>;
  /** The envelope's or the upstream's error, when !ok. */
  error?: { code: string | null; message: string };
  /** The model that answered (x-envelope-model). */
  model?: string;
}

export interface Verdict {
  pass: boolean;
  score: number;
  reason: string;
}

/** Asks the judge model; throws when it cannot give a verdict. */
export type Judge = (rubric: string, input: string, answer: Answer) => Promise<Verdict>;

export interface GraderResult {
  /** The grader's name, else its type. */
  grader: string;
  type: Grader['type'];
  status: 'pass' | 'fail' | 'error';
  reason: string;
  score?: number;
}

export type CaseStatus = 'pass' | 'fail' | 'error';

export function graderName(g: Grader): string {
  return g.name ?? g.type;
}

type Outcome = { pass: boolean; reason: string; score?: number };

const checks = new Map<string, SchemaCheck>();
function schemaCheck(schema: Record<string, unknown>): SchemaCheck {
  const key = JSON.stringify(schema);
  let check = checks.get(key);
  if (!check) {
    check = compileSchema(schema);
    checks.set(key, check);
  }
  return check;
}

/** The answer as JSON, or a reason it is not JSON. */
function structured(a: Answer): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(a.text) };
  } catch {
    return { ok: false, reason: `the answer is not JSON: ${quote(a.text)}` };
  }
}

/** Follows `a.b[0].c` (or `a.b.0.c`) into a value; undefined where the path does not lead. */
export function fieldAt(value: unknown, path: string): unknown {
  let node = value;
  for (const part of path.replaceAll(/\[(\d+)\]/g, '.$1').split('.')) {
    if (typeof node !== 'object' || node === null || !(part in node)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

export function quote(v: unknown, max = 80): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'nothing' : JSON.stringify(v);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function list(v: string | string[]): string[] {
  return Array.isArray(v) ? v : [v];
}

function fold(s: string, caseSensitive: boolean): string {
  return caseSensitive ? s : s.toLowerCase();
}

/** The value a label or number grader reads: a field of structured output, or the text. */
function target(a: Answer, field: string | undefined): { ok: true; value: unknown } | { ok: false; reason: string } {
  if (field === undefined) return { ok: true, value: a.text.trim() };
  const s = structured(a);
  if (!s.ok) return s;
  const value = fieldAt(s.value, field);
  return value === undefined ? { ok: false, reason: `no field ${field} in the answer` } : { ok: true, value };
}

async function check(g: Grader, a: Answer, input: string, judge: Judge | undefined): Promise<Outcome> {
  if (g.type === 'error') {
    if (a.ok) return { pass: false, reason: `the call succeeded; expected the envelope to refuse with ${g.code}` };
    return a.error?.code === g.code ? { pass: true, reason: `refused with ${g.code}` } : { pass: false, reason: `refused with ${a.error?.code ?? `status ${a.status}`}, expected ${g.code}` };
  }
  if (!a.ok) return { pass: false, reason: `the call failed: ${a.status} ${a.error?.code ?? ''}: ${a.error?.message ?? ''}`.replace(/ +:/, ':') };
  switch (g.type) {
    case 'exact': {
      const pass = fold(a.text.trim(), g.caseSensitive) === fold(g.value.trim(), g.caseSensitive);
      return { pass, reason: pass ? 'equal' : `expected ${quote(g.value)}, got ${quote(a.text)}` };
    }
    case 'contains': {
      const missing = list(g.value).filter((v) => !fold(a.text, g.caseSensitive).includes(fold(v, g.caseSensitive)));
      return { pass: missing.length === 0, reason: missing.length === 0 ? 'all present' : `missing ${missing.map((m) => quote(m)).join(', ')} in ${quote(a.text)}` };
    }
    case 'not_contains': {
      const found = list(g.value).filter((v) => fold(a.text, g.caseSensitive).includes(fold(v, g.caseSensitive)));
      return { pass: found.length === 0, reason: found.length === 0 ? 'none present' : `found ${found.map((m) => quote(m)).join(', ')}` };
    }
    case 'regex': {
      const pass = new RegExp(g.pattern, g.flags).test(a.text);
      return { pass, reason: pass ? `matches /${g.pattern}/` : `${quote(a.text)} does not match /${g.pattern}/${g.flags}` };
    }
    case 'json_schema': {
      const s = structured(a);
      if (!s.ok) return { pass: false, reason: s.reason };
      const r = schemaCheck(g.schema)(s.value, 3);
      return { pass: r.total === 0, reason: r.total === 0 ? 'valid' : r.errors.join('; ') };
    }
    case 'fields': {
      const s = structured(a);
      if (!s.ok) return { pass: false, reason: s.reason };
      const wrong = Object.entries(g.equals).filter(([path, want]) => !isDeepStrictEqual(fieldAt(s.value, path), want));
      return {
        pass: wrong.length === 0,
        reason: wrong.length === 0 ? 'all equal' : wrong.map(([path, want]) => `${path}: expected ${quote(want)}, got ${quote(fieldAt(s.value, path))}`).join('; '),
      };
    }
    case 'tool_call': {
      const calls = a.toolCalls.filter((c) => c.name === g.tool);
      if (calls.length === 0) return { pass: false, reason: `no call to ${g.tool} (called: ${a.toolCalls.map((c) => c.name).join(', ') || 'none'})` };
      if (!g.arguments) return { pass: true, reason: `called ${g.tool}` };
      let last = '';
      for (const call of calls) {
        let args: unknown;
        try {
          args = JSON.parse(call.arguments);
        } catch {
          last = `arguments are not JSON: ${quote(call.arguments)}`;
          continue;
        }
        const wrong = Object.entries(g.arguments).filter(([k, want]) => !isDeepStrictEqual(fieldAt(args, k), want));
        const extra = g.exactArguments && typeof args === 'object' && args !== null ? Object.keys(args).filter((k) => !(k in g.arguments!)) : [];
        if (wrong.length === 0 && extra.length === 0) return { pass: true, reason: `called ${g.tool} with the expected arguments` };
        last = [...wrong.map(([k, want]) => `${k}: expected ${quote(want)}, got ${quote(fieldAt(args, k))}`), ...extra.map((k) => `${k}: not expected`)].join('; ');
      }
      return { pass: false, reason: `${g.tool} arguments: ${last}` };
    }
    case 'label': {
      const t = target(a, g.field);
      if (!t.ok) return { pass: false, reason: t.reason };
      if (typeof t.value !== 'string') return { pass: false, reason: `label is not a string: ${quote(t.value)}` };
      const got = t.value.trim();
      const match = g.labels.find((l) => fold(l, g.caseSensitive) === fold(got, g.caseSensitive));
      if (match === undefined) return { pass: false, reason: `${quote(got)} is not one of ${g.labels.join(', ')}` };
      if (g.expected !== undefined && match !== g.expected) return { pass: false, reason: `labelled ${match}, expected ${g.expected}` };
      return { pass: true, reason: `labelled ${match}` };
    }
    case 'number': {
      const t = target(a, g.field);
      if (!t.ok) return { pass: false, reason: t.reason };
      const n = typeof t.value === 'number' ? t.value : typeof t.value === 'string' ? Number(/-?\d+(?:\.\d+)?/.exec(t.value)?.[0]) : Number.NaN;
      if (!Number.isFinite(n)) return { pass: false, reason: `no number in ${quote(t.value)}` };
      const allowed = g.relative ? Math.abs(g.expected) * g.tolerance : g.tolerance;
      const off = Math.abs(n - g.expected);
      return { pass: off <= allowed, reason: off <= allowed ? `${n} is within ${allowed} of ${g.expected}` : `${n} is ${off} from ${g.expected} (allowed ${allowed})` };
    }
    case 'rubric': {
      if (!judge) throw new Error('no judge is configured for rubric graders');
      const v = await judge(g.rubric, input, a);
      const pass = v.pass && v.score >= g.minScore;
      return { pass, score: v.score, reason: `judge: ${v.pass ? 'pass' : 'fail'}, score ${v.score}: ${v.reason}` };
    }
  }
}

/** Runs every grader of a case; each failure or exception stays with its grader. */
export async function runGraders(graders: Grader[], answer: Answer, input: string, judge?: Judge): Promise<GraderResult[]> {
  const out: GraderResult[] = [];
  for (const g of graders) {
    try {
      const o = await check(g, answer, input, judge);
      out.push({ grader: graderName(g), type: g.type, status: o.pass ? 'pass' : 'fail', reason: o.reason, ...(o.score !== undefined ? { score: o.score } : {}) });
    } catch (e) {
      out.push({ grader: graderName(g), type: g.type, status: 'error', reason: (e as Error).message || String(e) });
    }
  }
  return out;
}

/** A case errs when any grader erred, passes when every grader passed. */
export function caseStatus(results: GraderResult[]): CaseStatus {
  if (results.some((r) => r.status === 'error')) return 'error';
  return results.every((r) => r.status === 'pass') ? 'pass' : 'fail';
}
