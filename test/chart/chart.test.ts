// The chart as files: `helm lint` and `helm template` over several values sets, the schema's
// refusals, and what each rendered object must hold. RBAC and CRDs are compared with their one
// source of truth in TypeScript (operator/rbac.ts, operator/webhook/rbac.ts, crds/).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CLUSTER_RULES, LEASE_NAME, NAMESPACE_RULES, ROLE_NAME, billingRules, type PolicyRule } from '../../operator/rbac.ts';
import { TLS_SECRET_NAME, WEBHOOK_CLUSTER_RULES, WEBHOOK_CONFIG_NAME, WEBHOOK_NAME, WEBHOOK_NAMESPACE_RULES, WEBHOOK_PATH } from '../../operator/webhook/rbac.ts';
import { servingHosts } from '../../operator/webhook/server.ts';
import { OPERATOR_NODE_OPTIONS } from '../../operator/runtime.ts';
import { INJECT_LABEL } from '../../operator/reconcile/pods.ts';
import { CHART_CRD_DIR, chartCrdTemplates, crdFiles } from '../../crds/generate.ts';
import { imageCommand, localCommand } from '../support/image.ts';
import { CHART_DIR, RELEASE_NS, ROOT, VALUE_SETS, find, helm, one, renderChart, valueArgs, type KubeManifest } from './support.ts';

const CLI = join(ROOT, 'dist/cli.js');
const normalise = (rules: PolicyRule[]) => rules.map((r) => ({ apiGroups: r.apiGroups, resources: r.resources, verbs: r.verbs, ...(r.resourceNames ? { resourceNames: r.resourceNames } : {}) }));
const operatorContainer = (objs: KubeManifest[]) => one(objs, 'Deployment').spec.template.spec.containers.find((c: { name: string }) => c.name === 'operator');

describe('helm lint and template', () => {
  it.each(Object.entries(VALUE_SETS))('lints and renders with values "%s"', async (_, values) => {
    const lint = await helm(['lint', '--strict', CHART_DIR, '--namespace', RELEASE_NS, ...valueArgs(values)]);
    expect(lint.code, lint.stdout + lint.stderr).toBe(0);
    const objs = await renderChart(values);
    for (const kind of ['Deployment', 'Service', 'MutatingWebhookConfiguration', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']) expect(find(objs, kind), kind).toHaveLength(1);
    for (const o of objs) {
      expect(o.apiVersion, JSON.stringify(o.metadata)).toBeTruthy();
      expect(o.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    }
    // Namespaced objects go to the release namespace; cluster-scoped ones carry none.
    const clusterScoped = new Set(['CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration']);
    for (const o of objs) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(clusterScoped.has(o.kind) ? undefined : RELEASE_NS);
  });

  it.each([
    ['an unknown failure policy', { webhook: { failurePolicy: 'Maybe' } }, /failurePolicy/],
    ['a key the chart does not know', { webhook: { failurPolicy: 'Ignore' } }, /additional propert/],
    ['a native-sidecar mode that does not exist', { injection: { nativeSidecar: 'sometimes' } }, /nativeSidecar/],
    ['the same port for proxy and admin', { injection: { proxyPort: 4142 } }, /proxyPort and injection.adminPort must differ/],
    ['a Redis URL that is not one', { injection: { redisURL: 'http://redis:6379' } }, /redisURL/],
    ['a timeout beyond what the API server allows', { webhook: { timeoutSeconds: 31 } }, /timeoutSeconds/],
    ['billing compared over more days than the operator keeps', { billing: { days: 9 } }, /days/],
    ['an admin key Secret name that is not one', { billing: { adminKeySecret: { name: 'Admin Key', key: 'adminKey' } } }, /name/],
    ['a disruption budget that would block every drain', { replicaCount: 1 }, /minAvailable \(1\) must be below replicaCount \(1\)/],
    ['no ServiceAccount name when the chart does not make one', { serviceAccount: { create: false } }, /serviceAccount.name is required/],
  ])('refuses %s', async (_, values, message) => {
    const r = await helm(['template', 'ai-envelope', CHART_DIR, ...valueArgs(values)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
});

describe('RBAC', () => {
  it.each(Object.entries(VALUE_SETS))('grants exactly the rules of operator/rbac.ts and operator/webhook/rbac.ts (values "%s")', async (_, values) => {
    const objs = await renderChart(values);
    const cluster = one(objs, 'ClusterRole');
    const role = one(objs, 'Role');
    expect(cluster.metadata.name).toBe(ROLE_NAME);
    expect(cluster.rules).toEqual(normalise([...CLUSTER_RULES, ...WEBHOOK_CLUSTER_RULES]));
    const adminKeySecret = (values as { billing?: { adminKeySecret?: { name: string } } }).billing?.adminKeySecret?.name;
    expect(role.rules).toEqual(normalise([...NAMESPACE_RULES, ...WEBHOOK_NAMESPACE_RULES, ...(adminKeySecret ? billingRules(adminKeySecret) : [])]));
    for (const rule of [...cluster.rules, ...role.rules] as PolicyRule[]) {
      for (const field of [rule.apiGroups, rule.resources, rule.verbs, rule.resourceNames ?? []]) expect(field).not.toContain('*');
    }
    // The names those rules allow are the names the operator uses and the chart renders.
    expect(one(objs, 'MutatingWebhookConfiguration').metadata.name).toBe(WEBHOOK_CONFIG_NAME);
    expect(role.rules.some((r: PolicyRule) => r.resourceNames?.includes(LEASE_NAME))).toBe(true);
    expect(role.rules.some((r: PolicyRule) => r.resourceNames?.includes(TLS_SECRET_NAME))).toBe(true);
    // Both bindings name the ServiceAccount the Deployment runs as.
    const sa = one(objs, 'Deployment').spec.template.spec.serviceAccountName;
    for (const b of [one(objs, 'ClusterRoleBinding'), one(objs, 'RoleBinding')]) {
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: sa, namespace: RELEASE_NS }]);
      expect(b.roleRef.name).toBe(ROLE_NAME);
    }
    expect(find(objs, 'ServiceAccount').map((s) => s.metadata.name)).toEqual(values === VALUE_SETS.clusterIssuer ? [] : [sa]);
  });
});

describe('CRDs', () => {
  it.each(chartCrdTemplates().map((t) => [t.name, t] as const))('the chart template %s is what crds/generate.ts makes (regenerate: npx node crds/generate.ts)', (name, t) => {
    expect(readFileSync(join(ROOT, 'crds', CHART_CRD_DIR, name), 'utf8')).toBe(t.text);
  });

  it('renders the objects of crds/*.yaml, kept on uninstall unless crds.keep is false, and none without crds.install', async () => {
    const byName = (a: KubeManifest, b: KubeManifest) => a.metadata.name.localeCompare(b.metadata.name);
    const expected = crdFiles().map((f) => parse(readFileSync(join(ROOT, 'crds', f.name), 'utf8')) as KubeManifest).sort(byName);
    const kept = find(await renderChart({}), 'CustomResourceDefinition').sort(byName);
    expect(kept.map((c) => c.metadata.annotations)).toEqual(expected.map(() => ({ 'helm.sh/resource-policy': 'keep' })));
    const strip = (c: KubeManifest) => ({ ...c, metadata: { ...c.metadata, annotations: undefined } });
    expect(kept.map(strip)).toEqual(expected.map(strip));
    const notKept = find(await renderChart({ crds: { keep: false } }), 'CustomResourceDefinition').sort(byName);
    expect(notKept).toEqual(expected);
    expect(find(await renderChart({ crds: { install: false } }), 'CustomResourceDefinition')).toEqual([]);
  });
});

describe('the operator Deployment', () => {
  it('runs 2 replicas spread across nodes, locked down, probed on the metrics port, with the operator runtime flags', async () => {
    const objs = await renderChart({});
    const d = one(objs, 'Deployment');
    const pod = d.spec.template.spec;
    const c = operatorContainer(objs);
    expect(d.spec.replicas).toBe(2);
    expect(pod.topologySpreadConstraints).toEqual([expect.objectContaining({ topologyKey: 'kubernetes.io/hostname', maxSkew: 1, labelSelector: { matchLabels: d.spec.selector.matchLabels } })]);
    const env = Object.fromEntries(c.env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]));
    expect(env.NODE_OPTIONS).toBe(OPERATOR_NODE_OPTIONS);
    expect(env.POD_NAMESPACE).toEqual({ fieldRef: { fieldPath: 'metadata.namespace' } });
    const metricsPort = c.ports.find((p: { name: string }) => p.name === 'metrics').containerPort;
    expect(c.args).toContain(`--metrics-port=${metricsPort}`);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, privileged: false, capabilities: { drop: ['ALL'] } });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    // The numeric user the image declares, so runAsNonRoot holds without reading /etc/passwd.
    expect(`${pod.securityContext.runAsUser}:${pod.securityContext.runAsGroup}`).toBe(imageCommand().user);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    // The Service and the PodDisruptionBudget select exactly these pods.
    const labels = d.spec.template.metadata.labels;
    const svc = one(objs, 'Service');
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(labels[k]).toBe(v);
    expect(svc.spec.ports.find((p: { name: string }) => p.name === 'webhook')).toMatchObject({ port: 443, targetPort: 'webhook' });
    expect(one(objs, 'PodDisruptionBudget').spec).toEqual({ minAvailable: 1, selector: { matchLabels: d.spec.selector.matchLabels } });
  });

  it.each(Object.entries(VALUE_SETS))('passes arguments and AI_ENVELOPE_INJECT that the real CLI accepts (values "%s")', async (_, values) => {
    const c = operatorContainer(await renderChart(values));
    const env = Object.fromEntries(c.env.filter((e: { value?: string }) => e.value !== undefined).map((e: { name: string; value: string }) => [e.name, e.value]));
    // Past flag checks, the CLI reads the kubeconfig: a missing one is an I/O error (exit 1), where a
    // flag it does not know or a bad AI_ENVELOPE_INJECT would be a usage error (exit 2).
    // The container sets no command: the image's ENTRYPOINT (the Dockerfile's) runs with the chart's args.
    expect(c.command).toBeUndefined();
    const argv = localCommand([...imageCommand().entrypoint, ...c.args, '--kubeconfig', join(ROOT, 'no-such-kubeconfig')]);
    const r = spawnSync(argv[0] as string, argv.slice(1), { env: { PATH: process.env.PATH, POD_NAMESPACE: RELEASE_NS, AI_ENVELOPE_INJECT: env.AI_ENVELOPE_INJECT }, encoding: 'utf8', timeout: 20_000 });
    expect(r.stderr).toMatch(/no-such-kubeconfig/);
    expect(r.status).toBe(1);
    expect(c.args[0]).toBe('operator');
  });

  it('names the webhook Service in the serving certificate the operator makes', async () => {
    for (const release of ['ai-envelope', 'platform']) {
      const objs = await renderChart({}, { release });
      const c = operatorContainer(objs);
      const svc = one(objs, 'Service').metadata.name;
      expect(c.args).toContain(`--webhook-service=${svc}`);
      expect(c.args).toContain(`--webhook-config=${WEBHOOK_CONFIG_NAME}`);
      expect(one(objs, 'MutatingWebhookConfiguration').webhooks[0].clientConfig.service).toEqual({ name: svc, namespace: RELEASE_NS, path: WEBHOOK_PATH, port: 443 });
    }
  });

  it('gives the injected sidecar the image, ports and native-sidecar mode of the values', async () => {
    const c = operatorContainer(await renderChart(VALUE_SETS.noKeep as Record<string, unknown>));
    expect(c.image).toBe('registry.example.com/ai-envelope:0.1.1');
    expect(c.args).toEqual(expect.arrayContaining(['--sidecar-image=registry.example.com/ai-envelope:0.1.1', '--sidecar-proxy-port=5151', '--sidecar-admin-port=5152', '--native-sidecar=never']));
    const inject = JSON.parse(c.env.find((e: { name: string }) => e.name === 'AI_ENVELOPE_INJECT').value);
    expect(inject).toMatchObject({ imagePullPolicy: 'Always', readyWaitSeconds: 60 });
    const other = operatorContainer(await renderChart(VALUE_SETS.everything as Record<string, unknown>));
    expect(other.args).toEqual(expect.arrayContaining(['--sidecar-image=registry.example.com/ai-envelope:0.1.0-sidecar', '--native-sidecar=always']));
  });
});

describe('the MutatingWebhookConfiguration', () => {
  it('selects labelled pods outside kube-system and the release namespace, reinvokes, fails closed by default, answers fast', async () => {
    const objs = await renderChart({});
    const cfg = one(objs, 'MutatingWebhookConfiguration');
    expect(cfg.webhooks).toHaveLength(1);
    const w = cfg.webhooks[0];
    expect(w.name).toBe(WEBHOOK_NAME);
    expect(w.objectSelector).toEqual({ matchLabels: { [INJECT_LABEL]: 'true' } });
    expect(w.namespaceSelector).toEqual({ matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', RELEASE_NS] }] });
    expect(w.reinvocationPolicy).toBe('IfNeeded');
    expect(w.failurePolicy).toBe('Fail');
    expect(w.sideEffects).toBe('None');
    expect(w.timeoutSeconds).toBeLessThanOrEqual(10);
    expect(w.rules).toEqual([{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
    // No caBundle in the chart: the operator writes it, and an upgrade must not blank it.
    expect(w.clientConfig.caBundle).toBeUndefined();
    expect(cfg.metadata.annotations).toBeUndefined();

    const other = one(await renderChart(VALUE_SETS.everything as Record<string, unknown>), 'MutatingWebhookConfiguration').webhooks[0];
    expect(other.failurePolicy).toBe('Ignore');
    expect(other.timeoutSeconds).toBe(3);
    expect(other.namespaceSelector.matchExpressions[0].values).toEqual(['kube-system', RELEASE_NS, 'monitoring', 'istio-system']);
  });

  it('with cert-manager: a Certificate for the Service names, mounted into the operator, and its CA injected into the caBundle', async () => {
    for (const values of [VALUE_SETS.everything, VALUE_SETS.clusterIssuer] as Array<Record<string, unknown>>) {
      const objs = await renderChart(values);
      const cfg = one(objs, 'MutatingWebhookConfiguration');
      const certs = find(objs, 'Certificate');
      const serving = certs.find((c) => !c.spec.isCA) as KubeManifest;
      expect(cfg.metadata.annotations).toEqual({ 'cert-manager.io/inject-ca-from': `${RELEASE_NS}/${serving.metadata.name}` });
      const svc = one(objs, 'Service').metadata.name;
      expect(serving.spec.dnsNames.sort()).toEqual(servingHosts(svc, RELEASE_NS).sort());
      const d = one(objs, 'Deployment');
      const c = operatorContainer(objs);
      const mount = c.volumeMounts.find((m: { name: string }) => m.name === 'webhook-tls');
      expect(c.args).toContain(`--webhook-cert-dir=${mount.mountPath}`);
      expect(d.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'webhook-tls').secret.secretName).toBe(serving.spec.secretName);
      const issuer = serving.spec.issuerRef;
      if (values === VALUE_SETS.clusterIssuer) {
        expect(issuer).toEqual({ name: 'corporate-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
        expect(find(objs, 'Issuer')).toEqual([]);
      } else {
        // Self-signed root, a CA certificate from it, and the Issuer that signs with that CA.
        expect(find(objs, 'Issuer').map((i) => i.metadata.name)).toContain(issuer.name);
        expect(certs.filter((c) => c.spec.isCA)).toHaveLength(1);
      }
    }
  });
});

describe('monitoring', () => {
  it('renders a ServiceMonitor for the operator, a PodMonitor for the sidecars, alert rules and a dashboard only when asked', async () => {
    const off = await renderChart({});
    for (const kind of ['ServiceMonitor', 'PodMonitor', 'PrometheusRule', 'ConfigMap']) expect(find(off, kind)).toEqual([]);
    const on = await renderChart(VALUE_SETS.everything as Record<string, unknown>);
    const sm = one(on, 'ServiceMonitor');
    const svc = one(on, 'Service');
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) expect(svc.metadata.labels?.[k]).toBe(v);
    expect(sm.spec.endpoints[0].port).toBe('metrics');
    expect(sm.metadata.labels?.release).toBe('prometheus');
    const pm = one(on, 'PodMonitor');
    expect(pm.spec.selector).toEqual({ matchLabels: { [INJECT_LABEL]: 'true' } });
    expect(pm.spec.podMetricsEndpoints[0].port).toBe('envelope-admin');
    const rules = one(on, 'PrometheusRule').spec.groups.flatMap((g: { rules: Array<{ alert: string }> }) => g.rules.map((r) => r.alert));
    expect(rules).toEqual(expect.arrayContaining(['AIEnvelopeBudgetWarning', 'AIEnvelopeBudgetCritical', 'AIEnvelopeErrorRatioHigh', 'AIEnvelopeCircuitOpen', 'AIEnvelopeConfigReloadFailed']));
    const dashboard = JSON.parse(one(on, 'ConfigMap').data['ai-envelope.json']);
    const titles = dashboard.panels.map((p: { title: string }) => p.title);
    expect(titles).toEqual(expect.arrayContaining(['Spend against budget', 'Tokens per second by type', 'Latency p50 / p95 by route', 'Errors by route']));
    expect(one(on, "ConfigMap").metadata.labels?.grafana_dashboard).toBe('1');
  });

  it('budget thresholds and the error ratio come from the values', async () => {
    const objs = await renderChart({ metrics: { prometheusRule: { enabled: true, budgetWarningRatio: 0.6, budgetCriticalRatio: 0.9, errorRatio: 0.2 } } });
    const rules = Object.fromEntries(one(objs, 'PrometheusRule').spec.groups.flatMap((g: { rules: Array<{ alert: string; expr: string }> }) => g.rules.map((r) => [r.alert, r.expr])));
    expect(rules.AIEnvelopeBudgetWarning).toMatch(/>= 0\.6\s*$/);
    expect(rules.AIEnvelopeBudgetCritical).toMatch(/>= 0\.9\s*$/);
    expect(rules.AIEnvelopeErrorRatioHigh).toMatch(/> 0\.2\s*$/);
  });
});

describe('examples/kubernetes', () => {
  it('validates: routes and budgets per environment, one Secret per environment with a fake key, a labelled Deployment', async () => {
    const dir = join(ROOT, 'examples/kubernetes');
    const r = spawnSync(process.execPath, [CLI, 'validate', '-f', dir], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/ok: 2 AIRoute\(s\), 2 AIBudget\(s\)/);
    const { exampleObjects } = await import('./examples.ts');
    const objs = exampleObjects();
    const secrets = find(objs, 'Secret');
    expect(secrets.map((s) => s.metadata.namespace).sort()).toEqual(['shop-prod', 'shop-staging']);
    for (const s of secrets) for (const v of Object.values(s.stringData as Record<string, string>)) expect(v).toMatch(/^sk-test-/);
    for (const d of find(objs, 'Deployment')) {
      expect(d.spec.template.metadata.labels[INJECT_LABEL]).toBe('true');
      // The app sets nothing for OpenAI itself: the injector does.
      for (const c of d.spec.template.spec.containers) expect((c.env ?? []).map((e: { name: string }) => e.name)).not.toContain('OPENAI_BASE_URL');
    }
    expect(readFileSync(join(dir, 'app/main.py'), 'utf8')).toMatch(/client = OpenAI\(\)\n/);
  });
});

describe('billing reconciliation', () => {
  it('is off by default: no billing Secret flag and no access to any Secret for it', async () => {
    const objs = await renderChart({});
    const c = operatorContainer(objs);
    expect(c.args.some((a: string) => a.startsWith('--billing-secret'))).toBe(false);
    expect(c.args).toContain('--billing-interval-seconds=3600');
    expect(one(objs, 'Role').rules.filter((r: PolicyRule) => r.resourceNames?.some((n) => n !== TLS_SECRET_NAME && n !== LEASE_NAME))).toEqual([]);
  });

  it('passes the admin key Secret and thresholds, grants get on that Secret alone, and alerts on the drift metric', async () => {
    const objs = await renderChart(VALUE_SETS.everything as Record<string, unknown>);
    const c = operatorContainer(objs);
    for (const a of ['--billing-secret=openai-admin', '--billing-secret-key=key', '--billing-interval-seconds=600', '--billing-days=3', '--billing-drift-ratio=0.1', '--billing-drift-usd=1']) expect(c.args).toContain(a);
    expect(one(objs, 'Role').rules).toContainEqual({ apiGroups: [''], resources: ['secrets'], resourceNames: ['openai-admin'], verbs: ['get'] });
    const rule = one(objs, 'PrometheusRule');
    const alert = rule.spec.groups.flatMap((g: { rules: Array<{ alert?: string; expr: string; for?: string }> }) => g.rules).find((r: { alert?: string }) => r.alert === 'AIEnvelopeBillingDrift');
    expect(alert.expr).toMatch(/abs\(ai_envelope_billing_drift_ratio\) >= 0\.1\s+and abs\(ai_envelope_billing_drift_usd\) >= 1\b/);
    expect(alert.for).toBe('2h');
  });
});
