// A batch input file checked line by line against its route, exactly as the route checks a direct
// call of the same endpoint: endpoint, model, forbidden parameters, output cap (clamped), data
// minimisation, redaction (rewritten or refused), the prompt prefix and structured output. Pure:
// text in, rewritten text and the worst-case cost at the batch price out.
import type { Endpoint } from '../../crds/schema.ts';
import { EnvelopeError, type ErrorCode } from '../errors.ts';
import type { RuntimeRoute } from '../config/runtime.ts';
import { checkEndpoint, resolveModel } from '../pipeline/route.ts';
import { validateRequest } from '../policy/validate.ts';
import { applyOutputCap } from '../policy/caps.ts';
import { applyPrompt, minimiseData } from '../policy/shaping.ts';
import { createRedactor, mergeFindings, redactBody, type Findings, type TextEndpoint } from '../policy/redact.ts';
import { requestStructuredOutput, type OutputEndpoint } from '../policy/output.ts';
import { estimateInputTokens, outputCap, type TokenEndpoint } from '../policy/tokens.ts';
import { priceFor, worstCaseNano } from '../policy/prices.ts';

/** The URLs a Batch line may name, and the route endpoint each one is. */
export const BATCH_URLS: ReadonlyMap<string, Endpoint> = new Map([
  ['/v1/chat/completions', 'chat.completions'],
  ['/v1/responses', 'responses'],
  ['/v1/embeddings', 'embeddings'],
  ['/v1/moderations', 'moderations'],
]);

/** A line with no cap runs, at worst, to the model's maximum (as a direct call is reserved). */
const DEFAULT_MAX_OUTPUT = 32_768;
/** Problems named in a refusal: enough to fix the first ones, short enough to read. */
const SHOWN_PROBLEMS = 5;

export interface LineProblem {
  line: number;
  custom_id?: string;
  code: ErrorCode;
  message: string;
}

/** One model request, governed: what is sent, and what it may cost at most. */
export interface GovernedRequest {
  endpoint: Endpoint;
  model: string;
  inputTokens: number;
  outputCap: number;
  /** Undefined when the model has no known price. */
  worstNano: number | undefined;
  redactions: Findings;
}

/**
 * The input half of a route's policy, applied to one request body in place. Throws the same
 * EnvelopeError a direct call would get. Moderation and the user's safety identifier are not
 * applied: a batch line has no user, and moderating a whole file would be a call per line.
 */
export function governRequest(route: RuntimeRoute, endpoint: Endpoint, body: Record<string, unknown>): GovernedRequest {
  const { spec } = route;
  checkEndpoint(route, endpoint);
  if (body.stream === true) throw new EnvelopeError('invalid_request', 'A batched request cannot stream.', { param: 'stream' });
  const model = resolveModel(route, body.model);
  body.model = model;
  validateRequest(endpoint, body, spec.input.forbiddenParameters, route.id);
  applyOutputCap(endpoint, body, spec.limits.maxOutputTokens);
  minimiseData(endpoint, body, spec.data);
  let redactions: Findings = {};
  if (spec.input.redact.length > 0) {
    redactions = redactBody(endpoint as TextEndpoint, body, createRedactor(spec.input.redact));
    const kinds = Object.keys(redactions).sort();
    if (kinds.length > 0 && spec.input.onMatch === 'block') {
      throw new EnvelopeError('pii_blocked', `The input contains ${kinds.join(', ')}; route '${route.id}' refuses such input (input.onMatch: block).`);
    }
  }
  applyPrompt(endpoint, body, spec.prompt, route.id);
  if (spec.output.jsonSchema && (endpoint === 'chat.completions' || endpoint === 'responses')) {
    requestStructuredOutput(endpoint as OutputEndpoint, body, spec.output.jsonSchema);
  }
  return { ...batchWorstCase(route, endpoint, body, model), redactions };
}

/** Input tokens (checked against limits.maxInputTokens) and the most the request can cost at the batch price. */
export function batchWorstCase(route: RuntimeRoute, endpoint: Endpoint, body: Record<string, unknown>, model: string): Omit<GovernedRequest, 'redactions'> {
  const inputTokens = estimateInputTokens(endpoint as TokenEndpoint, body, model);
  const max = route.spec.limits.maxInputTokens;
  if (max !== undefined && inputTokens > max) {
    throw new EnvelopeError('input_too_long', `The input is about ${inputTokens} tokens; route '${route.id}' allows ${max} (limits.maxInputTokens).`);
  }
  const price = priceFor(model, route.spec.prices);
  const cap = outputCap(endpoint as TokenEndpoint, body) ?? price?.maxOutputTokens ?? DEFAULT_MAX_OUTPUT;
  return { endpoint, model, inputTokens, outputCap: cap, worstNano: price ? worstCaseNano(inputTokens, cap, price, { batch: true }) : undefined };
}

export interface GovernedFile {
  /** The batch endpoint URL every line names, e.g. `/v1/chat/completions`. */
  url: string;
  /** The JSONL to upload instead of the app's. */
  text: string;
  lines: number;
  /** The worst case of every line at the batch price. */
  reserveNano: number;
  /** Models without a known price: a blocking budget cannot be enforced for them. */
  unpriced: string[];
  redactions: Findings;
}

/** Governs a whole file; throws one 400 naming the first problems by line and custom_id. */
export function governBatchFile(route: RuntimeRoute, text: string): GovernedFile {
  const out: string[] = [];
  const problems: LineProblem[] = [];
  const seen = new Set<string>();
  const unpriced = new Set<string>();
  let url: string | undefined;
  let reserveNano = 0;
  let redactions: Findings = {};
  let lineNo = 0;
  // Walked by index rather than split: the file may be tens of megabytes.
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const raw = text.slice(start, end).trim();
    start = end + 1;
    lineNo++;
    if (raw === '') continue;
    let customId: string | undefined;
    try {
      let entry: unknown;
      try {
        entry = JSON.parse(raw);
      } catch {
        throw new EnvelopeError('invalid_request', 'The line is not valid JSON.');
      }
      if (!entry || typeof entry !== 'object' || Array.isArray(entry)) throw new EnvelopeError('invalid_request', 'The line must be a JSON object.');
      const e = entry as Record<string, unknown>;
      if (typeof e.custom_id !== 'string' || e.custom_id === '') throw new EnvelopeError('invalid_request', "'custom_id' must be a non-empty string.", { param: 'custom_id' });
      customId = e.custom_id;
      if (seen.has(customId)) throw new EnvelopeError('invalid_request', `The custom_id '${customId}' is used by an earlier line.`, { param: 'custom_id' });
      seen.add(customId);
      if (e.method !== 'POST') throw new EnvelopeError('invalid_request', "'method' must be 'POST'.", { param: 'method' });
      const endpoint = typeof e.url === 'string' ? BATCH_URLS.get(e.url) : undefined;
      if (!endpoint) throw new EnvelopeError('invalid_request', `'url' must be one of ${[...BATCH_URLS.keys()].join(', ')}.`, { param: 'url' });
      url ??= e.url as string;
      if (e.url !== url) throw new EnvelopeError('invalid_request', `Every line of a batch must name the same url (${url}).`, { param: 'url' });
      if (!e.body || typeof e.body !== 'object' || Array.isArray(e.body)) throw new EnvelopeError('invalid_request', "'body' must be a JSON object.", { param: 'body' });
      const body = e.body as Record<string, unknown>;
      const governed = governRequest(route, endpoint, body);
      if (governed.worstNano === undefined) unpriced.add(governed.model);
      else reserveNano += governed.worstNano;
      redactions = mergeFindings(redactions, governed.redactions);
      // The line as it came, its body governed in place: a file the policy leaves alone is uploaded as it was.
      out.push(JSON.stringify(e));
    } catch (err) {
      if (!(err instanceof EnvelopeError)) throw err;
      problems.push({ line: lineNo, ...(customId !== undefined ? { custom_id: customId } : {}), code: err.code, message: err.message });
    }
  }
  if (problems.length > 0) throw refusal(route, problems, lineNo);
  if (!url) throw new EnvelopeError('invalid_request', 'The batch input file has no requests.', { param: 'file' });
  return { url, text: out.join('\n') + (text.endsWith('\n') ? '\n' : ''), lines: out.length, reserveNano, unpriced: [...unpriced], redactions };
}

function refusal(route: RuntimeRoute, problems: LineProblem[], lines: number): EnvelopeError {
  const shown = problems.slice(0, SHOWN_PROBLEMS).map((p) => `line ${p.line}${p.custom_id !== undefined ? ` (custom_id '${p.custom_id}')` : ''}: ${p.message}`);
  const more = problems.length > SHOWN_PROBLEMS ? `; and ${problems.length - SHOWN_PROBLEMS} more` : '';
  const code = (problems[0] as LineProblem).code;
  return new EnvelopeError(
    code,
    `${problems.length} of ${lines} lines of the batch input break route '${route.id}''s policy: ${shown.join('; ')}${more}.`,
    { status: 400, param: 'file', headers: { 'x-should-retry': 'false' } },
  );
}
