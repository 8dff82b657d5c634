// Writes to the API server, each only when it changes something:
// - ConfigMaps by server-side apply under the field manager `ai-envelope` (the API server merges
//   concurrent writers field by field; another manager's fields are never clobbered);
// - status through the status subresource, as a merge patch that carries the resourceVersion it
//   was computed from, so a status based on a stale read is refused (409) and recomputed;
// - deletions with uid and resourceVersion preconditions, so an object replaced meanwhile survives.
import { canonicalJSON } from '../../crds/canonical.ts';
import { API_VERSION } from '../../crds/schema.ts';
import type { KubeClient, KubeObject } from '../kube/client.ts';
import type { DesiredConfigMap, DesiredStatus } from '../reconcile/desired.ts';

export const FIELD_MANAGER = 'ai-envelope';

export const CRD_PLURAL = { AIRoute: 'airoutes', AIBudget: 'aibudgets' } as const;

const sortedOwners = (refs: KubeObject['metadata']['ownerReferences']) =>
  (refs ?? []).map((r) => ({ apiVersion: r.apiVersion, kind: r.kind, name: r.name, uid: r.uid })).sort((a, b) => a.uid.localeCompare(b.uid));

/** True when the ConfigMap in the cache already holds exactly what is desired. */
export function configMapUpToDate(existing: KubeObject | undefined, desired: DesiredConfigMap): boolean {
  if (!existing) return false;
  const data = (existing.data ?? {}) as Record<string, string>;
  if (canonicalJSON(data) !== canonicalJSON(desired.data)) return false;
  const labels = existing.metadata.labels ?? {};
  const annotations = existing.metadata.annotations ?? {};
  if (Object.entries(desired.labels).some(([k, v]) => labels[k] !== v)) return false;
  if (Object.entries(desired.annotations).some(([k, v]) => annotations[k] !== v)) return false;
  return canonicalJSON(sortedOwners(existing.metadata.ownerReferences)) === canonicalJSON(sortedOwners(desired.ownerReferences));
}

export async function applyConfigMap(client: KubeClient, desired: DesiredConfigMap): Promise<KubeObject> {
  const body = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: desired.name, namespace: desired.namespace, labels: desired.labels, annotations: desired.annotations, ownerReferences: desired.ownerReferences },
    data: desired.data,
  };
  return client.call<KubeObject>('PATCH', `/api/v1/namespaces/${desired.namespace}/configmaps/${desired.name}`, {
    query: { fieldManager: FIELD_MANAGER, force: true },
    body,
    patch: 'apply',
  });
}

export async function deleteConfigMap(client: KubeClient, cm: KubeObject): Promise<void> {
  await client.call('DELETE', `/api/v1/namespaces/${cm.metadata.namespace}/configmaps/${cm.metadata.name}`, {
    body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: cm.metadata.uid, resourceVersion: cm.metadata.resourceVersion } },
  });
}

export function statusUpToDate(obj: KubeObject, desired: DesiredStatus): boolean {
  return canonicalJSON(obj.status ?? {}) === canonicalJSON(desired.status);
}

export async function patchStatus(client: KubeClient, obj: KubeObject, desired: DesiredStatus): Promise<KubeObject> {
  // A merge patch only adds and replaces: fields to drop are sent as null.
  const status: Record<string, unknown> = { ...desired.status };
  for (const k of Object.keys((obj.status ?? {}) as object)) if (!(k in status)) status[k] = null;
  const ns = obj.metadata.namespace as string;
  return client.call<KubeObject>('PATCH', `/apis/${API_VERSION}/namespaces/${ns}/${CRD_PLURAL[desired.kind]}/${obj.metadata.name}/status`, {
    body: { metadata: { resourceVersion: obj.metadata.resourceVersion }, status },
    patch: 'merge',
  });
}
