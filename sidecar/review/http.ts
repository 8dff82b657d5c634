// The review queue over HTTP. Reviewers, on the admin port, with the bearer token of the route
// an item belongs to: list, show (the content: only they see it), approve, reject, edit. The app,
// on the loopback proxy port: the outcome of its own item, by id.
import type { Request, Response } from 'express';
import { z } from 'zod';
import { EnvelopeError } from '../errors.ts';
import { checkAnswer, type OutputEndpoint } from '../policy/output.ts';
import { outcomeOf, tokenMatches } from '../pipeline/review.ts';
import { issueField } from '../pipeline/feedback.ts';
import type { Exchange } from '../pipeline/exchange.ts';
import type { Sidecar } from '../sidecar.ts';
import { ReviewError, type ReviewAction, type ReviewItem, type ReviewStatus } from './store.ts';

const Decision = z
  .object({
    reviewer: z.string().min(1).max(200).optional(),
    note: z.string().max(4000).optional(),
    /** With edit: the answer the app gets instead of the model's. */
    output_text: z.string().max(1_000_000).optional(),
  })
  .strict();

const STATUSES: ReadonlySet<string> = new Set(['pending', 'approved', 'rejected', 'edited']);
const ACTIONS: ReadonlySet<string> = new Set(['approve', 'reject', 'edit']);

function send(res: Response, status: number, body: unknown): void {
  res.status(status).json(body);
}

function fail(res: Response, status: number, message: string, param: string | null = null): void {
  res.setHeader('x-should-retry', 'false');
  send(res, status, { error: { message, type: 'envelope_error', code: status === 401 ? 'unauthorized' : 'invalid_request', param } });
}

function bearer(req: Request): string | undefined {
  const h = req.headers.authorization;
  return typeof h === 'string' && h.startsWith('Bearer ') ? h.slice(7) : undefined;
}

/** The item if the caller holds its route's reviewers' token; otherwise the answer was sent. */
function authorised(sidecar: Sidecar, req: Request, res: Response, item: ReviewItem | undefined, id: string): ReviewItem | undefined {
  const route = item ? sidecar.config.current?.byName.get(item.route) : undefined;
  const token = route?.reviewTokenPath ? sidecar.keys.get(route.reviewTokenPath) : undefined;
  // Unknown and not-yours look the same: ids do not leak across routes.
  if (!item || !tokenMatches(bearer(req), token)) {
    fail(res, item || bearer(req) ? 404 : 401, item || bearer(req) ? `No review '${id}' for this token.` : 'A reviewer bearer token is required (the Secret in the route\'s review.tokenSecretRef).');
    return undefined;
  }
  return item;
}

const summary = (i: ReviewItem) => ({ id: i.id, route: i.route, reason: i.reason, status: i.status, model: i.model, prompt_version: i.promptVersion ?? null, created_at: i.createdAt, details: i.details });
const full = (i: ReviewItem) => ({ ...summary(i), endpoint: i.endpoint, request: i.request, answer: i.answer ?? null, decision: i.decision ?? null, expires_at: new Date(i.expiresAt).toISOString() });

export async function listReviews(sidecar: Sidecar, req: Request, res: Response): Promise<void> {
  const status = typeof req.query.status === 'string' ? req.query.status : undefined;
  if (status !== undefined && !STATUSES.has(status)) return fail(res, 400, `status must be one of ${[...STATUSES].join(', ')}, got '${status}'.`, 'status');
  const given = bearer(req);
  if (!given) return fail(res, 401, "A reviewer bearer token is required (the Secret in the route's review.tokenSecretRef).");
  const routes = (sidecar.config.current?.routes ?? []).filter((r) => r.reviewTokenPath && tokenMatches(given, sidecar.keys.get(r.reviewTokenPath))).map((r) => r.id);
  const items = (await sidecar.reviews.list(status as ReviewStatus | undefined)).filter((i) => routes.includes(i.route));
  send(res, 200, { object: 'list', data: items.map(summary) });
}

export async function showReview(sidecar: Sidecar, req: Request, res: Response): Promise<void> {
  const id = String(req.params.id);
  const item = authorised(sidecar, req, res, await sidecar.reviews.get(id), id);
  if (item) send(res, 200, full(item));
}

export async function decideReview(sidecar: Sidecar, req: Request, res: Response): Promise<void> {
  const id = String(req.params.id);
  const action = String(req.params.action);
  if (!ACTIONS.has(action)) return fail(res, 404, `Unknown review action '${action}': approve, reject or edit.`);
  const item = authorised(sidecar, req, res, await sidecar.reviews.get(id), id);
  if (!item) return;
  const parsed = Decision.safeParse(req.body ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issueField(issue);
    return fail(res, 400, `Decision field '${field}': ${issue?.message ?? 'invalid'}.`, field || null);
  }
  const { reviewer, note, output_text: text } = parsed.data;
  if (action === 'edit') {
    if (item.reason !== 'output_invalid') return fail(res, 400, 'Only answers can be edited; approve or reject a moderation review.', 'output_text');
    if (text === undefined) return fail(res, 400, 'edit needs output_text: the answer the app gets instead.', 'output_text');
    // An edited answer meets the contract the model's answer broke.
    const schema = sidecar.config.current?.byName.get(item.route)?.spec.output.jsonSchema;
    const violation = schema ? checkAnswer(item.endpoint as OutputEndpoint, { text, refusal: undefined, toolCalls: [] }, item.request as Record<string, unknown>, { jsonSchema: schema }) : undefined;
    if (violation) return fail(res, 400, `output_text does not meet the route's output schema: ${violation.errors.join('; ')}`, 'output_text');
  } else if (text !== undefined) {
    return fail(res, 400, `output_text goes with edit, not ${action}.`, 'output_text');
  }
  try {
    const decided = await sidecar.reviews.decide(id, action as ReviewAction, { ...(reviewer ? { reviewer } : {}), ...(note ? { note } : {}), ...(text !== undefined ? { answer: text } : {}) });
    sidecar.metrics.reviews.inc({ route: decided.route, reason: decided.reason, event: decided.status });
    // Who decided what, never the content.
    sidecar.log.info({ event: 'review_decided', review_id: id, route: decided.route, reason: decided.reason, status: decided.status, reviewer: reviewer ?? null }, `review ${decided.status}`);
    send(res, 200, full(decided));
  } catch (err) {
    if (err instanceof ReviewError) return fail(res, err.status, err.message);
    throw err;
  }
}

/** GET /envelope/reviews/{id} on the proxy port: the app's view of its own item. */
export async function reviewOutcome(ex: Exchange, id: string): Promise<void> {
  const item = await ex.sidecar.reviews.get(id);
  if (!item) throw new EnvelopeError('invalid_request', `No review '${id}' on this sidecar (it may have expired).`, { status: 404, param: 'id', headers: { 'x-should-retry': 'false' } });
  ex.record.route = item.route;
  ex.record.review_id = item.id;
  ex.res.writeHead(200, { 'content-type': 'application/json' });
  ex.res.end(JSON.stringify(outcomeOf(item)));
}
