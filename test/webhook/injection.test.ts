// Injection end to end through a real kube-apiserver (1.24) and kube-controller-manager: the
// operator and its webhook run as the operator's ServiceAccount with the chart's rules, the API
// server calls the webhook over TLS on loopback, and Pods are created directly and by a
// Deployment's ReplicaSet. Then one injected pod runs the way a kubelet would run it.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:tls';
import { createServer, type Server } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import OpenAI from 'openai';
import { pino } from 'pino';
import { KubeClient } from '../../operator/kube/client.ts';
import { startOperator, type RunningOperator } from '../../operator/main.ts';
import { startWebhook, type RunningWebhook } from '../../operator/webhook/server.ts';
import { WEBHOOK_CONFIG_NAME, WEBHOOK_PATH, TLS_SECRET_NAME } from '../../operator/webhook/rbac.ts';
import { SIDECAR_NAME } from '../../operator/webhook/inject.ts';
import { issue } from '../../operator/webhook/x509.ts';
import { splitPem } from '../../operator/webhook/x509.ts';
import { startSimulator, type Simulator } from '../../simulator/index.ts';
import { describeWithKube, startControlPlane, type ControlPlane } from '../support/kube.ts';
import { freePort } from '../support/redis.ts';
import { imageCommand, localCommand } from '../support/image.ts';
import { tempDir } from '../support/sidecar-process.ts';
import { API, createNamespace, eventually, get, installCRDs, list, ok, route, sleep } from '../operator/support.ts';
import { grantOperator, mountVolumes, serviceAccountUser, webhookConfiguration } from './support.ts';

const OP_NS = 'ai-envelope-system';
const SHOP = 'shop';
const STAGING = 'shop-staging';
const SA = { namespace: OP_NS, name: 'ai-envelope-operator' };
const TOKEN = 'sa-token-webhook-operator-0123';
const KEY = 'sk-test-webhook-prod-0123456789';
const CONFIG_PATH = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIG_NAME}`;
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

type Container = { name: string; env?: Array<{ name: string; value?: string }>; volumeMounts?: Array<{ name: string; mountPath: string }>; args?: string[]; command?: string[]; ports?: Array<{ name: string; containerPort: number }> };
type PodSpec = { containers: Container[]; initContainers?: Container[]; volumes: Array<{ name: string; secret?: { secretName: string }; configMap?: { name: string } }> };

const pod = (name: string, labels: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels, ...extra },
  spec: { containers: [{ name: 'app', image: 'python:3.12-slim', command: ['python', '-m', 'app'] }] },
});
const INJECT = { 'ai-envelope.dev/inject': 'true' };

describeWithKube('injection webhook through a real API server', () => {
  let cp: ControlPlane;
  let sim: Simulator;
  let op: RunningOperator;
  let hook: RunningWebhook;
  let replica: RunningWebhook;
  let extra: Server | undefined;
  const clients: KubeClient[] = [];
  const children: ChildProcess[] = [];
  let proxyPort = 0;
  let adminPort = 0;

  const createPod = (ns: string, body: unknown, dryRun = false) => cp.request('POST', `/api/v1/namespaces/${ns}/pods${dryRun ? '?dryRun=All' : ''}`, { body });

  beforeAll(async () => {
    sim = await startSimulator();
    sim.setApiKeys([KEY]);
    cp = await startControlPlane({ withControllerManager: true, tokens: [serviceAccountUser(SA.namespace, SA.name, TOKEN)] });
    await installCRDs(cp);
    for (const ns of [OP_NS, SHOP, STAGING]) await createNamespace(cp, ns);
    await grantOperator(cp, SA);
    await ok(cp.request('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', { body: webhookConfiguration(OP_NS) }));
    await ok(cp.request('POST', `/api/v1/namespaces/${SHOP}/secrets`, { body: { metadata: { name: 'openai-prod' }, stringData: { apiKey: KEY } } }));
    const spec = { podSelector: { matchLabels: { app: 'support' } }, upstream: { baseURL: sim.url, secretRef: { name: 'openai-prod', key: 'apiKey' } }, model: { default: 'gpt-4.1-mini' } };
    await ok(cp.request('POST', `${API}/namespaces/${SHOP}/airoutes`, { body: route(SHOP, 'support', spec) }));
    // Staging's route names production's Secret, which does not exist in staging.
    await ok(cp.request('POST', `${API}/namespaces/${STAGING}/airoutes`, { body: route(STAGING, 'support', spec) }));
    // Pods need the namespace's default ServiceAccount, which the controller-manager creates.
    for (const ns of [SHOP, STAGING]) await eventually(`ServiceAccount ${ns}/default`, async () => !!(await get(cp, `/api/v1/namespaces/${ns}/serviceaccounts/default`)), 30_000);

    const kubeconfig = await cp.kubeconfigFor(TOKEN);
    op = await startOperator({ kubeconfig, namespace: OP_NS, metricsPort: 0, metricsHost: '127.0.0.1', log, leaseSeconds: 5, watchTimeoutSeconds: 60, resyncSeconds: 30, spendIntervalSeconds: 30, workers: 2 });
    await eventually('operator leads', async () => op.leader.isLeader(), 20_000);
    [proxyPort, adminPort] = [await freePort(), await freePort()];
    const webhookPort = await freePort();
    const client = await KubeClient.create(kubeconfig);
    clients.push(client);
    // Short lifetimes, so that a whole CA rotation happens within this file: CA renewed at two
    // thirds of 45 s, serving certificates every 10 s, both CAs trusted 4 s before and after.
    const tls = { caValiditySeconds: 45, certValiditySeconds: 15, overlapSeconds: 4 };
    hook = await startWebhook({
      client,
      log,
      namespace: OP_NS,
      port: webhookPort,
      host: '127.0.0.1',
      url: `https://127.0.0.1:${webhookPort}`,
      isLeader: () => op.leader.isLeader(),
      inject: { image: 'ai-envelope:test', proxyPort, adminPort },
      tls,
      checkSeconds: 1,
    });
    // A second replica: never the leader, it only reloads what the first one writes.
    const client2 = await KubeClient.create(kubeconfig);
    clients.push(client2);
    replica = await startWebhook({ client: client2, log, namespace: OP_NS, port: 0, host: '127.0.0.1', isLeader: () => false, inject: { image: 'ai-envelope:test', proxyPort, adminPort }, tls, checkSeconds: 1 });
    await eventually('caBundle and URL written', async () => {
      const cfg = await get(cp, CONFIG_PATH);
      const cc = cfg?.webhooks?.[0]?.clientConfig;
      return cc?.url === `https://127.0.0.1:${webhookPort}${WEBHOOK_PATH}` && !!cc?.caBundle;
    });
  }, 150_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await hook?.stop();
    await replica?.stop();
    await new Promise<void>((r) => (extra ? extra.close(() => r()) : r()));
    await op?.shutdown();
    for (const c of clients) await c.close();
    await cp?.stop();
    await sim?.close();
  }, 60_000);

  it('injects one sidecar into a labelled pod: key mounted there alone, env set in the app, nothing in unlabelled pods', async () => {
    const res = await createPod(SHOP, pod('labelled', { app: 'support', ...INJECT }));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const spec = (res.body as { spec: PodSpec }).spec;
    // 1.24 has no native sidecars: a regular container, first, never an init container.
    expect(spec.containers.map((c) => c.name)).toEqual([SIDECAR_NAME, 'app']);
    expect(spec.initContainers ?? []).toEqual([]);
    const [sidecar, app] = spec.containers as [Container, Container];
    const keyVolume = spec.volumes.find((v) => v.secret?.secretName === 'openai-prod')?.name;
    expect(keyVolume).toBeDefined();
    expect(sidecar.volumeMounts?.some((m) => m.name === keyVolume && m.mountPath === '/etc/ai-envelope/secrets/openai-prod')).toBe(true);
    expect(app.volumeMounts?.some((m) => m.name === keyVolume) ?? false).toBe(false);
    expect(app.env).toEqual(expect.arrayContaining([{ name: 'OPENAI_BASE_URL', value: `http://127.0.0.1:${proxyPort}/v1` }, { name: 'OPENAI_API_KEY', value: 'sk-dummy-envelope-placeholder' }]));
    expect(sidecar.ports).toEqual([expect.objectContaining({ name: 'envelope-admin', containerPort: adminPort })]);

    const plain = await createPod(SHOP, pod('unlabelled', { app: 'support' }));
    expect(plain.status).toBe(201);
    const plainSpec = (plain.body as { spec: PodSpec }).spec;
    expect(plainSpec.containers.map((c) => c.name)).toEqual(['app']);
    expect(plainSpec.containers[0]?.env).toBeUndefined();

    const optedOut = await createPod(SHOP, pod('opted-out', { app: 'support', ...INJECT }, { annotations: { 'ai-envelope.dev/inject': 'false' } }));
    expect((optedOut.body as { spec: PodSpec }).spec.containers.map((c) => c.name)).toEqual(['app']);
  });

  it('refuses a pod whose route names a Secret that exists only in another namespace', async () => {
    const res = await createPod(STAGING, pod('staging', { app: 'support', ...INJECT }));
    expect(res.status).toBe(403);
    expect((res.body as { message: string }).message).toMatch(/Secret 'openai-prod' named by AIRoute shop-staging\/support \(spec\.upstream\.secretRef\) does not exist in namespace shop-staging/);
    // The Secret was not copied or read across: production's key stays in production.
    expect(await get(cp, `/api/v1/namespaces/${STAGING}/secrets/openai-prod`)).toBeUndefined();
  });

  it("gives a labelled Deployment's pods exactly one sidecar, also when another webhook makes it run again", async () => {
    // A second mutating webhook that adds a container after ours: the API server then calls ours
    // again (reinvocationPolicy: IfNeeded), which must add env to the new container and nothing else.
    const ca = issue({ commonName: 'extra-ca', isCA: true, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000) });
    const leaf = issue({ commonName: 'extra', isCA: false, hosts: ['127.0.0.1'], notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000), issuer: ca });
    let extraCalls = 0;
    extra = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        extraCalls++;
        const review = JSON.parse(body) as { request: { uid: string; object: { spec: PodSpec } } };
        const has = review.request.object.spec.containers.some((c) => c.name === 'extra');
        const patch = has ? [] : [{ op: 'add', path: '/spec/containers/-', value: { name: 'extra', image: 'busybox' } }];
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true, ...(patch.length ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') } : {}) } }));
      });
    });
    const extraPort = await new Promise<number>((r) => (extra as Server).listen(0, '127.0.0.1', () => r(((extra as Server).address() as { port: number }).port)));
    const cfg = webhookConfiguration(OP_NS, { name: 'zz-extra-sidecar' });
    const wh = cfg.webhooks[0] as Record<string, unknown>;
    Object.assign(wh, { name: 'extra.example.test', objectSelector: { matchLabels: { extra: 'true' } }, clientConfig: { url: `https://127.0.0.1:${extraPort}/`, caBundle: Buffer.from(ca.certPem).toString('base64') } });
    await ok(cp.request('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', { body: cfg }));

    const labels = { app: 'support', component: 'web', extra: 'true', ...INJECT };
    await ok(
      cp.request('POST', `/apis/apps/v1/namespaces/${SHOP}/deployments`, {
        body: { metadata: { name: 'web' }, spec: { replicas: 2, selector: { matchLabels: { component: 'web' } }, template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: 'node:24-slim', command: ['node', 'server.js'] }] } } } },
      }),
    );
    const pods = await eventually('2 pods from the ReplicaSet', async () => {
      const items = await list(cp, `/api/v1/namespaces/${SHOP}/pods?labelSelector=component%3Dweb`);
      return items.length === 2 ? items : undefined;
    }, 30_000);
    expect(extraCalls).toBeGreaterThan(0);
    for (const p of pods) {
      const spec = p.spec as PodSpec;
      expect(spec.containers.map((c) => c.name)).toEqual([SIDECAR_NAME, 'web', 'extra']);
      expect(spec.volumes.filter((v) => v.secret?.secretName === 'openai-prod')).toHaveLength(1);
      for (const c of spec.containers.slice(1)) {
        expect(c.env?.filter((e) => e.name === 'OPENAI_BASE_URL')).toEqual([{ name: 'OPENAI_BASE_URL', value: `http://127.0.0.1:${proxyPort}/v1` }]);
      }
    }
    await ok(cp.request('DELETE', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/zz-extra-sidecar'));
  });

  it('keeps admitting while it rotates its CA, with both CAs trusted during the switch', async () => {
    const firstCA = hook.tls.state?.ca.certPem;
    const bundleSizes = new Set<number>();
    let admitted = 0;
    const failures: string[] = [];
    const until = Date.now() + 60_000;
    const rotated = () => hook.tls.steps.some((s) => /retired/.test(s.reason)) && hook.tls.state?.ca.certPem !== firstCA;
    while (!rotated() && Date.now() < until) {
      const res = await createPod(SHOP, pod(`rotation-${admitted}`, { app: 'support', ...INJECT }), true);
      if (res.status !== 201 || !(res.body as { spec: PodSpec }).spec.containers.some((c) => c.name === SIDECAR_NAME)) failures.push(`${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      else admitted++;
      const cfg = await get(cp, CONFIG_PATH);
      bundleSizes.add(splitPem(Buffer.from(cfg?.webhooks?.[0]?.clientConfig?.caBundle ?? '', 'base64').toString()).length);
      await sleep(100);
    }
    expect(failures).toEqual([]);
    expect(rotated()).toBe(true);
    expect(admitted).toBeGreaterThan(50);
    expect([...bundleSizes].sort()).toEqual([1, 2]);
    const reasons = hook.tls.steps.map((s) => s.reason);
    expect(reasons.some((r) => /staged a new CA/.test(r))).toBe(true);
    expect(reasons.some((r) => /signed by the new CA/.test(r))).toBe(true);

    // The other replica reloaded the Secret and presents the current certificate, without a restart.
    const secret = await get(cp, `/api/v1/namespaces/${OP_NS}/secrets/${TLS_SECRET_NAME}`);
    const current = new X509Certificate(Buffer.from(secret?.data?.['tls.crt'] ?? '', 'base64').toString()).fingerprint256;
    await eventually('second replica serves the current certificate', async () => {
      const served = await new Promise<string>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: replica.port, rejectUnauthorized: false }, () => {
          resolve(s.getPeerX509Certificate()?.fingerprint256 ?? '');
          s.end();
        });
        s.on('error', reject);
      });
      return served === current;
    }, 10_000);
  }, 90_000);

  it('runs an injected pod like a kubelet: the official SDK, configured by the injected env alone, calls through the sidecar', async () => {
    const [p] = await list(cp, `/api/v1/namespaces/${SHOP}/pods?labelSelector=component%3Dweb`);
    const spec = p?.spec as PodSpec;
    const sidecar = spec.containers.find((c) => c.name === SIDECAR_NAME) as Container;
    const app = spec.containers.find((c) => c.name === 'web') as Container;
    // What the kubelet would mount: the operator's ConfigMap and the Secret, as they are in the API.
    const cmName = spec.volumes.find((v) => v.configMap)?.configMap?.name as string;
    const cm = await eventually('the operator wrote the ConfigMap', () => get(cp, `/api/v1/namespaces/${SHOP}/configmaps/${cmName}`), 20_000);
    const secret = (await get(cp, `/api/v1/namespaces/${SHOP}/secrets/openai-prod`)) as { data: Record<string, string> };
    const decoded = Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
    const root = tempDir('kubelet');
    const paths = mountVolumes(root, spec.volumes as never, (sidecar.volumeMounts ?? []) as never, { configMaps: { [cmName]: cm.data as Record<string, string> }, secrets: { 'openai-prod': decoded } });

    // The image's entrypoint with the container's args (no command override), the pod network
    // being this machine's loopback.
    const image = imageCommand();
    expect(sidecar.command).toBeUndefined();
    const argv = localCommand([...image.entrypoint, ...(sidecar.args ?? [])], paths).map((a) => (a === '0.0.0.0' ? '127.0.0.1' : a));
    const env = Object.fromEntries((sidecar.env ?? []).map((e) => [e.name, e.value ?? '']));
    const child = spawn(argv[0] as string, argv.slice(1), { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const adminURL = `http://127.0.0.1:${adminPort}`;
    await eventually('sidecar ready (its readiness probe)', async () => (await fetch(`${adminURL}/readyz`)).status === 200, 15_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${output}`);
    });

    // The app's process: only what the injected env gives it.
    const appEnv = Object.fromEntries((app.env ?? []).map((e) => [e.name, e.value]));
    const saved = { base: process.env.OPENAI_BASE_URL, key: process.env.OPENAI_API_KEY };
    process.env.OPENAI_BASE_URL = appEnv.OPENAI_BASE_URL;
    process.env.OPENAI_API_KEY = appEnv.OPENAI_API_KEY;
    let answer: string | null | undefined;
    try {
      const sdk = new OpenAI();
      const r = await sdk.chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Where is my order?' }] });
      answer = r.choices[0]?.message.content;
    } finally {
      process.env.OPENAI_BASE_URL = saved.base;
      process.env.OPENAI_API_KEY = saved.key;
      if (saved.base === undefined) delete process.env.OPENAI_BASE_URL;
      if (saved.key === undefined) delete process.env.OPENAI_API_KEY;
    }
    expect(answer).toBeTruthy();
    const upstream = sim.requests.at(-1);
    expect(upstream?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(JSON.stringify(upstream?.headers)).not.toContain('sk-dummy-envelope-placeholder');
    const metrics = await (await fetch(`${adminURL}/metrics`)).text();
    expect(metrics).toMatch(/ai_envelope_requests_total\{[^}]*\} 1/);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    void join;
  }, 60_000);
});
