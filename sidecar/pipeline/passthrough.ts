// Calls that reach no model directly: stored responses and completions, files, batches, and the
// model list. Bodies stream both ways (an upload is never held in memory); the route's endpoint
// allow-list and model allow-list still apply.
import { pipeline } from 'node:stream/promises';
import type { Endpoint } from '../../crds/schema.ts';
import { EnvelopeError } from '../errors.ts';
import { callUpstream } from '../upstream/client.ts';
import { checkEndpoint, resolveModel, selectRoute } from './route.ts';
import type { Exchange } from './exchange.ts';
import { answerHeaders, requireKey, safeErrorBody, sendBuffered, upstreamHeaders } from './forward.ts';
import { callOptions } from './model-call.ts';
import type { RuntimeRoute } from '../config/runtime.ts';

export function routeFor(ex: Exchange, endpoint: Endpoint | null): RuntimeRoute {
  const config = ex.sidecar.config.current;
  if (!config) throw new EnvelopeError('route_not_found', 'The sidecar has no valid config yet.', { status: 503 });
  const header = ex.req.headers['x-envelope-route'];
  const route = selectRoute(config, endpoint, typeof header === 'string' ? header : undefined, undefined);
  ex.setRoute(route);
  if (endpoint) checkEndpoint(route, endpoint);
  requireKey(ex.sidecar.keys, route);
  return route;
}

/** Forwards the request as it is (path below /v1 and query kept) and streams the answer back. */
export async function passthrough(ex: Exchange, endpoint: Endpoint): Promise<void> {
  const route = routeFor(ex, endpoint);
  const method = ex.req.method as 'GET' | 'POST' | 'DELETE';
  const url = ex.req.url ?? '/';
  const hasBody = method === 'POST' && (ex.req.headers['content-length'] !== '0' || ex.req.headers['transfer-encoding'] !== undefined);
  // Creating a file or a batch twice costs twice: only cancels are safe to repeat.
  const idempotent = method !== 'POST' || url.split('?')[0]?.endsWith('/cancel') === true;
  const up = await callUpstream(
    {
      method,
      url: route.baseURL + url.replace(/^\/v1/, ''),
      headers: upstreamHeaders(ex.req.headers, route, ex.id),
      ...(hasBody ? { body: ex.req } : {}),
      stream: true,
      idempotent,
    },
    callOptions(ex, route),
  );
  ex.record.attempts = up.attempts;
  const headers = answerHeaders(ex, up);
  if (!up.stream) {
    const safe = safeErrorBody(route, up, ex.sidecar.keys.get(route.keyPath));
    ex.record.status = safe.status;
    return sendBuffered(ex.res, safe.status, headers, safe.body);
  }
  const length = up.headers['content-length'];
  if (typeof length === 'string') headers['content-length'] = length;
  ex.res.writeHead(up.status, headers);
  await pipeline(up.stream, ex.res).catch((err: unknown) => {
    if (!ex.appGone.signal.aborted) ex.sidecar.log.warn({ request_id: ex.id, err: String(err) }, 'passthrough stream broke');
  });
}

/** The upstream's model list, narrowed to what the route allows, plus the route's aliases. */
export async function listModels(ex: Exchange): Promise<void> {
  const route = routeFor(ex, null);
  const up = await callUpstream(
    { method: 'GET', url: `${route.baseURL}/models`, headers: upstreamHeaders(ex.req.headers, route, ex.id), stream: false, idempotent: true },
    callOptions(ex, route),
  );
  ex.record.attempts = up.attempts;
  const headers = answerHeaders(ex, up);
  const list = up.json as { data?: Array<{ id: string }> } | undefined;
  if (up.status >= 400 || !list || !Array.isArray(list.data)) {
    const safe = safeErrorBody(route, up, ex.sidecar.keys.get(route.keyPath));
    return sendBuffered(ex.res, safe.status, headers, safe.body);
  }
  const allowed = route.allowed;
  const data: Array<Record<string, unknown>> = allowed ? list.data.filter((m) => allowed.has(m.id)) : [...list.data];
  for (const [alias, target] of route.aliases) {
    const of = list.data.find((m) => m.id === target);
    if (of) data.push({ ...of, id: alias });
  }
  sendBuffered(ex.res, 200, { ...headers, 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ ...list, data })));
}

/** One model, by id or alias, if the route allows it. */
export async function getModel(ex: Exchange, id: string): Promise<void> {
  const route = routeFor(ex, null);
  const model = resolveModel(route, id);
  const up = await callUpstream(
    { method: 'GET', url: `${route.baseURL}/models/${encodeURIComponent(model)}`, headers: upstreamHeaders(ex.req.headers, route, ex.id), stream: false, idempotent: true },
    callOptions(ex, route),
  );
  ex.record.attempts = up.attempts;
  const safe = up.status >= 400 ? safeErrorBody(route, up, ex.sidecar.keys.get(route.keyPath)) : { status: up.status, body: up.body ?? Buffer.alloc(0) };
  sendBuffered(ex.res, safe.status, answerHeaders(ex, up), safe.body);
}
