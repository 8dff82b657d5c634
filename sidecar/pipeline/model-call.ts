// The pipeline for calls that reach a model (responses, chat completions, embeddings,
// moderations): route → check → replay? → wait for a slot → admit (limits, budgets) →
// call with retries and fallbacks → answer (whole or streamed) → settle and account.
import type { Endpoint } from '../../crds/schema.ts';
import { EnvelopeError } from '../errors.ts';
import { callUpstream, type UpstreamResponse } from '../upstream/client.ts';
import type { StreamKind } from '../upstream/sse.ts';
import { normaliseUsage, type Usage } from '../upstream/usage.ts';
import { checkEndpoint, resolveModel, selectRoute } from './route.ts';
import { parseJSONObject, readBody, type Exchange } from './exchange.ts';
import { answerHeaders, requireKey, safeErrorBody, sendBuffered, upstreamHeaders } from './forward.ts';
import { admit, budgetsFor, rateLimitHeaders, settle, type Admission, type Billed } from './admission.ts';
import { relayStream } from './stream.ts';
import { logContent, outputPolicyFor, wantsContent, type OutputPolicy } from './contract.ts';
import { answerOf, checkAnswer, repairRequest, type OutputEndpoint } from '../policy/output.ts';
import { bodyHash, type StoredAnswer } from '../policy/idempotency.ts';
import { prepareInput } from './input.ts';
import { holdForReview } from './review.ts';
import { estimateInputTokens, type TokenEndpoint } from '../policy/tokens.ts';
import type { RuntimeRoute } from '../config/runtime.ts';

const STREAMABLE: Partial<Record<Endpoint, StreamKind>> = { 'chat.completions': 'chat', responses: 'responses' };
const PATHS: Record<string, string> = {
  'chat.completions': '/chat/completions',
  responses: '/responses',
  embeddings: '/embeddings',
  moderations: '/moderations',
};
// Failures that a fallback model may fix; the caller's own 4xx never are.
const FALLBACK_ON = new Set(['upstream_timeout', 'upstream_unavailable', 'circuit_open']);

interface Outcome {
  /** Every call the upstream billed for this request (a repair or a fallback after an invalid answer adds one). */
  billed: Billed[];
  /** The last call's usage is an estimate (a stream that ended before its usage arrived). */
  estimated?: boolean;
  model: string;
  answer?: StoredAnswer;
}

export async function modelCall(ex: Exchange, endpoint: Endpoint): Promise<void> {
  const { sidecar } = ex;
  const config = sidecar.config.current;
  if (!config) throw new EnvelopeError('route_not_found', 'The sidecar has no valid config yet.', { status: 503 });

  const raw = await readBody(ex.req, config.maxRequestBytes);
  const body = parseJSONObject(raw);
  const routeHeader = ex.req.headers['x-envelope-route'];
  const route = selectRoute(config, endpoint, typeof routeHeader === 'string' ? routeHeader : undefined, typeof body.model === 'string' ? body.model : undefined);
  ex.setRoute(route);
  checkEndpoint(route, endpoint);
  if (raw.length > route.spec.limits.maxRequestBytes) {
    throw new EnvelopeError('request_too_large', `The request body is larger than route '${route.id}' allows (limits.maxRequestBytes: ${route.spec.limits.maxRequestBytes} bytes).`);
  }
  if (typeof body.model === 'string') ex.record.model_requested = body.model;
  const model = resolveModel(route, body.model);
  ex.record.model = model;

  const kind = STREAMABLE[endpoint];
  if (body.stream !== undefined && typeof body.stream !== 'boolean') throw new EnvelopeError('invalid_request', "'stream' must be a boolean.", { param: 'stream' });
  const stream = kind !== undefined && body.stream === true;
  ex.record.stream = stream;
  requireKey(sidecar.keys, route);
  // Before the input is changed: a repeat is the same user sending the same thing. The SDK's
  // own retries of one call are not repeats.
  const sdkRetry = ex.req.headers['x-stainless-retry-count'];
  if (ex.rawUser && ex.record.user && (sdkRetry === undefined || sdkRetry === '0') && sidecar.quality.repeated(route.id, ex.record.user, raw, Date.now())) ex.record.repeat = true;
  await prepareInput(ex, route, endpoint, body);
  // The only cost deferred mode adds to other calls: a header look-up and a flag.
  if (route.spec.mode === 'batch' || ex.req.headers['x-envelope-defer'] === 'true') {
    body.model = model;
    return sidecar.batches.defer(ex, route, endpoint, body);
  }

  // A replay costs nothing: it is answered before any limit or budget is touched.
  const idemKey = ex.req.headers['idempotency-key'];
  const claim = typeof idemKey === 'string' && idemKey && !stream ? await sidecar.idempotency.claim(route.id, idemKey, bodyHash(raw), route.spec.idempotency.ttlSeconds * 1000) : undefined;
  if (claim?.kind === 'replay') {
    return sendBuffered(ex.res, claim.answer.status, { ...claim.answer.headers, 'x-envelope-idempotent-replay': 'true' }, claim.answer.body);
  }
  if (claim?.kind === 'conflict') {
    throw new EnvelopeError('invalid_request', `The idempotency-key '${idemKey as string}' was already used with a different body on route '${route.id}'.`, { status: 409, headers: { 'x-should-retry': 'false' } });
  }

  const policy = outputPolicyFor(route, endpoint);
  let outcome: Outcome | undefined;
  let releaseSlot: (() => void) | undefined;
  let admission: Admission | undefined;
  try {
    // Inside the try: a refusal here must still finish the idempotency claim below.
    releaseSlot = await sidecar.gate(route)?.acquire(ex.appGone.signal, route.id);
    const user = ex.record.user ?? '-';
    const mayCallTwice = !stream && policy?.jsonSchema !== undefined && route.spec.output.onInvalid !== 'reject';
    admission = await admit({ store: sidecar.state, route, endpoint, body, model, user, budgets: budgetsFor(route, config.source.budgets), mayCallTwice, now: Date.now() });
    for (const [k, v] of Object.entries(rateLimitHeaders(admission.windows))) ex.res.setHeader(k, v);
    if (admission.degradedBy) {
      ex.res.setHeader('x-envelope-degraded', admission.degradedBy);
      ex.record.degraded_by = admission.degradedBy;
    }
    outcome = { billed: [], model: admission.model };
    await callWithFallbacks(ex, route, endpoint, body, admission.model, stream, kind, policy, outcome);
    if (outcome.estimated) {
      const last = outcome.billed[outcome.billed.length - 1];
      if (last) {
        last.usage.input = admission.inputEstimate || estimateInputTokens(endpoint as TokenEndpoint, body, last.model);
        ex.setUsage(last.usage);
      }
    }
  } finally {
    releaseSlot?.();
    if (claim?.kind === 'first') claim.finish(outcome?.answer);
    if (admission) await account(ex, route, admission, outcome);
  }
}

/** Settles limits and budgets, and puts the cost in the record, the metrics and the alerts. */
async function account(ex: Exchange, route: RuntimeRoute, admission: Admission, outcome: Outcome | undefined): Promise<void> {
  const { sidecar } = ex;
  try {
    const result = await settle(sidecar.state, route, admission, outcome?.billed ?? [], Date.now());
    ex.record.cost_usd = result.costNano / 1e9;
    if (outcome?.estimated) ex.record.usage_estimated = true;
    sidecar.onBudgetLevels(admission.budgets, result.levels);
  } catch (err) {
    sidecar.log.error({ err: String(err), request_id: ex.id }, 'could not settle limits and budgets');
  }
}

/**
 * The primary model, then the route's fallbacks, each behind its circuit breaker, within one
 * deadline; an answer that breaks the output contract is repaired once, handed to the next
 * model, or refused, as the route says.
 */
async function callWithFallbacks(
  ex: Exchange,
  route: RuntimeRoute,
  endpoint: Endpoint,
  body: Record<string, unknown>,
  model: string,
  stream: boolean,
  kind: StreamKind | undefined,
  policy: OutputPolicy | undefined,
  outcome: Outcome,
): Promise<void> {
  const { sidecar } = ex;
  const plan = [model, ...route.spec.model.fallbacks.filter((m) => m !== model)].map((m) => ({ model: m, body }));
  const deadline = Date.now() + route.spec.timeouts.requestSeconds * 1000;
  let stripUsage = false;
  if (stream && kind === 'chat') {
    // Usage only arrives in a stream's last chunk if asked for: the sidecar always asks, and
    // removes the chunk again when the app did not.
    const options = body.stream_options && typeof body.stream_options === 'object' ? (body.stream_options as Record<string, unknown>) : {};
    stripUsage = options.include_usage !== true;
    body.stream_options = { ...options, include_usage: true };
  }
  let attempts = 0;
  let repaired = false;
  let lastError: unknown;
  for (let i = 0; i < plan.length; i++) {
    const step = plan[i] as { model: string; body: Record<string, unknown> };
    const candidate = step.model;
    const more = i < plan.length - 1;
    step.body.model = candidate;
    const payload = Buffer.from(JSON.stringify(step.body));
    const breaker = sidecar.breakers.get(route.baseURL, candidate, route.spec.circuitBreaker);
    let up: UpstreamResponse;
    try {
      up = await callUpstream(
        { method: 'POST', url: route.baseURL + (PATHS[endpoint] as string), headers: upstreamHeaders(ex.req.headers, route, ex.id, payload.length), body: payload, stream, idempotent: true },
        {
          ...callOptions(ex, route),
          deadline,
          gate: {
            acquire: () => breaker.tryAcquire(Date.now()),
            record: (ok) => {
              const before = breaker.state(Date.now());
              const after = breaker.record(ok, Date.now());
              if (after !== before) sidecar.onBreaker(route.baseURL, candidate, after);
            },
          },
        },
      );
    } catch (err) {
      if (ex.appGone.signal.aborted) throw err;
      attempts += Number((err as EnvelopeError).headers?.['x-envelope-attempts'] ?? 0);
      ex.record.attempts = attempts;
      lastError = err;
      if (err instanceof EnvelopeError && FALLBACK_ON.has(err.code) && more && Date.now() < deadline) {
        sidecar.metrics.fallbacks.inc({ route: route.id, from: candidate, reason: err.code });
        continue;
      }
      throw err;
    }
    attempts += up.attempts;
    ex.record.attempts = attempts;
    if (up.status >= 500 && more && Date.now() < deadline) {
      sidecar.metrics.fallbacks.inc({ route: route.id, from: candidate, reason: `status_${up.status}` });
      continue;
    }
    if (candidate !== model) ex.record.fallback_from = model;
    ex.record.model = candidate;
    outcome.model = candidate;
    ex.res.setHeader('x-envelope-model', candidate);
    up.attempts = attempts;

    if (up.stream && kind) {
      const result = await relayStream(ex, route, endpoint, up, kind, stripUsage, step.body, policy, wantsContent(route));
      const { tap } = result;
      if (tap.usage) outcome.billed.push({ usage: tap.usage, model: candidate });
      else {
        outcome.billed.push({ usage: { input: 0, output: tap.deltas, cached: 0, reasoning: 0 }, model: candidate });
        outcome.estimated = true;
      }
      logContent(ex, route, endpoint, step.body, result.answer);
      return;
    }

    const json = up.json as { usage?: unknown; model?: string } | undefined;
    const usage = json ? normaliseUsage(json.usage) : undefined;
    if (usage) outcome.billed.push({ usage, model: candidate });
    if (up.status < 400 && (policy || wantsContent(route)) && json) {
      const answer = answerOf(endpoint as OutputEndpoint, json);
      logContent(ex, route, endpoint, step.body, answer);
      const violation = policy ? checkAnswer(endpoint as OutputEndpoint, answer, step.body, policy) : undefined;
      if (violation) {
        ex.record.output_violation = violation.code;
        const onInvalid = route.spec.output.onInvalid;
        if (violation.code === 'output_invalid' && onInvalid === 'repair' && !repaired && Date.now() < deadline) {
          repaired = true;
          ex.record.output_action = 'repair';
          sidecar.metrics.outputViolations.inc({ route: route.id, code: violation.code, action: 'repair' });
          plan.splice(i + 1, 0, { model: candidate, body: repairRequest(endpoint as OutputEndpoint, step.body, answer, violation.errors) });
          continue;
        }
        if (violation.code === 'output_invalid' && onInvalid === 'review') {
          ex.record.output_action = 'review';
          sidecar.metrics.outputViolations.inc({ route: route.id, code: violation.code, action: 'review' });
          throw await holdForReview(ex, route, endpoint, { reason: 'output_invalid', model: candidate, details: violation.errors, request: step.body, ...(answer.text !== undefined ? { answer: answer.text } : {}) });
        }
        if (violation.code === 'output_invalid' && onInvalid === 'fallback' && more && Date.now() < deadline) {
          ex.record.output_action = 'fallback';
          sidecar.metrics.outputViolations.inc({ route: route.id, code: violation.code, action: 'fallback' });
          continue;
        }
        ex.record.output_action = 'reject';
        sidecar.metrics.outputViolations.inc({ route: route.id, code: violation.code, action: 'reject' });
        throw new EnvelopeError(violation.code, `${violation.message}: ${violation.errors.join('; ')}`);
      }
      ex.record.output_violation = undefined;
      ex.record.output_action = repaired ? 'repaired' : ex.record.output_action;
      if (policy) ex.record.output_checked = true;
    }
    outcome.answer = sendAnswer(ex, route, up, usage);
    return;
  }
  throw lastError ?? new EnvelopeError('circuit_open', `Every model of route '${route.id}' is unavailable.`);
}

/** Sends a whole answer; returns it for the idempotency cache when it succeeded. */
function sendAnswer(ex: Exchange, route: RuntimeRoute, up: UpstreamResponse, usage: Usage | undefined): StoredAnswer | undefined {
  const json = up.json as { model?: string } | undefined;
  ex.setUsage(usage);
  if (json && typeof json.model === 'string') ex.record.response_model = json.model;
  const headers = answerHeaders(ex, up);
  if (up.status >= 400) {
    const safe = safeErrorBody(route, up, ex.sidecar.keys.get(route.keyPath));
    ex.record.status = safe.status;
    ex.record.error_code = upstreamErrorCode(safe.body) ?? `upstream_${up.status}`;
    sendBuffered(ex.res, safe.status, headers, safe.body);
    return undefined;
  }
  const body = up.body ?? Buffer.alloc(0);
  sendBuffered(ex.res, up.status, headers, body);
  return { status: up.status, headers: { ...headers }, body };
}

export function callOptions(ex: Exchange, route: RuntimeRoute) {
  const { sidecar } = ex;
  return {
    policy: route.spec.retry,
    deadline: Date.now() + route.spec.timeouts.requestSeconds * 1000,
    streamIdleMs: route.spec.timeouts.streamIdleSeconds * 1000,
    signal: ex.appGone.signal,
    key: () => sidecar.keys.get(route.keyPath) ?? '',
    refreshKey: () => (route.keyPath ? sidecar.keys.refresh(route.keyPath) : Promise.resolve(false)),
    onRetry: (reason: string) => sidecar.metrics.retries.inc({ route: route.id, reason }),
  };
}

function upstreamErrorCode(body: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { code?: unknown } };
    return typeof parsed.error?.code === 'string' ? parsed.error.code : undefined;
  } catch {
    return undefined;
  }
}
