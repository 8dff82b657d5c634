import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../kube/client.ts';
import { configMapName } from '../reconcile/desired.ts';
import { applyPatch, decide, DEFAULT_INJECT_OPTIONS, parseServerVersion, secretVolumeName, SIDECAR_NAME, type Decision, type NamespaceFacts } from './inject.ts';

const NS = 'shop';
const route = (name: string, spec: Record<string, unknown>): KubeObject => ({ apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIRoute', metadata: { name, namespace: NS, uid: `uid-${name}` }, spec });
const support = route('support', { podSelector: { matchLabels: { app: 'support' } }, upstream: { secretRef: { name: 'openai-prod', key: 'apiKey' } }, model: { default: 'gpt-4.1-mini' } });
const supportFast = route('support-fast', { podSelector: { matchLabels: { app: 'support' } }, upstream: { secretRef: { name: 'openai-prod' } }, input: { userHashSecretRef: { name: 'user-hash' } } });
const everyPod = route('everything', { upstream: { secretRef: { name: 'openai-prod' } } });
const staging = route('staging', { podSelector: { matchLabels: { app: 'support' } }, upstream: { secretRef: { name: 'openai-staging' } } });
const broken = route('broken', { podSelector: { matchLabels: { app: 'support' } }, limits: { concurrency: 0 } });

const pod = (over: { labels?: Record<string, string>; annotations?: Record<string, string>; containers?: unknown[]; initContainers?: unknown[]; volumes?: unknown[] } = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: NS, labels: over.labels ?? { app: 'support', 'ai-envelope.dev/inject': 'true' }, ...(over.annotations ? { annotations: over.annotations } : {}) },
  spec: {
    containers: over.containers ?? [{ name: 'app', image: 'python:3.12' }],
    ...(over.initContainers ? { initContainers: over.initContainers } : {}),
    ...(over.volumes ? { volumes: over.volumes } : {}),
  },
});

const facts = (over: Partial<NamespaceFacts> = {}): NamespaceFacts => ({
  namespace: NS,
  routes: [support],
  secrets: new Set(['openai-prod', 'user-hash']),
  server: { major: 1, minor: 24 },
  ...over,
});

const opts = DEFAULT_INJECT_OPTIONS;
type Spec = { containers: Array<Record<string, any>>; initContainers?: Array<Record<string, any>>; volumes: Array<Record<string, any>> };
const specOf = (p: KubeObject) => p.spec as Spec;

function patched(p: KubeObject, f: NamespaceFacts, o = opts) {
  const d = decide(p, f, o);
  if (d.kind !== 'patch') throw new Error(`expected a patch, got ${JSON.stringify(d)}`);
  return { d, pod: applyPatch(p, d.patch) };
}

describe('decide: skip and refuse', () => {
  const cases: Array<[string, KubeObject, NamespaceFacts, Decision['kind'], RegExp?]> = [
    ['no label', pod({ labels: { app: 'support' } }), facts(), 'skip'],
    ['label not "true"', pod({ labels: { app: 'support', 'ai-envelope.dev/inject': 'yes' } }), facts(), 'skip'],
    ['opt-out annotation', pod({ annotations: { 'ai-envelope.dev/inject': 'false' } }), facts(), 'skip'],
    ['no route selects it', pod({ labels: { app: 'billing', 'ai-envelope.dev/inject': 'true' } }), facts(), 'refuse', /no AIRoute in namespace shop selects this pod/],
    ['only an invalid route selects it', pod(), facts({ routes: [broken] }), 'refuse', /invalid, not counted: broken/],
    ['Secret of another namespace', pod(), facts({ routes: [staging] }), 'refuse', /Secret 'openai-staging' named by AIRoute shop\/staging \(spec\.upstream\.secretRef\) does not exist in namespace shop/],
    ['userHash Secret missing', pod(), facts({ routes: [supportFast], secrets: new Set(['openai-prod']) }), 'refuse', /Secret 'user-hash' .*spec\.input\.userHashSecretRef/],
    ['reviewers\' token Secret missing', pod(), facts({ routes: [route('held', { podSelector: { matchLabels: { app: 'support' } }, upstream: { secretRef: { name: 'openai-prod' } }, output: { jsonSchema: { type: 'object' }, onInvalid: 'review' }, review: { tokenSecretRef: { name: 'reviewers', key: 'token' } } })] }), 'refuse', /Secret 'reviewers' .*spec\.review\.tokenSecretRef/],
    ['named route missing', pod({ annotations: { 'ai-envelope.dev/routes': 'support, nope' } }), facts(), 'refuse', /AIRoute 'nope' .* does not exist in namespace shop/],
    ['named route does not select it', pod({ labels: { app: 'support', 'ai-envelope.dev/inject': 'true' }, annotations: { 'ai-envelope.dev/routes': 'other' } }), facts({ routes: [support, route('other', { podSelector: { matchLabels: { app: 'x' } } })] }), 'refuse', /does not select this pod/],
    ['two pod selectors', pod(), facts({ routes: [support, everyPod] }), 'refuse', /different spec\.podSelector select this pod \(everything \/ support\)|\(support \/ everything\)/],
  ];
  it.each(cases)('%s', (_name, p, f, kind, message) => {
    const d = decide(p, f, opts);
    expect(d.kind).toBe(kind);
    if (message) expect((d as { message: string }).message).toMatch(message);
  });
});

describe('decide: the patch', () => {
  it('adds one sidecar first, mounts the ConfigMap and Secrets in it alone, sets env in app containers', () => {
    const { d, pod: out } = patched(pod({ containers: [{ name: 'app', image: 'a' }, { name: 'worker', image: 'w', env: [{ name: 'X', value: '1' }] }] }), facts({ routes: [support, supportFast] }));
    expect(d).toMatchObject({ native: false, configMap: configMapName({ matchLabels: { app: 'support' } }), routes: ['support', 'support-fast'], secrets: ['openai-prod', 'user-hash'] });
    const s = specOf(out);
    expect(s.containers.map((c) => c.name)).toEqual([SIDECAR_NAME, 'app', 'worker']);
    expect(s.initContainers).toBeUndefined();
    const sidecar = s.containers[0] as Record<string, any>;
    expect(sidecar.args).toEqual(['sidecar', '-f', '/etc/ai-envelope/config', '--port', '4141', '--admin-port', '4142', '--admin-host', '0.0.0.0', '--secrets-dir', '/etc/ai-envelope/secrets', '--state-dir', '/var/lib/ai-envelope']);
    // The heap flags the sidecar was measured with (sidecar/runtime.ts), and nothing else: the key is a file.
    expect(sidecar.env).toEqual([
      { name: 'NODE_OPTIONS', value: '--max-semi-space-size=16 --max-old-space-size=128' },
      { name: 'MALLOC_ARENA_MAX', value: '1' },
    ]);
    expect(sidecar.ports).toEqual([{ name: 'envelope-admin', containerPort: 4142, protocol: 'TCP' }]);
    expect(sidecar.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'envelope-admin' });
    expect(sidecar.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'envelope-admin' });
    expect(sidecar.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(sidecar.resources).toEqual(opts.resources);
    expect(sidecar.lifecycle.postStart.exec.command[0]).toBe('node');
    expect(sidecar.restartPolicy).toBeUndefined();
    const mounts = sidecar.volumeMounts as Array<Record<string, any>>;
    expect(mounts.every((m) => m.subPath === undefined)).toBe(true);
    expect(mounts.map((m) => m.mountPath)).toEqual(['/etc/ai-envelope/config', '/etc/ai-envelope/secrets/openai-prod', '/etc/ai-envelope/secrets/user-hash', '/var/lib/ai-envelope', '/tmp']);
    expect(s.volumes.find((v) => v.secret?.secretName === 'openai-prod')?.name).toBe(secretVolumeName('openai-prod'));
    expect(s.volumes.find((v) => v.configMap)?.configMap.name).toBe(d.kind === 'patch' && d.configMap);
    for (const app of s.containers.slice(1)) {
      expect(app.volumeMounts).toBeUndefined();
      expect(app.env).toEqual(expect.arrayContaining([{ name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:4141/v1' }, { name: 'OPENAI_API_KEY', value: 'sk-dummy-envelope-placeholder' }]));
    }
    expect(s.containers[2]?.env[0]).toEqual({ name: 'X', value: '1' });
  });

  it('never clobbers env the pod sets, and warns about an app key', () => {
    const { d, pod: out } = patched(pod({ containers: [{ name: 'app', env: [{ name: 'OPENAI_BASE_URL', value: 'http://mine/v1' }, { name: 'OPENAI_API_KEY', valueFrom: { secretKeyRef: { name: 'k', key: 'k' } } }] }] }), facts());
    expect(specOf(out).containers[1]?.env).toEqual([{ name: 'OPENAI_BASE_URL', value: 'http://mine/v1' }, { name: 'OPENAI_API_KEY', valueFrom: { secretKeyRef: { name: 'k', key: 'k' } } }]);
    expect(d.kind === 'patch' && d.warnings.join()).toMatch(/container app sets OPENAI_API_KEY itself/);
  });

  it('keeps volumes and init containers the pod already has', () => {
    const { pod: out } = patched(pod({ volumes: [{ name: 'data', emptyDir: {} }], initContainers: [{ name: 'migrate' }] }), facts({ server: { major: 1, minor: 30 } }));
    const s = specOf(out);
    expect(s.volumes[0]).toEqual({ name: 'data', emptyDir: {} });
    expect(s.initContainers?.map((c) => c.name)).toEqual([SIDECAR_NAME, 'migrate']);
  });

  const native: Array<[string, { major: number; minor: number }, typeof opts.nativeSidecar, string | undefined, boolean, boolean]> = [
    ['1.24 auto: regular container', { major: 1, minor: 24 }, 'auto', undefined, false, false],
    ['1.28 auto: regular container', { major: 1, minor: 28 }, 'auto', undefined, false, false],
    ['1.29 auto: native', { major: 1, minor: 29 }, 'auto', undefined, true, false],
    ['2.0 auto: native', { major: 2, minor: 0 }, 'auto', undefined, true, false],
    ['1.30 chart never', { major: 1, minor: 30 }, 'never', undefined, false, false],
    ['1.24 chart always: native with a warning', { major: 1, minor: 24 }, 'always', undefined, true, true],
    ['1.30 annotation false beats auto', { major: 1, minor: 30 }, 'auto', 'false', false, false],
    ['1.30 annotation true beats chart never', { major: 1, minor: 30 }, 'never', 'true', true, false],
    ['1.24 annotation false beats chart always', { major: 1, minor: 24 }, 'always', 'false', false, false],
  ];
  it.each(native)('%s', (_n, server, mode, annotation, isNative, warns) => {
    const p = pod(annotation ? { annotations: { 'ai-envelope.dev/native-sidecar': annotation } } : {});
    const { d, pod: out } = patched(p, facts({ server }), { ...opts, nativeSidecar: mode });
    const s = specOf(out);
    expect(d.kind === 'patch' && d.native).toBe(isNative);
    expect(d.kind === 'patch' && d.warnings.length > 0).toBe(warns);
    if (isNative) {
      expect(s.initContainers?.[0]).toMatchObject({ name: SIDECAR_NAME, restartPolicy: 'Always' });
      expect(s.initContainers?.[0]?.lifecycle).toBeUndefined();
      expect(s.containers.map((c) => c.name)).toEqual(['app']);
      expect(s.containers[0]?.env).toHaveLength(2);
    } else {
      expect(s.containers[0]).toMatchObject({ name: SIDECAR_NAME });
      expect(s.initContainers).toBeUndefined();
    }
  });

  const shapes: Array<[string, KubeObject, NamespaceFacts]> = [
    ['plain pod', pod(), facts()],
    ['two containers, env and volumes', pod({ containers: [{ name: 'a', env: [] }, { name: 'b' }], volumes: [{ name: 'v', emptyDir: {} }] }), facts({ routes: [support, supportFast] })],
    ['native with init containers', pod({ initContainers: [{ name: 'i' }] }), facts({ server: { major: 1, minor: 31 } })],
  ];
  it.each(shapes)('is idempotent: a second pass over %s is empty', (_n, p, f) => {
    const { pod: once } = patched(p, f);
    const again = decide(once, f, opts);
    expect(again).toMatchObject({ kind: 'patch', patch: [] });
  });

  it('on reinvocation, gives env to a container another webhook added after it', () => {
    const { pod: once } = patched(pod(), facts());
    (once.spec as Spec).containers.push({ name: 'added-later' });
    const again = decide(once, facts(), opts);
    expect(again.kind === 'patch' && again.patch.map((o) => o.path)).toEqual(['/spec/containers/2/env']);
  });
});

describe('parseServerVersion', () => {
  it.each([
    [{ major: '1', minor: '24', gitVersion: 'v1.24.0-alpha.1.ab451280' }, 1, 24],
    [{ major: '1', minor: '29+', gitVersion: 'v1.29.3-gke.1' }, 1, 29],
    [{ major: '', minor: '', gitVersion: 'v1.31.2' }, 1, 31],
  ])('%j', (v, major, minor) => {
    expect(parseServerVersion(v)).toMatchObject({ major, minor });
  });
});
