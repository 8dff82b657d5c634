// The pipeline for calls that reach a model (responses, chat completions, embeddings,
// moderations): route → check → replay? → wait for a slot → admit (limits, budgets) →
// call with retries and fallbacks → answer (whole or streamed) → settle and account.
import { once } from 'node:events';
import type { Endpoint } from '../../crds/schema.ts';
import { EnvelopeError } from '../errors.ts';
import { callUpstream, type UpstreamResponse } from '../upstream/client.ts';
import { SseTap, type StreamKind } from '../upstream/sse.ts';
import { normaliseUsage, type Usage } from '../upstream/usage.ts';
import { checkEndpoint, resolveModel, selectRoute } from './route.ts';
import { parseJSONObject, readBody, type Exchange } from './exchange.ts';
import { answerHeaders, requireKey, safeErrorBody, sendBuffered, upstreamHeaders } from './forward.ts';
import { admit, budgetsFor, rateLimitHeaders, settle, type Admission } from './admission.ts';
import { bodyHash, type StoredAnswer } from '../policy/idempotency.ts';
import { applyOutputCap } from '../policy/caps.ts';
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
  usage?: Usage;
  /** The usage is an estimate (a stream that ended before its usage arrived). */
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
  ex.setRoute(route.id);
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
  applyOutputCap(endpoint, body, route.spec.limits.maxOutputTokens);
  requireKey(sidecar.keys, route);

  // A replay costs nothing: it is answered before any limit or budget is touched.
  const idemKey = ex.req.headers['idempotency-key'];
  const claim = typeof idemKey === 'string' && idemKey && !stream ? await sidecar.idempotency.claim(route.id, idemKey, bodyHash(raw), route.spec.idempotency.ttlSeconds * 1000) : undefined;
  if (claim?.kind === 'replay') {
    ex.record.error_code = undefined;
    return sendBuffered(ex.res, claim.answer.status, { ...claim.answer.headers, 'x-envelope-idempotent-replay': 'true' }, claim.answer.body);
  }
  if (claim?.kind === 'conflict') {
    throw new EnvelopeError('invalid_request', `The idempotency-key '${idemKey as string}' was already used with a different body on route '${route.id}'.`, { status: 409, headers: { 'x-should-retry': 'false' } });
  }

  let outcome: Outcome | undefined;
  const releaseSlot = await sidecar.gate(route)?.acquire(ex.appGone.signal, route.id);
  let admission: Admission | undefined;
  try {
    const user = ex.record.user ?? '-';
    admission = await admit({ store: sidecar.state, route, endpoint, body, model, user, budgets: budgetsFor(route, config.source.budgets), now: Date.now() });
    for (const [k, v] of Object.entries(rateLimitHeaders(admission.windows))) ex.res.setHeader(k, v);
    if (admission.degradedBy) {
      ex.res.setHeader('x-envelope-degraded', admission.degradedBy);
      ex.record.degraded_by = admission.degradedBy;
    }
    outcome = await callWithFallbacks(ex, route, endpoint, body, admission.model, stream, kind);
    if (outcome.estimated) {
      const input = admission.inputEstimate || estimateInputTokens(endpoint as TokenEndpoint, body, outcome.model);
      outcome.usage = { input, output: outcome.usage?.output ?? 0, cached: 0, reasoning: 0 };
      ex.setUsage(outcome.usage);
    }
  } finally {
    releaseSlot?.();
    claim?.kind === 'first' && claim.finish(outcome?.answer);
    if (admission) await account(ex, route, admission, outcome);
  }
}

/** Settles limits and budgets, and puts the cost in the record, the metrics and the alerts. */
async function account(ex: Exchange, route: RuntimeRoute, admission: Admission, outcome: Outcome | undefined): Promise<void> {
  const { sidecar } = ex;
  const modelUsed = outcome?.model ?? admission.model;
  try {
    const result = await settle(sidecar.state, route, admission, outcome?.usage, modelUsed, Date.now());
    ex.record.cost_usd = result.costNano / 1e9;
    if (outcome?.estimated) ex.record.usage_estimated = true;
    sidecar.onBudgetLevels(admission.budgets, result.levels);
  } catch (err) {
    sidecar.log.error({ err: String(err), request_id: ex.id }, 'could not settle limits and budgets');
  }
}

/** The primary model, then the route's fallbacks, each behind its circuit breaker, within one deadline. */
async function callWithFallbacks(ex: Exchange, route: RuntimeRoute, endpoint: Endpoint, body: Record<string, unknown>, model: string, stream: boolean, kind: StreamKind | undefined): Promise<Outcome> {
  const { sidecar } = ex;
  const candidates = [model, ...route.spec.model.fallbacks.filter((m) => m !== model)];
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
  let lastError: unknown;
  for (const [i, candidate] of candidates.entries()) {
    body.model = candidate;
    const payload = Buffer.from(JSON.stringify(body));
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
      if (err instanceof EnvelopeError && FALLBACK_ON.has(err.code) && i < candidates.length - 1 && Date.now() < deadline) {
        sidecar.metrics.fallbacks.inc({ route: route.id, from: candidate, reason: err.code });
        continue;
      }
      throw err;
    }
    attempts += up.attempts;
    ex.record.attempts = attempts;
    if (up.status >= 500 && i < candidates.length - 1 && Date.now() < deadline) {
      sidecar.metrics.fallbacks.inc({ route: route.id, from: candidate, reason: `status_${up.status}` });
      continue;
    }
    if (candidate !== model) ex.record.fallback_from = model;
    ex.record.model = candidate;
    ex.res.setHeader('x-envelope-model', candidate);
    up.attempts = attempts;
    if (up.stream && kind) {
      const tap = await pipeStream(ex, route, up, kind, stripUsage);
      return tap.usage ? { usage: tap.usage, model: candidate } : { usage: { input: 0, output: tap.deltas, cached: 0, reasoning: 0 }, estimated: true, model: candidate };
    }
    return answer(ex, route, up, candidate);
  }
  throw lastError ?? new EnvelopeError('circuit_open', `Every model of route '${route.id}' is unavailable.`);
}

function answer(ex: Exchange, route: RuntimeRoute, up: UpstreamResponse, model: string): Outcome {
  const json = up.json as { usage?: unknown; model?: string } | undefined;
  const usage = json ? normaliseUsage(json.usage) : undefined;
  ex.setUsage(usage);
  if (json && typeof json.model === 'string') ex.record.response_model = json.model;
  const headers = answerHeaders(ex, up);
  if (up.status >= 400) {
    const safe = safeErrorBody(route, up, ex.sidecar.keys.get(route.keyPath));
    ex.record.status = safe.status;
    ex.record.error_code = upstreamErrorCode(safe.body) ?? `upstream_${up.status}`;
    sendBuffered(ex.res, safe.status, headers, safe.body);
    return { model };
  }
  const body = up.body ?? Buffer.alloc(0);
  sendBuffered(ex.res, up.status, headers, body);
  return { ...(usage ? { usage } : {}), model, answer: { status: up.status, headers: { ...headers }, body } };
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

/**
 * Passes a stream through event by event. Once the first byte has reached the app nothing is
 * retried; a stall or a broken upstream ends the stream with an error event the SDKs raise.
 * When the app hangs up, the upstream is closed and what was counted so far is recorded.
 */
async function pipeStream(ex: Exchange, route: RuntimeRoute, up: UpstreamResponse, kind: StreamKind, stripUsage: boolean): Promise<SseTap> {
  const { res } = ex;
  const tap = new SseTap(kind, stripUsage);
  const body = up.stream;
  if (!body) return tap;
  const headers = answerHeaders(ex, up);
  headers['content-type'] = 'text/event-stream; charset=utf-8';
  headers['cache-control'] = 'no-cache';
  res.writeHead(up.status, headers);
  res.flushHeaders();
  const onGone = () => body.destroy();
  ex.appGone.signal.addEventListener('abort', onGone, { once: true });
  try {
    for await (const chunk of body) {
      const out = tap.push(chunk as Buffer);
      if (out && !res.write(out)) await once(res, 'drain', { signal: ex.appGone.signal });
    }
    const rest = tap.flush();
    if (rest) res.write(rest);
    if (!tap.completed) {
      ex.record.error_code = 'upstream_unavailable';
      res.write(tap.errorEvent('upstream_unavailable', 'The upstream ended the stream before it was complete.'));
    }
  } catch (err) {
    if (!ex.appGone.signal.aborted) {
      const code = (err as { code?: string }).code;
      const timeout = code === 'UND_ERR_BODY_TIMEOUT';
      ex.record.error_code = timeout ? 'upstream_timeout' : 'upstream_unavailable';
      const message = timeout
        ? `The upstream sent nothing for ${route.spec.timeouts.streamIdleSeconds}s (timeouts.streamIdleSeconds); the stream was ended.`
        : 'The connection to the upstream broke during the stream.';
      res.write(tap.errorEvent(ex.record.error_code as 'upstream_timeout' | 'upstream_unavailable', message));
    }
  } finally {
    ex.appGone.signal.removeEventListener('abort', onGone);
    if (tap.upstreamError && !ex.record.error_code) ex.record.error_code = tap.upstreamError.code ?? 'upstream_error';
    ex.setUsage(tap.usage);
    if (tap.responseModel) ex.record.response_model = tap.responseModel;
    if (tap.firstTokenAt !== undefined) ex.record.ttft_ms = Math.round((tap.firstTokenAt - ex.started) * 100) / 100;
    res.end();
  }
  return tap;
}
