// One app request from arrival to its single log line and metric update (invariant 6): every
// path out of a handler, including the app hanging up mid-stream, ends in `finish()`, and
// `finish()` records exactly once.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { EnvelopeError } from '../errors.ts';
import { hashUser, type RequestRecord } from '../telemetry/log.ts';
import { userHash } from '../policy/shaping.ts';
import type { RuntimeRoute } from '../config/runtime.ts';
import type { Usage } from '../upstream/usage.ts';
import type { Sidecar } from '../sidecar.ts';

const SAFE_ID = /^[\x21-\x7e]{1,200}$/;

export class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly sidecar: Sidecar;
  readonly id: string;
  readonly started = performance.now();
  readonly record: RequestRecord;
  /** Aborted when the app disconnects before the answer is complete. */
  readonly appGone = new AbortController();
  /** x-envelope-user as the app sent it: hashed before it goes anywhere. */
  readonly rawUser: string | undefined;
  private done = false;
  private routeForGauge: string | undefined;

  constructor(sidecar: Sidecar, req: IncomingMessage, res: ServerResponse, endpoint: string) {
    this.sidecar = sidecar;
    this.req = req;
    this.res = res;
    const given = req.headers['x-request-id'];
    this.id = typeof given === 'string' && SAFE_ID.test(given) ? given : `req_${randomUUID().replaceAll('-', '')}`;
    const user = req.headers['x-envelope-user'];
    this.rawUser = typeof user === 'string' && user ? user : undefined;
    this.record = {
      request_id: this.id,
      endpoint,
      method: req.method ?? 'GET',
      path: (req.url ?? '').split('?')[0] ?? '',
      stream: false,
      status: 0,
      attempts: 0,
      latency_ms: 0,
      ...(sidecar.config.current ? { config_version: sidecar.config.current.version } : {}),
    };
    res.setHeader('x-request-id', this.id);
    sidecar.inFlight++;
    // The handler, not this event, finishes the exchange, so what a stream counted before the
    // app left is still in its record.
    res.on('close', () => {
      if (!res.writableFinished) this.appGone.abort();
    });
  }

  setRoute(route: RuntimeRoute): void {
    const id = route.id;
    this.record.route = id;
    this.res.setHeader('x-envelope-route', id);
    this.routeForGauge = id;
    this.sidecar.metrics.inFlight.inc([id]);
    // Once the route is known, user digests are keyed (a plain hash of an email can be reversed).
    const key = this.hashKey(route);
    if (this.rawUser) this.record.user = key ? userHash(key, this.rawUser).slice(0, 16) : hashUser(this.rawUser);
  }

  /** The key for user hashes: the route's own hash Secret, else its API key. */
  hashKey(route: RuntimeRoute): string | undefined {
    const keys = this.sidecar.keys;
    return (route.userHashKeyPath ? keys.get(route.userHashKeyPath) : undefined) ?? keys.get(route.keyPath);
  }

  setUsage(usage: Usage | undefined): void {
    if (!usage) return;
    this.record.input_tokens = usage.input;
    this.record.output_tokens = usage.output;
    this.record.cached_tokens = usage.cached;
    this.record.reasoning_tokens = usage.reasoning;
  }

  /** Sends an error in OpenAI's shape, unless the answer has already started. */
  fail(err: unknown): void {
    const e = err instanceof EnvelopeError ? err : new EnvelopeError('upstream_unavailable', 'Internal error in the sidecar.', { status: 500 });
    if (!(err instanceof EnvelopeError)) this.sidecar.log.error({ err, request_id: this.id }, 'unexpected error');
    this.record.error_code = e.code;
    this.record.status = this.appGone.signal.aborted ? 499 : e.status;
    if (this.res.headersSent || this.appGone.signal.aborted) return;
    const headers: Record<string, string> = { 'content-type': 'application/json', ...e.headers };
    if (!e.retryable) headers['x-should-retry'] = 'false';
    if (e.status === 413) headers.connection = 'close';
    this.res.writeHead(e.status, headers);
    this.res.end(JSON.stringify(e.body()));
  }

  /** Writes the log line and the metrics: once, whatever happened. */
  finish(): void {
    if (this.done) return;
    this.done = true;
    const r = this.record;
    if (this.appGone.signal.aborted) {
      r.status = 499;
      r.error_code ??= 'client_closed';
    } else if (r.status === 0) {
      r.status = this.res.statusCode;
    }
    // Refused before a route was known: no route key to hash with, a plain digest still groups.
    if (this.rawUser && r.user === undefined) r.user = hashUser(this.rawUser);
    r.latency_ms = Math.round((performance.now() - this.started) * 100) / 100;
    this.sidecar.inFlight--;
    if (this.routeForGauge) this.sidecar.metrics.inFlight.dec([this.routeForGauge]);
    this.sidecar.account(r);
    // Only calls the app means to report on are remembered: an entry per call would outlive many
    // young-generation collections and cost every call a share of full ones.
    if (this.req.headers['x-envelope-feedback'] === 'true') this.sidecar.quality.answeredRequest(r, Date.now());
    this.sidecar.logRequest(r);
    this.sidecar.metrics.observe(r);
    this.sidecar.onIdle();
  }
}

/** Runs a handler for one request: errors become OpenAI-shaped answers, and the record is written once. */
export async function handle(sidecar: Sidecar, req: IncomingMessage, res: ServerResponse, endpoint: string, fn: (ex: Exchange) => Promise<void>): Promise<void> {
  const ex = new Exchange(sidecar, req, res, endpoint);
  try {
    await fn(ex);
  } catch (err) {
    ex.fail(err);
  } finally {
    ex.finish();
  }
}

/**
 * Reads the whole body, refusing it as soon as it passes `limit` bytes. Events rather than
 * `for await`: the async iterator costs a promise per chunk and showed in every call's profile.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err: Error | undefined) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err) reject(err);
      else resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      // As the stream iterator did: stop reading what will never be used.
      req.destroy();
      done(tooLarge(limit));
    };
    const onEnd = () => done(undefined);
    const onError = (err: Error) => done(err);
    // The app went away mid-body: nothing more will come.
    const onClose = () => done(Object.assign(new Error('the request was closed before its body ended'), { code: 'ECONNRESET' }));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function tooLarge(limit: number): EnvelopeError {
  return new EnvelopeError('request_too_large', `The request body is larger than this route allows (limits.maxRequestBytes: ${limit} bytes).`);
}

export function parseJSONObject(body: Buffer): Record<string, unknown> {
  if (body.length === 0) throw new EnvelopeError('invalid_request', 'The request body is empty; expected a JSON object.');
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new EnvelopeError('invalid_request', `The request body is not valid JSON: ${(err as Error).message}.`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new EnvelopeError('invalid_request', 'The request body must be a JSON object.');
  return value as Record<string, unknown>;
}
