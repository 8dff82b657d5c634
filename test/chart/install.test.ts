// The chart against a real API server: every rendered object of every values set through a
// server-side dry run with strict field validation, then `helm install`, `helm upgrade` (which must
// update the CRDs and leave the caBundle the operator wrote) and `helm uninstall` (which keeps the
// CRDs unless crds.keep is false).
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WEBHOOK_CONFIG_NAME } from '../../operator/webhook/rbac.ts';
import { describeWithKube, startControlPlane, type ControlPlane } from '../support/kube.ts';
import { createNamespace, eventually, get, ok } from '../operator/support.ts';
import { CHART_DIR, RELEASE_NS, VALUE_SETS, helm, renderChart, valueArgs, type KubeManifest } from './support.ts';

const CRD_API = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
const MWC = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIG_NAME}`;

/** Where each kind the chart renders is created: API path prefix, plural, namespaced. */
const RESOURCES: Record<string, { api: string; plural: string; namespaced: boolean }> = {
  CustomResourceDefinition: { api: '/apis/apiextensions.k8s.io/v1', plural: 'customresourcedefinitions', namespaced: false },
  ServiceAccount: { api: '/api/v1', plural: 'serviceaccounts', namespaced: true },
  Service: { api: '/api/v1', plural: 'services', namespaced: true },
  ConfigMap: { api: '/api/v1', plural: 'configmaps', namespaced: true },
  ClusterRole: { api: '/apis/rbac.authorization.k8s.io/v1', plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { api: '/apis/rbac.authorization.k8s.io/v1', plural: 'clusterrolebindings', namespaced: false },
  Role: { api: '/apis/rbac.authorization.k8s.io/v1', plural: 'roles', namespaced: true },
  RoleBinding: { api: '/apis/rbac.authorization.k8s.io/v1', plural: 'rolebindings', namespaced: true },
  Deployment: { api: '/apis/apps/v1', plural: 'deployments', namespaced: true },
  PodDisruptionBudget: { api: '/apis/policy/v1', plural: 'poddisruptionbudgets', namespaced: true },
  MutatingWebhookConfiguration: { api: '/apis/admissionregistration.k8s.io/v1', plural: 'mutatingwebhookconfigurations', namespaced: false },
  ServiceMonitor: { api: '/apis/monitoring.coreos.com/v1', plural: 'servicemonitors', namespaced: true },
  PodMonitor: { api: '/apis/monitoring.coreos.com/v1', plural: 'podmonitors', namespaced: true },
  PrometheusRule: { api: '/apis/monitoring.coreos.com/v1', plural: 'prometheusrules', namespaced: true },
  Certificate: { api: '/apis/cert-manager.io/v1', plural: 'certificates', namespaced: true },
  Issuer: { api: '/apis/cert-manager.io/v1', plural: 'issuers', namespaced: true },
};

/**
 * The Prometheus Operator's and cert-manager's kinds, registered so the API server serves them.
 * Their real CRDs are large and not part of this project: these accept any spec, so the dry run
 * checks those objects' group, version, kind, scope and metadata, not their fields (the unit tests
 * in chart.test.ts check what the chart puts there).
 */
function thirdPartyCRD(group: string, kind: string, plural: string): KubeManifest {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } } } }],
    },
  };
}

async function established(cp: ControlPlane, name: string): Promise<Record<string, any>> {
  return eventually(`CRD ${name} established`, async () => {
    const crd = await get(cp, `${CRD_API}/${name}`);
    return (crd?.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Established' && c.status === 'True') ? crd : undefined;
  });
}

describeWithKube('the chart on a real API server', () => {
  let cp: ControlPlane;
  let home: string;

  beforeAll(async () => {
    // Strict field validation (alpha in 1.24) makes a misspelt or misplaced field an error, not a silent drop.
    cp = await startControlPlane({ apiserverArgs: ['--feature-gates=ServerSideFieldValidation=true'] });
    home = mkdtempSync(join(tmpdir(), 'ai-envelope-helm-home-'));
    await createNamespace(cp, RELEASE_NS);
    const third = [
      thirdPartyCRD('monitoring.coreos.com', 'ServiceMonitor', 'servicemonitors'),
      thirdPartyCRD('monitoring.coreos.com', 'PodMonitor', 'podmonitors'),
      thirdPartyCRD('monitoring.coreos.com', 'PrometheusRule', 'prometheusrules'),
      thirdPartyCRD('cert-manager.io', 'Certificate', 'certificates'),
      thirdPartyCRD('cert-manager.io', 'Issuer', 'issuers'),
    ];
    for (const crd of third) await ok(cp.request('POST', CRD_API, { body: crd }));
    for (const crd of third) await established(cp, crd.metadata.name);
  }, 90_000);

  afterAll(async () => {
    await cp?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  }, 30_000);

  it.each(Object.entries(VALUE_SETS))('accepts every object of values "%s" in a server-side dry run', async (_, values) => {
    const objs = await renderChart(values);
    const refused: string[] = [];
    for (const o of objs) {
      const r = RESOURCES[o.kind];
      expect(r, `no API path known for ${o.kind}`).toBeDefined();
      const path = `${r!.api}${r!.namespaced ? `/namespaces/${o.metadata.namespace}` : ''}/${r!.plural}?dryRun=All&fieldValidation=Strict`;
      const res = await cp.request('POST', path, { body: o });
      if (res.status !== 201) refused.push(`${o.kind}/${o.metadata.name}: ${res.status} ${JSON.stringify(res.body).slice(0, 400)}`);
    }
    expect(refused).toEqual([]);
  });

  it('the same dry run refuses a misspelt field, so an accepted object has none', async () => {
    const d = (await renderChart({})).find((o) => o.kind === 'Deployment') as KubeManifest;
    d.spec.template.spec.containers[0].readinesProbe = d.spec.template.spec.containers[0].readinessProbe;
    const res = await cp.request('POST', `/apis/apps/v1/namespaces/${RELEASE_NS}/deployments?dryRun=All&fieldValidation=Strict`, { body: d });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toMatch(/readinesProbe/);
  });

  it('installs, upgrades its CRDs and settings while keeping the caBundle, and keeps the CRDs on uninstall', async () => {
    const kubeconfig = cp.kubeconfigPath;
    // The release as an older chart version made it: the AIRoute CRD without its Sidecars column.
    const old = mkdtempSync(join(tmpdir(), 'ai-envelope-chart-old-'));
    try {
      cpSync(CHART_DIR, old, { recursive: true });
      const crdFile = join(old, 'templates/crds/ai-envelope.dev_airoutes.yaml');
      const text = readFileSync(crdFile, 'utf8');
      const column = /\n {8}- name: Sidecars\n( {10}.*\n){3}/;
      expect(text).toMatch(column);
      writeFileSync(crdFile, text.replace(column, '\n'));
      writeFileSync(join(old, 'Chart.yaml'), readFileSync(join(old, 'Chart.yaml'), 'utf8').replace(/^version: .*$/m, 'version: 0.0.9'));

      const install = await helm(['install', 'ai-envelope', old, '--namespace', RELEASE_NS], { kubeconfig, home });
      expect(install.code, install.stderr).toBe(0);
      const columns = (crd: Record<string, any>) => crd.spec.versions[0].additionalPrinterColumns.map((c: { name: string }) => c.name);
      expect(columns(await established(cp, 'airoutes.ai-envelope.dev'))).not.toContain('Sidecars');
      const deployment = await get(cp, `/apis/apps/v1/namespaces/${RELEASE_NS}/deployments/ai-envelope`);
      expect(deployment?.spec.replicas).toBe(2);
      const cfg = await get(cp, MWC);
      expect(cfg?.webhooks[0].failurePolicy).toBe('Fail');

      // The operator writes the caBundle after the install (as its own field manager).
      cfg!.webhooks[0].clientConfig.caBundle = Buffer.from('-----BEGIN CERTIFICATE-----\nplaceholder\n-----END CERTIFICATE-----\n').toString('base64');
      await ok(cp.request('PUT', `${MWC}?fieldManager=ai-envelope`, { body: cfg }));

      const upgrade = await helm(['upgrade', 'ai-envelope', CHART_DIR, '--namespace', RELEASE_NS, ...valueArgs({ webhook: { failurePolicy: 'Ignore' } })], { kubeconfig, home });
      expect(upgrade.code, upgrade.stderr).toBe(0);
      // NOTES.txt: what was installed and the next steps.
      expect(upgrade.stdout).toMatch(/failurePolicy Ignore/);
      expect(upgrade.stdout).toMatch(/ai-envelope\.dev\/inject: "true"/);
      const crd = await get(cp, `${CRD_API}/airoutes.ai-envelope.dev`);
      expect(columns(crd!)).toContain('Sidecars');
      expect(crd?.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
      const after = await get(cp, MWC);
      expect(after?.webhooks[0].failurePolicy).toBe('Ignore');
      expect(after?.webhooks[0].clientConfig.caBundle).toBe(cfg!.webhooks[0].clientConfig.caBundle);

      const history = await helm(['history', 'ai-envelope', '--namespace', RELEASE_NS, '-o', 'json'], { kubeconfig, home });
      expect((JSON.parse(history.stdout) as Array<{ chart: string; status: string }>).map((h) => `${h.chart} ${h.status}`)).toEqual(['ai-envelope-0.0.9 superseded', 'ai-envelope-0.1.0 deployed']);

      const uninstall = await helm(['uninstall', 'ai-envelope', '--namespace', RELEASE_NS], { kubeconfig, home });
      expect(uninstall.code, uninstall.stderr).toBe(0);
      expect(await get(cp, `/apis/apps/v1/namespaces/${RELEASE_NS}/deployments/ai-envelope`)).toBeUndefined();
      expect(await get(cp, MWC)).toBeUndefined();
      // The CRDs, and with them every AIRoute and AIBudget, stay.
      for (const name of ['airoutes.ai-envelope.dev', 'aibudgets.ai-envelope.dev']) expect(await get(cp, `${CRD_API}/${name}`), name).toBeDefined();

      // A release with crds.keep=false takes its CRDs away with it.
      const again = await helm(['install', 'ai-envelope', CHART_DIR, '--namespace', RELEASE_NS, '--take-ownership', ...valueArgs({ crds: { keep: false } })], { kubeconfig, home });
      expect(again.code, again.stderr).toBe(0);
      expect((await get(cp, `${CRD_API}/aibudgets.ai-envelope.dev`))?.metadata.annotations?.['helm.sh/resource-policy']).toBeUndefined();
      const gone = await helm(['uninstall', 'ai-envelope', '--namespace', RELEASE_NS], { kubeconfig, home });
      expect(gone.code, gone.stderr).toBe(0);
      await eventually('CRDs deleted', async () => !(await get(cp, `${CRD_API}/aibudgets.ai-envelope.dev`)), 20_000);
    } finally {
      rmSync(old, { recursive: true, force: true });
    }
  }, 60_000);
});
