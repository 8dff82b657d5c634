// Which route serves a call, and which model it really asks for. Pure, so every rule is tested
// without a network; the errors say what the app can change to make the call work.
import type { Endpoint } from '../../crds/schema.ts';
import { EnvelopeError } from '../errors.ts';
import type { RuntimeConfig, RuntimeRoute } from '../config/runtime.ts';

export function selectRoute(config: RuntimeConfig, endpoint: Endpoint | null, routeHeader: string | undefined, model: string | undefined): RuntimeRoute {
  if (routeHeader) {
    const route = config.byName.get(routeHeader);
    if (!route) {
      throw new EnvelopeError('route_not_found', `No route named '${routeHeader}' (x-envelope-route). Routes here: ${config.routes.map((r) => r.id).join(', ')}.`);
    }
    return route;
  }
  if (config.routes.length === 1) return config.routes[0] as RuntimeRoute;
  let candidates = config.routes;
  if (model !== undefined) {
    const byModel = config.byModel.get(model);
    if (byModel && byModel.length > 0) candidates = byModel;
    else {
      // Routes with no allow-list accept any model; they are the candidates for an unlisted one.
      candidates = config.routes.filter((r) => r.allowed === null);
    }
  }
  if (candidates.length > 1 && endpoint !== null) candidates = candidates.filter((r) => r.endpoints.has(endpoint));
  if (candidates.length === 1) return candidates[0] as RuntimeRoute;
  const what = model !== undefined ? `model '${model}'` : 'this call';
  if (candidates.length === 0) {
    throw new EnvelopeError('route_not_found', `No route serves ${what}. Name a route in the x-envelope-route header; routes here: ${config.routes.map((r) => r.id).join(', ')}.`);
  }
  throw new EnvelopeError('route_not_found', `Several routes could serve ${what} (${candidates.map((r) => r.id).join(', ')}): name one in the x-envelope-route header.`);
}

export function checkEndpoint(route: RuntimeRoute, endpoint: Endpoint): void {
  if (!route.endpoints.has(endpoint)) {
    throw new EnvelopeError('endpoint_not_allowed', `Route '${route.id}' does not allow the ${endpoint} endpoint (allowed: ${[...route.endpoints].join(', ')}).`);
  }
}

/** Resolves aliases and the default, then checks the allow-list. */
export function resolveModel(route: RuntimeRoute, requested: unknown): string {
  if (requested === undefined || requested === null || requested === '') {
    const fallback = route.spec.model.default;
    if (!fallback) throw new EnvelopeError('invalid_request', `'model' is required: route '${route.id}' has no default model.`, { param: 'model' });
    return fallback;
  }
  if (typeof requested !== 'string') throw new EnvelopeError('invalid_request', `'model' must be a string.`, { param: 'model' });
  const model = route.aliases.get(requested) ?? requested;
  if (route.allowed !== null && !route.allowed.has(model)) {
    const shown = model === requested ? `'${model}'` : `'${requested}' (alias of '${model}')`;
    throw new EnvelopeError('model_not_allowed', `Model ${shown} is not allowed on route '${route.id}'. Allowed: ${[...route.allowed].join(', ')}.`, { param: 'model' });
  }
  return model;
}
