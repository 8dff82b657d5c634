// The operator as it runs in a cluster: as its ServiceAccount with exactly the rules of
// operator/rbac.ts (a missing permission fails here), two replicas with one leader and a
// hand-over when the leader dies or stops, and owned ConfigMaps garbage-collected by the
// kube-controller-manager when their routes go while no operator runs.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { rbacManifests, LEASE_NAME } from '../../operator/rbac.ts';
import { describeWithKube, startControlPlane, type ControlPlane } from '../support/kube.ts';
import { API, OPERATOR_NS, budget, condition, create, createNamespace, eventsFor, eventually, get, installCRDs, list, ok, route, startOperatorProcess, type OperatorProcess } from './support.ts';

const NS = 'team';
const SA = { namespace: OPERATOR_NS, name: 'ai-envelope-operator' };
const TOKEN = 'sa-token-operator-0123456789';
const LEASE_SECONDS = 4;

const spec = (app: string) => ({
  podSelector: { matchLabels: { app } },
  upstream: { baseURL: 'https://api.example.test/v1', secretRef: { name: 'openai' } },
});

const RBAC_PATHS: Record<string, (ns?: string) => string> = {
  ClusterRole: () => '/apis/rbac.authorization.k8s.io/v1/clusterroles',
  ClusterRoleBinding: () => '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
  Role: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`,
  RoleBinding: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
};

describeWithKube('operator in a cluster: RBAC, leader election, garbage collection', () => {
  let cp: ControlPlane;
  let kubeconfig: string;
  const operators: OperatorProcess[] = [];
  const start = async () => {
    const p = await startOperatorProcess({ kubeconfig, args: ['--lease-seconds', String(LEASE_SECONDS), '--spend-interval-seconds', '2'] });
    operators.push(p);
    return p;
  };
  const configMaps = async () => list(cp, `/api/v1/namespaces/${NS}/configmaps?labelSelector=ai-envelope.dev/role=sidecar-config`);
  const lease = () => get(cp, `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NS}/leases/${LEASE_NAME}`);
  /** Log lines that mean the API server refused the operator something. */
  const refusals = (p: OperatorProcess) => p.logs().filter((l) => /\b403\b|forbidden/i.test(JSON.stringify(l)));

  beforeAll(async () => {
    cp = await startControlPlane({
      withControllerManager: true,
      tokens: [{ token: TOKEN, user: `system:serviceaccount:${SA.namespace}:${SA.name}`, uid: 'sa-operator-uid', groups: ['system:serviceaccounts', `system:serviceaccounts:${SA.namespace}`] }],
    });
    await installCRDs(cp);
    await createNamespace(cp, OPERATOR_NS);
    await createNamespace(cp, NS);
    for (const m of rbacManifests(SA)) {
      const ns = (m.metadata as { namespace?: string }).namespace;
      await ok(cp.request('POST', (RBAC_PATHS[m.kind as string] as (ns?: string) => string)(ns), { body: m }));
    }
    kubeconfig = await cp.kubeconfigFor(TOKEN);
    await create(cp, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'openai', namespace: NS }, stringData: { apiKey: 'sk-test-cluster-0000' } } as never);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(operators.map((p) => p.stop('SIGKILL')));
    await cp?.stop();
  });

  it('does all its work as its ServiceAccount with exactly the rules of rbac.ts', async () => {
    const a = await start();
    await a.waitForLog((l) => l.event === 'leader_acquired');
    await create(cp, route(NS, 'web', spec('web'), { tier: 'front' }));
    await create(cp, budget(NS, 'daily', { period: 'daily', limitUSD: 5 }));
    await eventually('ConfigMap', async () => (await configMaps()).length === 1);
    await eventually('route Ready', async () => condition(await get(cp, `${API}/namespaces/${NS}/airoutes/web`), 'Ready')?.status === 'True');
    await eventually('budget status', async () => (await get(cp, `${API}/namespaces/${NS}/aibudgets/daily`))?.status?.spentUSD === '0.00');
    await eventually('an Event', async () => (await eventsFor(cp, NS, 'web')).some((e) => e.reason === 'ConfigMapCreated'));
    expect((await lease())?.spec?.holderIdentity).toMatch(/_[0-9a-f]{8}$/);
    expect(refusals(a)).toEqual([]);
    // And no more than that: Secrets' content stays out of reach.
    const secret = await cp.request('GET', `/api/v1/namespaces/${NS}/secrets/openai`, { token: TOKEN });
    expect(secret.status).toBe(403);
  });

  it('has one leader among two replicas, and the other takes over within the lease when it dies', async () => {
    const [a] = operators as [OperatorProcess];
    const b = await start();
    await b.waitForLog((l) => l.event === 'caches_synced');
    // B stays a follower while A renews.
    await new Promise((r) => setTimeout(r, LEASE_SECONDS * 1000 + 500));
    expect(b.logs().some((l) => l.event === 'leader_acquired')).toBe(false);
    await create(cp, route(NS, 'api', spec('api')));
    await eventually('A writes the api ConfigMap', async () => (await configMaps()).length === 2);
    expect(b.logs().some((l) => l.event === 'configmap_created')).toBe(false);

    const killedAt = Date.now();
    await a.stop('SIGKILL');
    await b.waitForLog((l) => l.event === 'leader_acquired', 15_000);
    const handOver = Date.now() - killedAt;
    // Expiry (lease duration since B last saw a renewal) plus one retry period.
    expect(handOver).toBeLessThan(LEASE_SECONDS * 1000 + 2500);
    await create(cp, route(NS, 'admin', spec('admin')));
    await eventually('B writes the admin ConfigMap', async () => (await configMaps()).length === 3);
    expect(b.logs().some((l) => l.event === 'configmap_created')).toBe(true);
    expect(refusals(b)).toEqual([]);
  }, 60_000);

  it('hands the Lease over at once on SIGTERM', async () => {
    const b = operators[1] as OperatorProcess;
    const c = await start();
    await c.waitForLog((l) => l.event === 'caches_synced');
    const stoppedAt = Date.now();
    expect(await b.stop('SIGTERM')).toBe(0);
    expect(b.logs().some((l) => l.event === 'leader_released')).toBe(true);
    await c.waitForLog((l) => l.event === 'leader_acquired', 10_000);
    // Well under the lease duration: released, not expired.
    expect(Date.now() - stoppedAt).toBeLessThan(LEASE_SECONDS * 1000);
    expect(await c.stop('SIGTERM')).toBe(0);
    expect((await lease())?.spec?.holderIdentity ?? '').toBe('');
  }, 40_000);

  it('leaves owned ConfigMaps to the garbage collector when their routes are deleted with no operator running', async () => {
    const before = await configMaps();
    const web = before.find((c) => (c.metadata.ownerReferences ?? []).some((o: { name: string }) => o.name === 'web'));
    expect(web?.metadata.ownerReferences).toEqual(
      expect.arrayContaining([expect.objectContaining({ apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIRoute', name: 'web' }), expect.objectContaining({ kind: 'AIBudget', name: 'daily' })]),
    );
    for (const name of ['web', 'api', 'admin']) await ok(cp.request('DELETE', `${API}/namespaces/${NS}/airoutes/${name}`));
    await ok(cp.request('DELETE', `${API}/namespaces/${NS}/aibudgets/daily`));
    // The collector notices a new kind of owner on its discovery resync (every 30 s): allow for one.
    await eventually('ConfigMaps collected', async () => (await configMaps()).length === 0, 60_000, 250);
  }, 75_000);
});
