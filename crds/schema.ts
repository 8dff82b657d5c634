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
const HTTP_URL = /^https?:\/\/([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?([/?#][^\s]*)?$/;

const resourceName = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, `${what} must not be empty`)
    .max(253, `${what} must be at most 253 characters`)
    .regex(DNS_SUBDOMAIN, `${what} must be lower-case letters, digits, '-' or '.', starting and ending with a letter or digit`);

// `min(1)` rather than `positive()`: the CRD then says `minimum: 1`, and both the API server and
// `validate` word a zero as "should be greater than or equal to 1".
const positiveInt = (what: string) =>
  z.number({ error: `${what} must be a number` }).int(`${what} must be a whole number`).min(1, `${what} must be at least 1`);

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
    // A pattern, not `format: uri`: the API server's uri format accepts almost any string, and a
    // pattern is checked the same way by the API server (RE2) and by `validate` (JavaScript).
    baseURL: z
      .string()
      .regex(HTTP_URL, 'upstream.baseURL must be an http(s) URL such as https://api.openai.com/v1')
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
    /** block: refuse flagged input (moderation_flagged); review: hold it for a human (review_pending). */
    onFlagged: z.enum(['block', 'review']).default('block'),
  })
  .strict();

export const OutputPolicy = z
  .object({
    /** A JSON Schema (draft 2020-12) every answer must satisfy. */
    jsonSchema: z.record(z.string(), z.unknown()).optional(),
    /**
     * repair: one more call with the validation errors; fallback: the next model; reject: 422
     * output_invalid; review: hold the answer for a human (409 review_pending with a review id).
     */
    onInvalid: z.enum(['repair', 'fallback', 'reject', 'review']).default('reject'),
    allowedTools: z.array(z.string().min(1)).optional(),
  })
  .strict();

/** The human review queue of a route (output.onInvalid or moderation.onFlagged: review). */
export const ReviewPolicy = z
  .object({
    /** How long an item is kept, decided or not, before it is deleted. */
    retentionHours: z.number().int().min(1).max(2160).default(168),
    /** The reviewers' bearer token for the admin port's /reviews endpoints, from a Secret. */
    tokenSecretRef: SecretRef.optional(),
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

/**
 * Batch API jobs: governed uploads of batch input, and the deferred mode that gathers single
 * calls into Batch jobs (`mode: batch`, or `x-envelope-defer: true` on a call).
 */
export const BatchPolicy = z
  .object({
    /** Largest batch input file the sidecar checks line by line; it holds one upload in memory. */
    maxUploadBytes: positiveInt('batch.maxUploadBytes').max(200 * 1024 * 1024).default(50 * 1024 * 1024),
    /** Deferred calls: a Batch job is submitted once this many are queued... */
    maxRequests: positiveInt('batch.maxRequests').max(50_000).default(100),
    /** ...or once the oldest queued call has waited this long. */
    maxAgeSeconds: positiveInt('batch.maxAgeSeconds').max(86_400).default(60),
    /** How often unsettled Batch jobs are looked up upstream, so they settle even if nobody asks. */
    pollSeconds: positiveInt('batch.pollSeconds').max(3600).default(60),
  })
  .strict();

const AIRouteSpecShape = z
  .object({
    podSelector: LabelSelector.optional(),
    upstream: Upstream.prefault({}),
    endpoints: z.array(Endpoint).min(1, 'endpoints must name at least one endpoint').default(DEFAULT_ENDPOINTS),
    /** online: calls go to the model at once; batch: every call is deferred to a Batch job (half price, answer later). */
    mode: z.enum(['online', 'batch']).default('online'),
    batch: BatchPolicy.prefault({}),
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
    review: ReviewPolicy.prefault({}),
    prompt: PromptPolicy.optional(),
    logging: LoggingPolicy.prefault({}),
    data: DataPolicy.prefault({}),
  })
  .strict();

type RouteSpecShape = z.output<typeof AIRouteSpecShape>;

/**
 * A cross-field rule, declared once: the CEL expression the API server evaluates
 * (`x-kubernetes-validations` on the CRD) and the same check in TypeScript for `validate`, the
 * operator and the sidecar, with one message for both. `at` is where the rule sits, from `spec`:
 * a CEL rule sees only its own node and below, and the API server reports a failure at that node,
 * so `validate` reports it there too. The API server also checks a CRD's defaults against its
 * rules before any nested default is applied, so every CEL rule guards its fields with `has()`.
 */
export interface CrossFieldRule {
  at: readonly string[];
  cel: string;
  message: string;
  /** True when the (defaulted) node at `at` satisfies the rule. */
  holds(node: unknown): boolean;
}

function crossFieldRule<T>(at: readonly string[], cel: string, message: string, holds: (node: T) => boolean): CrossFieldRule {
  return { at, cel, message, holds: holds as (node: unknown) => boolean };
}

type ModelNode = z.output<typeof ModelPolicy>;
type LimitsNode = z.output<typeof Limits>;
const WINDOWS = ['requestsPerMinute', 'tokensPerMinute', 'requestsPerDay', 'tokensPerDay'] as const;

export const ROUTE_RULES: readonly CrossFieldRule[] = [
  crossFieldRule<RouteSpecShape>(
    [],
    "!((has(self.output) && has(self.output.onInvalid) && self.output.onInvalid == 'review') || (has(self.moderation) && has(self.moderation.onFlagged) && self.moderation.onFlagged == 'review')) || (has(self.review) && has(self.review.tokenSecretRef))",
    'review.tokenSecretRef must name the reviewers\' token when output.onInvalid or moderation.onFlagged is review',
    (s) => !(s.output.onInvalid === 'review' || s.moderation.onFlagged === 'review') || s.review.tokenSecretRef !== undefined,
  ),
  crossFieldRule<ModelNode>(
    ['model'],
    '!has(self.default) || !has(self.allowed) || size(self.allowed) == 0 || self.default in self.allowed',
    'model.default must be one of model.allowed',
    (m) => m.default === undefined || m.allowed.length === 0 || m.allowed.includes(m.default),
  ),
  crossFieldRule<ModelNode>(
    ['model'],
    '!has(self.allowed) || size(self.allowed) == 0 || !has(self.fallbacks) || self.fallbacks.all(f, f in self.allowed)',
    'every model.fallbacks entry must be one of model.allowed',
    (m) => m.allowed.length === 0 || m.fallbacks.every((f) => m.allowed.includes(f)),
  ),
  crossFieldRule<ModelNode>(
    ['model'],
    '!has(self.allowed) || size(self.allowed) == 0 || !has(self.aliases) || self.aliases.all(a, self.aliases[a] in self.allowed)',
    'every model.aliases target must be one of model.allowed',
    (m) => m.allowed.length === 0 || Object.values(m.aliases).every((t) => m.allowed.includes(t)),
  ),
  crossFieldRule<z.output<typeof RetryPolicy>>(
    ['retry'],
    '!has(self.baseDelayMs) || !has(self.maxDelayMs) || self.baseDelayMs <= self.maxDelayMs',
    'retry.baseDelayMs must not be greater than retry.maxDelayMs',
    (r) => r.baseDelayMs <= r.maxDelayMs,
  ),
  ...WINDOWS.map((k) =>
    crossFieldRule<LimitsNode>(
      ['limits'],
      `!has(self.route) || !has(self.perUser) || !has(self.route.${k}) || !has(self.perUser.${k}) || self.perUser.${k} <= self.route.${k}`,
      `limits.perUser.${k} must not be above limits.route.${k}`,
      (l) => {
        const r = l.route?.[k];
        const u = l.perUser?.[k];
        return r === undefined || u === undefined || u <= r;
      },
    ),
  ),
];

type BudgetNode = z.output<typeof AIBudgetSpecShape>;

export const BUDGET_RULES: readonly CrossFieldRule[] = [
  crossFieldRule<BudgetNode>(
    [],
    "self.onExhausted != 'degrade' || has(self.degradeTo)",
    "degradeTo is required when onExhausted is 'degrade'",
    (b) => b.onExhausted !== 'degrade' || b.degradeTo !== undefined,
  ),
  crossFieldRule<BudgetNode>(
    [],
    '!has(self.perUserLimitUSD) || self.perUserLimitUSD <= self.limitUSD',
    'perUserLimitUSD must not be above limitUSD',
    (b) => b.perUserLimitUSD === undefined || b.perUserLimitUSD <= b.limitUSD,
  ),
];

function checkRules(rules: readonly CrossFieldRule[]) {
  return (spec: unknown, ctx: z.RefinementCtx): void => {
    for (const rule of rules) {
      let node: unknown = spec;
      for (const key of rule.at) node = node === undefined ? undefined : (node as Record<string, unknown>)[key];
      // An absent node has no rule to break, as on the API server.
      if (node !== undefined && !rule.holds(node)) ctx.addIssue({ code: 'custom', path: [...rule.at], message: rule.message });
    }
  };
}

const checkRouteRules = checkRules(ROUTE_RULES);

export const AIRouteSpec = AIRouteSpecShape.superRefine(checkRouteRules);
export type AIRouteSpec = z.output<typeof AIRouteSpec>;

const AIBudgetSpecShape = z
  .object({
    routeSelector: LabelSelector.optional(),
    period: z.enum(['daily', 'weekly', 'monthly']).default('monthly'),
    limitUSD: z.number({ error: 'limitUSD must be a number' }).positive('limitUSD must be greater than 0'),
    perUserLimitUSD: z.number().positive('perUserLimitUSD must be greater than 0').optional(),
    onExhausted: z.enum(['block', 'degrade', 'alert']).default('block'),
    degradeTo: modelName.optional(),
    alertAt: z.array(z.number().gt(0, 'alertAt values are fractions above 0').max(1, 'alertAt values are fractions up to 1')).default([0.5, 0.8, 1]),
    /**
     * Compare this budget's spend, day by day, with what OpenAI bills the project (the
     * organization Costs API, read by the operator with the admin key the chart names). Budgets
     * naming the same project are added up against its bill, so they should cover disjoint routes.
     */
    reconcile: z
      .object({
        /** The OpenAI project the routes of this budget call with: `proj_...`. */
        projectId: z
          .string({ error: 'reconcile.projectId must be a string' })
          .min(1, 'reconcile.projectId must not be empty')
          .max(64, 'reconcile.projectId must be at most 64 characters')
          .regex(/^[A-Za-z0-9_-]+$/, "reconcile.projectId must be an OpenAI project id such as 'proj_abc123'"),
      })
      .strict()
      .optional(),
  })
  .strict();

export const AIBudgetSpec = AIBudgetSpecShape.superRefine(checkRules(BUDGET_RULES));
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

/** A standard Kubernetes condition (metav1.Condition). */
export const Condition = z.object({
  type: z.string().min(1),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.number().int().min(0).optional(),
  lastTransitionTime: z.string(),
  reason: z.string().min(1),
  message: z.string(),
});
export type Condition = z.output<typeof Condition>;

/** Written by the operator only (status subresource). */
export const AIRouteStatus = z.object({
  observedGeneration: z.number().int().min(0).optional(),
  /** `Ready`: the route is in its ConfigMap and everything it references exists. */
  conditions: z.array(Condition).optional(),
  /** The ConfigMap holding the rendered config for this route's pods. */
  configMap: z.string().optional(),
  /** Running pods whose sidecar serves this route. */
  sidecars: z.number().int().min(0).optional(),
  /** Short digests of the parts of the spec whose changes move quality: what `history` compares. */
  specDigests: z.object({ model: z.string(), prompt: z.string(), tools: z.string(), schema: z.string(), safety: z.string() }).strict().optional(),
  /**
   * The last generations of the spec, newest first: when each was seen and which of model,
   * prompt, tools, schema and safety settings it changed (`created`; `other` for the rest of the
   * spec), so a moving metric can be laid next to the change that moved it.
   */
  history: z
    .array(
      z
        .object({
          generation: z.number().int().min(1),
          time: z.string(),
          changed: z.array(z.enum(['created', 'model', 'prompt', 'tools', 'schema', 'safety', 'other'])),
        })
        .strict(),
    )
    .max(10)
    .optional(),
});
export type AIRouteStatus = z.output<typeof AIRouteStatus>;

export const AIBudgetStatus = z.object({
  observedGeneration: z.number().int().min(0).optional(),
  /** `Ready`, and `Exhausted` (True once spend reaches limitUSD in the current period). */
  conditions: z.array(Condition).optional(),
  /** Decimal strings, so no float rounding shows in kubectl: `"123.45"`. */
  spentUSD: z.string().optional(),
  remainingUSD: z.string().optional(),
  /** Start of the current period (UTC, RFC 3339). */
  periodStart: z.string().optional(),
  /**
   * The last spend each sidecar pod reported in this period, so an operator that restarts adds
   * only what is new instead of counting a pod twice.
   */
  sidecarSpend: z.array(z.object({ uid: z.string(), pod: z.string(), spentUSD: z.number().min(0) })).optional(),
  /**
   * The envelope's own spend per UTC day (newest first, the last 8 days), attributed by the
   * operator to the day on which it read each increase from the sidecars: what billing
   * reconciliation compares with OpenAI's bill.
   */
  dailySpend: z.array(z.object({ date: z.string(), spentUSD: z.number().min(0) }).strict()).max(8).optional(),
  /** OpenAI's bill for spec.reconcile.projectId against the envelope's estimate, per UTC day. */
  reconciliation: z
    .object({
      /** Ok (within the threshold), Drift (some day past it), Pending (not checked yet), Disabled (no admin key, or no projectId) or Error (the bill could not be read). */
      state: z.enum(['Ok', 'Drift', 'Pending', 'Disabled', 'Error']),
      reason: z.string().optional(),
      message: z.string().optional(),
      projectId: z.string().optional(),
      lastCheckedAt: z.string().optional(),
      /** Newest first. driftUSD = billedUSD - estimatedUSD; driftRatio = driftUSD / the larger of the two. */
      days: z
        .array(
          z
            .object({ date: z.string(), billedUSD: z.number(), estimatedUSD: z.number(), driftUSD: z.number(), driftRatio: z.number() })
            .strict(),
        )
        .max(31)
        .optional(),
    })
    .strict()
    .optional(),
});
export type AIBudgetStatus = z.output<typeof AIBudgetStatus>;

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
    /**
     * Spend of every replica in one period, as last added up by the operator from the sidecars'
     * /usage. A sidecar counts at least this much for that period (plus what it spent since it
     * received it), so every replica blocks once the budget is exhausted and a restarted sidecar
     * starts from the right total. Ignored once `period` is over.
     */
    reported: z
      .object({
        /** The period's key, as in the sidecar's counters: `2026-11`, `2026-11-25`, `2026-W-2026-11-23`. */
        period: z.string().min(1),
        spentUSD: z.number().min(0),
        exhausted: z.boolean().default(false),
      })
      .strict()
      .optional(),
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
