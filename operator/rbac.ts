// The permissions the operator needs, and nothing more: the one list the Helm chart grants and the
// integration tests bind (a test fails when a rule here is missing). No wildcards.
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** Cluster-wide: the operator watches every namespace. */
export const CLUSTER_RULES: PolicyRule[] = [
  { apiGroups: ['ai-envelope.dev'], resources: ['airoutes', 'aibudgets'], verbs: ['list', 'watch'] },
  { apiGroups: ['ai-envelope.dev'], resources: ['airoutes/status', 'aibudgets/status'], verbs: ['patch'] },
  // Server-side apply creates a ConfigMap the first time (create) and patches it afterwards.
  { apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch', 'create', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
  // Read as metadata only (PartialObjectMetadata): whether a referenced Secret exists. RBAC cannot
  // express "metadata only"; the operator never asks for the data.
  { apiGroups: [''], resources: ['secrets'], verbs: ['list', 'watch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
];

export const LEASE_NAME = 'ai-envelope-operator';

/** In the operator's own namespace: its leader-election Lease. */
export const NAMESPACE_RULES: PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [LEASE_NAME], verbs: ['get', 'update'] },
];

/** In the operator's namespace, when billing reconciliation is on: read the one Secret holding the admin key. */
export function billingRules(secretName: string): PolicyRule[] {
  return [{ apiGroups: [''], resources: ['secrets'], resourceNames: [secretName], verbs: ['get'] }];
}

export const ROLE_NAME = 'ai-envelope-operator';

/** ClusterRole, ClusterRoleBinding, Role and RoleBinding for a ServiceAccount. */
export function rbacManifests(serviceAccount: { namespace: string; name: string }): Array<Record<string, unknown>> {
  const subject = [{ kind: 'ServiceAccount', name: serviceAccount.name, namespace: serviceAccount.namespace }];
  return [
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: ROLE_NAME }, rules: CLUSTER_RULES },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: ROLE_NAME }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: ROLE_NAME }, subjects: subject },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: ROLE_NAME, namespace: serviceAccount.namespace }, rules: NAMESPACE_RULES },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: ROLE_NAME, namespace: serviceAccount.namespace }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: ROLE_NAME }, subjects: subject },
  ];
}
