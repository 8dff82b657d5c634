// Spend across replicas: two real sidecar processes serve one route behind one blocking budget.
// The operator reads each one's /usage (found through the Pod objects, as a kubelet would report
// them), adds the spend up into the AIBudget's status and pushes it into the ConfigMap, which a
// small kubelet stand-in copies to the sidecars' config files; then both replicas block.
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startSimulator, type Simulator } from '../../simulator/index.ts';
import { syncConfigMapKey, type SyncedFile } from '../support/configmap-file.ts';
import { describeWithKube, startControlPlane, type ControlPlane } from '../support/kube.ts';
import { SecretVolume, startSidecarProcess, tempDir, type SidecarProcess } from '../support/sidecar-process.ts';
import { API, OPERATOR_NS, budget, condition, create, createNamespace, eventsFor, eventually, get, installCRDs, list, ok, route, startOperatorProcess, type OperatorProcess } from './support.ts';

const NS = 'chat';
const KEY = 'sk-test-spend-0123456789';

interface Usage {
  budgets: Record<string, { spent_usd: number; refused?: number }>;
}

describeWithKube('operator: spend from every sidecar into the budget and back', () => {
  let cp: ControlPlane;
  let op: OperatorProcess;
  let sim: Simulator;
  const sidecars: SidecarProcess[] = [];
  let sync: SyncedFile | undefined;
  const dir = tempDir('operator-spend');

  const configMap = async () => (await list(cp, `/api/v1/namespaces/${NS}/configmaps?labelSelector=ai-envelope.dev/role=sidecar-config`))[0] as { data: Record<string, string> } | undefined;
  const usage = async (s: SidecarProcess) => (await (await fetch(`${s.adminUrl}/usage`)).json()) as Usage;
  const spentOf = (u: Usage) => Object.entries(u.budgets).find(([k]) => k.startsWith(`${NS}/tight@`))?.[1]?.spent_usd ?? 0;

  beforeAll(async () => {
    sim = await startSimulator({ apiKeys: [KEY] });
    cp = await startControlPlane();
    await installCRDs(cp);
    await createNamespace(cp, OPERATOR_NS);
    await createNamespace(cp, NS);
    await create(cp, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'openai', namespace: NS }, stringData: { apiKey: KEY } } as never);
    op = await startOperatorProcess({ kubeconfig: cp.kubeconfigPath, args: ['--spend-interval-seconds', '1', '--lease-seconds', '4'] });
  }, 90_000);

  afterAll(async () => {
    sync?.stop();
    await Promise.all(sidecars.map((s) => s.stop('SIGKILL')));
    await op?.stop();
    await cp?.stop();
    await sim?.close();
  });

  it('adds up two sidecars, writes the budget status, and makes both block', async () => {
    await create(cp, route(NS, 'assistant', {
      podSelector: { matchLabels: { app: 'chat' } },
      upstream: { baseURL: sim.url, secretRef: { name: 'openai', key: 'apiKey' } },
      model: { default: 'gpt-4.1-mini', allowed: ['gpt-4.1-mini'] },
      limits: { maxOutputTokens: 20 },
      retry: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 10 },
    }));
    // About a dozen calls' worth at the reserved worst case.
    await create(cp, budget(NS, 'tight', { limitUSD: 0.0005, onExhausted: 'block' }));
    const first = await eventually('ConfigMap', configMap);

    // The kubelet's part: the ConfigMap's key as a file in each pod, kept in sync.
    sync = syncConfigMapKey(join(dir, 'config', 'config.json'), first.data['config.json'] as string, async () => (await configMap())?.data['config.json']);
    const configFile = sync.path;
    const secrets = new SecretVolume(join(dir, 'secrets'));
    secrets.write('openai', { apiKey: KEY });

    for (const name of ['chat-a', 'chat-b']) {
      const s = await startSidecarProcess({ config: configFile, secretsDir: secrets.root });
      sidecars.push(s);
      await create(cp, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: NS, labels: { app: 'chat', 'ai-envelope.dev/inject': 'true' } },
        spec: { containers: [{ name: 'app', image: 'app:1' }, { name: 'envelope', image: 'ai-envelope:1', ports: [{ name: 'envelope-admin', containerPort: s.adminPort }] }] },
      } as never);
      await ok(cp.request('PATCH', `/api/v1/namespaces/${NS}/pods/${name}/status`, { body: { status: { phase: 'Running', podIP: '127.0.0.1' } }, headers: { 'content-type': 'application/merge-patch+json' } }));
    }
    const [a, b] = sidecars as [SidecarProcess, SidecarProcess];
    await eventually('sidecars: 2', async () => (await get(cp, `${API}/namespaces/${NS}/airoutes/assistant`))?.status?.sidecars === 2);

    const call = (s: SidecarProcess) =>
      new OpenAI({ apiKey: 'sk-test-app', baseURL: s.url, maxRetries: 0 }).chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'hello there' }] }).then(
        () => 'ok' as const,
        (err: InstanceType<typeof OpenAI.APIError>) => err,
      );

    for (let i = 0; i < 3; i++) expect(await call(b)).toBe('ok');
    // Without Redis the replicas learn each other's spend one scrape later: let A learn B's first,
    // so this test is about the sum, not about the documented overspend bound.
    const spentB = spentOf(await usage(b));
    const pushed = await eventually('B spend pushed into the ConfigMap', async () => {
      const cfg = parse((await configMap())?.data['config.json'] ?? '') as { version: string; budgets: Array<{ name: string; reported?: { spentUSD: number } }> };
      return Math.abs((cfg.budgets.find((x) => x.name === 'tight')?.reported?.spentUSD ?? 0) - spentB) < 1e-9 && cfg;
    });
    await a.waitForLog((l) => l.event === 'config_loaded' && l.version === pushed.version);
    // A alone runs the budget out; B's spend counts against it too.
    let refused: InstanceType<typeof OpenAI.APIError> | undefined;
    for (let i = 0; i < 100 && !refused; i++) {
      const r = await call(a);
      if (r !== 'ok') refused = r;
    }
    expect(refused?.status).toBe(429);
    expect(refused?.code).toBe('budget_exhausted');

    const total = spentOf(await usage(a)) + spentOf(await usage(b));
    expect(spentOf(await usage(b))).toBeGreaterThan(0);
    const status = await eventually('budget status with both sidecars spend', async () => {
      const o = await get(cp, `${API}/namespaces/${NS}/aibudgets/tight`);
      return Math.abs(Number(o?.status?.spentUSD) - total) < 1e-9 && condition(o, 'Exhausted')?.status === 'True' && o;
    });
    expect(total).toBeLessThanOrEqual(0.0005);
    expect(Number(status.status.remainingUSD)).toBeCloseTo(0.0005 - total, 9);
    expect(status.status.sidecarSpend.map((p: { pod: string }) => p.pod).sort()).toEqual(['chat-a', 'chat-b']);
    expect(condition(status, 'Exhausted')?.reason).toBe('CallsRefused');
    await eventually('BudgetExhausted event', async () => (await eventsFor(cp, NS, 'tight')).some((e) => e.reason === 'BudgetExhausted' && e.type === 'Warning'));

    // Pushed back: the ConfigMap carries the total, and B (which never reached the limit itself) blocks.
    const reported = await eventually('spend in the ConfigMap', async () => {
      const cfg = parse((await configMap())?.data['config.json'] ?? '') as { budgets: Array<{ name: string; reported?: { spentUSD: number } }> };
      const r = cfg.budgets.find((x) => x.name === 'tight')?.reported;
      return r && Math.abs(r.spentUSD - total) < 1e-9 && r;
    });
    expect(reported.spentUSD).toBeGreaterThan(spentOf(await usage(b)));
    const fromB = await eventually('B blocks', async () => {
      const r = await call(b);
      return r !== 'ok' && r;
    });
    expect(fromB.code).toBe('budget_exhausted');

    // A fresh replica (no state of its own) starts from the operator's total and blocks at once.
    const c = await startSidecarProcess({ config: configFile, secretsDir: secrets.root });
    sidecars.push(c);
    const fromC = await call(c);
    expect(fromC).not.toBe('ok');
    expect((fromC as InstanceType<typeof OpenAI.APIError>).code).toBe('budget_exhausted');
    // Upstream saw only the calls that were allowed.
    expect(sim.requests.length).toBeGreaterThan(3);
  }, 90_000);
});
