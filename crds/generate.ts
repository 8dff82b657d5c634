// The CRDs, generated from the zod schemas of schema.ts so the API server and `validate` check the
// same thing: zod 4's OpenAPI 3.0 output, made structural (Kubernetes refuses unions, `$ref`,
// `additionalProperties: false` beside `properties`), with the cross-field rules of ROUTE_RULES
// and BUDGET_RULES attached as CEL at the node each one sits on.
//
// `npx node crds/generate.ts` rewrites the committed YAML; `ai-envelope crds` prints it; a test
// fails when the two disagree.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { z } from 'zod';
import { AIBudgetSpec, AIBudgetStatus, AIRouteSpec, AIRouteStatus, BUDGET_RULES, GROUP, ROUTE_RULES, VERSION, type CrossFieldRule } from './schema.ts';

type Schema = Record<string, unknown>;

export const CATEGORY = 'ai-envelope';

interface Kind {
  kind: string;
  plural: string;
  shortNames: string[];
  /** What `kubectl explain` shows for the kind. */
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  rules: readonly CrossFieldRule[];
  columns: Array<{ name: string; type: string; jsonPath: string; description: string; priority?: number }>;
}

const READY = '.status.conditions[?(@.type=="Ready")].status';

export const KINDS: readonly Kind[] = [
  {
    kind: 'AIRoute',
    plural: 'airoutes',
    shortNames: ['air'],
    description:
      'One governed way for an app to call an OpenAI-compatible API: allowed endpoints and models, limits, retries and content rules, enforced by the ai-envelope sidecar of every pod the podSelector matches.',
    spec: AIRouteSpec,
    status: AIRouteStatus,
    rules: ROUTE_RULES,
    columns: [
      { name: 'Ready', type: 'string', jsonPath: READY, description: 'Whether the route is in its ConfigMap and all it references exists' },
      { name: 'Default-Model', type: 'string', jsonPath: '.spec.model.default', description: 'Model used when a request names none' },
      { name: 'RPM', type: 'integer', jsonPath: '.spec.limits.route.requestsPerMinute', description: 'Requests per minute for the whole route' },
      { name: 'Per-User-RPM', type: 'integer', jsonPath: '.spec.limits.perUser.requestsPerMinute', description: 'Requests per minute for one end user' },
      { name: 'Concurrency', type: 'integer', jsonPath: '.spec.limits.concurrency', description: 'In-flight calls per sidecar' },
      { name: 'Sidecars', type: 'integer', jsonPath: '.status.sidecars', description: 'Running pods whose sidecar serves this route' },
      { name: 'ConfigMap', type: 'string', jsonPath: '.status.configMap', description: 'ConfigMap holding the rendered config', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation' },
    ],
  },
  {
    kind: 'AIBudget',
    plural: 'aibudgets',
    shortNames: ['aib'],
    description:
      'Money over a period (UTC) for the AIRoutes of its namespace that the routeSelector matches; once it is spent, calls are blocked, degraded to a cheaper model, or only alerted on.',
    spec: AIBudgetSpec,
    status: AIBudgetStatus,
    rules: BUDGET_RULES,
    columns: [
      { name: 'Ready', type: 'string', jsonPath: READY, description: 'Whether the budget is enforced' },
      { name: 'Period', type: 'string', jsonPath: '.spec.period', description: 'daily, weekly or monthly (UTC)' },
      { name: 'Spent', type: 'string', jsonPath: '.status.spentUSD', description: 'USD spent in the current period' },
      { name: 'Limit', type: 'number', jsonPath: '.spec.limitUSD', description: 'USD allowed per period' },
      { name: 'Remaining', type: 'string', jsonPath: '.status.remainingUSD', description: 'USD left in the current period' },
      { name: 'Exhausted', type: 'string', jsonPath: '.status.conditions[?(@.type=="Exhausted")].status', description: 'Whether the limit is reached' },
      { name: 'On-Exhausted', type: 'string', jsonPath: '.spec.onExhausted', description: 'block, degrade or alert', priority: 1 },
      { name: 'Billing', type: 'string', jsonPath: '.status.reconciliation.state', description: "Spend against OpenAI's bill: Ok, Drift, Pending, Disabled or Error", priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation' },
    ],
  },
];

const SAFE = Number.MAX_SAFE_INTEGER;

/** Rewrites zod's JSON Schema into a Kubernetes structural schema, in place. */
function structural(node: Schema): Schema {
  delete node.$schema;
  delete node.id;
  delete node.propertyNames; // map keys cannot be constrained in a structural schema
  // `.int()` adds ±2^53-1 bounds: meaningless for int64 and noise in every error message.
  if (node.type === 'integer') {
    if (node.maximum === SAFE) delete node.maximum;
    if (node.minimum === -SAFE) delete node.minimum;
  }
  if (node.additionalProperties === false) {
    // Pruning drops unknown fields; `false` is not allowed beside `properties`.
    delete node.additionalProperties;
  } else if (isEmptySchema(node.additionalProperties)) {
    // A free-form object (e.g. a JSON Schema the route carries): kept as written.
    delete node.additionalProperties;
    node['x-kubernetes-preserve-unknown-fields'] = true;
  } else if (isSchema(node.additionalProperties)) {
    structural(node.additionalProperties);
  }
  if (isSchema(node.properties)) for (const p of Object.values(node.properties)) structural(p as Schema);
  if (isSchema(node.items)) structural(node.items);
  for (const key of ['anyOf', 'oneOf', 'allOf', 'not', '$ref']) {
    if (key in node) throw new Error(`a CRD schema cannot hold '${key}': ${JSON.stringify(node).slice(0, 200)}`);
  }
  if (node.type === undefined && !node['x-kubernetes-preserve-unknown-fields']) throw new Error(`a CRD schema needs a type: ${JSON.stringify(node).slice(0, 200)}`);
  return node;
}

function isSchema(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isEmptySchema(v: unknown): boolean {
  return isSchema(v) && Object.keys(v).length === 0;
}

function openAPI(schema: z.ZodType): Schema {
  // `input`: what a person may write, so fields with defaults are optional and carry the default.
  return structural(z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'throw' }) as Schema);
}

function attachRules(spec: Schema, rules: readonly CrossFieldRule[]): void {
  for (const rule of rules) {
    let node = spec;
    for (const key of rule.at) {
      const next = (node.properties as Record<string, Schema> | undefined)?.[key];
      if (!next) throw new Error(`rule '${rule.message}': no field '${rule.at.join('.')}' in the schema`);
      node = next;
    }
    const list = (node['x-kubernetes-validations'] ??= []) as Array<{ rule: string; message: string }>;
    list.push({ rule: rule.cel, message: rule.message });
  }
}

function statusSchema(status: z.ZodType): Schema {
  const schema = openAPI(status);
  const conditions = (schema.properties as Record<string, Schema> | undefined)?.conditions;
  if (conditions) {
    // One entry per type, merged by type in server-side apply.
    conditions['x-kubernetes-list-type'] = 'map';
    conditions['x-kubernetes-list-map-keys'] = ['type'];
  }
  return schema;
}

export function crd(k: Kind): Schema {
  const spec = openAPI(k.spec);
  attachRules(spec, k.rules);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${k.plural}.${GROUP}`, labels: { 'app.kubernetes.io/name': 'ai-envelope' } },
    spec: {
      group: GROUP,
      names: { kind: k.kind, listKind: `${k.kind}List`, plural: k.plural, singular: k.kind.toLowerCase(), shortNames: k.shortNames, categories: [CATEGORY] },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: k.columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: k.description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: spec,
                status: statusSchema(k.status),
              },
            },
          },
        },
      ],
    },
  };
}

const HEADER = '# Generated from crds/schema.ts by crds/generate.ts: do not edit. Regenerate with `npx node crds/generate.ts`.\n';

/** The committed files: name (in crds/) and YAML text. */
export function crdFiles(): Array<{ name: string; yaml: string }> {
  return KINDS.map((k) => ({ name: `${GROUP}_${k.plural}.yaml`, yaml: HEADER + stringify(crd(k), { lineWidth: 0 }) }));
}

/** All CRDs as one multi-document YAML stream, as `ai-envelope crds` prints it. */
export function crdsYaml(): string {
  return crdFiles()
    .map((f) => f.yaml)
    .join('---\n');
}

/** Where the Helm chart keeps the same CRDs, as templates (relative to this folder). */
export const CHART_CRD_DIR = '../charts/ai-envelope/templates/crds/';

/**
 * The chart's CRD templates: the same objects behind `crds.install`, with the resource policy
 * `keep` behind `crds.keep`. Templates rather than the chart's crds/ folder, because Helm installs
 * that folder once and never upgrades it (docs/adr/0014-helm-chart.md).
 */
export function chartCrdTemplates(): Array<{ name: string; text: string }> {
  return KINDS.map((k) => {
    const body = stringify(crd(k), { lineWidth: 0 });
    // Helm would read these as actions; the schemas have no reason to hold them.
    if (body.includes('{{') || body.includes('}}')) throw new Error(`CRD ${k.plural}: '{{' or '}}' in the schema would break the chart template`);
    const name = `${k.plural}.${GROUP}`;
    const anchor = `metadata:\n  name: ${name}\n`;
    if (!body.includes(anchor)) throw new Error(`CRD ${k.plural}: metadata not where expected`);
    const keep = '  {{- if .Values.crds.keep }}\n  annotations:\n    helm.sh/resource-policy: keep\n  {{- end }}\n';
    const text = [
      '{{- /* Generated from crds/schema.ts by crds/generate.ts: do not edit. Regenerate with `npx node crds/generate.ts`. */ -}}',
      '{{- if .Values.crds.install }}',
      body.replace(anchor, anchor + keep).trimEnd(),
      '{{- end }}',
      '',
    ].join('\n');
    return { name: `${GROUP}_${k.plural}.yaml`, text };
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const f of crdFiles()) writeFileSync(fileURLToPath(new URL(f.name, import.meta.url)), f.yaml);
  for (const f of chartCrdTemplates()) writeFileSync(fileURLToPath(new URL(CHART_CRD_DIR + f.name, import.meta.url)), f.text);
}
