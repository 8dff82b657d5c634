// Manifests → the config a sidecar runs with. Pure: the operator calls the same function with
// what it read from the API server, so `ai-envelope render` shows exactly what a pod would get.
import { API_VERSION, SIDECAR_CONFIG_KIND, type AIBudget, type AIRoute, type RenderedBudget, type RenderedRoute, type SidecarConfig } from './schema.ts';
import { contentHash } from './canonical.ts';
import { matchesSelector } from './selector.ts';
import { schemaProblem } from '../sidecar/policy/json-schema.ts';
import { readSources, parseManifests, type Problem, type SourceFile } from './manifests.ts';

const byId = (a: { namespace: string; name: string }, b: { namespace: string; name: string }) =>
  a.namespace === b.namespace ? a.name.localeCompare(b.name) : a.namespace.localeCompare(b.namespace);

export function renderConfig(routes: AIRoute[], budgets: AIBudget[]): SidecarConfig {
  const rendered: RenderedRoute[] = routes
    .map((r) => ({ name: r.metadata.name, namespace: r.metadata.namespace, labels: r.metadata.labels, ...r.spec }))
    .sort(byId);
  const renderedBudgets: RenderedBudget[] = budgets
    .map((b) => {
      // Billing reconciliation is the operator's business: the sidecar never sees it.
      const { routeSelector, reconcile: _reconcile, ...rest } = b.spec;
      const covered = routes
        .filter((r) => r.metadata.namespace === b.metadata.namespace && matchesSelector(routeSelector, r.metadata.labels))
        .map((r) => r.metadata.name)
        .sort();
      return { name: b.metadata.name, namespace: b.metadata.namespace, routes: covered, ...rest };
    })
    .sort(byId);
  return {
    apiVersion: API_VERSION,
    kind: SIDECAR_CONFIG_KIND,
    version: contentHash({ routes: rendered, budgets: renderedBudgets }),
    routes: rendered,
    budgets: renderedBudgets,
  };
}

export type LoadResult = { ok: true; config: SidecarConfig } | { ok: false; problems: Problem[] };

/** Reads a file or folder of manifests, or one rendered config, into the config to run with. */
export async function loadConfig(path: string): Promise<LoadResult> {
  let sources: SourceFile[];
  try {
    sources = await readSources(path);
  } catch (err) {
    return { ok: false, problems: [{ file: path, document: 0, path: '', message: `cannot read: ${(err as Error).message}` }] };
  }
  return configFromSources(path, sources);
}

export function configFromSources(path: string, sources: SourceFile[]): LoadResult {
  const m = parseManifests(sources);
  if (m.problems.length > 0) return { ok: false, problems: m.problems };
  const [config, ...more] = m.configs;
  if (config) {
    if (more.length > 0 || m.routes.length > 0 || m.budgets.length > 0) {
      return { ok: false, problems: [{ file: path, document: 0, path: '', message: 'a rendered SidecarConfig must be the only ai-envelope document' }] };
    }
    return { ok: true, config };
  }
  if (m.routes.length === 0) {
    return { ok: false, problems: [{ file: path, document: 0, path: '', message: 'no AIRoute found: the sidecar needs at least one route' }] };
  }
  const rendered = renderConfig(m.routes, m.budgets);
  const problems = crossResourceProblems(rendered, path);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, config: rendered };
}

/**
 * Rules a single field's schema cannot state: a route's output schema must compile, and a
 * budget's degradeTo must be a model every route it covers allows.
 */
export function crossResourceProblems(config: SidecarConfig, file: string): Problem[] {
  const problems: Problem[] = [];
  for (const r of config.routes) {
    const problem = r.output.jsonSchema ? schemaProblem(r.output.jsonSchema) : undefined;
    if (problem) problems.push({ file, document: 0, object: `AIRoute ${r.namespace}/${r.name}`, path: 'spec.output.jsonSchema', message: `is not a usable JSON Schema: ${problem}` });
  }
  for (const b of config.budgets) {
    if (!b.degradeTo) continue;
    for (const name of b.routes) {
      const r = config.routes.find((x) => x.namespace === b.namespace && x.name === name);
      if (r && r.model.allowed.length > 0 && !r.model.allowed.includes(b.degradeTo)) {
        problems.push({ file, document: 0, object: `AIBudget ${b.namespace}/${b.name}`, path: 'spec.degradeTo', message: `'${b.degradeTo}' is not among the allowed models of route ${b.namespace}/${name}, which this budget covers` });
      }
    }
  }
  return problems;
}
