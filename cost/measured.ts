// Token figures measured rather than guessed: from the sidecar's request log (one JSON line per
// request, sidecar/telemetry/log.ts) or from an `ai-envelope eval` report (eval/report.ts). Pure:
// text or parsed JSON in, figures per route and model out.
import { z } from 'zod';
import type { TokenPair } from './estimate.ts';

export interface Measured {
  /** The route as the source names it (`namespace/name` in logs). */
  route: string;
  model: string;
  /** Requests that carried usage. */
  requests: number;
  /** Medians. */
  typical: TokenPair;
  /** p99 (nearest rank) from logs, the maximum from an eval's few cases. */
  worst: TokenPair;
  cachedShare?: number;
  retryRate?: number;
  streamingShare?: number;
  /** Requests a day over the logs' time span; absent when the span is empty. */
  requestsPerDay?: number;
}

export interface LogSummary {
  groups: Measured[];
  /** Request lines with usage, counted in the groups. */
  requests: number;
  /** Request lines without usage (refused before the model, or failed) or free (moderations): not priced. */
  unbilled: number;
  /** JSON lines that are not request lines (lifecycle events, alerts). */
  otherLines: number;
  /** Lines that are not JSON, or request lines with fields of the wrong type. */
  badLines: number;
  /** First to last request line's time, in days. */
  spanDays: number;
}

export function median(values: number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile: the smallest value with at least p of the values at or below it. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

const count = z.number().int().min(0);
// The fields of a request line the estimate reads; the rest of the line is left alone.
const RequestLine = z.looseObject({
  msg: z.literal('request'),
  time: z.string().refine((t) => Number.isFinite(Date.parse(t)), 'not a time'),
  route: z.string().min(1).optional(),
  endpoint: z.string().optional(),
  model: z.string().min(1).optional(),
  stream: z.boolean().optional(),
  attempts: count.optional(),
  input_tokens: count.optional(),
  output_tokens: count.optional(),
  cached_tokens: count.optional(),
});

const DAY_MS = 86_400_000;

/** Reads the request lines of one or more logs, skipping and counting everything else. */
export function summariseLogs(texts: string[]): LogSummary {
  const groups = new Map<string, Array<z.output<typeof RequestLine>>>();
  let unbilled = 0;
  let otherLines = 0;
  let badLines = 0;
  let first = Infinity;
  let last = -Infinity;
  for (const text of texts) {
    for (const raw of text.split('\n')) {
      if (raw.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch {
        badLines++;
        continue;
      }
      if (typeof value !== 'object' || value === null || (value as { msg?: unknown }).msg !== 'request') {
        otherLines++;
        continue;
      }
      const line = RequestLine.safeParse(value);
      if (!line.success) {
        badLines++;
        continue;
      }
      const l = line.data;
      const t = Date.parse(l.time);
      first = Math.min(first, t);
      last = Math.max(last, t);
      // Moderations are free: OpenAI does not bill them and the sidecar prices none.
      if (!l.route || !l.model || l.input_tokens === undefined || l.endpoint === 'moderations') {
        unbilled++;
        continue;
      }
      const key = `${l.route}\u0000${l.model}`;
      const list = groups.get(key) ?? [];
      list.push(l);
      groups.set(key, list);
    }
  }
  const spanDays = Number.isFinite(first) ? (last - first) / DAY_MS : 0;
  const out: Measured[] = [];
  for (const lines of groups.values()) {
    const input = lines.map((l) => l.input_tokens ?? 0);
    const output = lines.map((l) => l.output_tokens ?? 0);
    const inputSum = input.reduce((s, n) => s + n, 0);
    const cachedSum = lines.reduce((s, l) => s + Math.min(l.cached_tokens ?? 0, l.input_tokens ?? 0), 0);
    // attempts counts the first try too; a line without it made one.
    const extra = lines.reduce((s, l) => s + Math.max(0, (l.attempts ?? 1) - 1), 0);
    out.push({
      route: lines[0]!.route!,
      model: lines[0]!.model!,
      requests: lines.length,
      typical: { input: median(input), output: median(output) },
      worst: { input: percentile(input, 0.99), output: percentile(output, 0.99) },
      cachedShare: inputSum > 0 ? cachedSum / inputSum : 0,
      retryRate: extra / lines.length,
      streamingShare: lines.filter((l) => l.stream === true).length / lines.length,
      ...(spanDays > 0 ? { requestsPerDay: lines.length / spanDays } : {}),
    });
  }
  out.sort((a, b) => a.route.localeCompare(b.route) || b.requests - a.requests);
  return { groups: out, requests: out.reduce((s, g) => s + g.requests, 0), unbilled, otherLines, badLines, spanDays };
}

// The parts of an eval report (eval/report.ts) the estimate reads.
const Run = z.looseObject({ status: z.string(), httpStatus: z.number(), model: z.string().optional(), inputTokens: z.number().min(0), outputTokens: z.number().min(0) });
export const EvalReport = z.looseObject({
  suite: z.string(),
  cases: z.array(z.looseObject({ id: z.string(), tags: z.array(z.string()), baseline: Run, candidate: Run.optional() })),
});
export type EvalReport = z.output<typeof EvalReport>;

/**
 * Token figures from the eval cases with any of `tags` (all cases without tags), as answered by
 * `version` (default: the candidate when the report compares two, else the baseline). Failed
 * calls are left out. Median and maximum: an eval has too few cases for a p99.
 */
export function fromEval(report: EvalReport, route: string, sel: { tags?: string[] | undefined; version?: 'baseline' | 'candidate' | undefined }): Measured | undefined {
  const version = sel.version ?? (report.cases.some((c) => c.candidate) ? 'candidate' : 'baseline');
  const runs = report.cases
    .filter((c) => !sel.tags || c.tags.some((t) => sel.tags!.includes(t)))
    .map((c) => c[version])
    .filter((r): r is z.output<typeof Run> => r !== undefined && r.httpStatus < 400 && r.inputTokens > 0);
  if (runs.length === 0) return undefined;
  const models = new Map<string, number>();
  for (const r of runs) if (r.model) models.set(r.model, (models.get(r.model) ?? 0) + 1);
  const model = [...models].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
  const input = runs.map((r) => r.inputTokens);
  const output = runs.map((r) => r.outputTokens);
  return { route, model, requests: runs.length, typical: { input: median(input), output: median(output) }, worst: { input: Math.max(...input), output: Math.max(...output) } };
}
