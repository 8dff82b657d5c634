import { checkAnswers, type ScriptedAnswer } from './answers.ts';
import type { FaultQueue } from './faults.ts';
import type { RecordedRequest, SimulatorOptions } from './types.ts';
import type { BatchRecord } from './batches.ts';
import type { StoredFile } from './files.ts';
import type { Reply } from './reply.ts';
import type { CostBook } from './costs.ts';

export interface SimState {
  opts: {
    streamDelayMs: number;
    latencyMs: number;
    models: string[];
    batchStepMs: number;
    batchLinesPerStep: number;
    batchWindowMs: number;
    apiKeys: string[] | undefined;
    /** Keys of the admin class (organization endpoints); unset: any `sk-admin-` key. */
    adminKeys: string[] | undefined;
    /** Key → project billed for its calls (unless the OpenAI-Project header names one). */
    projects: Record<string, string>;
    recordLimit: number;
  };
  requests: RecordedRequest[];
  faults: FaultQueue;
  /** Scripted answers, first match wins (answers.ts). */
  answers: ScriptedAnswer[];
  files: Map<string, StoredFile>;
  batches: Map<string, BatchRecord>;
  /** Stored Responses objects, for GET /v1/responses/{id}. */
  responses: Map<string, unknown>;
  /** The organization's bill (costs.ts). */
  costs: CostBook;
}

export interface HandlerCtx {
  state: SimState;
  method: string;
  path: string;
  /** Captures of the route pattern, e.g. a file id. */
  params: string[];
  query: Record<string, string>;
  headers: Record<string, string>;
  raw: Buffer;
  /** Parsed JSON body; undefined when absent or not JSON. */
  json: unknown;
  jsonInvalid: boolean;
}

export type Handler = (ctx: HandlerCtx) => Reply;

export const DEFAULT_MODELS = [
  'gpt-4.1',
  'gpt-4.1-mini',
  'gpt-4.1-nano',
  'gpt-4o',
  'gpt-4o-mini',
  'o3',
  'o4-mini',
  'gpt-5',
  'gpt-5-mini',
  'gpt-5-nano',
  'text-embedding-3-small',
  'text-embedding-3-large',
  'omni-moderation-latest',
];

export function applyOptions(state: SimState, o: Partial<SimulatorOptions>): void {
  if (o.streamDelayMs !== undefined) state.opts.streamDelayMs = o.streamDelayMs;
  if (o.latencyMs !== undefined) state.opts.latencyMs = o.latencyMs;
  if (o.models !== undefined) state.opts.models = [...o.models];
  if (o.batchStepMs !== undefined) state.opts.batchStepMs = o.batchStepMs;
  if (o.batchLinesPerStep !== undefined) state.opts.batchLinesPerStep = o.batchLinesPerStep;
  if (o.batchWindowMs !== undefined) state.opts.batchWindowMs = o.batchWindowMs;
  if ('apiKeys' in o) state.opts.apiKeys = o.apiKeys ? [...o.apiKeys] : undefined;
  if ('adminKeys' in o) state.opts.adminKeys = o.adminKeys ? [...o.adminKeys] : undefined;
  if (o.projects !== undefined) state.opts.projects = { ...o.projects };
  if (o.recordLimit !== undefined) {
    if (typeof o.recordLimit !== 'number' || !(o.recordLimit >= 0)) throw new Error(`recordLimit must be a number, 0 or more; got ${JSON.stringify(o.recordLimit)}`);
    state.opts.recordLimit = o.recordLimit;
    // Emptied in place: callers may hold a reference to `requests`.
    if (state.requests.length > o.recordLimit) state.requests.splice(0, state.requests.length - o.recordLimit);
  }
  if (o.answers !== undefined) state.answers = checkAnswers(o.answers);
}
