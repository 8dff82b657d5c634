// The input half of a route's content contract, in the order that keeps data safest: check the
// body, bound it, minimise it, find personal data and secrets (redact or refuse), hash the user,
// put the route's prompt first, moderate what is left, and ask for structured output.
import type { Endpoint } from '../../crds/schema.ts';
import { EnvelopeError } from '../errors.ts';
import { validateRequest } from '../policy/validate.ts';
import { applyOutputCap } from '../policy/caps.ts';
import { applyPrompt, minimiseData, setSafetyIdentifier } from '../policy/shaping.ts';
import { createRedactor, redactBody, type TextEndpoint } from '../policy/redact.ts';
import { requestStructuredOutput, type OutputEndpoint } from '../policy/output.ts';
import { moderateInput } from './moderation.ts';
import type { Exchange } from './exchange.ts';
import type { RuntimeRoute } from '../config/runtime.ts';

const TEXT_ENDPOINTS = new Set<Endpoint>(['chat.completions', 'responses', 'embeddings', 'moderations']);

export async function prepareInput(ex: Exchange, route: RuntimeRoute, endpoint: Endpoint, body: Record<string, unknown>): Promise<void> {
  const { spec } = route;
  validateRequest(endpoint, body, spec.input.forbiddenParameters, route.id);
  applyOutputCap(endpoint, body, spec.limits.maxOutputTokens);
  minimiseData(endpoint, body, spec.data);

  if (spec.input.redact.length > 0 && TEXT_ENDPOINTS.has(endpoint)) {
    const findings = redactBody(endpoint as TextEndpoint, body, createRedactor(spec.input.redact));
    const kinds = Object.keys(findings).sort();
    if (kinds.length > 0) {
      const action = spec.input.onMatch === 'block' ? 'blocked' : 'redacted';
      ex.record.redactions = findings as Record<string, number>;
      for (const kind of kinds) ex.sidecar.metrics.redactions.inc({ route: route.id, kind, action }, findings[kind as keyof typeof findings] ?? 0);
      if (spec.input.onMatch === 'block') {
        // The kinds, never the values: the point is that they go nowhere.
        throw new EnvelopeError('pii_blocked', `The input contains ${kinds.join(', ')}; route '${route.id}' refuses such input (input.onMatch: block).`, { headers: { 'x-should-retry': 'false' } });
      }
    }
  }

  if (spec.input.safetyIdentifier) {
    const key = ex.hashKey(route);
    if (key) setSafetyIdentifier(endpoint, body, ex.rawUser, key);
  }
  applyPrompt(endpoint, body, spec.prompt, route.id);
  if (spec.prompt) {
    ex.record.prompt_version = spec.prompt.version;
    ex.sidecar.metrics.promptVersion.inc([route.id, spec.prompt.version]);
  }
  await moderateInput(ex, route, endpoint, body);
  if (spec.output.jsonSchema && (endpoint === 'chat.completions' || endpoint === 'responses')) {
    requestStructuredOutput(endpoint as OutputEndpoint, body, spec.output.jsonSchema);
  }
}
