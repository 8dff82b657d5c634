// The real `ai-envelope operator` against a real API server: AIRoutes and AIBudgets reaching
// ConfigMaps, status and Events; and nothing missed while every watch is cut every few seconds
// (--min-request-timeout=5) and the API server itself is restarted.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { describeWithKube, startControlPlane, type ControlPlane } from '../support/kube.ts';
import { API, OPERATOR_NS, budget, condition, create, createNamespace, eventsFor, eventually, get, installCRDs, list, mergePatch, metricValue, ok, route, sleep, startOperatorProcess, type OperatorProcess } from './support.ts';

const NS = 'shop';
const spec = (extra: Record<string, unknown> = {}) => ({
  podSelector: { matchLabels: { app: 'support' } },
  upstream: { baseURL: 'https://api.example.test/v1', secretRef: { name: 'openai', key: 'apiKey' } },
  model: { default: 'gpt-4.1-mini', allowed: ['gpt-4.1-mini', 'gpt-4.1-nano'] },
  ...extra,
});

interface Config {
  version: string;
  routes: Array<{ name: string; model: { default?: string } }>;
  budgets: Array<{ name: string; routes: string[] }>;
}

describeWithKube('operator: resources to ConfigMaps, status and Events', () => {
  let cp: ControlPlane;
  let op: OperatorProcess;

  const configMaps = async () => (await list(cp, `/api/v1/namespaces/${NS}/configmaps?labelSelector=ai-envelope.dev/role=sidecar-config`)) as Array<{ metadata: { name: string; ownerReferences?: Array<{ name: string; kind: string }> }; data: Record<string, string> }>;
  const configOf = (cm: { data: Record<string, string> }) => parse(cm.data['config.json'] as string) as Config;
  const routeObj = (name: string) => get(cp, `${API}/namespaces/${NS}/airoutes/${name}`);

  beforeAll(async () => {
    cp = await startControlPlane({ apiserverArgs: ['--min-request-timeout=5'] });
    await installCRDs(cp);
    await createNamespace(cp, OPERATOR_NS);
    await createNamespace(cp, NS);
    await create(cp, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'openai', namespace: NS }, stringData: { apiKey: 'sk-test-lifecycle-0000' } } as never);
    // 0: the API server decides how long each watch lasts, here 5-10 s.
    op = await startOperatorProcess({ kubeconfig: cp.kubeconfigPath, args: ['--watch-timeout-seconds', '0', '--spend-interval-seconds', '1', '--resync-seconds', '3600', '--lease-seconds', '4'] });
    await op.waitForLog((l) => l.event === 'leader_acquired');
  }, 90_000);

  afterAll(async () => {
    await op?.stop();
    await cp?.stop();
  });

  it('writes a ConfigMap, a Ready status and an Event for a new route', async () => {
    await create(cp, route(NS, 'triage', spec(), { team: 'support' }));
    const cm = await eventually('ConfigMap with the route', async () => (await configMaps()).find((c) => configOf(c).routes.some((r) => r.name === 'triage')));
    expect(cm.metadata.name).toMatch(/^ai-envelope-support-[0-9a-f]{8}$/);
    expect(cm.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'AIRoute', name: 'triage' })]);
    const r = await eventually('Ready status', async () => {
      const o = await routeObj('triage');
      return condition(o, 'Ready')?.status === 'True' && o;
    });
    expect(r?.status).toMatchObject({ observedGeneration: 1, configMap: cm.metadata.name, sidecars: 0 });
    const events = await eventually('ConfigMapCreated event', async () => {
      const e = await eventsFor(cp, NS, 'triage');
      return e.some((x) => x.reason === 'ConfigMapCreated') && e;
    });
    expect(events.find((e) => e.reason === 'ConfigMapCreated')?.message).toContain(cm.metadata.name);
  });

  it('rewrites the ConfigMap when a spec changes, and records the new generation', async () => {
    await mergePatch(cp, `${API}/namespaces/${NS}/airoutes/triage`, { spec: { model: { default: 'gpt-4.1-nano' } } });
    await eventually('new default in the ConfigMap', async () => (await configMaps()).some((c) => configOf(c).routes.find((r) => r.name === 'triage')?.model.default === 'gpt-4.1-nano'));
    await eventually('observedGeneration 2', async () => (await routeObj('triage'))?.status?.observedGeneration === 2);
    await eventually('ConfigMapUpdated event', async () => (await eventsFor(cp, NS, 'triage')).some((x) => x.reason === 'ConfigMapUpdated'));
    // The status keeps what each generation changed, and an Event says it.
    const history = (await routeObj('triage'))?.status?.history as Array<{ generation: number; changed: string[] }>;
    expect(history.map(({ generation, changed }) => ({ generation, changed }))).toEqual([
      { generation: 2, changed: ['model'] },
      { generation: 1, changed: ['created'] },
    ]);
    await eventually('SpecChanged event', async () => (await eventsFor(cp, NS, 'triage')).some((x) => x.reason === 'SpecChanged' && x.message === 'generation 2 changed: model'));
  });

  it('says why a route with a missing Secret is not served, and serves it once the Secret exists', async () => {
    await create(cp, route(NS, 'billing', spec({ upstream: { baseURL: 'https://api.example.test/v1', secretRef: { name: 'openai-billing' } } })));
    const r = await eventually('SecretNotFound', async () => {
      const o = await routeObj('billing');
      return condition(o, 'Ready')?.reason === 'SecretNotFound' && o;
    });
    expect(condition(r, 'Ready')).toMatchObject({ status: 'False', message: expect.stringContaining("'openai-billing'") });
    expect(r?.status?.configMap).toBeUndefined();
    expect((await configMaps()).flatMap((c) => configOf(c).routes.map((x) => x.name))).not.toContain('billing');
    await eventually('a Warning event', async () => (await eventsFor(cp, NS, 'billing')).some((e) => e.type === 'Warning' && e.reason === 'SecretNotFound'));

    await create(cp, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'openai-billing', namespace: NS }, stringData: { apiKey: 'sk-test-billing-0000' } } as never);
    await eventually('billing Ready', async () => condition(await routeObj('billing'), 'Ready')?.status === 'True');
    const cms = await configMaps();
    expect(cms).toHaveLength(1);
    expect(configOf(cms[0] as never).routes.map((x) => x.name)).toEqual(['billing', 'triage']);
  });

  it('keeps serving the other routes when one cannot be served', async () => {
    await create(cp, route(NS, 'broken', spec({ podSelector: { matchLabels: { app: 'other' } }, output: { jsonSchema: { type: 'not-a-type' } } })));
    await eventually('broken: InvalidSpec', async () => condition(await get(cp, `${API}/namespaces/${NS}/airoutes/broken`), 'Ready')?.reason === 'InvalidSpec');
    // Its own group gets no ConfigMap; the others are untouched.
    await mergePatch(cp, `${API}/namespaces/${NS}/airoutes/triage`, { metadata: { labels: { team: 'support', touched: 'yes' } } });
    await eventually('triage still Ready with label change rendered', async () => (await configMaps()).length === 1 && condition(await routeObj('triage'), 'Ready')?.status === 'True');
  });

  it('reports a budget: spend, remaining, period start, Exhausted=False, and puts it in the ConfigMap', async () => {
    await create(cp, budget(NS, 'monthly', { limitUSD: 50, routeSelector: { matchLabels: { team: 'support' } } }));
    const b = await eventually('budget status', async () => {
      const o = await get(cp, `${API}/namespaces/${NS}/aibudgets/monthly`);
      return o?.status?.spentUSD !== undefined && o;
    });
    const now = new Date();
    expect(b.status).toMatchObject({ spentUSD: '0.00', remainingUSD: '50.00', observedGeneration: 1, periodStart: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString().replace('.000Z', 'Z') });
    expect(condition(b, 'Exhausted')).toMatchObject({ status: 'False', reason: 'WithinLimit' });
    expect(condition(b, 'Ready')?.status).toBe('True');
    await eventually('budget in the ConfigMap', async () => (await configMaps()).some((c) => configOf(c).budgets.some((x) => x.name === 'monthly' && x.routes.join() === 'triage')));
  });

  it('counts running sidecar pods from the Pod watch', async () => {
    const pod = await create(cp, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'support-1', namespace: NS, labels: { app: 'support', 'ai-envelope.dev/inject': 'true' } },
      spec: { containers: [{ name: 'app', image: 'app:1' }, { name: 'envelope', image: 'ai-envelope:1', ports: [{ name: 'envelope-admin', containerPort: 1 }] }] },
    } as never);
    expect(pod.metadata.name).toBe('support-1');
    await sleep(500);
    expect((await routeObj('triage'))?.status?.sidecars).toBe(0);
    // What a kubelet would report once the pod runs.
    await ok(cp.request('PATCH', `/api/v1/namespaces/${NS}/pods/support-1/status`, { body: { status: { phase: 'Running', podIP: '127.0.0.1' } }, headers: { 'content-type': 'application/merge-patch+json' } }));
    await eventually('sidecars: 1', async () => (await routeObj('triage'))?.status?.sidecars === 1);
    await ok(cp.request('DELETE', `/api/v1/namespaces/${NS}/pods/support-1?gracePeriodSeconds=0`));
    await eventually('sidecars: 0', async () => (await routeObj('triage'))?.status?.sidecars === 0);
  });

  it('misses nothing while watches are cut every few seconds and the API server restarts', async () => {
    // Watches end on the server's timeout (5-10 s here) and are resumed.
    await eventually('watch restarts after the server ended them', async () => metricValue(await op.metrics(), 'ai_envelope_operator_watch_restarts_total', { resource: 'airoutes', reason: 'end' }) >= 1, 25_000, 500);
    await cp.restartApiserver(2000);
    // Changes made the moment the server is back, while the operator's watches are still reconnecting.
    await create(cp, route(NS, 'after-restart', spec()));
    await ok(cp.request('DELETE', `${API}/namespaces/${NS}/airoutes/billing`));
    await eventually('ConfigMap reflects both changes', async () => {
      const names = (await configMaps()).flatMap((c) => configOf(c).routes.map((r) => r.name)).sort();
      return names.join() === 'after-restart,triage';
    }, 30_000);
    await eventually('after-restart Ready', async () => condition(await routeObj('after-restart'), 'Ready')?.status === 'True');
    const m = await op.metrics();
    expect(metricValue(m, 'ai_envelope_operator_watch_restarts_total', { resource: 'airoutes' })).toBeGreaterThanOrEqual(2);
    expect(metricValue(m, 'ai_envelope_operator_reconcile_total', { result: 'success' })).toBeGreaterThan(0);
    const ready = await fetch(`http://127.0.0.1:${op.metricsPort}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { detail: { leader: boolean } }).detail.leader).toBe(true);
    expect((await fetch(`http://127.0.0.1:${op.metricsPort}/healthz`)).status).toBe(200);
  }, 60_000);

  it('deletes the ConfigMap once no route needs it, and says so', async () => {
    await ok(cp.request('DELETE', `${API}/namespaces/${NS}/airoutes/triage`));
    await ok(cp.request('DELETE', `${API}/namespaces/${NS}/airoutes/after-restart`));
    await eventually('no ConfigMap', async () => (await configMaps()).length === 0);
    const events = await list(cp, `/api/v1/namespaces/${NS}/events?fieldSelector=reason=ConfigMapDeleted`);
    expect(events.length).toBeGreaterThan(0);
    // The budget now covers nothing but is still reported.
    await eventually('budget says it covers nothing', async () => condition(await get(cp, `${API}/namespaces/${NS}/aibudgets/monthly`), 'Ready')?.message === 'covers no route that can be served');
  });
});
