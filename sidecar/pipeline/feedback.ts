// The app's verdict on an answer: POST /envelope/feedback {"request_id", "outcome"} on the proxy
// listener (loopback, so only the pod's own containers can report). It becomes a metric by
// route, model and prompt version, and a field of the feedback call's own log line.
import { z } from 'zod';
import { EnvelopeError } from '../errors.ts';
import { FEEDBACK_OUTCOMES } from '../policy/quality.ts';
import { parseJSONObject, readBody, type Exchange } from './exchange.ts';

const MAX_BODY = 4096;

/** Where a zod issue of a small JSON body sits: its path, or the unknown keys it names. */
export function issueField(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return '';
  return issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : '');
}
const FINAL = { 'x-should-retry': 'false' };

const Feedback = z
  .object({
    request_id: z.string().min(1).max(200),
    outcome: z.enum(FEEDBACK_OUTCOMES),
  })
  .strict();

export async function feedback(ex: Exchange): Promise<void> {
  const parsed = Feedback.safeParse(parseJSONObject(await readBody(ex.req, MAX_BODY)));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issueField(issue);
    throw new EnvelopeError('invalid_request', `Feedback ${field ? `field '${field}'` : 'body'}: ${issue?.message ?? 'invalid'}. Expected {"request_id": "...", "outcome": one of ${FEEDBACK_OUTCOMES.join(', ')}}.`, {
      ...(field ? { param: field } : {}),
      headers: FINAL,
    });
  }
  const { request_id: id, outcome } = parsed.data;
  const result = ex.sidecar.quality.feedback(id, outcome, Date.now());
  if (result.kind === 'unknown') {
    throw new EnvelopeError('invalid_request', `No answered request '${id}' on this sidecar: feedback is taken for the most recent successful model calls (up to an hour, at most 10,000), by their x-request-id.`, { status: 404, param: 'request_id', headers: FINAL });
  }
  if (result.kind === 'already') {
    throw new EnvelopeError('invalid_request', `Request '${id}' already has the feedback '${result.outcome}'.`, { status: 409, param: 'request_id', headers: FINAL });
  }
  const { request } = result;
  Object.assign(ex.record, { route: request.route, model: request.model, prompt_version: request.promptVersion || undefined, feedback: outcome, feedback_for: id });
  ex.sidecar.metrics.feedback.inc({ route: request.route, gen_ai_request_model: request.model, prompt_version: request.promptVersion, outcome });
  ex.res.writeHead(200, { 'content-type': 'application/json' });
  ex.res.end(JSON.stringify({ object: 'envelope.feedback', request_id: id, outcome, route: request.route }));
}
