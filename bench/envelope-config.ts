// The two ai-envelope configurations compared: a bare route (the proxy's own cost), and a route
// with every policy a typical production route turns on. Limits and the budget are real but
// generous, so every check runs on every call and none refuses one during the bench.
import { stringify } from 'yaml';

export const SECRET_NAME = 'openai';
export type EnvelopeProfile = 'none' | 'full';

const HUGE = 1_000_000_000;

const ANSWER_SCHEMA = {
  type: 'object',
  properties: {
    answer: { type: 'string' },
    order_id: { type: 'string' },
    status: { type: 'string', enum: ['unknown', 'processing', 'shipped', 'delivered'] },
    needs_human: { type: 'boolean' },
  },
  required: ['answer', 'order_id', 'status', 'needs_human'],
  additionalProperties: false,
};

const TOOLS_ALLOWED = ['lookup_order', 'open_ticket'];

// Long enough to be a realistic system prompt: it is tokenized for every call.
const INSTRUCTIONS = [
  'You are the customer support assistant of an online shop.',
  'Answer questions about orders, deliveries, returns and refunds, briefly and politely.',
  'Use lookup_order to find an order before you answer about it, and open_ticket when a human must step in.',
  'Never ask for or repeat payment card numbers, passwords or other secrets.',
  'Answer in the language of the customer.',
].join(' ');

function route(profile: EnvelopeProfile, upstreamURL: string): object {
  const upstream = { baseURL: upstreamURL, secretRef: { name: SECRET_NAME, key: 'apiKey' } };
  if (profile === 'none') {
    return { apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIRoute', metadata: { name: 'bench-none', namespace: 'bench' }, spec: { upstream } };
  }
  const window = { requestsPerMinute: HUGE, tokensPerMinute: HUGE * 100, requestsPerDay: HUGE * 100, tokensPerDay: HUGE * 10_000 };
  return {
    apiVersion: 'ai-envelope.dev/v1alpha1',
    kind: 'AIRoute',
    metadata: { name: 'bench-full', namespace: 'bench', labels: { team: 'bench' } },
    spec: {
      upstream,
      endpoints: ['chat.completions', 'responses'],
      model: { default: 'gpt-4.1-mini', allowed: ['gpt-4.1-mini', 'gpt-4.1-nano'], aliases: { fast: 'gpt-4.1-nano' }, fallbacks: ['gpt-4.1-nano'] },
      timeouts: { requestSeconds: 30, streamIdleSeconds: 15 },
      limits: {
        maxRequestBytes: 262_144,
        maxInputTokens: 8_000,
        maxOutputTokens: 512,
        concurrency: 1_024,
        route: window,
        perUser: window,
      },
      input: {
        redact: ['email', 'phone', 'credit_card', 'iban', 'secret', 'jwt', 'private_key'],
        onMatch: 'redact',
        forbiddenParameters: ['logprobs', 'top_logprobs'],
      },
      output: { jsonSchema: ANSWER_SCHEMA, onInvalid: 'reject', allowedTools: TOOLS_ALLOWED },
      prompt: { version: 'support-v3', instructions: INSTRUCTIONS },
      logging: { content: 'none' },
      data: { store: false, dropMetadata: true },
    },
  };
}

function budget(): object {
  return {
    apiVersion: 'ai-envelope.dev/v1alpha1',
    kind: 'AIBudget',
    metadata: { name: 'bench-monthly', namespace: 'bench' },
    spec: { routeSelector: { matchLabels: { team: 'bench' } }, period: 'monthly', limitUSD: 1_000_000, perUserLimitUSD: 1_000_000, onExhausted: 'block' },
  };
}

/** The manifests file the sidecar is started with. */
export function envelopeManifests(profile: EnvelopeProfile, upstreamURL: string): string {
  const docs = profile === 'full' ? [route(profile, upstreamURL), budget()] : [route(profile, upstreamURL)];
  return docs.map((d) => stringify(d)).join('---\n');
}
