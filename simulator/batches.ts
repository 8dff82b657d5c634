import { chatCompletions } from './chat.ts';
import { createEmbeddings } from './embeddings.ts';
import { ApiError, invalidParam, invalidType, missingParam } from './errors.ts';
import { page, storeFile } from './files.ts';
import { ids } from './ids.ts';
import { createModeration } from './moderations.ts';
import { json, type Reply } from './reply.ts';
import { createResponse } from './responses.ts';
import type { Handler, HandlerCtx, SimState } from './state.ts';
import { isObj, jsonObject, type Obj } from './validate.ts';

const ENDPOINTS: Record<string, Handler> = {
  '/v1/chat/completions': chatCompletions,
  '/v1/responses': createResponse,
  '/v1/embeddings': createEmbeddings,
  '/v1/moderations': createModeration,
};

type Status = 'validating' | 'failed' | 'in_progress' | 'finalizing' | 'completed' | 'expired' | 'cancelling' | 'cancelled';

export interface BatchRecord {
  batch: Obj & { id: string; created_at: number; status: Status };
  /** When the current status began, in ms. */
  since: number;
  /** When the completion window closes, in ms: a batch still running then expires. */
  expiresAtMs: number;
  lines: { custom_id: string; body: Obj; line: number }[];
  /** Lines run so far, as output-file lines: 200s apart from the rest. */
  output: { ok: string[]; failed: string[] };
}

export function createBatch(ctx: HandlerCtx): Reply {
  const body = jsonObject(ctx);
  const fileId = body.input_file_id;
  if (fileId == null) throw missingParam('input_file_id');
  if (typeof fileId !== 'string') throw invalidType('input_file_id', 'a string', fileId);
  const file = ctx.state.files.get(fileId);
  if (!file) throw new ApiError(404, `No such File object: ${fileId}`, { param: 'input_file_id' });
  if (file.purpose !== 'batch') {
    throw invalidParam('input_file_id', `file ${fileId} has purpose '${file.purpose}', expected 'batch'.`);
  }
  if (body.endpoint == null) throw missingParam('endpoint');
  if (typeof body.endpoint !== 'string' || !(body.endpoint in ENDPOINTS)) {
    throw invalidParam('endpoint', `value must be one of ${Object.keys(ENDPOINTS).map((e) => `'${e}'`).join(', ')}.`);
  }
  if (body.completion_window == null) throw missingParam('completion_window');
  if (body.completion_window !== '24h') throw invalidParam('completion_window', "value must be '24h'.");
  if (body.metadata != null && !isObj(body.metadata)) throw invalidType('metadata', 'an object', body.metadata);

  const now = Date.now();
  const created = Math.floor(now / 1000);
  const batch = {
    id: ids.batch(),
    object: 'batch',
    endpoint: body.endpoint,
    model: null as string | null,
    errors: null as unknown,
    input_file_id: fileId,
    completion_window: '24h',
    status: 'validating' as Status,
    output_file_id: null as string | null,
    error_file_id: null as string | null,
    created_at: created,
    in_progress_at: null as number | null,
    expires_at: created + Math.ceil(ctx.state.opts.batchWindowMs / 1000),
    finalizing_at: null as number | null,
    completed_at: null as number | null,
    failed_at: null as number | null,
    expired_at: null as number | null,
    cancelling_at: null as number | null,
    cancelled_at: null as number | null,
    request_counts: { total: 0, completed: 0, failed: 0 },
    usage: emptyUsage(),
    metadata: (body.metadata as Obj | undefined) ?? null,
  };
  ctx.state.batches.set(batch.id, { batch, since: now, expiresAtMs: now + ctx.state.opts.batchWindowMs, lines: [], output: { ok: [], failed: [] } });
  return json(batch);
}

export function retrieveBatch(ctx: HandlerCtx): Reply {
  return json(findBatch(ctx).batch);
}

export function listBatches(ctx: HandlerCtx): Reply {
  return json(page([...ctx.state.batches.values()].map((r) => r.batch), ctx.query, 20, 100));
}

export function cancelBatch(ctx: HandlerCtx): Reply {
  const rec = findBatch(ctx);
  const { batch } = rec;
  if (batch.status !== 'validating' && batch.status !== 'in_progress') {
    throw new ApiError(400, `Cannot cancel a batch with status '${batch.status}'.`);
  }
  moveTo(rec, 'cancelling', Date.now());
  return json(batch);
}

function findBatch(ctx: HandlerCtx): BatchRecord {
  const rec = ctx.state.batches.get(ctx.params[0]!);
  if (!rec) throw new ApiError(404, `No batch found with id '${ctx.params[0]}'.`, { param: 'batch_id' });
  return rec;
}

/**
 * Moves every batch along its lifecycle by elapsed time, one step per
 * `batchStepMs`. Called before each request, so progress is seen exactly when
 * someone looks, and no timers outlive the server.
 */
export function advanceBatches(state: SimState, now = Date.now()): void {
  const step = state.opts.batchStepMs;
  for (const rec of state.batches.values()) {
    while (true) {
      const status = rec.batch.status;
      const running = status === 'validating' || status === 'in_progress';
      const at = running ? Math.min(rec.since + step, Math.max(rec.expiresAtMs, rec.since)) : rec.since + step;
      if (now < at) break;
      if (running && at >= rec.expiresAtMs) endEarly(state, rec, 'expired', at);
      else if (status === 'validating') validate(state, rec, at);
      else if (status === 'in_progress') run(state, rec, at);
      else if (status === 'finalizing') finish(state, rec, at);
      else if (status === 'cancelling') endEarly(state, rec, 'cancelled', at);
      else break;
    }
  }
}

function moveTo(rec: BatchRecord, status: Status, at: number): void {
  rec.batch.status = status;
  rec.batch[`${status}_at`] = Math.floor(at / 1000);
  rec.since = at;
}

function validate(state: SimState, rec: BatchRecord, at: number): void {
  const file = state.files.get(rec.batch.input_file_id as string);
  const errors: { code: string; message: string; param: string | null; line: number | null }[] = [];
  const seen = new Set<string>();
  const text = file ? file.data.toString('utf8') : '';
  if (!file) errors.push({ code: 'file_not_found', message: 'The input file no longer exists.', param: 'input_file_id', line: null });
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    const line = i + 1;
    let entry: unknown;
    try {
      entry = JSON.parse(raw);
    } catch {
      errors.push({ code: 'invalid_json_line', message: 'This line is not parseable as valid JSON.', param: null, line });
      return;
    }
    if (!isObj(entry) || typeof entry.custom_id !== 'string') {
      errors.push({ code: 'missing_required_parameter', message: "Missing required parameter: 'custom_id'.", param: 'custom_id', line });
      return;
    }
    if (seen.has(entry.custom_id)) {
      errors.push({ code: 'duplicate_custom_id', message: 'The custom_id for this request is a duplicate of another request.', param: 'custom_id', line });
    }
    seen.add(entry.custom_id);
    if (entry.method !== 'POST') {
      errors.push({ code: 'invalid_method', message: "The method must be 'POST'.", param: 'method', line });
    } else if (entry.url !== rec.batch.endpoint) {
      errors.push({ code: 'invalid_url', message: `The URL provided for this request does not match the batch endpoint (${String(rec.batch.endpoint)}).`, param: 'url', line });
    } else if (!isObj(entry.body)) {
      errors.push({ code: 'missing_required_parameter', message: "Missing required parameter: 'body'.", param: 'body', line });
    } else {
      rec.lines.push({ custom_id: entry.custom_id, body: entry.body, line });
    }
  });
  if (file && rec.lines.length === 0 && errors.length === 0) {
    errors.push({ code: 'empty_file', message: 'The batch input file is empty.', param: null, line: null });
  }
  if (errors.length > 0) {
    rec.batch.errors = { object: 'list', data: errors };
    rec.lines = [];
    moveTo(rec, 'failed', at);
    return;
  }
  const model = rec.lines[0]!.body.model;
  rec.batch.model = typeof model === 'string' ? model : null;
  rec.batch.request_counts = { total: rec.lines.length, completed: 0, failed: 0 };
  moveTo(rec, 'in_progress', at);
}

/**
 * Runs the next `batchLinesPerStep` lines (all of them when 0) through the
 * simulator's own endpoint logic, so request_counts grow while in progress.
 */
function run(state: SimState, rec: BatchRecord, at: number): void {
  const handler = ENDPOINTS[rec.batch.endpoint as string]!;
  const path = rec.batch.endpoint as string;
  const { ok, failed } = rec.output;
  const start = ok.length + failed.length;
  const perStep = state.opts.batchLinesPerStep || rec.lines.length;
  for (const { custom_id, body } of rec.lines.slice(start, start + perStep)) {
    const request_id = ids.request();
    let status_code = 200;
    let respBody: unknown;
    try {
      if (body.stream === true) throw invalidParam('stream', 'streaming is not supported in the Batch API.');
      const reply = handler({ state, method: 'POST', path, params: [], query: {}, headers: {}, raw: Buffer.alloc(0), json: body, jsonInvalid: false });
      respBody = reply.kind === 'json' ? reply.body : null;
      addUsage(rec.batch.usage as Usage, respBody);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      status_code = e.status;
      respBody = e.body();
    }
    const line = JSON.stringify({ id: ids.batchRequest(), custom_id, response: { status_code, request_id, body: respBody }, error: null });
    (status_code === 200 ? ok : failed).push(line);
  }
  rec.batch.request_counts = { total: rec.lines.length, completed: ok.length, failed: failed.length };
  if (ok.length + failed.length >= rec.lines.length) moveTo(rec, 'finalizing', at);
  else rec.since = at;
}

function finish(state: SimState, rec: BatchRecord, at: number): void {
  writeFiles(state, rec, []);
  moveTo(rec, 'completed', at);
}

const UNRUN = {
  expired: { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' },
  cancelled: { code: 'batch_cancelled', message: 'This request was not executed because the batch was cancelled.' },
};

/**
 * Cancelled or expired: what ran is kept in the output and error files, and each line that never
 * ran gets an error-file line with no response. request_counts keep counting what ran.
 */
function endEarly(state: SimState, rec: BatchRecord, status: 'expired' | 'cancelled', at: number): void {
  const ran = rec.output.ok.length + rec.output.failed.length;
  const unrun = rec.lines.slice(ran).map(({ custom_id }) => JSON.stringify({ id: ids.batchRequest(), custom_id, response: null, error: UNRUN[status] }));
  writeFiles(state, rec, unrun);
  moveTo(rec, status, at);
}

function writeFiles(state: SimState, rec: BatchRecord, unrun: string[]): void {
  const { ok, failed } = rec.output;
  const errors = [...failed, ...unrun];
  const name = (kind: string) => `batch_${rec.batch.id}_${kind}.jsonl`;
  if (ok.length > 0) rec.batch.output_file_id = storeFile(state, name('output'), 'batch_output', jsonl(ok)).id;
  if (errors.length > 0) rec.batch.error_file_id = storeFile(state, name('error'), 'batch_output', jsonl(errors)).id;
}

function jsonl(lines: string[]): Buffer {
  return Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8');
}

type Usage = ReturnType<typeof emptyUsage>;

function emptyUsage() {
  return {
    input_tokens: 0,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: 0,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 0,
  };
}

/** Folds one reply's usage, Chat or Responses or Embeddings shaped, into the batch's Responses-shaped total. */
function addUsage(total: Usage, body: unknown): void {
  const u = isObj(body) && isObj(body.usage) ? body.usage : undefined;
  if (!u) return;
  const n = (v: unknown) => (typeof v === 'number' ? v : 0);
  const inDetails = isObj(u.input_tokens_details) ? u.input_tokens_details : isObj(u.prompt_tokens_details) ? u.prompt_tokens_details : {};
  const outDetails = isObj(u.output_tokens_details) ? u.output_tokens_details : isObj(u.completion_tokens_details) ? u.completion_tokens_details : {};
  const input = n(u.input_tokens ?? u.prompt_tokens);
  const output = n(u.output_tokens ?? u.completion_tokens);
  total.input_tokens += input;
  total.output_tokens += output;
  total.total_tokens += input + output;
  total.input_tokens_details.cached_tokens += n(inDetails.cached_tokens);
  total.output_tokens_details.reasoning_tokens += n(outDetails.reasoning_tokens);
}
