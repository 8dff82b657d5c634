// Billing reconciliation end to end: a real sidecar process spends through the simulator, the
// operator adds its spend up per UTC day, reads the simulator's organization Costs endpoint with
// the admin key of a Secret, and writes what it found into the AIBudget's status, its gauges and
// Events: first no drift, then drift once the simulated bill holds more than the envelope counted,
// and finally, run without an admin key, that it is off.
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../simulator/index.ts';
import { syncConfigMapKey, type SyncedFile } from '../support/configmap-file.ts';
import { describeWithKube, startControlPlane, type ControlPlane } from '../support/kube.ts';
import { SecretVolume, startSidecarProcess, tempDir, type SidecarProcess } from '../support/sidecar-process.ts';
import { API, OPERATOR_NS, budget, create, createNamespace, eventsFor, eventually, get, installCRDs, list, metricValue, ok, route, startOperatorProcess, type OperatorProcess } from './support.ts';

const NS = 'shop';
const KEY = 'sk-test-billing-0123456789';
const ADMIN = 'sk-admin-test-billing';
const PROJECT = 'proj_shop_prod';

describeWithKube('operator: spend reconciled with OpenAI billing', () => {
  let cp: ControlPlane;
  let op: OperatorProcess | undefined;
  let sim: Simulator;
  let sidecar: SidecarProcess | undefined;
  let sync: SyncedFile | undefined;
  const dir = tempDir('operator-billing');

  const configMap = async () => (await list(cp, `/api/v1/namespaces/${NS}/configmaps?labelSelector=ai-envelope.dev/role=sidecar-config`))[0] as { data: Record<string, string> } | undefined;
  const shop = async () => (await get(cp, `${API}/namespaces/${NS}/aibudgets/shop`)) as { status?: { spentUSD?: string; dailySpend?: Array<{ date: string; spentUSD: number }>; reconciliation?: Record<string, any> } } | undefined;
  const today = () => new Date().toISOString().slice(0, 10);
  const billingOperator = () =>
    startOperatorProcess({
      kubeconfig: cp.kubeconfigPath,
      args: ['--spend-interval-seconds', '1', '--lease-seconds', '4', '--billing-secret', 'openai-admin', '--billing-url', sim.url, '--billing-interval-seconds', '2', '--billing-days', '3', '--billing-drift-ratio', '0.05', '--billing-drift-usd', '0.000001'],
    });

  beforeAll(async () => {
    sim = await startSimulator({ apiKeys: [KEY], adminKeys: [ADMIN], projects: { [KEY]: PROJECT } });
    cp = await startControlPlane();
    await installCRDs(cp);
    await createNamespace(cp, OPERATOR_NS);
    await createNamespace(cp, NS);
    await create(cp, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'openai', namespace: NS }, stringData: { apiKey: KEY } } as never);
    await create(cp, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'openai-admin', namespace: OPERATOR_NS }, stringData: { adminKey: ADMIN } } as never);
    op = await billingOperator();
  }, 90_000);

  afterAll(async () => {
    sync?.stop();
    await sidecar?.stop('SIGKILL');
    await op?.stop();
    await cp?.stop();
    await sim?.close();
  });

  it('finds no drift when the bill matches the sidecars\' spend, then drift (status, gauges, Warning Event) when it does not', async () => {
    await create(cp, route(NS, 'assistant', {
      podSelector: { matchLabels: { app: 'shop' } },
      upstream: { baseURL: sim.url, secretRef: { name: 'openai', key: 'apiKey' } },
      model: { default: 'gpt-4.1-mini', allowed: ['gpt-4.1-mini'] },
      retry: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 10 },
    }));
    await create(cp, budget(NS, 'shop', { limitUSD: 10, onExhausted: 'block', reconcile: { projectId: PROJECT } }));
    // A budget with no project is left out, and says how to include it.
    await create(cp, budget(NS, 'unlinked', { limitUSD: 10, routeSelector: { matchLabels: { none: 'x' } } }));
    const first = await eventually('ConfigMap', configMap);

    // The kubelet's part: the ConfigMap as a file in the pod, and the Pod running with its admin port.
    sync = syncConfigMapKey(join(dir, 'config', 'config.json'), first.data['config.json'] as string, async () => (await configMap())?.data['config.json']);
    const configFile = sync.path;
    const secrets = new SecretVolume(join(dir, 'secrets'));
    secrets.write('openai', { apiKey: KEY });
    sidecar = await startSidecarProcess({ config: configFile, secretsDir: secrets.root });
    await create(cp, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'shop-a', namespace: NS, labels: { app: 'shop', 'ai-envelope.dev/inject': 'true' } },
      spec: { containers: [{ name: 'app', image: 'app:1' }, { name: 'envelope', image: 'ai-envelope:1', ports: [{ name: 'envelope-admin', containerPort: sidecar.adminPort }] }] },
    } as never);
    await ok(cp.request('PATCH', `/api/v1/namespaces/${NS}/pods/shop-a/status`, { body: { status: { phase: 'Running', podIP: '127.0.0.1' } }, headers: { 'content-type': 'application/merge-patch+json' } }));

    const openai = new OpenAI({ apiKey: 'sk-test-app', baseURL: sidecar.url, maxRetries: 0 });
    for (let i = 0; i < 4; i++) await openai.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: `order ${i} has not arrived` }] });

    // The simulator billed exactly what the sidecar counted: Ok, with today's figures side by side.
    const matched = await eventually(
      'reconciliation Ok with today\'s spend',
      async () => {
        const s = (await shop())?.status;
        const day = s?.reconciliation?.days?.find((d: { date: string }) => d.date === today());
        return s?.reconciliation?.state === 'Ok' && day && day.estimatedUSD > 0 && Number(s.spentUSD) > 0 && day.estimatedUSD === Math.round(Number(s.spentUSD) * 1e6) / 1e6 && s;
      },
      30_000,
    );
    const okDay = matched.reconciliation!.days.find((d: { date: string }) => d.date === today());
    expect(okDay).toMatchObject({ billedUSD: okDay.estimatedUSD, driftUSD: 0, driftRatio: 0 });
    expect(matched.reconciliation).toMatchObject({ projectId: PROJECT, reason: 'WithinThreshold' });
    expect(matched.dailySpend?.[0]).toMatchObject({ date: today() });
    expect(matched.dailySpend?.[0]?.spentUSD).toBeCloseTo(Number(matched.spentUSD), 9);
    const labels = { budget_namespace: NS, budget: 'shop', project: PROJECT };
    const text = await op!.metrics();
    expect(text).toContain('ai_envelope_billing_drift_usd{budget_namespace="shop",budget="shop",project="proj_shop_prod"}');
    expect(metricValue(text, 'ai_envelope_billing_drift_usd', labels)).toBe(0);
    expect(metricValue(text, 'ai_envelope_billing_checks_total', { result: 'success' })).toBeGreaterThan(0);
    expect((await eventsFor(cp, NS, 'shop')).filter((e) => e.reason === 'BillingDrift')).toEqual([]);
    const unlinked = await eventually('unlinked budget status', async () => (await get(cp, `${API}/namespaces/${NS}/aibudgets/unlinked`))?.status?.reconciliation);
    expect(unlinked).toMatchObject({ state: 'Disabled', reason: 'NoProjectId' });
    // The admin key never shows up in what the operator writes or says.
    expect(op!.output()).not.toContain(ADMIN);
    expect(JSON.stringify(matched)).not.toContain(ADMIN);

    // OpenAI bills more than went through the envelope (a call made around it, say).
    sim.bill({ projectId: PROJECT, amountUSD: 0.002 });
    const drifted = await eventually('reconciliation Drift', async () => {
      const s = (await shop())?.status;
      return s?.reconciliation?.state === 'Drift' && s;
    }, 30_000);
    const day = drifted.reconciliation!.days.find((d: { date: string }) => d.date === today());
    expect(day.driftUSD).toBeCloseTo(0.002, 6);
    expect(day.billedUSD).toBeCloseTo(day.estimatedUSD + 0.002, 6);
    expect(day.driftRatio).toBeGreaterThan(0.05);
    expect(drifted.reconciliation!.message).toContain(`${today()}: OpenAI billed`);
    const warning = await eventually('BillingDrift Warning', async () => (await eventsFor(cp, NS, 'shop')).find((e) => e.reason === 'BillingDrift'));
    expect(warning.type).toBe('Warning');
    expect(warning.message).toContain(PROJECT);
    expect(metricValue(await op!.metrics(), 'ai_envelope_billing_drift_usd', labels)).toBeCloseTo(0.002, 6);
    expect(metricValue(await op!.metrics(), 'ai_envelope_billing_drift_ratio', labels)).toBeGreaterThan(0.05);
    // Rounds go on, but the same drifting day is warned about once.
    const rounds = () => op!.logs().filter((l) => l.event === 'billing_reconciled' && l.state === 'Drift').length;
    const seen = rounds();
    await eventually('two more rounds', async () => rounds() >= seen + 2, 15_000);
    expect((await eventsFor(cp, NS, 'shop')).filter((e) => e.reason === 'BillingDrift')).toHaveLength(1);
  }, 120_000);

  it('without an admin key, reconciliation is off and says so in the log and the status', async () => {
    await op?.stop();
    op = await startOperatorProcess({ kubeconfig: cp.kubeconfigPath, args: ['--spend-interval-seconds', '1', '--lease-seconds', '4'] });
    const said = await op.waitForLog((l) => l.event === 'billing_reconciliation_disabled');
    expect(said.reason).toBe('NoAdminKey');
    const rec = await eventually('reconciliation Disabled', async () => {
      const r = (await shop())?.status?.reconciliation;
      return r?.state === 'Disabled' && r;
    }, 30_000);
    expect(rec).toMatchObject({ reason: 'NoAdminKey' });
    expect(rec.message).toMatch(/admin key/);
    expect(op.logs().filter((l) => l.event === 'billing_reconciliation_disabled')).toHaveLength(1);
    expect(metricValue(await op.metrics(), 'ai_envelope_billing_checks_total')).toBe(0);
  }, 60_000);

  it('with a key that is not an admin key, says in the status that the bill cannot be read, and why', async () => {
    await op?.stop();
    await ok(cp.request('PATCH', `/api/v1/namespaces/${OPERATOR_NS}/secrets/openai-admin`, { body: { stringData: { adminKey: KEY } }, headers: { 'content-type': 'application/merge-patch+json' } }));
    op = await billingOperator();
    const rec = await eventually('reconciliation Error', async () => {
      const r = (await shop())?.status?.reconciliation;
      return r?.state === 'Error' && r;
    }, 30_000);
    expect(rec.reason).toBe('CostsUnavailable');
    expect(rec.message).toMatch(/organization\/costs answered 401: .*insufficient permissions/);
    expect(rec.message).not.toContain(KEY);
    expect(rec.projectId).toBe(PROJECT);
    expect(metricValue(await op.metrics(), 'ai_envelope_billing_checks_total', { result: 'error' })).toBeGreaterThan(0);
  }, 60_000);
});
