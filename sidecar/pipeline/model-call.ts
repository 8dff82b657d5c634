// The pipeline for calls that reach a model (responses, chat completions, embeddings,
// moderations): route → check → call with retries → answer (whole or streamed) → account.
import { once } from 'node:events';
import type { Endpoint } from '../../crds/schema.ts';
import { EnvelopeError } from '../errors.ts';
import { callUpstream, type UpstreamResponse } from '../upstream/client.ts';
import { SseTap, type StreamKind } from '../upstream/sse.ts';
import { normaliseUsage } from '../upstream/usage.ts';
import { checkEndpoint, resolveModel, selectRoute } from './route.ts';
import { parseJSONObject, readBody, type Exchange } from './exchange.ts';
import { answerHeaders, requireKey, safeErrorBody, sendBuffered, upstreamHeaders } from './forward.ts';
import type { RuntimeRoute } from '../config/runtime.ts';

const STREAMABLE: Partial<Record<Endpoint, StreamKind>> = { 'chat.completions': 'chat', responses: 'responses' };
const PATHS: Record<string, string> = {
  'chat.completions': '/chat/completions',
  responses: '/responses',
  embeddings: '/embeddings',
  moderations: '/moderations',
};

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
  body.model = model;
  ex.record.model = model;
  ex.res.setHeader('x-envelope-model', model);

  const kind = STREAMABLE[endpoint];
  if (body.stream !== undefined && typeof body.stream !== 'boolean') throw new EnvelopeError('invalid_request', "'stream' must be a boolean.", { param: 'stream' });
  const stream = kind !== undefined && body.stream === true;
  ex.record.stream = stream;
  let stripUsage = false;
  if (stream && kind === 'chat') {
    // Usage only arrives in a stream's last chunk if asked for: the sidecar always asks, and
    // removes the chunk again when the app did not.
    const options = body.stream_options && typeof body.stream_options === 'object' ? (body.stream_options as Record<string, unknown>) : {};
    stripUsage = options.include_usage !== true;
    body.stream_options = { ...options, include_usage: true };
  }

  requireKey(sidecar.keys, route);
  const payload = Buffer.from(JSON.stringify(body));
  const up = await callUpstream(
    {
      method: 'POST',
      url: route.baseURL + (PATHS[endpoint] as string),
      headers: upstreamHeaders(ex.req.headers, route, ex.id, payload.length),
      body: payload,
      stream,
      idempotent: true,
    },
    callOptions(ex, route),
  );
  ex.record.attempts = up.attempts;

  if (up.stream && kind) return pipeStream(ex, route, up, kind, stripUsage);

  const json = up.json as { usage?: unknown; model?: string } | undefined;
  if (json) {
    ex.setUsage(normaliseUsage(json.usage));
    if (typeof json.model === 'string') ex.record.response_model = json.model;
  }
  const headers = answerHeaders(ex, up);
  if (up.status >= 400) {
    const safe = safeErrorBody(route, up, sidecar.keys.get(route.keyPath));
    ex.record.status = safe.status;
    ex.record.error_code = upstreamErrorCode(safe.body) ?? `upstream_${up.status}`;
    return sendBuffered(ex.res, safe.status, headers, safe.body);
  }
  sendBuffered(ex.res, up.status, headers, up.body ?? Buffer.alloc(0));
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
async function pipeStream(ex: Exchange, route: RuntimeRoute, up: UpstreamResponse, kind: StreamKind, stripUsage: boolean): Promise<void> {
  const { res } = ex;
  const body = up.stream;
  if (!body) return;
  const headers = answerHeaders(ex, up);
  headers['content-type'] = 'text/event-stream; charset=utf-8';
  headers['cache-control'] = 'no-cache';
  res.writeHead(up.status, headers);
  res.flushHeaders();
  const tap = new SseTap(kind, stripUsage);
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
}
