// What crosses the sidecar in each direction. Requests: an allow-list of the app's headers plus
// the route's own (the key is added per attempt by the client). Answers: the upstream's content
// headers plus the envelope's. The app's `authorization` is never on the list.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { EnvelopeError } from '../errors.ts';
import type { RuntimeRoute } from '../config/runtime.ts';
import type { KeyStore } from '../config/keys.ts';
import type { Exchange } from './exchange.ts';
import type { UpstreamResponse } from '../upstream/client.ts';

const FROM_APP = ['content-type', 'content-length', 'accept', 'openai-beta', 'user-agent'] as const;
const FROM_UPSTREAM = ['content-type', 'openai-processing-ms', 'openai-version', 'retry-after', 'retry-after-ms'] as const;

export function upstreamHeaders(appHeaders: IncomingHttpHeaders, route: RuntimeRoute, requestId: string, bodyLength?: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of FROM_APP) {
    const v = appHeaders[name];
    if (typeof v === 'string') out[name] = v;
  }
  if (bodyLength !== undefined) out['content-length'] = String(bodyLength);
  // Bodies are read for usage accounting: ask for them uncompressed.
  out['accept-encoding'] = 'identity';
  out['x-client-request-id'] = requestId;
  const { project, organization } = route.spec.upstream;
  if (project) out['openai-project'] = project;
  if (organization) out['openai-organization'] = organization;
  return out;
}

export function requireKey(keys: KeyStore, route: RuntimeRoute): void {
  if (keys.get(route.keyPath) !== undefined) return;
  const where = route.keyPath ?? 'the OPENAI_API_KEY environment variable';
  throw new EnvelopeError('key_unavailable', `The API key for route '${route.id}' is not available (${where}); the platform team must mount its Secret.`);
}

/** Headers for the app's answer, taken from the upstream's. */
export function answerHeaders(ex: Exchange, up: UpstreamResponse): Record<string, string> {
  const out: Record<string, string> = { 'x-envelope-attempts': String(up.attempts) };
  for (const name of FROM_UPSTREAM) {
    const v = up.headers[name];
    if (typeof v === 'string') out[name] = v;
  }
  const upstreamId = up.headers['x-request-id'];
  if (typeof upstreamId === 'string') {
    out['x-upstream-request-id'] = upstreamId;
    ex.record.upstream_request_id = upstreamId;
  }
  // The sidecar owns retries: an upstream error it passes on has been retried as far as the
  // route allows, or was not worth retrying. An SDK retrying it again would multiply calls.
  if (up.status >= 400) out['x-should-retry'] = 'false';
  return out;
}

/**
 * An upstream error body, made safe to hand to the app. A rejected key (401) becomes the
 * envelope's own error, because OpenAI's message quotes part of the key; any other body that
 * happens to contain the key has it masked.
 */
export function safeErrorBody(route: RuntimeRoute, up: UpstreamResponse, key: string | undefined): { status: number; body: Buffer } {
  const body = up.body ?? Buffer.alloc(0);
  if (up.status === 401) {
    const e = new EnvelopeError('key_unavailable', `The upstream rejected the API key of route '${route.id}' (401). The platform team must check its Secret.`, { status: 502 });
    return { status: 502, body: Buffer.from(JSON.stringify(e.body())) };
  }
  if (key && body.includes(key)) return { status: up.status, body: Buffer.from(body.toString('utf8').replaceAll(key, '[redacted]')) };
  return { status: up.status, body };
}

export function sendBuffered(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer): void {
  headers['content-length'] = String(body.length);
  res.writeHead(status, headers);
  res.end(body);
}
