// One call to the upstream, with bounded retries inside one deadline. The loop is the only place
// that talks to the network; when to retry and how long to wait come from retry.ts.
import { Agent, request, type Dispatcher } from 'undici';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { EnvelopeError } from '../errors.ts';
import { isRetryableStatus, retryDelayMs, serverDelayMs, type RetryPolicy } from './retry.ts';

// One keep-alive pool for every upstream origin the sidecar talks to.
const agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connect: { timeout: 10_000 } });

export interface UpstreamRequest {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  /** A buffer can be sent again; a stream (an upload) only once. */
  body?: Buffer | Readable;
  /** The app asked for a stream: return the body as it arrives, after the status is known. */
  stream: boolean;
  /** False for calls that create something (files, batches): never repeated once possibly received. */
  idempotent: boolean;
}

export interface CallOptions {
  policy: RetryPolicy;
  /** Epoch ms by which the call (and, for a stream, its first byte) must be done. */
  deadline: number;
  streamIdleMs: number;
  /** Aborts when the app goes away. */
  signal: AbortSignal;
  key: () => string;
  /** Re-reads the key from disk (a rotation the watcher may not have seen yet). */
  refreshKey: () => Promise<unknown>;
  onRetry?: (reason: string, attempt: number, delayMs: number) => void;
  /** A circuit breaker: asked before every attempt, told how each went (upstream faults only). */
  gate?: { acquire(): boolean; record(ok: boolean): void };
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Set for streams that started (2xx with a stream requested). */
  stream?: Dispatcher.ResponseData['body'];
  /** Set for everything else: the whole body. */
  body?: Buffer;
  /** The parsed body of a successful non-stream answer. */
  json?: unknown;
  attempts: number;
  /** True when the sidecar stopped retrying a retryable failure (tell the app's SDK not to retry). */
  gaveUp: boolean;
}

// Errors raised before any byte of the request could have reached the upstream: always safe to repeat.
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

function errorCodeOf(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code ?? e?.cause?.code ?? 'UNKNOWN';
}

function parseErrorBody(body: Buffer): { code?: string | null; type?: string | null } {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { code?: string | null; type?: string | null } };
    return parsed.error ?? {};
  } catch {
    return {};
  }
}

export async function callUpstream(req: UpstreamRequest, opts: CallOptions): Promise<UpstreamResponse> {
  const { policy } = opts;
  const replayable = !(req.body && !Buffer.isBuffer(req.body));
  const maxAttempts = replayable ? policy.maxAttempts : 1;
  let keyRefreshed = false;
  let usedKey = '';
  let last: UpstreamResponse | undefined;
  let lastError: EnvelopeError | undefined;

  let attempt = 0;
  while (attempt < maxAttempts) {
    attempt++;
    const remaining = opts.deadline - Date.now();
    if (remaining <= 0) break;
    if (opts.gate && !opts.gate.acquire()) {
      if (attempt === 1) throw new EnvelopeError('circuit_open', 'The circuit to this upstream and model is open after repeated failures.', { headers: { 'x-envelope-attempts': '0' } });
      break;
    }
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, remaining);
    const onAppGone = () => controller.abort();
    opts.signal.addEventListener('abort', onAppGone, { once: true });
    const release = () => {
      clearTimeout(timer);
      opts.signal.removeEventListener('abort', onAppGone);
    };

    let reason: string;
    let hintMs: number | undefined;
    let retryable: boolean;
    try {
      usedKey = opts.key();
      let res: Buffered;
      if (req.stream || (req.body && !Buffer.isBuffer(req.body))) {
        const streamed = await request(req.url, {
          method: req.method,
          headers: { ...req.headers, authorization: `Bearer ${usedKey}` },
          body: req.body ?? null,
          signal: controller.signal,
          dispatcher: agent,
          headersTimeout: remaining,
          // For streams this is the idle timeout between chunks; otherwise the deadline timer rules.
          bodyTimeout: req.stream ? opts.streamIdleMs : 0,
        });
        if (streamed.statusCode < 400 && req.stream) {
          opts.gate?.record(true);
          // The deadline covers the wait for the stream; from here on the idle timeout does.
          release();
          return { status: streamed.statusCode, headers: streamed.headers, stream: streamed.body, attempts: attempt, gaveUp: false };
        }
        res = { statusCode: streamed.statusCode, headers: streamed.headers, body: Buffer.from(await streamed.body.arrayBuffer()) };
      } else {
        res = await buffered(req, `Bearer ${usedKey}`, controller.signal, remaining);
      }
      const status = res.statusCode;
      const body = res.body;
      release();
      if (status < 400) {
        const isJSONType = String(res.headers['content-type'] ?? '').includes('json');
        const json = isJSONType ? parseJSON(body) : undefined;
        opts.gate?.record(!isJSONType || json !== undefined);
        if (!isJSONType || json !== undefined) return { status, headers: res.headers, body, json, attempts: attempt, gaveUp: false };
        reason = 'malformed_body';
        retryable = true;
        lastError = new EnvelopeError('upstream_unavailable', 'The upstream answered with a body that is not valid JSON.', { headers: { 'x-envelope-attempts': String(attempt) } });
        last = undefined;
      } else {
        if (status === 401 && !keyRefreshed && replayable) {
          keyRefreshed = true;
          await opts.refreshKey();
          if (opts.key() !== usedKey) {
            // The key rotated while this attempt was out: one more try, not counted as an attempt.
            attempt--;
            continue;
          }
        }
        opts.gate?.record(status < 500);
        const err = parseErrorBody(body);
        last = { status, headers: res.headers, body, attempts: attempt, gaveUp: false };
        lastError = undefined;
        retryable = isRetryableStatus(status, err.code, err.type) && (req.idempotent || status === 429);
        reason = `status_${status}`;
        hintMs = serverDelayMs(res.headers);
        if (!retryable) return last;
      }
    } catch (error) {
      release();
      if (opts.signal.aborted) throw new EnvelopeError('upstream_unavailable', 'The app closed the connection.', { status: 499 });
      opts.gate?.record(false);
      const code = errorCodeOf(error);
      if (timedOut || code === 'UND_ERR_HEADERS_TIMEOUT') {
        lastError = new EnvelopeError('upstream_timeout', `The upstream did not answer within the route's request timeout (${attempt} attempt(s)).`, { headers: { 'x-envelope-attempts': String(attempt) } });
        reason = 'timeout';
        retryable = false;
      } else {
        lastError = new EnvelopeError('upstream_unavailable', `The upstream could not be reached (${code}).`, { headers: { 'x-envelope-attempts': String(attempt) } });
        reason = code;
        retryable = req.idempotent || NOT_SENT.has(code);
      }
      last = undefined;
    }

    if (!retryable || attempt >= maxAttempts) break;
    const delay = retryDelayMs(attempt, policy, hintMs);
    if (Date.now() + delay >= opts.deadline) break;
    opts.onRetry?.(reason, attempt, delay);
    try {
      await sleep(delay, undefined, { signal: opts.signal });
    } catch {
      throw new EnvelopeError('upstream_unavailable', 'The app closed the connection.', { status: 499 });
    }
  }
  if (last) return { ...last, gaveUp: true };
  throw (
    lastError ??
    new EnvelopeError('upstream_timeout', `The upstream did not answer within the route's request timeout (${attempt} attempt(s)).`, {
      headers: { 'x-envelope-attempts': String(attempt) },
    })
  );
}

interface Buffered {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * Collects a whole answer from undici's dispatch callbacks. `request()` wraps every answer in a
 * body stream and its promises, which a bare proxy measured at ~10 µs of CPU per call
 * (`bench/node-floor.mjs` against the same loop on `dispatch`); answers the app gets whole don't
 * need one. Aborting mirrors `request()`: a reason that arrives before the connection is kept
 * and applied when the request starts.
 */
class Collector implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private reason: Error | null = null;
  private statusCode = 0;
  private headers: Record<string, string | string[] | undefined> = {};
  private readonly chunks: Buffer[] = [];
  private readonly done: (res: Buffered) => void;
  private readonly failed: (err: Error) => void;

  constructor(done: (res: Buffered) => void, failed: (err: Error) => void) {
    this.done = done;
    this.failed = failed;
  }

  abort(reason: Error): void {
    this.reason ??= reason;
    this.controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.reason) {
      controller.abort(this.reason);
      return;
    }
    this.controller = controller;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // 1xx answers are followed by the real one.
    if (statusCode < 200) return;
    this.statusCode = statusCode;
    this.headers = headers;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.done({ statusCode: this.statusCode, headers: this.headers, body });
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.failed(err);
  }
}

function buffered(req: UpstreamRequest, authorization: string, signal: AbortSignal, headersTimeout: number): Promise<Buffered> {
  return new Promise((resolve, reject) => {
    const abortReason = () => (signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) {
      reject(abortReason());
      return;
    }
    const url = new URL(req.url);
    const handler = new Collector(
      (res) => {
        signal.removeEventListener('abort', onAbort);
        resolve(res);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
    const onAbort = () => handler.abort(abortReason());
    signal.addEventListener('abort', onAbort, { once: true });
    agent.dispatch(
      {
        origin: url.origin,
        path: url.pathname + url.search,
        method: req.method,
        headers: { ...req.headers, authorization },
        body: (req.body as Buffer | undefined) ?? null,
        headersTimeout,
        // The deadline timer rules the body.
        bodyTimeout: 0,
      },
      handler,
    );
  });
}

/** Successful bodies are parsed once, here: the handler needs the usage and the app needs the bytes. */
function parseJSON(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
