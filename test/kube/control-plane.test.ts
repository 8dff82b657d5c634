// The test control plane itself: what the operator and CRD tests rely on it for.
import { existsSync } from 'node:fs';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithKube, startControlPlane, type ControlPlane } from '../support/kube.ts';

const OPERATOR = { token: 'sk-test-operator-token-0123', user: 'system:serviceaccount:ops:operator', uid: 'operator-uid', groups: ['system:serviceaccounts', 'system:serviceaccounts:ops'] };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describeWithKube('test control plane', () => {
  let cp: ControlPlane;

  beforeAll(async () => {
    cp = await startControlPlane({ withControllerManager: true, tokens: [OPERATOR] });
  }, 90_000);

  afterAll(async () => {
    await cp?.stop();
  });

  it('serves on loopback with the admin kubeconfig, for the official client', async () => {
    expect(cp.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const list = await core.listNamespace();
    expect(list.items.map((n) => n.metadata?.name)).toContain('default');
  });

  it('authenticates static-token users and checks RBAC for them', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(await cp.kubeconfigFor(OPERATOR.token));
    const core = kc.makeApiClient(CoreV1Api);
    await expect(core.listNamespacedConfigMap({ namespace: 'default' })).rejects.toMatchObject({ code: 403 });
    const role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'read-cm', namespace: 'default' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }] };
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'read-cm', namespace: 'default' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-cm' },
      subjects: [{ kind: 'ServiceAccount', name: 'operator', namespace: 'ops' }],
    };
    expect((await cp.request('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles', { body: role })).status).toBe(201);
    expect((await cp.request('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings', { body: binding })).status).toBe(201);
    await eventually('the binding to take effect', async () => (await cp.request('GET', '/api/v1/namespaces/default/configmaps', { token: OPERATOR.token })).status === 200);
    await expect(core.listNamespacedConfigMap({ namespace: 'default' })).resolves.toBeDefined();
    await expect(core.listNamespacedSecret({ namespace: 'default' })).rejects.toMatchObject({ code: 403 });
    await expect(cp.kubeconfigFor('sk-test-not-a-user')).rejects.toThrow(/not a static token/);
  });

  it('runs the controller manager: garbage collection of owned objects', async () => {
    const owner = await cp.request('POST', '/api/v1/namespaces/default/configmaps', { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'owner' } } });
    const uid = (owner.body as { metadata: { uid: string } }).metadata.uid;
    const owned = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'owned', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid }] } };
    expect((await cp.request('POST', '/api/v1/namespaces/default/configmaps', { body: owned })).status).toBe(201);
    expect((await cp.request('DELETE', '/api/v1/namespaces/default/configmaps/owner')).status).toBe(200);
    await eventually('the owned ConfigMap to be collected', async () => (await cp.request('GET', '/api/v1/namespaces/default/configmaps/owned')).status === 404);
  });

  it('restarts the API server: open watches end, stored objects stay', async () => {
    expect((await cp.request('POST', '/api/v1/namespaces/default/configmaps', { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'survivor' }, data: { a: '1' } } })).status).toBe(201);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const { Watch } = await import('@kubernetes/client-node');
    let ended: unknown = 'open';
    const watchEnded = new Promise<void>((resolve) => {
      void new Watch(kc).watch('/api/v1/namespaces/default/configmaps', {}, () => {}, (err) => {
        ended = err ?? 'closed';
        resolve();
      });
    });
    await sleep(300);
    expect(ended).toBe('open');
    await cp.restartApiserver(500);
    await watchEnded;
    expect(ended).not.toBe('open');
    const back = await cp.request('GET', '/api/v1/namespaces/default/configmaps/survivor');
    expect(back.status).toBe(200);
    expect((back.body as { data: Record<string, string> }).data).toEqual({ a: '1' });
  });

  it('stops everything and removes its folder', async () => {
    const dir = cp.dir;
    await cp.stop();
    expect(existsSync(dir)).toBe(false);
    await expect(cp.request('GET', '/readyz')).rejects.toThrow();
  });
});
