// What the injection webhook needs beyond the controller's rules in ../rbac.ts. Kept apart so the
// controller's list stays as it is; the chart grants the union, and a test checks it does.
import type { PolicyRule } from '../rbac.ts';

export const WEBHOOK_CONFIG_NAME = 'ai-envelope-injector';
export const TLS_SECRET_NAME = 'ai-envelope-webhook-tls';
export const WEBHOOK_PATH = '/mutate-pods';
/** The webhook's name inside the configuration (a qualified name, as the API requires). */
export const WEBHOOK_NAME = 'inject.ai-envelope.dev';

/** Cluster-wide: the configuration whose caBundle (and, outside the cluster, URL) the operator keeps. */
export const WEBHOOK_CLUSTER_RULES: PolicyRule[] = [
  { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: [WEBHOOK_CONFIG_NAME], verbs: ['get', 'update'] },
];

/**
 * In the operator's namespace: its own CA and serving certificate. `create` cannot be limited to a
 * name (the name is not known when RBAC decides), so it is granted in this namespace alone.
 */
export const WEBHOOK_NAMESPACE_RULES: PolicyRule[] = [
  { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
  { apiGroups: [''], resources: ['secrets'], resourceNames: [TLS_SECRET_NAME], verbs: ['get', 'update'] },
];
