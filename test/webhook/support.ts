// What the webhook tests share: the operator's RBAC as the chart grants it, a
// MutatingWebhookConfiguration as the chart renders it, and a pod laid out on disk the way a
// kubelet mounts its volumes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CLUSTER_RULES, NAMESPACE_RULES, ROLE_NAME, type PolicyRule } from '../../operator/rbac.ts';
import { WEBHOOK_CLUSTER_RULES, WEBHOOK_CONFIG_NAME, WEBHOOK_NAME, WEBHOOK_NAMESPACE_RULES, WEBHOOK_PATH } from '../../operator/webhook/rbac.ts';
import type { ControlPlane } from '../support/kube.ts';
import { SecretVolume } from '../support/sidecar-process.ts';
import { ok } from '../operator/support.ts';

export const ALL_CLUSTER_RULES: PolicyRule[] = [...CLUSTER_RULES, ...WEBHOOK_CLUSTER_RULES];
export const ALL_NAMESPACE_RULES: PolicyRule[] = [...NAMESPACE_RULES, ...WEBHOOK_NAMESPACE_RULES];

export function serviceAccountUser(namespace: string, name: string, token: string) {
  return { token, user: `system:serviceaccount:${namespace}:${name}`, uid: `sa-${name}-uid`, groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`] };
}

/** ClusterRole, Role and their bindings with the rules the chart grants. */
export async function grantOperator(cp: ControlPlane, sa: { namespace: string; name: string }): Promise<void> {
  const subjects = [{ kind: 'ServiceAccount', name: sa.name, namespace: sa.namespace }];
  const rbac = '/apis/rbac.authorization.k8s.io/v1';
  const roleRef = (kind: string) => ({ apiGroup: 'rbac.authorization.k8s.io', kind, name: ROLE_NAME });
  await ok(cp.request('POST', `${rbac}/clusterroles`, { body: { metadata: { name: ROLE_NAME }, rules: ALL_CLUSTER_RULES } }));
  await ok(cp.request('POST', `${rbac}/clusterrolebindings`, { body: { metadata: { name: ROLE_NAME }, roleRef: roleRef('ClusterRole'), subjects } }));
  await ok(cp.request('POST', `${rbac}/namespaces/${sa.namespace}/roles`, { body: { metadata: { name: ROLE_NAME }, rules: ALL_NAMESPACE_RULES } }));
  await ok(cp.request('POST', `${rbac}/namespaces/${sa.namespace}/rolebindings`, { body: { metadata: { name: ROLE_NAME }, roleRef: roleRef('Role'), subjects } }));
}

/** The configuration as the chart renders it; the operator fills in the URL and the caBundle. */
export function webhookConfiguration(operatorNamespace: string, opts: { name?: string; failurePolicy?: 'Fail' | 'Ignore' } = {}) {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: opts.name ?? WEBHOOK_CONFIG_NAME },
    webhooks: [
      {
        name: WEBHOOK_NAME,
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: opts.failurePolicy ?? 'Fail',
        reinvocationPolicy: 'IfNeeded',
        timeoutSeconds: 5,
        objectSelector: { matchLabels: { 'ai-envelope.dev/inject': 'true' } },
        namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', operatorNamespace] }] },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
        // A placeholder until the operator writes its own URL (outside the cluster) and caBundle.
        clientConfig: { url: `https://127.0.0.1:1${WEBHOOK_PATH}` },
      },
    ],
  };
}

type Volume = { name: string; configMap?: { name: string }; secret?: { secretName: string }; emptyDir?: unknown };
type Mount = { name: string; mountPath: string };

/**
 * Writes a container's volumes under `root` as the kubelet would mount them (ConfigMap and Secret
 * keys behind `..data` symlinks), each at `root` + its mountPath, so a folder that holds several
 * mounts (a `--secrets-dir`) maps too. Returns path in the container → local path: the mounts
 * and every folder above them.
 */
export function mountVolumes(root: string, volumes: Volume[], mounts: Mount[], contents: { configMaps: Record<string, Record<string, string>>; secrets: Record<string, Record<string, string>> }): Record<string, string> {
  const paths: Record<string, string> = {};
  for (const m of mounts) {
    const v = volumes.find((x) => x.name === m.name);
    if (!v) throw new Error(`volumeMount ${m.name} has no volume`);
    const local = join(root, m.mountPath);
    if (v.configMap || v.secret) {
      const data = v.configMap ? contents.configMaps[v.configMap.name] : contents.secrets[(v.secret as { secretName: string }).secretName];
      if (!data) throw new Error(`volume ${v.name}: nothing to mount (${JSON.stringify(v)})`);
      new SecretVolume(dirname(local)).write(basename(local), data);
    } else if (v.emptyDir) {
      mkdirSync(local, { recursive: true });
    } else {
      // Projected ServiceAccount tokens and the like: present, unused by the sidecar.
      mkdirSync(local, { recursive: true });
      writeFileSync(join(local, '.placeholder'), '');
    }
    for (let p = m.mountPath; p !== '/' && p !== '.'; p = dirname(p)) paths[p] = join(root, p);
  }
  return paths;
}
