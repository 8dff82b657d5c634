// The output half of a route's content contract, and what of the content reaches the logs.
import type { Endpoint } from '../../crds/schema.ts';
import type { RuntimeRoute } from '../config/runtime.ts';
import { createRedactor, mapTexts, type RedactionKind, type TextEndpoint } from '../policy/redact.ts';
import type { Answer } from '../policy/output.ts';
import type { Exchange } from './exchange.ts';

export interface OutputPolicy {
  jsonSchema?: Record<string, unknown>;
  allowedTools?: string[];
}

/** The route's output contract for this endpoint, or undefined when there is nothing to check. */
export function outputPolicyFor(route: RuntimeRoute, endpoint: Endpoint): OutputPolicy | undefined {
  if (endpoint !== 'chat.completions' && endpoint !== 'responses') return undefined;
  const { jsonSchema, allowedTools } = route.spec.output;
  if (!jsonSchema && !allowedTools) return undefined;
  return { ...(jsonSchema ? { jsonSchema } : {}), ...(allowedTools ? { allowedTools } : {}) };
}

const ALL_KINDS: RedactionKind[] = ['email', 'phone', 'credit_card', 'iban', 'secret', 'jwt', 'private_key'];
/** Logged text is capped: a log line is not an archive. */
const MAX_LOGGED_CHARS = 8192;

function forLog(text: string, mode: 'redacted' | 'full'): string {
  const shown = mode === 'redacted' ? createRedactor(ALL_KINDS).redact(text).text : text;
  return shown.length > MAX_LOGGED_CHARS ? `${shown.slice(0, MAX_LOGGED_CHARS)}…` : shown;
}

export function wantsContent(route: RuntimeRoute): boolean {
  return route.spec.logging.content !== 'none';
}

/** `logging.content`: none logs no text; redacted logs it after redaction of every kind; full logs it as sent. */
export function logContent(ex: Exchange, route: RuntimeRoute, endpoint: Endpoint, body: Record<string, unknown>, answer: Answer | undefined): void {
  const mode = route.spec.logging.content;
  if (mode === 'none') return;
  if (endpoint === 'chat.completions' || endpoint === 'responses' || endpoint === 'embeddings' || endpoint === 'moderations') {
    const parts: string[] = [];
    mapTexts(endpoint as TextEndpoint, body, (t) => {
      parts.push(t);
      return undefined;
    });
    ex.record.prompt = forLog(parts.join('\n'), mode);
  }
  if (answer) {
    const calls = answer.toolCalls.map((c) => `${c.name}(${c.arguments})`);
    const text = [answer.text ?? answer.refusal ?? '', ...calls].filter(Boolean).join('\n');
    ex.record.completion = forLog(text, mode);
  }
}
