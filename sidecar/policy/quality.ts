// Quality signals beside the status code: a user who sends the same input again within minutes
// is telling something about the last answer, and so is the app when it reports what became of
// one. Both are kept in bounded memory per sidecar: signals, not an audit trail.
import { hash } from 'node:crypto';
import type { RequestRecord } from '../telemetry/log.ts';

export const FEEDBACK_OUTCOMES = ['accepted', 'edited', 'rejected', 'reported'] as const;
export type FeedbackOutcome = (typeof FEEDBACK_OUTCOMES)[number];

/** What a later feedback call needs to know about the request it is about. */
export interface AnsweredRequest {
  route: string;
  model: string;
  promptVersion: string;
  feedback?: FeedbackOutcome;
}

/** Milliseconds since this process started: small integers V8 keeps unboxed (for 12 days). */
const T0 = Date.now();
const tick = (ms: number) => Math.round(ms - T0);

/**
 * Insertion-ordered, bounded, with expiry: the oldest entry goes first when full or expired.
 * Entries outlive many young-generation collections, so each is kept small: the key and the
 * value, the expiry in a second map of small integers.
 */
class ExpiringMap<V> {
  private readonly values = new Map<string, V>();
  private readonly expiry = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly max: number;

  constructor(ttlMs: number, max: number) {
    this.ttlMs = ttlMs;
    this.max = max;
  }

  get(key: string, now: number): V | undefined {
    const x = this.expiry.get(key);
    if (x === undefined) return undefined;
    if (x > tick(now)) return this.values.get(key);
    this.delete(key);
    return undefined;
  }

  set(key: string, value: V, now: number): void {
    // Re-inserting moves the key to the newest end, so expiry stays in insertion order.
    this.delete(key);
    this.values.set(key, value);
    this.expiry.set(key, tick(now + this.ttlMs));
    const t = tick(now);
    for (const [k, x] of this.expiry) {
      if (this.expiry.size <= this.max && x > t) break;
      this.delete(k);
    }
  }

  private delete(key: string): void {
    this.values.delete(key);
    this.expiry.delete(key);
  }
}

export interface QualityOptions {
  /** The same user and input within this long is a repeat. */
  repeatWindowMs?: number;
  /** How long an answered request can still get feedback. */
  feedbackWindowMs?: number;
  /** Memory bounds: entries beyond these push the oldest out. */
  maxFingerprints?: number;
  maxAnswered?: number;
}

export class QualitySignals {
  private readonly fingerprints: ExpiringMap<true>;
  private readonly answered: ExpiringMap<AnsweredRequest>;

  constructor(opts: QualityOptions = {}) {
    // Bounded so that a busy sidecar spends at most a couple of MB here: at 10 calls a second the
    // bounds hold about 15 minutes of answers; at 1,000 a second, the last 10 seconds.
    this.fingerprints = new ExpiringMap(opts.repeatWindowMs ?? 10 * 60_000, opts.maxFingerprints ?? 10_000);
    this.answered = new ExpiringMap(opts.feedbackWindowMs ?? 3_600_000, opts.maxAnswered ?? 10_000);
  }

  /**
   * Whether this user sent this exact body to this route within the window. The body is reduced
   * to a digest at once: no input text stays in memory.
   */
  repeated(route: string, user: string, body: Buffer, now: number): boolean {
    // The body as a short digest (crypto.hash: one call, no Hash object): a fingerprint costs
    // under 100 bytes of memory, whatever the input. The user is already a digest.
    const key = `${route}\u0000${user}\u0000${hash('sha1', body, 'base64')}`;
    const seen = this.fingerprints.get(key, now) !== undefined;
    this.fingerprints.set(key, true, now);
    return seen;
  }

  /** Remembers an answered model call so the app can report on it by request id. */
  answeredRequest(record: RequestRecord, now: number): void {
    if (!record.route || !record.model || record.status >= 400) return;
    this.answered.set(record.request_id, { route: record.route, model: record.model, promptVersion: record.prompt_version ?? '' }, now);
  }

  /**
   * Records the app's verdict on a request: `unknown` when it is not (or no longer) known here,
   * `already` when it has a verdict, else the request it is about.
   */
  feedback(requestId: string, outcome: FeedbackOutcome, now: number): { kind: 'unknown' } | { kind: 'already'; outcome: FeedbackOutcome } | { kind: 'recorded'; request: AnsweredRequest } {
    const request = this.answered.get(requestId, now);
    if (!request) return { kind: 'unknown' };
    if (request.feedback) return { kind: 'already', outcome: request.feedback };
    request.feedback = outcome;
    return { kind: 'recorded', request };
  }
}

/** The quality signals one finished request carries, for the metric: none for most calls. */
export function qualitySignals(r: RequestRecord): string[] {
  const out: string[] = [];
  forEachSignal(r, (s) => out.push(s));
  return out;
}

/** The same, without building a list: it runs on every call. */
export function forEachSignal(r: RequestRecord, emit: (signal: string) => void): void {
  if (r.output_checked) emit('output_valid');
  if (r.output_action === 'repaired') emit('output_repaired');
  if (r.error_code === 'output_invalid') emit('output_rejected');
  if (r.output_action === 'fallback' && !r.error_code) emit('output_fallback');
  if (r.error_code === 'tool_not_allowed') emit('tool_refused');
  if (r.repeat) emit('repeated_input');
}
