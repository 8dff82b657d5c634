// Governed Batch API jobs: uploads of batch input checked line by line, batches that reserve
// their worst case at the batch price and settle from the output file, and the deferred mode that
// queues single calls durably and submits them as Batch jobs by size or age.
import { randomUUID } from 'node:crypto';
import type { Endpoint } from '../../crds/schema.ts';
import { EnvelopeError } from '../errors.ts';
import type { RuntimeRoute } from '../config/runtime.ts';
import { callUpstream, type CallOptions, type UpstreamResponse } from '../upstream/client.ts';
import { normaliseUsage } from '../upstream/usage.ts';
import { costNano, priceFor } from '../policy/prices.ts';
import { budgetsFor, budgetUses, type BudgetUse } from '../pipeline/admission.ts';
import { parseJSONObject, readBody, type Exchange } from '../pipeline/exchange.ts';
import { answerHeaders, safeErrorBody, sendBuffered, upstreamHeaders } from '../pipeline/forward.ts';
import { routeFor } from '../pipeline/passthrough.ts';
import { NANO_PER_USD, type BudgetSpec, type BudgetTicket } from '../state/types.ts';
import type { Sidecar } from '../sidecar.ts';
import { BATCH_URLS, batchWorstCase, governBatchFile } from './govern.ts';
import { Journal } from './journal.ts';
import { Ledger, type BatchEntry, type JobEntry, type LedgerEvent } from './ledger.ts';

const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);
/** A batch may run 24 hours; its reservation is held a little longer before it counts as spent. */
const BATCH_HOLD_MS = 26 * 3_600_000;
/** How often queues and unsettled batches are looked at; each route's pollSeconds bounds upstream look-ups. */
const TICK_MS = 1000;
/** After a failed submission, a queue waits this long before trying again. */
const RETRY_SUBMIT_MS = 5000;
const PATH_OF: Record<string, string> = { 'chat.completions': '/v1/chat/completions', responses: '/v1/responses', embeddings: '/v1/embeddings', moderations: '/v1/moderations' };

type OutputLine = { custom_id?: string; response?: { status_code?: number; body?: unknown } | null; error?: unknown };

export class BatchService {
  private readonly sidecar: Sidecar;
  private readonly journal: Journal<LedgerEvent>;
  readonly ledger: Ledger;
  private readonly polled = new Map<string, { at: number; status: string }>();
  private readonly settling = new Map<string, Promise<void>>();
  private readonly submitting = new Set<string>();
  private readonly retryAt = new Map<string, number>();
  /** Parsed output of batches holding deferred calls: custom_id → line. */
  private readonly results = new Map<string, Map<string, OutputLine>>();
  private timer: NodeJS.Timeout | undefined;

  private constructor(sidecar: Sidecar, journal: Journal<LedgerEvent>, ledger: Ledger) {
    this.sidecar = sidecar;
    this.journal = journal;
    this.ledger = ledger;
  }

  static async open(sidecar: Sidecar, dir: string | undefined): Promise<BatchService> {
    const onError = (err: Error) => sidecar.log.error({ event: 'batch_journal_error', err: err.message }, 'batch journal problem');
    const { journal, events } = await Journal.open<LedgerEvent>(dir, 'batches.jsonl', onError);
    const ledger = new Ledger();
    for (const e of events) ledger.apply(e);
    if (events.length > 0) await journal.rewrite(ledger.compact(Date.now()));
    return new BatchService(sidecar, journal, ledger);
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(Date.now()), TICK_MS);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.allSettled([...this.settling.values()]);
    await this.journal.close();
  }

  private async record(e: LedgerEvent): Promise<void> {
    this.ledger.apply(e);
    await this.journal.append(e);
  }

  private options(route: RuntimeRoute, signal = new AbortController().signal): CallOptions {
    const { sidecar } = this;
    return {
      policy: route.spec.retry,
      deadline: Date.now() + route.spec.timeouts.requestSeconds * 1000,
      streamIdleMs: route.spec.timeouts.streamIdleSeconds * 1000,
      signal,
      key: () => sidecar.keys.get(route.keyPath) ?? '',
      refreshKey: () => (route.keyPath ? sidecar.keys.refresh(route.keyPath) : Promise.resolve(false)),
      onRetry: (reason: string) => sidecar.metrics.retries.inc({ route: route.id, reason }),
    };
  }

  private headers(route: RuntimeRoute, requestId: string, length?: number, contentType = 'application/json'): Record<string, string> {
    return upstreamHeaders({ 'content-type': contentType }, route, requestId, length);
  }

  private route(id: string): RuntimeRoute | undefined {
    return this.sidecar.config.current?.routes.find((r) => r.id === id);
  }

  // --- Governed uploads and batches (the app's own /v1/files and /v1/batches) ---

  /** POST /v1/files: a batch input file is governed line by line and the governed copy uploaded. */
  async upload(ex: Exchange): Promise<void> {
    const route = routeFor(ex, 'files');
    const max = route.spec.batch.maxUploadBytes;
    const raw = await readBody(ex.req, max).catch((err: unknown) => {
      if (err instanceof EnvelopeError && err.code === 'request_too_large') {
        throw new EnvelopeError('request_too_large', `Uploads through route '${route.id}' are limited to ${max} bytes (batch.maxUploadBytes): the sidecar checks every line of a batch file. Split the batch into smaller files.`, { param: 'file' });
      }
      throw err;
    });
    const type = ex.req.headers['content-type'] ?? '';
    let form: FormData;
    try {
      form = await new Response(raw, { headers: { 'content-type': type } }).formData();
    } catch {
      throw new EnvelopeError('invalid_request', 'Expected a multipart/form-data upload with a file and a purpose.', { param: 'file' });
    }
    const purpose = form.get('purpose');
    const file = form.get('file');
    if (purpose !== 'batch' || !(file instanceof File)) {
      // Other purposes reach no model through this sidecar: forwarded as they came.
      const up = await callUpstream({ method: 'POST', url: `${route.baseURL}/files`, headers: this.headers(route, ex.id, raw.length, type), body: raw, stream: false, idempotent: false }, this.options(route, ex.appGone.signal));
      return this.answer(ex, route, up);
    }
    const governed = governBatchFile(route, await file.text());
    const kinds = Object.entries(governed.redactions);
    if (kinds.length > 0) {
      ex.record.redactions = governed.redactions as Record<string, number>;
      for (const [kind, n] of kinds) this.sidecar.metrics.redactions.inc({ route: route.id, kind, action: 'redacted' }, n ?? 0);
    }
    const up = await this.uploadJsonl(route, ex.id, file.name || 'batch.jsonl', governed.text, ex.appGone.signal);
    const json = up.json as { id?: unknown } | undefined;
    if (up.status < 400 && typeof json?.id === 'string') {
      await this.record({ t: 'file', id: json.id, route: route.id, url: governed.url, lines: governed.lines, reserve_nano: governed.reserveNano, unpriced: governed.unpriced, at: Date.now() });
      this.sidecar.log.info({ event: 'batch_file_governed', request_id: ex.id, route: route.id, file_id: json.id, lines: governed.lines, reserve_usd: governed.reserveNano / NANO_PER_USD }, 'batch input governed');
    }
    return this.answer(ex, route, up);
  }

  private async uploadJsonl(route: RuntimeRoute, requestId: string, name: string, text: string, signal?: AbortSignal): Promise<UpstreamResponse> {
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', new File([text], name.endsWith('.jsonl') ? name : `${name}.jsonl`, { type: 'application/jsonl' }));
    const encoded = new Response(form);
    const body = Buffer.from(await encoded.arrayBuffer());
    const type = encoded.headers.get('content-type') ?? 'multipart/form-data';
    return callUpstream({ method: 'POST', url: `${route.baseURL}/files`, headers: this.headers(route, requestId, body.length, type), body, stream: false, idempotent: false }, this.options(route, signal));
  }

  /** POST /v1/batches: only governed files; the worst case is reserved before the job exists. */
  async create(ex: Exchange): Promise<void> {
    const route = routeFor(ex, 'batches');
    const raw = await readBody(ex.req, 1024 * 1024);
    const body = parseJSONObject(raw);
    const fileId = body.input_file_id;
    if (typeof fileId !== 'string') throw new EnvelopeError('invalid_request', "'input_file_id' must be a string.", { param: 'input_file_id' });
    const file = this.ledger.files.get(fileId);
    if (!file || file.route !== route.id) {
      throw new EnvelopeError('invalid_request', `The file '${fileId}' was not uploaded through route '${route.id}' of this sidecar (POST /v1/files with purpose batch), so its lines were never checked against the route's policy.`, { param: 'input_file_id' });
    }
    if (body.endpoint !== file.url) throw new EnvelopeError('invalid_request', `'endpoint' must be ${file.url}, the url every line of '${fileId}' names.`, { param: 'endpoint' });
    const ticket = await this.reserve(route, file.reserveNano, file.unpriced, `this batch of ${file.lines} requests`);
    let up: UpstreamResponse;
    try {
      up = await callUpstream({ method: 'POST', url: `${route.baseURL}/batches`, headers: this.headers(route, ex.id, raw.length), body: raw, stream: false, idempotent: false }, this.options(route, ex.appGone.signal));
    } catch (err) {
      if (ticket) await this.sidecar.state.settle(ticket, 0, Date.now());
      throw err;
    }
    const json = up.json as { id?: unknown } | undefined;
    if (up.status < 400 && typeof json?.id === 'string') {
      await this.record({ t: 'batch', id: json.id, route: route.id, file_id: fileId, url: file.url, reserve_nano: file.reserveNano, ...(ticket ? { ticket } : {}), at: Date.now() });
      this.sidecar.log.info({ event: 'batch_reserved', request_id: ex.id, route: route.id, batch_id: json.id, reserved_usd: file.reserveNano / NANO_PER_USD }, 'batch created');
    } else if (ticket) {
      await this.sidecar.state.settle(ticket, 0, Date.now());
    }
    return this.answer(ex, route, up);
  }

  /** GET /v1/batches/{id}: answered from upstream; a batch seen finished is settled first. */
  async retrieve(ex: Exchange, id: string): Promise<void> {
    const route = routeFor(ex, 'batches');
    const up = await callUpstream({ method: 'GET', url: `${route.baseURL}/batches/${encodeURIComponent(id)}`, headers: this.headers(route, ex.id), stream: false, idempotent: true }, this.options(route, ex.appGone.signal));
    const entry = this.ledger.batches.get(id);
    if (entry && !entry.settled && up.status < 400) await this.observe(entry, up.json);
    return this.answer(ex, route, up);
  }

  private answer(ex: Exchange, route: RuntimeRoute, up: UpstreamResponse): void {
    ex.record.attempts = up.attempts;
    const headers = answerHeaders(ex, up);
    const safe = up.status >= 400 ? safeErrorBody(route, up, this.sidecar.keys.get(route.keyPath)) : { status: up.status, body: up.body ?? Buffer.alloc(0) };
    ex.record.status = safe.status;
    sendBuffered(ex.res, safe.status, headers, safe.body);
  }

  /** Reserves on every budget of the route, durably; undefined when no budget covers it. */
  private async reserve(route: RuntimeRoute, amount: number, unpriced: string[], what: string): Promise<BudgetTicket | undefined> {
    const config = this.sidecar.config.current;
    const uses = budgetUses(budgetsFor(route, config?.source.budgets ?? []), '-', Date.now());
    if (uses.length === 0) return undefined;
    if (unpriced.length > 0 && uses.some((u) => u.budget.onExhausted === 'block')) {
      throw new EnvelopeError('model_not_allowed', `No price is known for '${unpriced[0]}', so the route's budget cannot be enforced: add it to the route's spec.prices.`);
    }
    const specs: BudgetSpec[] = uses.map((u) => ({ key: u.key, limit: Math.round(u.budget.limitUSD * NANO_PER_USD), enforce: u.budget.onExhausted === 'block', expiresAt: u.period.end }));
    const result = await this.sidecar.state.reserve(specs, amount, BATCH_HOLD_MS, Date.now(), { durable: true });
    // On disk before the batch exists: a crash must not forget money a running batch may spend.
    if (result.ok) await this.sidecar.state.flush?.();
    if (!result.ok) {
      const use = uses.find((u) => u.key === result.key) as BudgetUse;
      const usd = (n: number) => `$${(n / NANO_PER_USD).toFixed(4)}`;
      throw new EnvelopeError(
        'budget_exhausted',
        `Budget '${use.budget.namespace}/${use.budget.name}' cannot cover ${what}: ${usd(result.spent)} spent and ${usd(result.reserved)} reserved of ${usd(result.limit)}; it could cost up to ${usd(amount)} at the batch price.`,
      );
    }
    return result.ticket;
  }

  /** Settles a batch once the upstream says it is over; a batch already settling is awaited, not settled twice. */
  private observe(entry: BatchEntry, batch: unknown): Promise<void> {
    const b = batch as { status?: unknown; output_file_id?: unknown; error_file_id?: unknown } | undefined;
    const status = typeof b?.status === 'string' ? b.status : 'unknown';
    this.polled.set(entry.id, { at: Date.now(), status });
    if (!TERMINAL.has(status)) return Promise.resolve();
    let running = this.settling.get(entry.id);
    if (!running) {
      running = this.settle(entry, status, typeof b?.output_file_id === 'string' ? b.output_file_id : null, typeof b?.error_file_id === 'string' ? b.error_file_id : null)
        .catch((err: unknown) => this.sidecar.log.error({ event: 'batch_settle_error', batch_id: entry.id, err: String(err) }, 'could not settle a batch'))
        .finally(() => this.settling.delete(entry.id));
      this.settling.set(entry.id, running);
    }
    return running;
  }

  /** Charges what the output file says completed, at the batch price; a failed or cancelled batch is charged its completed lines only. */
  private async settle(entry: BatchEntry, status: string, outputFileId: string | null, errorFileId: string | null): Promise<void> {
    if (entry.settled) return;
    const route = this.route(entry.route);
    if (!route) throw new Error(`route ${entry.route} is no longer in the config`);
    let cost = 0;
    let input = 0;
    let output = 0;
    let lines = 0;
    const byModel = new Map<string, number>();
    const results = new Map<string, OutputLine>();
    for (const fileId of [outputFileId, errorFileId]) {
      if (!fileId) continue;
      for (const line of await this.readOutput(route, fileId)) {
        if (line.custom_id) results.set(line.custom_id, line);
        const body = line.response?.body as { usage?: unknown; model?: unknown } | undefined;
        const usage = normaliseUsage(body?.usage);
        if (!usage) continue;
        lines++;
        const model = typeof body?.model === 'string' ? body.model : '';
        const price = priceFor(model, route.spec.prices);
        const c = price ? costNano(usage, price, { batch: true }) : 0;
        cost += c;
        input += usage.input;
        output += usage.output;
        byModel.set(model, (byModel.get(model) ?? 0) + c);
      }
    }
    const now = Date.now();
    if (entry.ticket) {
      const levels = await this.sidecar.state.settle(entry.ticket, cost, now);
      // Before the journal says settled: otherwise a crash could leave the reservation to count as spent.
      await this.sidecar.state.flush?.();
      this.sidecar.onBudgetLevels(budgetUses(budgetsFor(route, this.sidecar.config.current?.source.budgets ?? []), '-', now), levels);
    }
    await this.record({ t: 'settled', id: entry.id, status, cost_nano: cost, output_file_id: outputFileId, error_file_id: errorFileId });
    if ([...this.ledger.jobs.values()].some((j) => j.batchId === entry.id)) this.results.set(entry.id, results);
    const { metrics } = this.sidecar;
    metrics.batchSettlements.inc({ route: route.id, status });
    for (const [model, c] of byModel) if (c > 0) metrics.cost.inc([route.id, model, route.spec.prompt?.version ?? ''], c / NANO_PER_USD);
    this.sidecar.log.info(
      { event: 'batch_settled', route: route.id, batch_id: entry.id, status, lines, input_tokens: input, output_tokens: output, cost_usd: cost / NANO_PER_USD, reserved_usd: entry.reserveNano / NANO_PER_USD },
      `batch ${status}: settled at the batch price`,
    );
  }

  /** An output or error file, line by line. */
  private async readOutput(route: RuntimeRoute, fileId: string): Promise<OutputLine[]> {
    const up = await callUpstream({ method: 'GET', url: `${route.baseURL}/files/${encodeURIComponent(fileId)}/content`, headers: this.headers(route, `batch_${randomUUID()}`), stream: false, idempotent: true }, this.options(route));
    if (up.status >= 400) throw new Error(`reading ${fileId} failed with status ${up.status}`);
    const out: OutputLine[] = [];
    for (const line of (up.body ?? Buffer.alloc(0)).toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as OutputLine);
      } catch {
        // A line that is not JSON carries no usage to charge and no result to hand out.
      }
    }
    return out;
  }

  // --- Deferred mode ---

  /** Queues a call that already passed the route's input policy; answers 202 with a job id once it is on disk. */
  async defer(ex: Exchange, route: RuntimeRoute, endpoint: Endpoint, body: Record<string, unknown>): Promise<void> {
    if (body.stream === true) throw new EnvelopeError('invalid_request', 'A deferred call cannot stream: its answer comes from a Batch job.', { param: 'stream' });
    const model = typeof body.model === 'string' ? body.model : '';
    const worst = batchWorstCase(route, endpoint, body, model);
    const id = `defer_${randomUUID().replaceAll('-', '')}`;
    const at = Date.now();
    await this.record({ t: 'queued', id, route: route.id, endpoint, body, worst_nano: worst.worstNano ?? 0, ...(worst.worstNano === undefined ? { unpriced: model } : {}), at });
    ex.record.deferred = id;
    ex.record.status = 202;
    sendBuffered(ex.res, 202, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify(this.jobView(this.ledger.jobs.get(id) as JobEntry))));
    // A full queue goes at once, not at the next tick.
    const queue = this.ledger.queue(`${route.id}|${endpoint}`);
    const max = route.spec.batch.maxRequests;
    if (queue.size >= max) void this.submit(route, endpoint, queue.take(max), at);
  }

  /** GET /v1/envelope/deferred/{id}: where a deferred call is, and its answer once there is one. */
  async deferred(ex: Exchange, id: string): Promise<void> {
    const job = this.ledger.jobs.get(id);
    if (!job) throw new EnvelopeError('invalid_request', `No deferred call with id '${id}'.`, { status: 404, param: 'id' });
    ex.record.route = job.route;
    const batch = job.batchId ? this.ledger.batches.get(job.batchId) : undefined;
    if (batch && !batch.settled) {
      const route = this.route(batch.route);
      // Looked up at most once per pollSeconds, however often the app asks.
      const last = this.polled.get(batch.id);
      if (route && (!last || Date.now() - last.at >= route.spec.batch.pollSeconds * 1000)) await this.poll(batch, route);
    }
    const view = this.jobView(job);
    if (batch?.settled) Object.assign(view, await this.outcome(job, batch));
    sendBuffered(ex.res, 200, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify(view)));
  }

  private jobView(job: JobEntry): Record<string, unknown> {
    const batch = job.batchId ? this.ledger.batches.get(job.batchId) : undefined;
    let status = 'queued';
    if (job.failure) status = 'failed';
    else if (batch) status = batch.settled ? 'completed' : 'submitted';
    return {
      id: job.id,
      object: 'envelope.deferred_call',
      status,
      custom_id: job.id,
      route: job.route,
      endpoint: job.endpoint,
      created_at: Math.floor(job.at / 1000),
      batch_id: job.batchId ?? null,
      ...(batch && !batch.settled ? { batch_status: this.polled.get(batch.id)?.status ?? 'validating' } : {}),
      ...(job.failure ? { error: job.failure } : {}),
    };
  }

  /** The answer (status_code and body) or the error for one deferred call of a finished batch. */
  private async outcome(job: JobEntry, batch: BatchEntry): Promise<Record<string, unknown>> {
    const settled = batch.settled as NonNullable<BatchEntry['settled']>;
    let results = this.results.get(batch.id);
    if (!results) {
      // After a restart the parsed output is gone: read it again.
      const route = this.route(batch.route);
      results = new Map();
      if (route) {
        for (const fileId of [settled.outputFileId, settled.errorFileId]) {
          if (!fileId) continue;
          for (const line of await this.readOutput(route, fileId)) if (line.custom_id) results.set(line.custom_id, line);
        }
      }
      this.results.set(batch.id, results);
    }
    const line = results.get(job.id);
    const code = line?.response?.status_code;
    if (line?.response && code !== undefined && code < 400) return { status: 'completed', response: { status_code: code, body: line.response.body } };
    if (line?.response) {
      const err = (line.response.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      return { status: 'failed', response: { status_code: code, body: line.response.body }, error: { code: typeof err?.code === 'string' ? err.code : `status_${code}`, message: typeof err?.message === 'string' ? err.message : 'The request failed in its batch.' } };
    }
    if (line?.error) return { status: 'failed', error: line.error };
    return { status: 'failed', error: { code: `batch_${settled.status}`, message: `The batch ${batch.id} ended ${settled.status} before this request ran.` } };
  }

  /** Submits a queue as one Batch job: governed JSONL upload, reservation at the batch price, then the batch. */
  private async submit(route: RuntimeRoute, endpoint: Endpoint, queue: JobEntry[], now: number): Promise<void> {
    const key = `${route.id}|${endpoint}`;
    if (this.submitting.has(key) || (this.retryAt.get(key) ?? 0) > now) return;
    this.submitting.add(key);
    const jobs = queue.slice(0, route.spec.batch.maxRequests);
    const ids = jobs.map((j) => j.id);
    const requestId = `batch_${randomUUID().replaceAll('-', '')}`;
    let ticket: BudgetTicket | undefined;
    try {
      const url = PATH_OF[endpoint] as string;
      const text = jobs.map((j) => `${JSON.stringify({ custom_id: j.id, method: 'POST', url, body: j.body })}\n`).join('');
      const amount = jobs.reduce((s, j) => s + j.worstNano, 0);
      const unpriced = jobs.flatMap((j) => (j.unpriced ? [j.unpriced] : []));
      try {
        ticket = await this.reserve(route, amount, unpriced, `${jobs.length} deferred calls`);
      } catch (err) {
        if (!(err instanceof EnvelopeError)) throw err;
        // Final for these calls: each reports the refusal under its own id.
        await this.record({ t: 'refused', ids, code: err.code, message: err.message });
        this.sidecar.log.warn({ event: 'deferred_refused', route: route.id, calls: ids.length, code: err.code }, err.message);
        return;
      }
      const file = await this.uploadJsonl(route, requestId, 'deferred.jsonl', text);
      const fileId = (file.json as { id?: unknown } | undefined)?.id;
      if (file.status >= 400 || typeof fileId !== 'string') throw new Error(`uploading the batch input failed with status ${file.status}`);
      const payload = Buffer.from(JSON.stringify({ input_file_id: fileId, endpoint: url, completion_window: '24h', metadata: { envelope_route: route.id } }));
      const up = await callUpstream({ method: 'POST', url: `${route.baseURL}/batches`, headers: this.headers(route, requestId, payload.length), body: payload, stream: false, idempotent: false }, this.options(route));
      const batchId = (up.json as { id?: unknown } | undefined)?.id;
      if (up.status >= 400 || typeof batchId !== 'string') throw new Error(`creating the batch failed with status ${up.status}`);
      await this.record({ t: 'batch', id: batchId, route: route.id, file_id: fileId, url, reserve_nano: amount, ...(ticket ? { ticket } : {}), at: Date.now() });
      ticket = undefined;
      await this.record({ t: 'submitted', ids, batch_id: batchId });
      this.sidecar.log.info({ event: 'batch_submitted', route: route.id, batch_id: batchId, calls: ids.length, reserved_usd: amount / NANO_PER_USD }, 'deferred calls submitted as a batch');
    } catch (err) {
      this.retryAt.set(key, Date.now() + RETRY_SUBMIT_MS);
      this.sidecar.log.error({ event: 'batch_submit_error', route: route.id, calls: ids.length, err: String(err) }, 'could not submit deferred calls; they stay queued');
    } finally {
      if (ticket) await this.sidecar.state.settle(ticket, 0, Date.now()).catch(() => {});
      this.submitting.delete(key);
    }
  }

  private async poll(batch: BatchEntry, route: RuntimeRoute): Promise<void> {
    this.polled.set(batch.id, { at: Date.now(), status: this.polled.get(batch.id)?.status ?? 'validating' });
    try {
      const up = await callUpstream({ method: 'GET', url: `${route.baseURL}/batches/${encodeURIComponent(batch.id)}`, headers: this.headers(route, `batch_${randomUUID()}`), stream: false, idempotent: true }, this.options(route));
      if (up.status < 400) await this.observe(batch, up.json);
    } catch (err) {
      this.sidecar.log.warn({ event: 'batch_poll_error', batch_id: batch.id, err: String(err) }, 'could not look up a batch');
    }
  }

  /** Submits queues that are full or old enough, and looks up unsettled batches at most once per pollSeconds. */
  private async tick(now: number): Promise<void> {
    if (!this.sidecar.config.current) return;
    const work: Array<Promise<void>> = [];
    for (const key of this.ledger.queueKeys()) {
      const route = this.route(key.split('|')[0] as string);
      const queue = this.ledger.queue(key);
      const first = queue.take(1)[0];
      if (!route || !first) continue;
      const { maxRequests, maxAgeSeconds } = route.spec.batch;
      if (queue.size >= maxRequests || now - first.at >= maxAgeSeconds * 1000) work.push(this.submit(route, first.endpoint, queue.take(maxRequests), now));
    }
    for (const batch of this.ledger.unsettled()) {
      const route = this.route(batch.route);
      if (!route || this.settling.has(batch.id)) continue;
      const last = this.polled.get(batch.id);
      if (!last || now - last.at >= route.spec.batch.pollSeconds * 1000) work.push(this.poll(batch, route));
    }
    await Promise.allSettled(work);
  }
}

export { BATCH_URLS };
