// Holding a call for a person: the item goes to the review queue and the app gets 409
// review_pending with the item's id (never a half-valid answer); the app later fetches the
// outcome by that id, and reviewers decide on the admin port with the route's token.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Endpoint } from '../../crds/schema.ts';
import { EnvelopeError } from '../errors.ts';
import type { ReviewItem, ReviewReason } from '../review/store.ts';
import type { RuntimeRoute } from '../config/runtime.ts';
import type { Exchange } from './exchange.ts';

/** The header an app sends back with a resubmitted input whose moderation review was approved. */
export const REVIEW_HEADER = 'x-envelope-review-id';

export async function holdForReview(
  ex: Exchange,
  route: RuntimeRoute,
  endpoint: Endpoint,
  held: { reason: ReviewReason; model: string; details: string[]; request: unknown; answer?: string; inputDigest?: string },
): Promise<EnvelopeError> {
  const { sidecar } = ex;
  const item = await sidecar.reviews.add(
    {
      route: route.id,
      endpoint,
      model: held.model,
      ...(route.spec.prompt ? { promptVersion: route.spec.prompt.version } : {}),
      reason: held.reason,
      details: held.details,
      request: held.request,
      ...(held.answer !== undefined ? { answer: held.answer } : {}),
      ...(held.inputDigest ? { inputDigest: held.inputDigest } : {}),
    },
    route.spec.review.retentionHours * 3_600_000,
  );
  ex.record.review_id = item.id;
  sidecar.metrics.reviews.inc({ route: route.id, reason: held.reason, event: 'held' });
  sidecar.log.info({ event: 'review_held', review_id: item.id, request_id: ex.id, route: route.id, reason: held.reason }, 'held for human review');
  const what = held.reason === 'output_invalid' ? `The answer did not meet route '${route.id}'s output contract` : `The input was flagged by moderation (${held.details.join(', ')})`;
  return new EnvelopeError('review_pending', `${what} and waits for human review as ${item.id}: fetch the outcome with GET /envelope/reviews/${item.id}.`, {
    headers: { [REVIEW_HEADER]: item.id },
  });
}

/** Digest of the texts moderation saw: an approved review lets exactly this input through. */
export function inputDigest(texts: string[]): string {
  return createHash('sha256').update(JSON.stringify(texts)).digest('hex');
}

/** What the app may see of its own item: the outcome, never the reviewers' notes. */
export function outcomeOf(item: ReviewItem): Record<string, unknown> {
  return {
    object: 'envelope.review',
    id: item.id,
    status: item.status,
    reason: item.reason,
    route: item.route,
    created_at: item.createdAt,
    ...(item.decision ? { decided_at: item.decision.at } : {}),
    ...(item.decision?.answer !== undefined ? { output_text: item.decision.answer } : {}),
  };
}

/** A bearer token against the route's reviewers' token, in constant time. */
export function tokenMatches(given: string | undefined, expected: string | undefined): boolean {
  if (!given || !expected) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected.trim()).digest();
  return timingSafeEqual(a, b);
}
