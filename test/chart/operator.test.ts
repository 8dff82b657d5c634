// The chart's operator end to end: the chart's CRDs, RBAC and webhook configuration applied to a
// real API server (with kube-controller-manager), the operator started through the real CLI with
// the chart's own arguments and environment, as the chart's ServiceAccount, its webhook reachable
// on loopback (--webhook-url). Then examples/kubernetes is applied and the Pods that the
// controller-manager makes for the labelled Deployments are checked. Last, every metric the
// chart's alert rules and dashboard query must exist on a running sidecar's or operator's /metrics.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { INJECT_LABEL } from '../../operator/reconcile/pods.ts';
import { SIDECAR_NAME } from '../../operator/webhook/inject.ts';
import { WEBHOOK_CONFIG_NAME, WEBHOOK_PATH } from '../../operator/webhook/rbac.ts';
import { describeWithKube, startControlPlane, type ControlPlane } from '../support/kube.ts';
import { freePort } from '../support/redis.ts';
import { startEnv, type Env } from '../support/fixtures.ts';
import { eventually, get, list, metricValue, ok, startOperatorProcess, type OperatorProcess } from '../operator/support.ts';
import { serviceAccountUser } from '../webhook/support.ts';
import { RELEASE_NS, find, one, renderChart, type KubeManifest } from './support.ts';
import { exampleObjects } from './examples.ts';

const TOKEN = 'sa-token-chart-operator-0123456789';
const MWC = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIG_NAME}`;
const IMAGE = 'registry.example.com/ai-envelope:e2e';

type Container = { name: string; image: string; env?: Array<{ name: string; value?: string }>; volumeMounts?: Array<{ name: string; mountPath: string }> };
type PodSpec = { containers: Container[]; initContainers?: Container[]; volumes: Array<{ name: string; secret?: { secretName: string }; configMap?: { name: string } }> };

/** Where to POST an object of the kinds the chart and the examples hold. */
function collection(o: KubeManifest): string {
  const paths: Record<string, string> = {
    Namespace: '/api/v1/namespaces',
    Secret: '/api/v1/namespaces/NS/secrets',
    ServiceAccount: '/api/v1/namespaces/NS/serviceaccounts',
    Pod: '/api/v1/namespaces/NS/pods',
    Deployment: '/apis/apps/v1/namespaces/NS/deployments',
    AIRoute: '/apis/ai-envelope.dev/v1alpha1/namespaces/NS/airoutes',
    AIBudget: '/apis/ai-envelope.dev/v1alpha1/namespaces/NS/aibudgets',
    CustomResourceDefinition: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
    ClusterRole: '/apis/rbac.authorization.k8s.io/v1/clusterroles',
    ClusterRoleBinding: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    Role: '/apis/rbac.authorization.k8s.io/v1/namespaces/NS/roles',
    RoleBinding: '/apis/rbac.authorization.k8s.io/v1/namespaces/NS/rolebindings',
    MutatingWebhookConfiguration: '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
  };
  const path = paths[o.kind];
  if (!path) throw new Error(`no path for ${o.kind}`);
  return path.replace('NS', o.metadata.namespace ?? 'default');
}

/** Metric names in a PromQL expression: label matchers, `by (...)` lists and strings taken out first. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  return [...new Set([...bare.matchAll(/\b(ai_envelope_[a-z0-9_]+|gen_ai_[a-z0-9_]+)\b/g)].map((m) => m[1] as string))];
}

/** Whether /metrics text declares this name: a family, or a histogram's _bucket, _sum or _count. */
function declared(text: string, name: string): boolean {
  if (new RegExp(`^# TYPE ${name} `, 'm').test(text)) return true;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return !!m && new RegExp(`^# TYPE ${m[1]} histogram$`, 'm').test(text);
}

describeWithKube('the chart operator through the real CLI, with the examples applied', () => {
  let cp: ControlPlane;
  let op: OperatorProcess;
  let env: Env | undefined;
  let chart: KubeManifest[];
  let webhookPort = 0;

  beforeAll(async () => {
    chart = await renderChart({});
    const sa = one(chart, 'ServiceAccount');
    cp = await startControlPlane({ withControllerManager: true, tokens: [serviceAccountUser(RELEASE_NS, sa.metadata.name, TOKEN)] });
    await ok(cp.request('POST', '/api/v1/namespaces', { body: { metadata: { name: RELEASE_NS } } }));
    // What `helm install` would create, minus the Deployment (no kubelet here: the test runs it) and
    // the Service and PDB (nothing would route to or evict it).
    for (const o of chart.filter((x) => !['Deployment', 'Service', 'PodDisruptionBudget'].includes(x.kind))) await ok(cp.request('POST', collection(o), { body: o }));
    await eventually('CRDs served', async () => (await cp.request('GET', '/apis/ai-envelope.dev/v1alpha1/airoutes')).status === 200, 20_000);

    // The operator as the chart runs it: its container's arguments and environment, with the metrics
    // and webhook on loopback and the webhook URL the API server can reach here.
    const container = one(chart, 'Deployment').spec.template.spec.containers[0] as { args: string[]; env: Array<{ name: string; value?: string }> };
    const chartEnv = Object.fromEntries(container.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
    webhookPort = await freePort();
    op = await startOperatorProcess({
      kubeconfig: await cp.kubeconfigFor(TOKEN),
      namespace: RELEASE_NS,
      webhook: true,
      args: [
        ...container.args.slice(1).filter((a) => !a.startsWith('--metrics-port')),
        `--webhook-port=${webhookPort}`,
        '--webhook-host=127.0.0.1',
        `--webhook-url=https://127.0.0.1:${webhookPort}`,
        `--sidecar-image=${IMAGE}`,
        '--lease-seconds=4',
      ],
      env: { ...chartEnv, LOG_LEVEL: 'info' },
    });
    expect(chartEnv.NODE_OPTIONS).toBeTruthy();
  }, 120_000);

  afterAll(async () => {
    await env?.close();
    if (op) {
      // SIGTERM stops it gracefully; one that has not gone within 15 s shows its log and is killed.
      const stopped = op.stop();
      const late = await Promise.race([stopped.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 15_000))]);
      if (late) {
        process.stderr.write(`operator did not stop within 15 s; log tail:\n${op.output().slice(-3000)}\n`);
        await op.stop('SIGKILL');
      }
    }
    await cp?.stop();
  }, 60_000);

  it('writes its own caBundle and URL into the chart\'s webhook configuration, as the chart\'s ServiceAccount', async () => {
    const cfg = await eventually('caBundle and URL written', async () => {
      const c = await get(cp, MWC);
      const cc = c?.webhooks?.[0]?.clientConfig;
      return cc?.url === `https://127.0.0.1:${webhookPort}${WEBHOOK_PATH}` && cc?.caBundle ? c : undefined;
    }, 30_000);
    expect(Buffer.from(cfg.webhooks[0].clientConfig.caBundle, 'base64').toString()).toMatch(/^-----BEGIN CERTIFICATE-----/);
    // Everything else stays as the chart rendered it.
    const rendered = one(chart, 'MutatingWebhookConfiguration').webhooks[0];
    for (const key of ['objectSelector', 'namespaceSelector', 'failurePolicy', 'reinvocationPolicy', 'timeoutSeconds', 'rules']) expect(cfg.webhooks[0][key], key).toEqual(rendered[key]);
    const secret = await get(cp, `/api/v1/namespaces/${RELEASE_NS}/secrets/ai-envelope-webhook-tls`);
    expect(secret?.data?.['tls.crt']).toBeTruthy();
  }, 40_000);

  it('injects the pods of the examples\' labelled Deployments, each environment with its own Secret', async () => {
    const examples = exampleObjects();
    for (const o of examples.filter((x) => x.kind === 'Namespace')) await ok(cp.request('POST', collection(o), { body: o }));
    for (const ns of find(examples, 'Namespace').map((n) => n.metadata.name)) {
      await eventually(`ServiceAccount ${ns}/default`, async () => !!(await get(cp, `/api/v1/namespaces/${ns}/serviceaccounts/default`)), 30_000);
    }
    for (const o of examples.filter((x) => x.kind !== 'Namespace')) await ok(cp.request('POST', collection(o), { body: o }));

    for (const d of find(examples, 'Deployment')) {
      const ns = d.metadata.namespace as string;
      const pods = await eventually(`${d.spec.replicas} pods in ${ns}`, async () => {
        const items = await list(cp, `/api/v1/namespaces/${ns}/pods?labelSelector=app%3Dsupport-assistant`);
        return items.length === d.spec.replicas ? items : undefined;
      }, 40_000);
      for (const p of pods) {
        const spec = p.spec as PodSpec;
        // 1.24: a regular container placed first, never an init container.
        expect(spec.containers.map((c) => c.name)).toEqual([SIDECAR_NAME, 'app']);
        expect(spec.initContainers ?? []).toEqual([]);
        const [sidecar, app] = spec.containers as [Container, Container];
        expect(sidecar.image).toBe(IMAGE);
        expect(app.image).toBe(d.spec.template.spec.containers[0].image);
        const keyVolumes = spec.volumes.filter((v) => v.secret?.secretName === 'openai');
        expect(keyVolumes).toHaveLength(1);
        expect(sidecar.volumeMounts?.some((m) => m.name === keyVolumes[0]?.name)).toBe(true);
        expect(app.volumeMounts?.some((m) => m.name === keyVolumes[0]?.name) ?? false).toBe(false);
        expect(app.env).toEqual(expect.arrayContaining([{ name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:4141/v1' }]));
        // The ConfigMap the pod mounts is the one the operator writes for this namespace's route.
        const cmName = spec.volumes.find((v) => v.configMap)?.configMap?.name as string;
        const cm = await eventually(`ConfigMap ${ns}/${cmName}`, () => get(cp, `/api/v1/namespaces/${ns}/configmaps/${cmName}`), 20_000);
        const config = JSON.parse(cm.data['config.json']) as { routes: Array<{ name: string; namespace: string }> };
        expect(config.routes.map((r) => `${r.namespace}/${r.name}`)).toEqual([`${ns}/support-assistant`]);
      }
    }

    // Unlabelled pods, and labelled ones in the release namespace, are left alone.
    const bare = { apiVersion: 'v1', kind: 'Pod', spec: { containers: [{ name: 'app', image: 'busybox' }] } };
    const plain = await ok(cp.request('POST', '/api/v1/namespaces/shop-prod/pods', { body: { ...bare, metadata: { name: 'plain', labels: { app: 'support-assistant-tool' } } } }));
    expect((plain.spec as PodSpec).containers.map((c) => c.name)).toEqual(['app']);
    const own = await ok(cp.request('POST', `/api/v1/namespaces/${RELEASE_NS}/pods`, { body: { ...bare, metadata: { name: 'own', labels: { [INJECT_LABEL]: 'true' } } } }));
    expect((own.spec as PodSpec).containers.map((c) => c.name)).toEqual(['app']);

    expect(metricValue(await op.metrics(), 'ai_envelope_operator_webhook_admissions_total', { result: 'injected' })).toBe(3);
  }, 90_000);

  it('serves every metric that the chart\'s alert rules and dashboard query', async () => {
    const on = await renderChart({ metrics: { prometheusRule: { enabled: true }, dashboard: { enabled: true } } });
    const rules = one(on, 'PrometheusRule').spec.groups.flatMap((g: { rules: Array<{ expr: string }> }) => g.rules.map((r) => r.expr));
    const dashboard = JSON.parse(one(on, 'ConfigMap').data['ai-envelope.json']) as { panels: Array<{ targets: Array<{ expr: string }> }>; templating: { list: Array<{ definition?: string }> } };
    const exprs = [...rules, ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...dashboard.templating.list.flatMap((v) => (v.definition ? [v.definition] : []))];
    const names = [...new Set(exprs.flatMap(metricNames))].sort();

    // The sidecar with the examples' production route and budget, against the simulator.
    const examples = exampleObjects().filter((o) => o.metadata.namespace === 'shop-prod' && (o.kind === 'AIRoute' || o.kind === 'AIBudget'));
    env = await startEnv({ routes: (sim) => examples.map((o) => (o.kind === 'AIRoute' ? { ...o, spec: { ...o.spec, upstream: { ...o.spec.upstream, baseURL: sim.url } } } : o)) });
    const answer = await env.client.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Where is my parcel?' }] });
    expect(answer.choices[0]?.message.content).toBeTruthy();
    const sidecarMetrics = await (await fetch(`${env.sidecar.adminUrl}/metrics`)).text();
    const operatorMetrics = await op.metrics();

    // Billing reconciliation is the operator's too.
    const missing = names.filter((n) => !declared(/^ai_envelope_(operator|billing)_/.test(n) ? operatorMetrics : sidecarMetrics, n));
    expect(missing).toEqual([]);
    // The queries reach both processes and the four things the dashboard is for.
    for (const n of ['ai_envelope_budget_spent_usd', 'ai_envelope_budget_limit_usd', 'ai_envelope_quality_signals_total', 'ai_envelope_feedback_total', 'gen_ai_client_token_usage_sum', 'gen_ai_client_operation_duration_seconds_bucket', 'ai_envelope_requests_total', 'ai_envelope_circuit_state', 'ai_envelope_config_reloads_total', 'ai_envelope_operator_webhook_admissions_total', 'ai_envelope_billing_drift_usd', 'ai_envelope_billing_checks_total']) {
      expect(names).toContain(n);
    }
    // A name that is not served is caught (the check is not vacuous).
    expect(declared(sidecarMetrics, 'ai_envelope_budget_spent_dollars')).toBe(false);
  }, 60_000);
});
