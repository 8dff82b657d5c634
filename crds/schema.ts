// The one source of truth for ai-envelope's resources: the zod schemas here validate manifests
// (`ai-envelope validate`), produce the sidecar's rendered config (`ai-envelope render`) and,
// later, the CRDs. Kubernetes structural schemas cannot express unions, so none are used.
//
// Nested objects use `.prefault({})` rather than `.default({})`: in zod 4 a default is returned
// as-is, while a prefault is parsed, so the inner fields' defaults are applied too.
import { z } from 'zod';

export const GROUP = 'ai-envelope.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

const resourceName = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, `${what} must not be empty`)
    .max(253, `${what} must be at most 253 characters`)
    .regex(DNS_SUBDOMAIN, `${what} must be lower-case letters, digits, '-' or '.', starting and ending with a letter or digit`);

const positiveInt = (what: string) =>
  z.number({ error: `${what} must be a number` }).int(`${what} must be a whole number`).positive(`${what} must be greater than 0`);

const modelName = z.string({ error: 'a model name must be a string' }).min(1, 'a model name must not be empty');

export const LabelSelector = z
  .object({
    matchLabels: z.record(z.string(), z.string()).optional(),
    matchExpressions: z
      .array(
        z
          .object({
            key: z.string().min(1),
            operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
            values: z.array(z.string()).optional(),
          })
          .strict(),
      )
      .optional(),
  })
  .strict();

/** The OpenAI API families a route can allow. `models` is always readable and is not listed. */
export const Endpoint = z.enum(['responses', 'chat.completions', 'embeddings', 'moderations', 'files', 'batches']);
export type Endpoint = z.infer<typeof Endpoint>;
export const DEFAULT_ENDPOINTS: Endpoint[] = ['responses', 'chat.completions', 'embeddings', 'moderations'];

export const SecretRef = z
  .object({
    name: resourceName('secretRef.name'),
    key: z.string().regex(SECRET_KEY, 'secretRef.key must be letters, digits, ".", "_" or "-"').default('apiKey'),
  })
  .strict();

export const Upstream = z
  .object({
    baseURL: z
      .url({ protocol: /^https?$/, error: 'upstream.baseURL must be an http(s) URL such as https://api.openai.com/v1' })
      .default('https://api.openai.com/v1'),
    secretRef: SecretRef.optional(),
    project: z.string().min(1).optional(),
    organization: z.string().min(1).optional(),
  })
  .strict();

export const ModelPolicy = z
  .object({
    default: modelName.optional(),
    /** Empty: any model the upstream serves. */
    allowed: z.array(modelName).default([]),
    aliases: z.record(z.string().min(1), modelName).default({}),
    fallbacks: z.array(modelName).default([]),
  })
  .strict();

export const Timeouts = z
  .object({
    /** Bounds a whole call, retries included; for a stream, until its first byte reaches the app. */
    requestSeconds: positiveInt('timeouts.requestSeconds').max(3600).default(60),
    /** A stream that sends nothing for this long is ended with an error event. */
    streamIdleSeconds: positiveInt('timeouts.streamIdleSeconds').max(3600).default(30),
  })
  .strict();

export const RetryPolicy = z
  .object({
    maxAttempts: positiveInt('retry.maxAttempts').max(10).default(3),
    baseDelayMs: z.number().int().min(0).max(60_000).default(250),
    maxDelayMs: z.number().int().min(0).max(300_000).default(8000),
  })
  .strict();

const WindowLimits = z
  .object({
    requestsPerMinute: positiveInt('requestsPerMinute').optional(),
    tokensPerMinute: positiveInt('tokensPerMinute').optional(),
    requestsPerDay: positiveInt('requestsPerDay').optional(),
    tokensPerDay: positiveInt('tokensPerDay').optional(),
  })
  .strict();

export const Limits = z
  .object({
    maxRequestBytes: positiveInt('limits.maxRequestBytes').max(64 * 1024 * 1024).default(1024 * 1024),
    maxInputTokens: positiveInt('limits.maxInputTokens').optional(),
    maxOutputTokens: positiveInt('limits.maxOutputTokens').optional(),
    /** In-flight calls per route (per sidecar); more wait in a bounded queue, then get concurrency_limited. */
    concurrency: positiveInt('limits.concurrency').optional(),
    queue: z
      .object({
        maxWaiting: z.number().int().min(0).max(100_000).default(64),
        maxWaitMs: z.number().int().min(0).max(600_000).default(5000),
      })
      .strict()
      .prefault({}),
    route: WindowLimits.optional(),
    perUser: WindowLimits.optional(),
  })
  .strict();

export const CircuitBreakerPolicy = z
  .object({
    /** Opens when at least this share of calls failed (5xx, timeouts, connection errors)... */
    failureRatio: z.number().gt(0).max(1).default(0.5),
    /** ...among at least this many calls in the window. */
    minimumCalls: positiveInt('circuitBreaker.minimumCalls').default(10),
    windowSeconds: positiveInt('circuitBreaker.windowSeconds').max(3600).default(30),
    /** How long it stays open before letting probes through. */
    openSeconds: positiveInt('circuitBreaker.openSeconds').max(3600).default(15),
    halfOpenProbes: positiveInt('circuitBreaker.halfOpenProbes').max(100).default(1),
  })
  .strict();

export const IdempotencyPolicy = z
  .object({
    /** How long a stored answer is replayed for the same idempotency-key. */
    ttlSeconds: positiveInt('idempotency.ttlSeconds').max(7 * 86400).default(600),
  })
  .strict();

/** USD per 1M tokens, overriding the built-in table for this route (another provider, a new model). */
export const ModelPrice = z
  .object({
    input: z.number().min(0),
    cachedInput: z.number().min(0).optional(),
    output: z.number().min(0).default(0),
  })
  .strict();

export const RedactionKind = z.enum(['email', 'phone', 'credit_card', 'iban', 'secret', 'jwt', 'private_key']);

export const InputPolicy = z
  .object({
    /** Personal data and secrets to find in every text part of the input. */
    redact: z.array(RedactionKind).default([]),
    /** redact: replace with typed placeholders; block: refuse the call with pii_blocked. */
    onMatch: z.enum(['redact', 'block']).default('redact'),
    /** Request parameters this route refuses (e.g. `logprobs`, `n`, `tools`). */
    forbiddenParameters: z.array(z.string().min(1)).default([]),
    /** Send `safety_identifier`: a keyed hash of x-envelope-user, so OpenAI can act on one abusive user. */
    safetyIdentifier: z.boolean().default(true),
    /** The HMAC key for that hash (and for user digests in logs); default: the route's API key. */
    userHashSecretRef: SecretRef.optional(),
  })
  .strict();

export const ModerationPolicy = z
  .object({
    input: z.boolean().default(false),
    model: modelName.default('omni-moderation-latest'),
    onUnavailable: z.enum(['block', 'allow']).default('block'),
  })
  .strict();

export const OutputPolicy = z
  .object({
    /** A JSON Schema (draft 2020-12) every answer must satisfy. */
    jsonSchema: z.record(z.string(), z.unknown()).optional(),
    /** repair: one more call with the validation errors; fallback: the next model; reject: 422 output_invalid. */
    onInvalid: z.enum(['repair', 'fallback', 'reject']).default('reject'),
    allowedTools: z.array(z.string().min(1)).optional(),
  })
  .strict();

export const PromptPolicy = z
  .object({
    version: z.string().min(1, 'prompt.version must not be empty'),
    instructions: z.string().min(1, 'prompt.instructions must not be empty'),
  })
  .strict();

export const LoggingPolicy = z
  .object({
    content: z.enum(['none', 'redacted', 'full']).default('none'),
  })
  .strict();

export const DataPolicy = z
  .object({
    store: z.boolean().optional(),
    dropMetadata: z.boolean().default(false),
  })
  .strict();

const AIRouteSpecShape = z
  .object({
    podSelector: LabelSelector.optional(),
    upstream: Upstream.prefault({}),
    endpoints: z.array(Endpoint).min(1, 'endpoints must name at least one endpoint').default(DEFAULT_ENDPOINTS),
    model: ModelPolicy.prefault({}),
    timeouts: Timeouts.prefault({}),
    retry: RetryPolicy.prefault({}),
    circuitBreaker: CircuitBreakerPolicy.prefault({}),
    idempotency: IdempotencyPolicy.prefault({}),
    prices: z.record(modelName, ModelPrice).default({}),
    limits: Limits.prefault({}),
    input: InputPolicy.prefault({}),
    moderation: ModerationPolicy.prefault({}),
    output: OutputPolicy.prefault({}),
    prompt: PromptPolicy.optional(),
    logging: LoggingPolicy.prefault({}),
    data: DataPolicy.prefault({}),
  })
  .strict();

type RouteSpecShape = z.output<typeof AIRouteSpecShape>;

// Cross-field rules. The same rules become CEL validations on the CRD, with the same messages.
function checkRouteRules(spec: RouteSpecShape, ctx: z.RefinementCtx): void {
  const { allowed, fallbacks, aliases } = spec.model;
  if (allowed.length > 0) {
    const allowedSet = new Set(allowed);
    if (spec.model.default !== undefined && !allowedSet.has(spec.model.default)) {
      ctx.addIssue({ code: 'custom', path: ['model', 'default'], message: `default model '${spec.model.default}' must be one of model.allowed` });
    }
    fallbacks.forEach((f, i) => {
      if (!allowedSet.has(f)) ctx.addIssue({ code: 'custom', path: ['model', 'fallbacks', i], message: `fallback '${f}' must be one of model.allowed` });
    });
    for (const [alias, target] of Object.entries(aliases)) {
      if (!allowedSet.has(target)) ctx.addIssue({ code: 'custom', path: ['model', 'aliases', alias], message: `alias target '${target}' must be one of model.allowed` });
    }
  }
  if (spec.retry.baseDelayMs > spec.retry.maxDelayMs) {
    ctx.addIssue({ code: 'custom', path: ['retry', 'baseDelayMs'], message: 'retry.baseDelayMs must not be greater than retry.maxDelayMs' });
  }
  const route = spec.limits.route;
  const perUser = spec.limits.perUser;
  if (route && perUser) {
    for (const k of ['requestsPerMinute', 'tokensPerMinute', 'requestsPerDay', 'tokensPerDay'] as const) {
      const r = route[k];
      const u = perUser[k];
      if (r !== undefined && u !== undefined && u > r) {
        ctx.addIssue({ code: 'custom', path: ['limits', 'perUser', k], message: `per-user ${k} (${u}) must not be above the route's (${r})` });
      }
    }
  }
}

export const AIRouteSpec = AIRouteSpecShape.superRefine(checkRouteRules);
export type AIRouteSpec = z.output<typeof AIRouteSpec>;

export const AIBudgetSpec = z
  .object({
    routeSelector: LabelSelector.optional(),
    period: z.enum(['daily', 'weekly', 'monthly']).default('monthly'),
    limitUSD: z.number({ error: 'limitUSD must be a number' }).positive('limitUSD must be greater than 0'),
    perUserLimitUSD: z.number().positive('perUserLimitUSD must be greater than 0').optional(),
    onExhausted: z.enum(['block', 'degrade', 'alert']).default('block'),
    degradeTo: modelName.optional(),
    alertAt: z.array(z.number().gt(0, 'alertAt values are fractions above 0').max(1, 'alertAt values are fractions up to 1')).default([0.5, 0.8, 1]),
  })
  .strict()
  .superRefine((spec, ctx) => {
    if (spec.onExhausted === 'degrade' && spec.degradeTo === undefined) {
      ctx.addIssue({ code: 'custom', path: ['degradeTo'], message: "degradeTo is required when onExhausted is 'degrade'" });
    }
    if (spec.perUserLimitUSD !== undefined && spec.perUserLimitUSD > spec.limitUSD) {
      ctx.addIssue({ code: 'custom', path: ['perUserLimitUSD'], message: 'perUserLimitUSD must not be above limitUSD' });
    }
  });
export type AIBudgetSpec = z.output<typeof AIBudgetSpec>;

const ObjectMeta = z
  .object({
    name: resourceName('metadata.name'),
    namespace: resourceName('metadata.namespace').default('default'),
    labels: z.record(z.string(), z.string()).default({}),
  })
  // Kubernetes adds uid, resourceVersion, annotations, managedFields...: the rest is tolerated.
  .passthrough();

function resource<K extends string, S extends z.ZodType>(kind: K, spec: S) {
  return z.object({
    apiVersion: z.literal(API_VERSION, { error: `apiVersion must be ${API_VERSION}` }),
    kind: z.literal(kind),
    metadata: ObjectMeta,
    spec,
    status: z.unknown().optional(),
  });
}

export const AIRoute = resource('AIRoute', AIRouteSpec);
export type AIRoute = z.output<typeof AIRoute>;

export const AIBudget = resource('AIBudget', AIBudgetSpec);
export type AIBudget = z.output<typeof AIBudget>;

// The rendered config: the contract between the operator (which writes it into a ConfigMap) and
// the sidecar (which runs with it). Defaults are applied, so the sidecar needs no knowledge of them.
export const RenderedRoute = AIRouteSpecShape.extend({
  name: resourceName('name'),
  namespace: resourceName('namespace'),
  labels: z.record(z.string(), z.string()).default({}),
})
  .strict()
  .superRefine(checkRouteRules);
export type RenderedRoute = z.output<typeof RenderedRoute>;

export const RenderedBudget = z
  .object({
    name: resourceName('name'),
    namespace: resourceName('namespace'),
    /** Names of the routes this budget covers, resolved from its routeSelector. */
    routes: z.array(z.string()),
    period: z.enum(['daily', 'weekly', 'monthly']),
    limitUSD: z.number().positive(),
    perUserLimitUSD: z.number().positive().optional(),
    onExhausted: z.enum(['block', 'degrade', 'alert']),
    degradeTo: modelName.optional(),
    alertAt: z.array(z.number()),
  })
  .strict();
export type RenderedBudget = z.output<typeof RenderedBudget>;

export const SIDECAR_CONFIG_KIND = 'SidecarConfig';

export const SidecarConfig = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(SIDECAR_CONFIG_KIND),
    /** Content hash of routes, budgets and state: changes exactly when what the sidecar enforces changes. */
    version: z.string().regex(/^[0-9a-f]{16}$/),
    routes: z.array(RenderedRoute),
    budgets: z.array(RenderedBudget).default([]),
    /** Shared state for limits and budgets across replicas; `--redis-url` overrides it. */
    state: z
      .object({ redisURL: z.string().regex(/^rediss?:\/\//, 'state.redisURL must be a redis:// or rediss:// URL').optional() })
      .strict()
      .optional(),
  })
  .strict();
export type SidecarConfig = z.output<typeof SidecarConfig>;
