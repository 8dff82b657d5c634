// From a scenario, the AIRoutes it names and what was measured, to routes with every figure known.
// Pure. Measured figures replace guessed ones: logs (real traffic) first, then an eval report;
// AIRoute manifests give namespace, labels, default model and the route's prices.
import type { AIRoute } from '../crds/schema.ts';
import type { RouteFigures } from './estimate.ts';
import type { EvalReport, LogSummary, Measured } from './measured.ts';
import { fromEval } from './measured.ts';
import type { Scenario, ScenarioRoute } from './scenario.ts';

export interface Sources {
  file: string;
  logs?: LogSummary;
  evalReport?: { file: string; report: EvalReport };
  airoutes?: AIRoute[];
}

export interface Resolved {
  routes: RouteFigures[];
  problems: string[];
}

const share = (n: number) => `${Math.round(n * 1000) / 10}%`;

function findAIRoute(all: AIRoute[], name: string, namespace: string | undefined): AIRoute | undefined {
  const named = all.filter((r) => r.metadata.name === name && (namespace === undefined || r.metadata.namespace === namespace));
  return named.length === 1 ? named[0] : undefined;
}

/** The log groups of a route: `namespace/name` exactly, or by name alone when the scenario gives no namespace. */
function logGroups(logs: LogSummary | undefined, name: string, namespace: string | undefined): Measured[] {
  if (!logs) return [];
  return logs.groups.filter((g) => (namespace === undefined ? g.route.endsWith(`/${name}`) || g.route === name : g.route === `${namespace}/${name}`));
}

export function resolveRoutes(scenario: Scenario, src: Sources): Resolved {
  const problems: string[] = [];
  const routes: RouteFigures[] = [];
  const airoutes = src.airoutes ?? [];
  const usedGroups = new Set<Measured>();
  const at = (i: number, field: string) => `${src.file}: routes[${i}].${field}`;

  if (src.evalReport && !scenario.routes.some((r) => r.eval)) {
    problems.push(`${src.evalReport.file}: no route of ${src.file} says which eval cases measure it (give a route eval: {} or eval: {tags: [...]})`);
  }

  scenario.routes.forEach((s: ScenarioRoute, i) => {
    const manifest = findAIRoute(airoutes, s.name, s.namespace);
    const groups = logGroups(src.logs, s.name, s.namespace ?? manifest?.metadata.namespace);
    const seenIn = [...new Set(groups.map((g) => g.route))];
    if (seenIn.length > 1) {
      problems.push(`${at(i, 'namespace')}: required: the logs hold routes ${seenIn.join(' and ')}`);
      return;
    }
    groups.forEach((g) => usedGroups.add(g));
    const namespace = s.namespace ?? manifest?.metadata.namespace ?? groups[0]?.route.split('/')[0] ?? 'default';
    const id = `${namespace}/${s.name}`;
    const sources: string[] = [];
    const labels = s.labels ?? manifest?.metadata.labels ?? {};
    const prices = { ...(manifest?.spec.prices ?? {}), ...scenario.prices };
    if (manifest) {
      const taken = [
        ...(s.labels ? [] : ['labels']),
        ...(Object.keys(manifest.spec.prices).length > 0 ? ['prices'] : []),
        ...(s.model || groups.length > 0 || !manifest.spec.model.default ? [] : ['model']),
      ];
      if (taken.length > 0) sources.push(`${taken.join(', ')} from AIRoute ${manifest.metadata.namespace}/${manifest.metadata.name}`);
    }

    let evalMeasured: Measured | undefined;
    if (s.eval && src.evalReport) {
      evalMeasured = fromEval(src.evalReport.report, id, s.eval);
      if (!evalMeasured) problems.push(`${at(i, 'eval')}: no answered case of ${src.evalReport.file}${s.eval.tags ? ` with tag ${s.eval.tags.join(' or ')}` : ''}`);
    }

    const base = {
      name: s.name,
      namespace,
      labels,
      batchShare: s.batchShare,
      batchableShare: s.batchableShare ?? s.batchShare,
      ...(s.users ?? scenario.users ? { users: (s.users ?? scenario.users)! } : {}),
      compare: s.compare ?? [],
      prices,
    };

    if (groups.length > 0) {
      // One estimate per model the logs saw (fallbacks and degraded calls included), each with its share of the traffic.
      const total = groups.reduce((n, g) => n + g.requests, 0);
      for (const g of groups) {
        const part = g.requests / total;
        const perDay = s.requestsPerDay !== undefined ? s.requestsPerDay * part : g.requestsPerDay;
        if (perDay === undefined) {
          problems.push(`${at(i, 'requestsPerDay')}: required: the logs span no time to measure a rate from`);
          continue;
        }
        routes.push({
          ...base,
          id: groups.length > 1 ? `${id} (${g.model})` : id,
          model: g.model,
          requestsPerDay: perDay,
          typical: g.typical,
          worst: g.worst,
          cachedShare: g.cachedShare ?? s.cachedShare,
          retryRate: g.retryRate ?? s.retryRate,
          streamingShare: g.streamingShare ?? s.streamingShare,
          sources: [
            ...sources,
            `model, tokens, cached share, retry rate and streaming share from logs (${g.requests} requests${groups.length > 1 ? `, ${share(part)} of the route's` : ''})`,
            ...(s.requestsPerDay === undefined ? ['requests/day from logs'] : []),
          ],
        });
      }
      return;
    }

    const model = s.model ?? evalMeasured?.model ?? manifest?.spec.model.default;
    if (!model) problems.push(`${at(i, 'model')}: required field is missing (no logs, eval or AIRoute default model gives one)`);
    const tokens = evalMeasured ? { typical: evalMeasured.typical, worst: evalMeasured.worst } : s.tokens ? { typical: s.tokens.typical, worst: s.tokens.worst ?? s.tokens.typical } : undefined;
    if (!tokens) problems.push(`${at(i, 'tokens')}: required field is missing (no logs or eval cover this route)`);
    if (s.requestsPerDay === undefined) problems.push(`${at(i, 'requestsPerDay')}: required field is missing (no logs cover this route)`);
    if (!model || !tokens || s.requestsPerDay === undefined) return;
    if (evalMeasured) sources.push(`tokens from ${src.evalReport!.file} (${evalMeasured.requests} cases)${s.model ? '' : ', model too'}`);
    else if (!s.tokens?.worst) sources.push('worst case tokens = typical (no tokens.worst)');
    routes.push({
      ...base,
      id,
      model,
      requestsPerDay: s.requestsPerDay,
      typical: tokens.typical,
      worst: tokens.worst,
      cachedShare: s.cachedShare,
      retryRate: s.retryRate,
      streamingShare: s.streamingShare,
      sources,
    });
  });

  // Routes the logs saw and the scenario does not name: estimated from the logs alone.
  for (const g of src.logs?.groups ?? []) {
    if (usedGroups.has(g)) continue;
    if (g.requestsPerDay === undefined) {
      problems.push(`logs: route ${g.route}: the logs span no time to measure a rate from; name the route in the scenario with requestsPerDay`);
      continue;
    }
    const [namespace, name] = g.route.includes('/') ? (g.route.split('/', 2) as [string, string]) : ['default', g.route];
    const manifest = findAIRoute(airoutes, name, namespace);
    const siblings = src.logs!.groups.filter((o) => o.route === g.route);
    routes.push({
      id: siblings.length > 1 ? `${g.route} (${g.model})` : g.route,
      name,
      namespace,
      labels: manifest?.metadata.labels ?? {},
      model: g.model,
      requestsPerDay: g.requestsPerDay,
      typical: g.typical,
      worst: g.worst,
      cachedShare: g.cachedShare ?? 0,
      retryRate: g.retryRate ?? 0,
      streamingShare: g.streamingShare ?? 0,
      batchShare: 0,
      batchableShare: 0,
      ...(scenario.users ? { users: scenario.users } : {}),
      compare: [],
      prices: { ...(manifest?.spec.prices ?? {}), ...scenario.prices },
      sources: [`everything from logs (${g.requests} requests; not in the scenario)`],
    });
  }
  return { routes, problems };
}
