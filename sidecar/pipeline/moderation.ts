// Moderation before the call, when the route asks for it: the input's text (after redaction, so
// personal data is not sent twice) goes to the upstream's moderation endpoint with the route's
// key. Flagged input is refused with the categories; an unreachable endpoint fails closed or
// open as the route says.
import type { Endpoint } from '../../crds/schema.ts';
import { EnvelopeError } from '../errors.ts';
import { callUpstream } from '../upstream/client.ts';
import { mapTexts, type TextEndpoint } from '../policy/redact.ts';
import { upstreamHeaders } from './forward.ts';
import { holdForReview, inputDigest, REVIEW_HEADER } from './review.ts';
import { callOptions } from './model-call.ts';
import type { Exchange } from './exchange.ts';
import type { RuntimeRoute } from '../config/runtime.ts';

/** Moderation is quick: it gets a short deadline of its own within the call's. */
const MODERATION_DEADLINE_MS = 10_000;

interface ModerationResult {
  flagged?: boolean;
  categories?: Record<string, boolean>;
}

export async function moderateInput(ex: Exchange, route: RuntimeRoute, endpoint: Endpoint, body: Record<string, unknown>): Promise<void> {
  const policy = route.spec.moderation;
  if (!policy.input || (endpoint !== 'chat.completions' && endpoint !== 'responses' && endpoint !== 'embeddings')) return;
  const texts: string[] = [];
  mapTexts(endpoint as TextEndpoint, body, (t) => {
    if (t) texts.push(t);
    return undefined;
  });
  if (texts.length === 0) return;
  const { metrics, log } = ex.sidecar;
  // A resubmission of an input whose review a person approved goes through, once.
  const reviewId = ex.req.headers[REVIEW_HEADER];
  if (typeof reviewId === 'string' && policy.onFlagged === 'review') {
    const item = await ex.sidecar.reviews.get(reviewId);
    // `use` is the atomic part: of two resubmissions at once (on any replica), one goes through.
    if (item && item.reason === 'moderation_flagged' && item.route === route.id && item.inputDigest === inputDigest(texts) && (await ex.sidecar.reviews.use(item.id))) {
      metrics.reviews.inc({ route: route.id, reason: item.reason, event: 'released' });
      log.info({ event: 'review_released', review_id: item.id, request_id: ex.id, route: route.id }, 'approved input let through once');
      return;
    }
  }
  const payload = Buffer.from(JSON.stringify({ model: policy.model, input: texts }));
  let results: ModerationResult[] | undefined;
  let why = '';
  try {
    const opts = callOptions(ex, route);
    const up = await callUpstream(
      { method: 'POST', url: `${route.baseURL}/moderations`, headers: upstreamHeaders({ 'content-type': 'application/json' }, route, ex.id, payload.length), body: payload, stream: false, idempotent: true },
      { ...opts, deadline: Math.min(opts.deadline, Date.now() + MODERATION_DEADLINE_MS) },
    );
    const json = up.json as { results?: ModerationResult[] } | undefined;
    if (up.status < 400 && Array.isArray(json?.results)) results = json.results;
    else why = `status ${up.status}`;
  } catch (err) {
    if (ex.appGone.signal.aborted) throw err;
    why = err instanceof EnvelopeError ? err.code : String(err);
  }
  if (!results) {
    metrics.moderation.inc({ route: route.id, result: 'unavailable' });
    if (policy.onUnavailable === 'allow') {
      log.warn({ event: 'moderation_unavailable', request_id: ex.id, route: route.id, reason: why }, 'moderation unavailable: the call goes on (moderation.onUnavailable: allow)');
      return;
    }
    throw new EnvelopeError('upstream_unavailable', `The input could not be moderated (${why}); route '${route.id}' refuses calls without moderation (moderation.onUnavailable: block).`, { status: 503 });
  }
  const flagged = new Set<string>();
  for (const r of results) {
    if (!r.flagged) continue;
    for (const [category, on] of Object.entries(r.categories ?? {})) if (on) flagged.add(category);
    if (flagged.size === 0) flagged.add('unspecified');
  }
  if (flagged.size > 0) {
    metrics.moderation.inc({ route: route.id, result: 'flagged' });
    const categories = [...flagged].sort();
    ex.record.moderation = categories;
    if (policy.onFlagged === 'review') {
      throw await holdForReview(ex, route, endpoint, { reason: 'moderation_flagged', model: ex.record.model ?? '', details: categories, request: body, inputDigest: inputDigest(texts) });
    }
    throw new EnvelopeError('moderation_flagged', `The input was flagged by moderation: ${categories.join(', ')}.`, { headers: { 'x-should-retry': 'false' } });
  }
  metrics.moderation.inc({ route: route.id, result: 'passed' });
}
