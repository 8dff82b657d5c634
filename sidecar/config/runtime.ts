// The rendered config, indexed once per load so the per-request work is map look-ups.
import { join } from 'node:path';
import type { Endpoint, RenderedRoute, SidecarConfig } from '../../crds/schema.ts';

export interface RuntimeRoute {
  spec: RenderedRoute;
  name: string;
  /** `namespace/name`, unique within a config. */
  id: string;
  endpoints: ReadonlySet<Endpoint>;
  /** null: any model. */
  allowed: ReadonlySet<string> | null;
  aliases: ReadonlyMap<string, string>;
  /** Upstream base URL without a trailing slash, e.g. `https://api.openai.com/v1`. */
  baseURL: string;
  /** Where the API key is mounted; null: the sidecar's OPENAI_API_KEY. */
  keyPath: string | null;
  /** The HMAC key for user ids (input.userHashSecretRef); null: the API key serves. */
  userHashKeyPath: string | null;
  /** The reviewers' token for this route's review items (review.tokenSecretRef); null: none. */
  reviewTokenPath: string | null;
}

export interface RuntimeConfig {
  version: string;
  source: SidecarConfig;
  routes: RuntimeRoute[];
  /** By name and by `namespace/name`. */
  byName: ReadonlyMap<string, RuntimeRoute>;
  /** Model or alias → routes that explicitly serve it. */
  byModel: ReadonlyMap<string, RuntimeRoute[]>;
  /** The largest body any route accepts: what the reader may buffer before the route is known. */
  maxRequestBytes: number;
}

export function compileConfig(config: SidecarConfig, secretsDir: string): RuntimeConfig {
  const routes = config.routes.map((spec): RuntimeRoute => ({
    spec,
    name: spec.name,
    id: `${spec.namespace}/${spec.name}`,
    endpoints: new Set(spec.endpoints),
    allowed: spec.model.allowed.length > 0 ? new Set(spec.model.allowed) : null,
    aliases: new Map(Object.entries(spec.model.aliases)),
    baseURL: spec.upstream.baseURL.replace(/\/+$/, ''),
    keyPath: spec.upstream.secretRef ? join(secretsDir, spec.upstream.secretRef.name, spec.upstream.secretRef.key) : null,
    userHashKeyPath: spec.input.userHashSecretRef ? join(secretsDir, spec.input.userHashSecretRef.name, spec.input.userHashSecretRef.key) : null,
    reviewTokenPath: spec.review.tokenSecretRef ? join(secretsDir, spec.review.tokenSecretRef.name, spec.review.tokenSecretRef.key) : null,
  }));
  const byName = new Map<string, RuntimeRoute>();
  const nameCount = new Map<string, number>();
  for (const r of routes) nameCount.set(r.name, (nameCount.get(r.name) ?? 0) + 1);
  for (const r of routes) {
    byName.set(r.id, r);
    // A bare name is only a handle when it is unambiguous across namespaces.
    if (nameCount.get(r.name) === 1) byName.set(r.name, r);
  }
  const byModel = new Map<string, RuntimeRoute[]>();
  const add = (model: string, r: RuntimeRoute) => {
    const list = byModel.get(model) ?? [];
    if (!list.includes(r)) list.push(r);
    byModel.set(model, list);
  };
  for (const r of routes) {
    for (const m of r.spec.model.allowed) add(m, r);
    for (const a of r.aliases.keys()) add(a, r);
    if (r.spec.model.default) add(r.spec.model.default, r);
  }
  return {
    version: config.version,
    source: config,
    routes,
    byName,
    byModel,
    maxRequestBytes: Math.max(...routes.map((r) => r.spec.limits.maxRequestBytes)),
  };
}
