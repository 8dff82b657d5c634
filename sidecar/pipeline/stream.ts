// Relaying a stream to the app event by event. Once the first byte has reached the app nothing is
// retried; a stall or a broken upstream ends the stream with an error event the SDKs raise. With
// an output contract the terminal event is held back until the whole answer has been checked,
// and replaced by an error event if it broke the contract.
import { once } from 'node:events';
import type { Endpoint } from '../../crds/schema.ts';
import { SseTap, type StreamKind } from '../upstream/sse.ts';
import type { UpstreamResponse } from '../upstream/client.ts';
import { holdForReview } from './review.ts';
import { StreamAnswer, checkAnswer, type Answer, type OutputEndpoint, type Violation } from '../policy/output.ts';
import { answerHeaders } from './forward.ts';
import type { Exchange } from './exchange.ts';
import type { RuntimeRoute } from '../config/runtime.ts';
import type { OutputPolicy } from './contract.ts';

export interface StreamResult {
  tap: SseTap;
  answer?: Answer;
  violation?: Violation;
}

export async function relayStream(
  ex: Exchange,
  route: RuntimeRoute,
  endpoint: Endpoint,
  up: UpstreamResponse,
  kind: StreamKind,
  stripUsage: boolean,
  requestBody: Record<string, unknown>,
  policy: OutputPolicy | undefined,
  wantText: boolean,
): Promise<StreamResult> {
  const { res } = ex;
  const tap = new SseTap(kind, stripUsage);
  const result: StreamResult = { tap };
  const body = up.stream;
  if (!body) return result;
  // Parsing every event costs; only routes that check or log the answer pay it.
  const collector = policy || wantText ? new StreamAnswer(endpoint as OutputEndpoint) : undefined;
  if (collector) {
    tap.observe = (data) => {
      try {
        collector.push(JSON.parse(data));
      } catch {
        // Not JSON (a comment, a keep-alive): nothing to collect.
      }
    };
  }
  tap.holdTerminal = policy !== undefined;
  const headers = answerHeaders(ex, up);
  headers['content-type'] = 'text/event-stream; charset=utf-8';
  headers['cache-control'] = 'no-cache';
  res.writeHead(up.status, headers);
  res.flushHeaders();
  const onGone = () => body.destroy();
  ex.appGone.signal.addEventListener('abort', onGone, { once: true });
  try {
    for await (const chunk of body) {
      const out = tap.push(chunk as Buffer);
      if (out && !res.write(out)) await once(res, 'drain', { signal: ex.appGone.signal });
    }
    const rest = tap.flush();
    if (rest) res.write(rest);
    if (!tap.completed) {
      ex.record.error_code = 'upstream_unavailable';
      res.write(tap.errorEvent('upstream_unavailable', 'The upstream ended the stream before it was complete.'));
    } else if (collector) {
      result.answer = collector.answer();
      if (policy) result.violation = checkAnswer(endpoint as OutputEndpoint, result.answer, requestBody, policy);
      if (result.violation?.code === 'output_invalid' && route.spec.output.onInvalid === 'review') {
        // The deltas have reached the app, but not the end of the stream: it ends as held.
        const v = result.violation;
        ex.record.output_violation = v.code;
        ex.record.output_action = 'review';
        ex.record.error_code = 'review_pending';
        ex.sidecar.metrics.outputViolations.inc({ route: route.id, code: v.code, action: 'review' });
        const held = await holdForReview(ex, route, endpoint, { reason: 'output_invalid', model: ex.record.model ?? '', details: v.errors, request: requestBody, ...(result.answer?.text !== undefined ? { answer: result.answer.text } : {}) });
        res.write(tap.errorEvent('review_pending', held.message));
      } else if (result.violation) {
        ex.record.error_code = result.violation.code;
        ex.record.output_violation = result.violation.code;
        ex.record.output_action = 'reject';
        ex.sidecar.metrics.outputViolations.inc({ route: route.id, code: result.violation.code, action: 'reject' });
        res.write(tap.errorEvent(result.violation.code, `${result.violation.message}: ${result.violation.errors.join('; ')}`));
      } else {
        if (policy) ex.record.output_checked = true;
        if (tap.heldTerminal) res.write(tap.heldTerminal);
      }
    }
  } catch (err) {
    if (!ex.appGone.signal.aborted) {
      const code = (err as { code?: string }).code;
      const timeout = code === 'UND_ERR_BODY_TIMEOUT';
      ex.record.error_code = timeout ? 'upstream_timeout' : 'upstream_unavailable';
      const message = timeout
        ? `The upstream sent nothing for ${route.spec.timeouts.streamIdleSeconds}s (timeouts.streamIdleSeconds); the stream was ended.`
        : 'The connection to the upstream broke during the stream.';
      res.write(tap.errorEvent(ex.record.error_code as 'upstream_timeout' | 'upstream_unavailable', message));
    }
  } finally {
    ex.appGone.signal.removeEventListener('abort', onGone);
    if (tap.upstreamError && !ex.record.error_code) ex.record.error_code = tap.upstreamError.code ?? 'upstream_error';
    ex.setUsage(tap.usage);
    if (tap.responseModel) ex.record.response_model = tap.responseModel;
    if (tap.firstTokenAt !== undefined) ex.record.ttft_ms = Math.round((tap.firstTokenAt - ex.started) * 100) / 100;
    res.end();
  }
  return result;
}
