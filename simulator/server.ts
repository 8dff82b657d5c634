import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { advanceBatches } from './batches.ts';
import { handleControl } from './control.ts';
import { billUsage, checkAdminKey, listCosts, projectOf } from './costs.ts';
import { ApiError, invalidUrl } from './errors.ts';
import { errorFromFault, insufficientQuota } from './faults.ts';
import { rateLimitFor, rateLimitHeaders } from './headers.ts';
import { ids } from './ids.ts';
import type { Reply } from './reply.ts';
import { findRoute, MODEL_PATHS } from './routes.ts';
import { writeSse } from './sse.ts';
import { sleep } from './sleep.ts';
import type { HandlerCtx, SimState } from './state.ts';
import type { Fault, RecordedRequest } from './types.ts';

const MAX_BODY_BYTES = 512 * 1024 * 1024;

export function createSimServer(state: SimState, closing: AbortSignal): Server {
  const server = createServer((req, res) => {
    serve(state, closing, req, res).catch((e: unknown) => {
      // A handler bug must not take the simulator down; answer like the real API's 500.
      if (!res.headersSent) {
        const err = new ApiError(500, `Simulator failure: ${(e as Error).message}`);
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify(err.body()));
      } else {
        res.destroy();
      }
    });
  });
  server.keepAliveTimeout = 5_000;
  return server;
}

/** Keeps the request among the latest `recordLimit`. */
function record(state: SimState, r: RecordedRequest): void {
  const limit = state.opts.recordLimit;
  if (limit <= 0) return;
  state.requests.push(r);
  if (state.requests.length > limit) state.requests.shift();
}

async function serve(state: SimState, closing: AbortSignal, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const url = new URL(req.url ?? '/', 'http://simulator.local');
  const path = url.pathname;
  const method = req.method ?? 'GET';
  const raw = await readBody(req);
  if (raw === undefined) return;

  if (path.startsWith('/_sim/')) return handleControl(state, req, res, path, raw);

  const headers = flattenHeaders(req);
  const query = Object.fromEntries(url.searchParams);
  const { json, jsonInvalid } = parseJson(raw, headers['content-type']);
  record(state, { method, path, query, headers, body: json, rawBodyBytes: raw.length, at: Date.now() });

  const signal = AbortSignal.any([closing, abortOnClose(res)]);
  const requestId = ids.request();
  const base = (): Record<string, string> => ({
    'x-request-id': requestId,
    'openai-version': '2020-10-01',
    'openai-organization': 'org-simulator',
    'openai-processing-ms': String(Math.max(1, Math.round(performance.now() - started))),
  });
  const body = typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : {};
  const model = typeof body.model === 'string' ? body.model : undefined;
  const isModelPath = MODEL_PATHS.has(path);

  const sendError = (e: ApiError) => {
    const limits = isModelPath && e.status !== 401 ? rateLimitHeaders(rateLimitFor(model ?? '', 0)) : {};
    res.writeHead(e.status, { ...base(), ...limits, 'content-type': 'application/json', ...e.headers });
    res.end(JSON.stringify(e.body()));
  };

  advanceBatches(state);
  if (!path.startsWith('/v1/')) return sendError(invalidUrl(method, path));
  const key = bearer(headers.authorization);
  // Admin endpoints take the admin key class, which the project keys' list knows nothing of.
  if (path.startsWith('/v1/organization/')) {
    const denied = key === undefined ? checkAuth(state, undefined) : checkAdminKey(key, state.opts.adminKeys);
    if (denied) return sendError(denied);
    if (method !== 'GET' || path !== '/v1/organization/costs') return sendError(invalidUrl(method, path));
    try {
      return await send(res, listCosts(state.costs, url.searchParams, Date.now()), base(), state, undefined, signal);
    } catch (e) {
      if (e instanceof ApiError) return sendError(e);
      throw e;
    }
  }
  const authError = checkAuth(state, headers.authorization);
  if (authError) return sendError(authError);

  const fault = state.faults.take(path, model, body.stream === true);
  if (!(await sleep(state.opts.latencyMs, signal))) return;
  switch (fault?.type) {
    case 'reset':
      req.socket.destroy();
      return;
    case 'delay':
      if (!(await sleep(fault.ms, signal))) return;
      break;
    case 'error':
      return sendError(errorFromFault(fault, model));
    case 'insufficient_quota':
      return sendError(insufficientQuota());
    case 'malformed':
      return sendMalformed(res, base(), body.stream === true);
  }

  const route = findRoute(method, path);
  if (!route) return sendError(invalidUrl(method, path));
  const ctx: HandlerCtx = { state, method, path, params: route.params, query, headers, raw, json, jsonInvalid };
  let reply: Reply;
  try {
    reply = route.handler(ctx);
  } catch (e) {
    if (e instanceof ApiError) return sendError(e);
    throw e;
  }
  if (reply.kind !== 'bytes' && reply.usage?.billed) billUsage(state.costs, Date.now() / 1000, projectOf(headers, key, state.opts.projects), reply.usage.model, reply.usage.billed);
  await send(res, reply, base(), state, fault, signal);
}

async function send(res: ServerResponse, reply: Reply, base: Record<string, string>, state: SimState, fault: Fault | undefined, signal: AbortSignal) {
  const limits = reply.kind !== 'bytes' && reply.usage ? rateLimitHeaders(rateLimitFor(reply.usage.model, reply.usage.tokens)) : {};
  const extra = reply.headers ?? {};
  if (reply.kind === 'json') {
    res.writeHead(reply.status, { ...base, ...limits, 'content-type': 'application/json', ...extra });
    res.end(JSON.stringify(reply.body));
  } else if (reply.kind === 'bytes') {
    res.writeHead(reply.status, { ...base, 'content-type': reply.contentType, 'content-length': String(reply.body.length), ...extra });
    res.end(reply.body);
  } else {
    res.writeHead(200, { ...base, ...limits, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...extra });
    await writeSse(res, reply.events, { delayMs: state.opts.streamDelayMs, fault, signal });
  }
}

/** A 200 whose body is cut off mid-JSON, as a broken proxy or truncated transfer would deliver. */
function sendMalformed(res: ServerResponse, base: Record<string, string>, streaming: boolean): void {
  if (streaming) {
    res.writeHead(200, { ...base, 'content-type': 'text/event-stream; charset=utf-8' });
    res.end('data: {"id":"chatcmpl-malformed","object":"chat.completion.chunk","choices":[{\n\n');
  } else {
    res.writeHead(200, { ...base, 'content-type': 'application/json' });
    res.end('{"id":"chatcmpl-malformed","object":"chat.completion","choices":[{"index":0,');
  }
}

const bearer = (authorization: string | undefined): string | undefined => /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];

function checkAuth(state: SimState, authorization: string | undefined): ApiError | undefined {
  const key = bearer(authorization);
  if (!key) {
    return new ApiError(
      401,
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from https://platform.openai.com/account/api-keys.",
      { code: 'invalid_api_key' },
    );
  }
  const allowed = state.opts.apiKeys;
  if (allowed && !allowed.includes(key)) {
    return new ApiError(
      401,
      `Incorrect API key provided: ${mask(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
      { code: 'invalid_api_key' },
    );
  }
  return undefined;
}

/** Shows only the ends of a key, as the real error does, so logs of the error never hold the key. */
function mask(key: string): string {
  if (key.length <= 8) return '*'.repeat(key.length);
  return `${key.slice(0, 3)}${'*'.repeat(Math.min(key.length - 7, 20))}${key.slice(-4)}`;
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES) {
        req.socket.destroy();
        return undefined;
      }
      chunks.push(chunk as Buffer);
    }
  } catch {
    return undefined;
  }
  return Buffer.concat(chunks);
}

function parseJson(raw: Buffer, contentType: string | undefined): { json: unknown; jsonInvalid: boolean } {
  if (raw.length === 0) return { json: undefined, jsonInvalid: false };
  const looksJson = contentType === undefined || /\bjson\b/i.test(contentType);
  if (!looksJson) return { json: undefined, jsonInvalid: false };
  try {
    return { json: JSON.parse(raw.toString('utf8')), jsonInvalid: false };
  } catch {
    return { json: undefined, jsonInvalid: true };
  }
}

function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

function abortOnClose(res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  res.once('close', () => ac.abort());
  return ac.signal;
}
