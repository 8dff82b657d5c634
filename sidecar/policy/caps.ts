// The route's output cap (limits.maxOutputTokens) applied to the call itself, so the worst case
// the sidecar reserves for is a bound the upstream really enforces.
import type { Endpoint } from '../../crds/schema.ts';

export function applyOutputCap(endpoint: Endpoint, body: Record<string, unknown>, cap: number | undefined): void {
  if (cap === undefined) return;
  let field: string | undefined;
  if (endpoint === 'responses') field = 'max_output_tokens';
  else if (endpoint === 'chat.completions') field = body.max_completion_tokens === undefined && body.max_tokens !== undefined ? 'max_tokens' : 'max_completion_tokens';
  if (!field) return;
  const asked = body[field];
  if (typeof asked !== 'number' || asked > cap) body[field] = cap;
}
