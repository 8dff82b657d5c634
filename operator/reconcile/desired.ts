// The operator's decisions, as a pure function of one namespace's resources: which ConfigMaps
// should exist with what content, and what every AIRoute's and AIBudget's status should say.
// No I/O and no clock but `now`, so every rule here is tested with plain tables.
import { API_VERSION, AIBudget, AIRoute, type AIBudgetStatus, type AIRouteStatus, type Condition, type SidecarConfig } from '../../crds/schema.ts';
import { nextHistory } from './history.ts';
import { canonicalJSON, contentHash } from '../../crds/canonical.ts';
import { crossResourceProblems, renderConfig } from '../../crds/render.ts';
import { formatPath } from '../../crds/manifests.ts';
import { matchesSelector, type Selector } from '../../crds/selector.ts';
import { periodOf } from '../../sidecar/policy/periods.ts';
import { schemaProblem } from '../../sidecar/policy/json-schema.ts';
import type { KubeObject, OwnerReference } from '../kube/client.ts';
import { condition } from './conditions.ts';
import { formatUSD, NANO_PER_USD, usdToNano } from './money.ts';
import type { PodFact } from './pods.ts';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'ai-envelope';
export const ROLE_LABEL = 'ai-envelope.dev/role';
export const ROLE_CONFIG = 'sidecar-config';
/** Selects exactly the ConfigMaps this operator writes. */
export const CONFIGMAP_SELECTOR = `${ROLE_LABEL}=${ROLE_CONFIG}`;
export const VERSION_ANNOTATION = 'ai-envelope.dev/config-version';
/** Hash of what the platform team declared, without the spend the operator pushes: changes of it are announced as Events. */
export const SPEC_VERSION_ANNOTATION = 'ai-envelope.dev/spec-version';
export const SELECTOR_ANNOTATION = 'ai-envelope.dev/pod-selector';
/** JSON is YAML too: the sidecar reads it as it reads any manifest, and writing it costs a tenth of YAML. */
export const CONFIG_KEY = 'config.json';

/** Spend of one budget in one period, as the operator has added it up. */
export interface BudgetSpend {
  period: string;
  spentNano: number;
  sidecarSpend: Array<{ uid: string; pod: string; spentUSD: number }>;
  /** A sidecar refused a call for lack of this budget in this period. */
  refused: boolean;
}

export interface NamespaceInput {
  namespace: string;
  routes: KubeObject[];
  budgets: KubeObject[];
  /** Names of the Secrets that exist in the namespace (their content is never read). */
  secrets: ReadonlySet<string>;
  pods: PodFact[];
  /** By budget name. */
  spend: ReadonlyMap<string, BudgetSpend>;
  now: number;
}

export interface DesiredConfigMap {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  data: Record<string, string>;
  ownerReferences: OwnerReference[];
  version: string;
  specVersion: string;
  routes: string[];
  budgets: string[];
}

export interface DesiredStatus {
  kind: 'AIRoute' | 'AIBudget';
  name: string;
  status: AIRouteStatus | AIBudgetStatus;
}

export interface NamespaceDesired {
  configMaps: DesiredConfigMap[];
  statuses: DesiredStatus[];
}

/**
 * `ai-envelope-<label values>-<hash>`: readable in `kubectl get configmaps`, and the hash of the
 * whole selector keeps two different selectors with the same values apart.
 */
export function configMapName(selector: Selector | undefined): string {
  const canon = canonicalJSON(selector ?? {});
  const labels = selector?.matchLabels ?? {};
  const words = Object.keys(labels)
    .sort()
    .map((k) => labels[k] as string);
  let slug = words
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 40)
    .replace(/-$/, '');
  if (!slug) slug = Object.keys(selector ?? {}).length > 0 && canon !== '{}' ? 'pods' : 'all';
  return `ai-envelope-${slug}-${contentHash(canon).slice(0, 8)}`;
}

const ownerRef = (kind: 'AIRoute' | 'AIBudget', o: KubeObject): OwnerReference => ({ apiVersion: API_VERSION, kind, name: o.metadata.name, uid: o.metadata.uid ?? '' });

const previousConditions = (o: KubeObject): Condition[] | undefined => (o.status as { conditions?: Condition[] } | undefined)?.conditions;

function zodMessage(issues: Array<{ path: PropertyKey[]; message: string }>): string {
  const parts = issues.slice(0, 3).map((i) => `${formatPath(i.path)}: ${i.message}`);
  return issues.length > 3 ? `${parts.join('; ')} (and ${issues.length - 3} more)` : parts.join('; ');
}

interface RouteVerdict {
  obj: KubeObject;
  parsed?: AIRoute;
  problem?: { reason: string; message: string };
}

export function reconcileNamespace(input: NamespaceInput): NamespaceDesired {
  const { namespace, now } = input;
  const byName = <T extends KubeObject>(a: T, b: T) => a.metadata.name.localeCompare(b.metadata.name);
  const live = (o: KubeObject) => !o.metadata.deletionTimestamp;

  // Routes: what cannot be served is left out of every ConfigMap, with the reason on its status.
  const verdicts: RouteVerdict[] = input.routes
    .filter(live)
    .sort(byName)
    .map((obj) => {
      const result = AIRoute.safeParse({ ...obj, apiVersion: API_VERSION, kind: 'AIRoute', metadata: { ...obj.metadata, namespace } });
      if (!result.success) return { obj, problem: { reason: 'InvalidSpec', message: zodMessage(result.error.issues) } };
      const spec = result.data.spec;
      const missing = [spec.upstream.secretRef?.name, spec.input.userHashSecretRef?.name, spec.review.tokenSecretRef?.name].filter((n): n is string => !!n && !input.secrets.has(n));
      if (missing.length > 0) {
        return { obj, parsed: result.data, problem: { reason: 'SecretNotFound', message: `Secret ${[...new Set(missing)].map((n) => `'${n}'`).join(', ')} not found in namespace ${namespace}; the route is left out of its ConfigMap until it exists` } };
      }
      const schema = spec.output.jsonSchema ? schemaProblem(spec.output.jsonSchema) : undefined;
      if (schema) return { obj, parsed: result.data, problem: { reason: 'InvalidSpec', message: `spec.output.jsonSchema is not a usable JSON Schema: ${schema}` } };
      return { obj, parsed: result.data };
    });

  const budgetVerdicts = input.budgets
    .filter(live)
    .sort(byName)
    .map((obj) => {
      const result = AIBudget.safeParse({ ...obj, apiVersion: API_VERSION, kind: 'AIBudget', metadata: { ...obj.metadata, namespace } });
      return result.success ? { obj, parsed: result.data as AIBudget } : { obj, problem: { reason: 'InvalidSpec', message: zodMessage(result.error.issues) } };
    });
  const budgets = budgetVerdicts.flatMap((b) => (b.parsed ? [b.parsed] : []));
  const budgetObj = new Map(budgetVerdicts.map((b) => [b.obj.metadata.name, b.obj]));
  const budgetProblems = new Map<string, string>();

  // Groups: routes with the same pod selector share a ConfigMap.
  const groups = new Map<string, { selector: Selector | undefined; routes: RouteVerdict[] }>();
  for (const v of verdicts) {
    if (!v.parsed || v.problem) continue;
    const key = canonicalJSON(v.parsed.spec.podSelector ?? {});
    const g = groups.get(key) ?? { selector: v.parsed.spec.podSelector, routes: [] };
    g.routes.push(v);
    groups.set(key, g);
  }

  const configMaps: DesiredConfigMap[] = [];
  const routeConfigMap = new Map<string, { name: string; sidecars: number }>();
  for (const g of groups.values()) {
    const name = configMapName(g.selector);
    const rendered = renderConfig(
      g.routes.map((v) => v.parsed as AIRoute),
      budgets,
    );
    const usedBudgets = rendered.budgets
      .filter((b) => b.routes.length > 0)
      .map((b) => {
        const spend = input.spend.get(b.name);
        const period = periodOf(b.period, now).key;
        if (!spend || spend.period !== period || spend.spentNano <= 0) return b;
        return { ...b, reported: { period, spentUSD: spend.spentNano / NANO_PER_USD, exhausted: spend.spentNano >= usdToNano(b.limitUSD) } };
      });
    const config: SidecarConfig = { ...rendered, budgets: usedBudgets, version: contentHash({ routes: rendered.routes, budgets: usedBudgets }) };
    const specVersion = contentHash({ routes: rendered.routes, budgets: rendered.budgets.filter((b) => b.routes.length > 0) });
    for (const p of crossResourceProblems(config, name)) {
      const budgetName = p.object?.startsWith('AIBudget ') ? p.object.slice('AIBudget '.length).split('/')[1] : undefined;
      if (budgetName && !budgetProblems.has(budgetName)) budgetProblems.set(budgetName, `${p.path}: ${p.message}`);
    }
    const sidecars = input.pods.filter((p) => p.adminURL && matchesSelector(g.selector, p.labels)).length;
    for (const v of g.routes) routeConfigMap.set(v.obj.metadata.name, { name, sidecars });
    const owners = [
      ...g.routes.map((v) => ownerRef('AIRoute', v.obj)),
      ...usedBudgets.map((b) => budgetObj.get(b.name)).filter((o): o is KubeObject => !!o).map((o) => ownerRef('AIBudget', o)),
    ];
    configMaps.push({
      name,
      namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [ROLE_LABEL]: ROLE_CONFIG },
      annotations: { [VERSION_ANNOTATION]: config.version, [SPEC_VERSION_ANNOTATION]: specVersion, [SELECTOR_ANNOTATION]: canonicalJSON(g.selector ?? {}) },
      data: { [CONFIG_KEY]: `${JSON.stringify(config, null, 1)}\n` },
      ownerReferences: owners,
      version: config.version,
      specVersion,
      routes: g.routes.map((v) => v.obj.metadata.name),
      budgets: usedBudgets.map((b) => b.name),
    });
  }
  configMaps.sort((a, b) => a.name.localeCompare(b.name));

  const statuses: DesiredStatus[] = [];
  for (const v of verdicts) {
    const gen = v.obj.metadata.generation;
    const prev = previousConditions(v.obj);
    const cm = routeConfigMap.get(v.obj.metadata.name);
    const ready = v.problem
      ? { type: 'Ready', status: 'False' as const, ...v.problem }
      : { type: 'Ready', status: 'True' as const, reason: 'Configured', message: `rendered into ConfigMap ${cm?.name}` };
    statuses.push({
      kind: 'AIRoute',
      name: v.obj.metadata.name,
      status: {
        ...(gen !== undefined ? { observedGeneration: gen } : {}),
        conditions: [condition(prev, ready, gen, now)],
        ...(cm ? { configMap: cm.name } : {}),
        sidecars: cm?.sidecars ?? 0,
        ...nextHistory(v.obj.status as AIRouteStatus | undefined, gen, v.parsed?.spec, now),
      },
    });
  }

  for (const b of budgetVerdicts) {
    const gen = b.obj.metadata.generation;
    const prev = previousConditions(b.obj);
    if (!b.parsed) {
      statuses.push({ kind: 'AIBudget', name: b.obj.metadata.name, status: { ...(gen !== undefined ? { observedGeneration: gen } : {}), conditions: [condition(prev, { type: 'Ready', status: 'False', ...(b.problem as { reason: string; message: string }) }, gen, now)] } });
      continue;
    }
    const spec = b.parsed.spec;
    const period = periodOf(spec.period, now);
    const spend = input.spend.get(b.obj.metadata.name);
    const current = spend && spend.period === period.key ? spend : undefined;
    const spent = current?.spentNano ?? 0;
    const limit = usdToNano(spec.limitUSD);
    const covered = configMaps.filter((c) => c.budgets.includes(b.obj.metadata.name)).flatMap((c) => c.routes);
    const problem = budgetProblems.get(b.obj.metadata.name);
    const ready = problem
      ? { type: 'Ready', status: 'False' as const, reason: 'InvalidSpec', message: problem }
      : { type: 'Ready', status: 'True' as const, reason: 'Configured', message: covered.length > 0 ? `covers ${covered.length} route(s): ${covered.slice(0, 5).join(', ')}${covered.length > 5 ? ', ...' : ''}` : 'covers no route that can be served' };
    const spentText = `spent ${formatUSD(spent)} of ${formatUSD(limit)} USD this ${spec.period} period`;
    // A blocking budget never reaches its limit exactly: it is exhausted once the next call no longer fits.
    const exhausted =
      spent >= limit
        ? { type: 'Exhausted', status: 'True' as const, reason: 'LimitReached', message: `${spentText}; onExhausted: ${spec.onExhausted}` }
        : current?.refused
          ? { type: 'Exhausted', status: 'True' as const, reason: 'CallsRefused', message: `${spentText}; sidecars refuse calls whose worst-case cost no longer fits` }
          : { type: 'Exhausted', status: 'False' as const, reason: 'WithinLimit', message: spentText };
    statuses.push({
      kind: 'AIBudget',
      name: b.obj.metadata.name,
      status: {
        ...(gen !== undefined ? { observedGeneration: gen } : {}),
        conditions: [condition(prev, ready, gen, now), condition(prev, exhausted, gen, now)],
        spentUSD: formatUSD(spent),
        remainingUSD: formatUSD(Math.max(0, limit - spent)),
        periodStart: new Date(period.start).toISOString().replace('.000Z', 'Z'),
        sidecarSpend: current?.sidecarSpend ?? [],
      },
    });
  }
  return { configMaps, statuses };
}
