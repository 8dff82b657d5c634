// Kubernetes Events (core/v1) on the resources, so `kubectl describe airoute` says what the
// operator did and why. Events are best effort: failing to record one never fails a reconcile.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KubeClient, KubeObject } from '../kube/client.ts';

export const COMPONENT = 'ai-envelope-operator';

export interface EventSpec {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly instance: string;

  constructor(client: KubeClient, log: Logger, instance: string) {
    this.client = client;
    this.log = log;
    this.instance = instance;
  }

  async record(obj: KubeObject, e: EventSpec): Promise<void> {
    const ns = obj.metadata.namespace ?? 'default';
    const now = new Date().toISOString();
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${obj.metadata.name}.${Date.now().toString(16)}${randomBytes(4).toString('hex')}`, namespace: ns },
      involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, namespace: ns, uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion },
      type: e.type,
      reason: e.reason,
      message: e.message.slice(0, 1024),
      source: { component: COMPONENT },
      reportingComponent: COMPONENT,
      reportingInstance: this.instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.client.call('POST', `/api/v1/namespaces/${ns}/events`, { body });
    } catch (err) {
      this.log.warn({ event: 'event_failed', object: `${obj.kind} ${ns}/${obj.metadata.name}`, reason: e.reason, error: (err as Error).message }, 'could not record an Event');
    }
  }
}
