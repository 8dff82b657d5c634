// What the operator's integration tests share: CRDs installed from crds/, the real
// `ai-envelope operator` process with its log lines, and small API helpers with polling.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { crdFiles } from '../../crds/generate.ts';
import type { ControlPlane, KubeResponse } from '../support/kube.ts';
import { followJsonLog, type LogLine } from '../support/json-log.ts';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
export const API = '/apis/ai-envelope.dev/v1alpha1';
export const OPERATOR_NS = 'ai-envelope-system';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `fn` returns something other than undefined/false, or fails with the last value seen. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await sleep(everyMs);
  }
}

export async function ok(r: Promise<KubeResponse>): Promise<Record<string, any>> {
  const res = await r;
  if (res.status >= 300) throw new Error(`API ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`);
  return res.body as Record<string, any>;
}

export async function installCRDs(cp: ControlPlane): Promise<void> {
  for (const f of crdFiles()) {
    const crd = parse(f.yaml) as { metadata: { name: string } };
    await ok(cp.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { body: crd }));
    await eventually(`CRD ${crd.metadata.name} established`, async () => {
      const got = await ok(cp.request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`));
      return (got.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Established' && c.status === 'True');
    });
  }
  // Discovery of the new group can lag the Established condition a little.
  await eventually('AIRoute API served', async () => (await cp.request('GET', `${API}/airoutes`)).status === 200);
}

export async function createNamespace(cp: ControlPlane, name: string): Promise<void> {
  const r = await cp.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } });
  if (r.status >= 300 && r.status !== 409) throw new Error(`namespace ${name}: ${r.status}`);
}

export const route = (namespace: string, name: string, spec: Record<string, unknown>, labels: Record<string, string> = {}) => ({
  apiVersion: 'ai-envelope.dev/v1alpha1',
  kind: 'AIRoute',
  metadata: { name, namespace, labels },
  spec,
});

export const budget = (namespace: string, name: string, spec: Record<string, unknown>) => ({ apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIBudget', metadata: { name, namespace }, spec });

export async function create(cp: ControlPlane, obj: { kind: string; metadata: { namespace: string } }): Promise<Record<string, any>> {
  const plural = obj.kind === 'AIRoute' ? 'airoutes' : obj.kind === 'AIBudget' ? 'aibudgets' : `${obj.kind.toLowerCase()}s`;
  const base = obj.kind.startsWith('AI') ? API : '/api/v1';
  return ok(cp.request('POST', `${base}/namespaces/${obj.metadata.namespace}/${plural}`, { body: obj }));
}

export async function mergePatch(cp: ControlPlane, path: string, body: unknown): Promise<Record<string, any>> {
  return ok(cp.request('PATCH', path, { body, headers: { 'content-type': 'application/merge-patch+json' } }));
}

export async function get(cp: ControlPlane, path: string): Promise<Record<string, any> | undefined> {
  const r = await cp.request('GET', path);
  if (r.status === 404) return undefined;
  if (r.status >= 300) throw new Error(`GET ${path}: ${r.status}`);
  return r.body as Record<string, any>;
}

export async function list(cp: ControlPlane, path: string): Promise<Array<Record<string, any>>> {
  return ((await ok(cp.request('GET', path))).items ?? []) as Array<Record<string, any>>;
}

export const condition = (obj: Record<string, any> | undefined, type: string) => (obj?.status?.conditions ?? []).find((c: { type: string }) => c.type === type) as { status: string; reason: string; message: string } | undefined;

/** Events about one object, newest last. */
export async function eventsFor(cp: ControlPlane, namespace: string, name: string): Promise<Array<{ reason: string; message: string; type: string }>> {
  const items = await list(cp, `/api/v1/namespaces/${namespace}/events?fieldSelector=involvedObject.name=${name}`);
  return items.map((e) => ({ reason: e.reason, message: e.message, type: e.type }));
}

export interface OperatorProcess {
  proc: ChildProcess;
  metricsPort: number;
  logs(): LogLine[];
  output(): string;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  metrics(): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The operator CLI as a child process; without `webhook: true` it runs with --no-webhook (these tests are about the controller). */
export async function startOperatorProcess(opts: { kubeconfig: string; args?: string[]; env?: Record<string, string>; webhook?: boolean; namespace?: string }): Promise<OperatorProcess> {
  const args = [CLI, 'operator', '--kubeconfig', opts.kubeconfig, '--namespace', opts.namespace ?? OPERATOR_NS, '--metrics-port', '0', '--metrics-host', '127.0.0.1', ...(opts.webhook ? [] : ['--no-webhook']), ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'debug', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = followJsonLog(proc, 'operator');
  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 15_000) => log.waitFor(pred, timeoutMs);
  const started = await waitForLog((l) => l.event === 'started' && typeof l.metrics_port === 'number');
  const metricsPort = started.metrics_port as number;
  return {
    proc,
    metricsPort,
    logs: () => log.lines,
    output: log.output,
    waitForLog,
    metrics: async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(),
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return log.exited;
    },
  };
}

/** The value of one metric series in Prometheus text, 0 when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:]+)(\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[4]);
  }
  return total;
}
