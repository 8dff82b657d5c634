// Structured JSON logs. One line per request (see RequestRecord), plus lifecycle events.
// Nothing here ever receives the API key: the request record is built from policy decisions,
// counts and ids, and content only when a route's logging.content asks for it.
import { pino, type Logger } from 'pino';
import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';

/** Lines wait at most this long for a batch to fill (ADR 0015). */
export const LOG_FLUSH_MS = 100;
const LOG_BATCH_BYTES = 4096;

/** The parts of sonic-boom's (4.x) state that hold lines not yet written. */
interface SonicBoomState {
  fd: number;
  _bufs: string[];
  _writingBuf: string;
  _writing: boolean;
  _len: number;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes what waits, synchronously, once. sonic-boom's own flushSync retries a failed write
 * forever unless the error is EAGAIN: with stdout's reader gone (EPIPE) a sidecar that flushes on
 * its way out never gets out, and Kubernetes waits out the grace period for nothing. Here a full
 * pipe is retried for up to a second and any other error drops the rest.
 */
function flushSyncBounded(s: SonicBoomState): void {
  // A write in flight (_writing) owns _writingBuf; the lines queued behind it are ours to write.
  let pending = Buffer.from((s._writing ? '' : s._writingBuf) + s._bufs.join(''));
  if (!s._writing) s._writingBuf = '';
  s._bufs = [];
  s._len = 0;
  for (let waits = 0; pending.length > 0; ) {
    try {
      pending = pending.subarray(writeSync(s.fd, pending));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++waits > 100) return;
      Atomics.wait(pause, 0, 0, 10);
    }
  }
}

/**
 * Logs go to stdout through an asynchronous destination that writes in batches of 4 KB or after
 * LOG_FLUSH_MS, whichever comes first: a line per write handed every call's line to a libuv
 * thread and back, two wake-ups per call that cost more than the line itself at moderate rates.
 * A quiet sidecar still logs within LOG_FLUSH_MS, and lines are flushed synchronously when the
 * process exits, normally or not (ADR 0015).
 */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  const destination = pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES });
  const write = destination.write.bind(destination);
  let flushing: NodeJS.Timeout | undefined;
  // Armed by the first line after a flush, so an idle sidecar has no timer and writes nothing.
  destination.write = (data: string) => {
    const ok = write(data);
    if (!flushing) {
      flushing = setTimeout(() => {
        flushing = undefined;
        destination.flush();
      }, LOG_FLUSH_MS);
      flushing.unref();
    }
    return ok;
  };
  // pino flushes its destination at exit too: both go through the bounded flush.
  destination.flushSync = () => flushSyncBounded(destination as unknown as SonicBoomState);
  process.once('exit', () => {
    clearTimeout(flushing);
    destination.flushSync();
  });
  return pino(
    {
      level,
      base: { component: 'sidecar' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

type Writable = { write(line: string): unknown };

/**
 * Writes the one line per request: the same shape and destination as the logger's own lines
 * (level, time, the logger's bindings, the record, msg), serialised by a single JSON.stringify.
 * pino assembles a line value by value, and at a line per call that was a tenth of everything
 * the sidecar allocated (ADR 0015). Fields left undefined are left out, as pino does.
 */
export function requestLineWriter(log: Logger): (record: RequestRecord) => void {
  const internals = log as unknown as Record<symbol, unknown>;
  const stream = internals[pino.symbols.streamSym] as Writable;
  // ',"component":"sidecar"' for the sidecar's logger: pino keeps its bindings serialised.
  const bindings = String(internals[pino.symbols.chindingsSym] ?? '');
  return (record) => {
    if (!log.isLevelEnabled('info')) return;
    const body = JSON.stringify(record);
    stream.write(`{"level":"info","time":"${new Date().toISOString()}"${bindings}${body.length > 2 ? `,${body.slice(1, -1)}` : ''},"msg":"request"}\n`);
  };
}

export interface RequestRecord {
  request_id: string;
  upstream_request_id?: string;
  route?: string;
  user?: string;
  endpoint: string;
  method: string;
  path: string;
  model_requested?: string;
  /** The job id of a call queued for a Batch job (x-envelope-defer, or a route in batch mode). */
  deferred?: string;
  model?: string;
  response_model?: string;
  stream: boolean;
  status: number;
  error_code?: string;
  attempts: number;
  latency_ms: number;
  ttft_ms?: number;
  input_tokens?: number;
  output_tokens?: number;
  cached_tokens?: number;
  reasoning_tokens?: number;
  /** From the upstream's usage and the price table; estimated when usage_estimated. */
  cost_usd?: number;
  usage_estimated?: boolean;
  /** The model the call asked for when a fallback served it. */
  fallback_from?: string;
  /** The budget whose exhaustion moved the call to its degradeTo model. */
  degraded_by?: string;
  config_version?: string;
  prompt_version?: string;
  /** Kinds of personal data or secrets found in the input, with counts. */
  redactions?: Record<string, number>;
  /** Moderation categories that flagged the input. */
  moderation?: string[];
  /** What the output contract found and did. */
  output_violation?: string;
  output_action?: string;
  /** The answer was checked against the route's output contract and met it. */
  output_checked?: boolean;
  /** The same user sent the same input to this route within the repeat window. */
  repeat?: boolean;
  /** The review item the call was held as (review_pending). */
  review_id?: string;
  /** On a feedback call: the app's verdict, and the request it is about. */
  feedback?: string;
  feedback_for?: string;
  /** Only with logging.content redacted or full. */
  prompt?: string;
  completion?: string;
}

/** End-user ids are personal data: logs carry a short one-way digest that still groups by user. */
export function hashUser(user: string): string {
  return createHash('sha256').update(user).digest('hex').slice(0, 16);
}
