// Which pods carry a running sidecar, and where its admin endpoint is, from the Pod object alone
// (the sidecar's admin container port is named `envelope-admin`; no Service is involved).
import type { KubeObject } from '../kube/client.ts';

export const ADMIN_PORT_NAME = 'envelope-admin';
export const INJECT_LABEL = 'ai-envelope.dev/inject';

interface ContainerLike {
  name?: string;
  ports?: Array<{ name?: string; containerPort?: number }>;
}

export interface PodFact {
  name: string;
  uid: string;
  labels: Record<string, string>;
  /** `http://ip:port` of a running sidecar's admin listener; undefined when it has none (yet). */
  adminURL: string | undefined;
}

export function podFact(pod: KubeObject): PodFact {
  const spec = (pod.spec ?? {}) as { containers?: ContainerLike[]; initContainers?: ContainerLike[] };
  const status = (pod.status ?? {}) as { phase?: string; podIP?: string };
  // A native sidecar is an init container that keeps running: look there too.
  const port = [...(spec.containers ?? []), ...(spec.initContainers ?? [])]
    .flatMap((c) => c.ports ?? [])
    .find((p) => p.name === ADMIN_PORT_NAME)?.containerPort;
  const running = status.phase === 'Running' && !!status.podIP && !pod.metadata.deletionTimestamp;
  const host = status.podIP?.includes(':') ? `[${status.podIP}]` : status.podIP;
  return {
    name: pod.metadata.name,
    uid: pod.metadata.uid ?? '',
    labels: pod.metadata.labels ?? {},
    adminURL: running && port ? `http://${host}:${port}` : undefined,
  };
}
