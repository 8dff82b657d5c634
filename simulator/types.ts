import type { ScriptedAnswer } from './answers.ts';
import type { ExtraCost } from './costs.ts';

export interface SimulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks an ephemeral port. */
  port?: number;
  /** When set, only these bearer keys are accepted; otherwise any non-empty bearer is. */
  apiKeys?: string[];
  /** Pause between stream events. Default 0. */
  streamDelayMs?: number;
  /** Pause before every /v1 response. Default 0. */
  latencyMs?: number;
  /** Known model ids; unknown ones answer 404 model_not_found. */
  models?: string[];
  /** Time a batch spends in each lifecycle step. Default 50. */
  batchStepMs?: number;
  /** Lines a batch runs per step while in progress; 0 (the default) runs them all in one step. */
  batchLinesPerStep?: number;
  /** The simulated completion window ("24h"): a batch still running after it expires. Default 24 h. */
  batchWindowMs?: number;
  /** Scripted answers (answers.ts): replaces the list. */
  answers?: ScriptedAnswer[];
  /** Admin keys, the only ones the organization endpoints (costs) accept; unset: any key starting `sk-admin-`. */
  adminKeys?: string[];
  /** API key → the project its calls are billed to, when no OpenAI-Project header names one (default `proj_default`). */
  projects?: Record<string, string>;
  /**
   * How many of the latest /v1 requests `requests` keeps; 0 keeps none. Default: all of them (a
   * test reads them back). The CLI keeps 1,000, so a long-running simulator stays bounded; a load
   * test keeps none, as every kept request lives long enough to burden the simulator's collector.
   */
  recordLimit?: number;
}

export interface RecordedRequest {
  method: string;
  /** Without the query string. */
  path: string;
  query: Record<string, string>;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Parsed JSON when the body was JSON, else undefined. */
  body: unknown;
  rawBodyBytes: number;
  at: number;
}

interface FaultMatch {
  /** Exact request path, e.g. '/v1/chat/completions'. */
  path?: string;
  /** The request body's `model`. */
  model?: string;
  /** How many matching requests it applies to. Default 1. */
  times?: number;
}

export interface ErrorFault extends FaultMatch {
  type: 'error';
  status: number;
  /** Overrides the default error code for the status; null sends null. */
  code?: string | null;
  errorType?: string;
  message?: string;
  param?: string | null;
  /** Whole seconds, sent as `retry-after`. */
  retryAfter?: number;
  /** Sent as `retry-after-ms`. */
  retryAfterMs?: number;
  headers?: Record<string, string>;
}

export interface InsufficientQuotaFault extends FaultMatch {
  type: 'insufficient_quota';
}

export interface DelayFault extends FaultMatch {
  type: 'delay';
  ms: number;
}

export interface ResetFault extends FaultMatch {
  type: 'reset';
}

export interface ResetMidStreamFault extends FaultMatch {
  type: 'reset_mid_stream';
  afterEvents: number;
}

export interface StallMidStreamFault extends FaultMatch {
  type: 'stall_mid_stream';
  afterEvents: number;
  ms: number;
}

export interface MalformedFault extends FaultMatch {
  type: 'malformed';
}

export type Fault =
  | ErrorFault
  | InsufficientQuotaFault
  | DelayFault
  | ResetFault
  | ResetMidStreamFault
  | StallMidStreamFault
  | MalformedFault;

export interface Simulator {
  /** Base URL including /v1, e.g. http://127.0.0.1:PORT/v1. */
  url: string;
  port: number;
  /** Every /v1 request received, in arrival order (live array). */
  requests: RecordedRequest[];
  fault(f: Fault): void;
  clearFaults(): void;
  setApiKeys(keys: string[] | undefined): void;
  setOptions(o: Partial<SimulatorOptions>): void;
  /** Appends scripted answers (first match wins). */
  script(answers: ScriptedAnswer[]): void;
  /** Adds an amount to a project's bill on a UTC day (default today), as a line item of its own: drift on demand. */
  bill(cost: ExtraCost): void;
  /** Clears recorded requests, queued faults and scripted answers. */
  reset(): void;
  close(): Promise<void>;
}
