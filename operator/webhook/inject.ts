// What the injection webhook does to a Pod, as a pure function of the Pod and what exists in its
// namespace: a JSONPatch, a refusal, or nothing. No I/O, so every rule is a table row in the test,
// and a second pass over the patched Pod must come back empty (reinvocationPolicy: IfNeeded).
import { API_VERSION, AIRoute } from '../../crds/schema.ts';
import { contentHash } from '../../crds/canonical.ts';
import { matchesSelector } from '../../crds/selector.ts';
import { configMapName } from '../reconcile/desired.ts';
import { ADMIN_PORT_NAME, INJECT_LABEL } from '../reconcile/pods.ts';
import type { KubeObject } from '../kube/client.ts';
import { SIDECAR_RUNTIME_ENV } from '../../sidecar/runtime.ts';

export const SIDECAR_NAME = 'ai-envelope';
/** `"false"` opts a labelled pod out again (DESIGN.md, Pods). */
export const INJECT_ANNOTATION = INJECT_LABEL;
export const NATIVE_ANNOTATION = 'ai-envelope.dev/native-sidecar';
/** Optional, comma-separated: the routes this pod means to use; each must exist and select it. */
export const ROUTES_ANNOTATION = 'ai-envelope.dev/routes';

export const CONFIG_VOLUME = 'ai-envelope-config';
export const STATE_VOLUME = 'ai-envelope-state';
export const TMP_VOLUME = 'ai-envelope-tmp';
const SECRET_VOLUME_PREFIX = 'ai-envelope-secret-';

/** Native sidecars (init containers with restartPolicy Always) are on by default from this version. */
export const NATIVE_SIDECAR_SINCE = { major: 1, minor: 29 } as const;

export type NativeSidecarMode = 'auto' | 'always' | 'never';

export interface InjectOptions {
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  proxyPort: number;
  adminPort: number;
  /** Where the admin listener binds: every interface, so the operator and Prometheus reach it by pod IP. */
  adminHost: string;
  /** The chart value; a pod's annotation overrides it, and `auto` asks the server version. */
  nativeSidecar: NativeSidecarMode;
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  /** The uid the image runs as; the sidecar runs as it, never as root. */
  runAsUser: number;
  /** Given to SDKs that refuse to start without a key; the sidecar drops whatever the app sends. */
  placeholderKey: string;
  /** How long a regular (non-native) sidecar's postStart waits for readiness before the app starts anyway. */
  readyWaitSeconds: number;
  redisURL?: string;
  configDir: string;
  secretsDir: string;
  stateDir: string;
}

export const DEFAULT_INJECT_OPTIONS: InjectOptions = {
  image: 'ghcr.io/ai-envelope/ai-envelope:0.1.0',
  imagePullPolicy: 'IfNotPresent',
  proxyPort: 4141,
  adminPort: 4142,
  adminHost: '0.0.0.0',
  nativeSidecar: 'auto',
  // Memory from the benchmark: ~100-150 MB at rest, ~180 MB under load with the heap flags of sidecar/runtime.ts.
  resources: { requests: { cpu: '50m', memory: '160Mi' }, limits: { memory: '256Mi' } },
  runAsUser: 10001,
  placeholderKey: 'sk-dummy-envelope-placeholder',
  readyWaitSeconds: 60,
  configDir: '/etc/ai-envelope/config',
  secretsDir: '/etc/ai-envelope/secrets',
  stateDir: '/var/lib/ai-envelope',
};

export interface ServerVersion {
  major: number;
  minor: number;
  gitVersion?: string;
}

/** `/version` answers minor like "29+" on some providers. */
export function parseServerVersion(v: { major?: string; minor?: string; gitVersion?: string }): ServerVersion {
  const num = (s: string | undefined) => Number.parseInt((s ?? '').replace(/[^0-9].*$/, ''), 10);
  let major = num(v.major);
  let minor = num(v.minor);
  if ((!Number.isFinite(major) || !Number.isFinite(minor)) && v.gitVersion) {
    const m = /^v?(\d+)\.(\d+)/.exec(v.gitVersion);
    if (m) [major, minor] = [Number(m[1]), Number(m[2])];
  }
  return { major: Number.isFinite(major) ? major : 0, minor: Number.isFinite(minor) ? minor : 0, ...(v.gitVersion ? { gitVersion: v.gitVersion } : {}) };
}

export interface NamespaceFacts {
  namespace: string;
  routes: KubeObject[];
  /** Names of the Secrets of the namespace (never their content). */
  secrets: ReadonlySet<string>;
  server: ServerVersion;
}

export type PatchOp = { op: 'add' | 'replace'; path: string; value: unknown };

export type Decision =
  | { kind: 'skip'; reason: string }
  | { kind: 'refuse'; message: string }
  | { kind: 'patch'; patch: PatchOp[]; native: boolean; configMap: string; routes: string[]; secrets: string[]; warnings: string[] };

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}
interface Container {
  name: string;
  env?: EnvVar[];
  envFrom?: unknown[];
  [k: string]: unknown;
}
interface PodSpec {
  containers?: Container[];
  initContainers?: Container[];
  volumes?: Array<{ name: string }>;
}

const pointer = (...parts: Array<string | number>) => parts.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');

export function secretVolumeName(secret: string): string {
  return `${SECRET_VOLUME_PREFIX}${contentHash(secret).slice(0, 12)}`;
}

function useNative(pod: KubeObject, server: ServerVersion, mode: NativeSidecarMode): { native: boolean; warning?: string } {
  const note = pod.metadata.annotations?.[NATIVE_ANNOTATION];
  const supported = server.major > NATIVE_SIDECAR_SINCE.major || (server.major === NATIVE_SIDECAR_SINCE.major && server.minor >= NATIVE_SIDECAR_SINCE.minor);
  const native = note === 'true' ? true : note === 'false' ? false : mode === 'always' ? true : mode === 'never' ? false : supported;
  // Before 1.28 the API server drops an init container's restartPolicy: the sidecar would run as a
  // plain init container that never exits, and the pod would never start.
  const warning = native && !supported ? `native sidecar forced on Kubernetes ${server.major}.${server.minor}; it needs ${NATIVE_SIDECAR_SINCE.major}.${NATIVE_SIDECAR_SINCE.minor} or later, or the pod will not start` : undefined;
  return warning ? { native, warning } : { native };
}

/** The sidecar's postStart hook: holds the app containers back until the proxy is ready, then lets them start either way. */
export function readyWaitScript(adminPort: number, seconds: number): string {
  return [
    `const until = Date.now() + ${seconds * 1000};`,
    `const again = () => Date.now() > until ? process.exit(0) : setTimeout(tick, 200);`,
    `function tick() { require('node:http').get({ host: '127.0.0.1', port: ${adminPort}, path: '/readyz', timeout: 1000 },`,
    `  (r) => { r.resume(); r.statusCode === 200 ? process.exit(0) : again(); }).on('error', again); }`,
    `tick();`,
  ].join('\n');
}

export function sidecarContainer(o: InjectOptions, secrets: string[], native: boolean): Record<string, unknown> {
  const probe = (path: string, period: number, failures: number) => ({ httpGet: { path, port: ADMIN_PORT_NAME }, periodSeconds: period, timeoutSeconds: 2, failureThreshold: failures });
  return {
    name: SIDECAR_NAME,
    image: o.image,
    ...(o.imagePullPolicy ? { imagePullPolicy: o.imagePullPolicy } : {}),
    args: ['sidecar', '-f', o.configDir, '--port', String(o.proxyPort), '--admin-port', String(o.adminPort), '--admin-host', o.adminHost, '--secrets-dir', o.secretsDir, '--state-dir', o.stateDir],
    env: [...SIDECAR_RUNTIME_ENV.map((e) => ({ ...e })), ...(o.redisURL ? [{ name: 'AI_ENVELOPE_REDIS_URL', value: o.redisURL }] : [])],
    ports: [{ name: ADMIN_PORT_NAME, containerPort: o.adminPort, protocol: 'TCP' }],
    resources: o.resources,
    // A native sidecar holds the next containers back until its startup probe passes.
    startupProbe: probe('/readyz', 1, o.readyWaitSeconds),
    readinessProbe: probe('/readyz', 5, 2),
    livenessProbe: probe('/healthz', 10, 3),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: o.runAsUser,
      runAsGroup: o.runAsUser,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: CONFIG_VOLUME, mountPath: o.configDir, readOnly: true },
      ...secrets.map((s) => ({ name: secretVolumeName(s), mountPath: `${o.secretsDir}/${s}`, readOnly: true })),
      { name: STATE_VOLUME, mountPath: o.stateDir },
      { name: TMP_VOLUME, mountPath: '/tmp' },
    ],
    terminationMessagePolicy: 'FallbackToLogsOnError',
    ...(native
      ? { restartPolicy: 'Always' }
      : { lifecycle: { postStart: { exec: { command: ['node', '-e', readyWaitScript(o.adminPort, o.readyWaitSeconds)] } } } }),
  };
}

function routeSecrets(r: AIRoute): Array<{ name: string; field: string }> {
  const out: Array<{ name: string; field: string }> = [];
  if (r.spec.upstream.secretRef) out.push({ name: r.spec.upstream.secretRef.name, field: 'spec.upstream.secretRef' });
  if (r.spec.input.userHashSecretRef) out.push({ name: r.spec.input.userHashSecretRef.name, field: 'spec.input.userHashSecretRef' });
  if (r.spec.review.tokenSecretRef) out.push({ name: r.spec.review.tokenSecretRef.name, field: 'spec.review.tokenSecretRef' });
  return out;
}

export function decide(pod: KubeObject, facts: NamespaceFacts, o: InjectOptions): Decision {
  const { namespace } = facts;
  const labels = pod.metadata.labels ?? {};
  if (labels[INJECT_LABEL] !== 'true') return { kind: 'skip', reason: `no label ${INJECT_LABEL}: "true"` };
  if (pod.metadata.annotations?.[INJECT_ANNOTATION] === 'false') return { kind: 'skip', reason: `annotation ${INJECT_ANNOTATION}: "false"` };
  const spec = (pod.spec ?? {}) as PodSpec;

  // Routes that select this pod, as the operator reads them (same parsing, same ConfigMap name).
  const selecting: AIRoute[] = [];
  const invalid: string[] = [];
  const byName = new Map<string, { parsed?: AIRoute }>();
  for (const obj of facts.routes) {
    if (obj.metadata.deletionTimestamp) continue;
    const r = AIRoute.safeParse({ ...obj, apiVersion: API_VERSION, kind: 'AIRoute', metadata: { ...obj.metadata, namespace } });
    byName.set(obj.metadata.name, r.success ? { parsed: r.data } : {});
    if (!r.success) {
      invalid.push(obj.metadata.name);
      continue;
    }
    if (matchesSelector(r.data.spec.podSelector, labels)) selecting.push(r.data);
  }
  const where = `namespace ${namespace}`;

  const asked = (pod.metadata.annotations?.[ROUTES_ANNOTATION] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of asked) {
    const found = byName.get(name);
    if (!found) return { kind: 'refuse', message: `AIRoute '${name}' (annotation ${ROUTES_ANNOTATION}) does not exist in ${where}; routes never cross namespaces` };
    if (!found.parsed) return { kind: 'refuse', message: `AIRoute '${name}' (annotation ${ROUTES_ANNOTATION}) in ${where} is invalid; see its status` };
    if (!selecting.some((r) => r.metadata.name === name)) return { kind: 'refuse', message: `AIRoute '${name}' (annotation ${ROUTES_ANNOTATION}) in ${where} does not select this pod: its spec.podSelector does not match the pod's labels` };
  }

  if (selecting.length === 0) {
    const also = invalid.length > 0 ? ` (invalid, not counted: ${invalid.join(', ')})` : '';
    return { kind: 'refuse', message: `no AIRoute in ${where} selects this pod${also}; create one whose spec.podSelector matches its labels, or remove the label ${INJECT_LABEL}` };
  }

  // The sidecar loads one rendered config; the operator writes one per distinct pod selector.
  const groups = new Map<string, string[]>();
  for (const r of selecting) {
    const cm = configMapName(r.spec.podSelector);
    groups.set(cm, [...(groups.get(cm) ?? []), r.metadata.name]);
  }
  if (groups.size > 1) {
    const list = [...groups.values()].map((names) => names.join(', ')).join(' / ');
    return { kind: 'refuse', message: `AIRoutes with different spec.podSelector select this pod (${list}); a sidecar loads one route set: give them the same podSelector or narrow them` };
  }
  const [configMap] = [...groups.keys()] as [string];

  const secrets: string[] = [];
  for (const r of selecting) {
    for (const ref of routeSecrets(r)) {
      if (!facts.secrets.has(ref.name)) {
        return { kind: 'refuse', message: `Secret '${ref.name}' named by AIRoute ${namespace}/${r.metadata.name} (${ref.field}) does not exist in ${where}; routes and Secrets never cross namespaces` };
      }
      if (!secrets.includes(ref.name)) secrets.push(ref.name);
    }
  }
  secrets.sort();

  const existingNames = [...(spec.containers ?? []), ...(spec.initContainers ?? [])].map((c) => c.name);
  const present = existingNames.includes(SIDECAR_NAME);
  const { native, warning } = useNative(pod, facts.server, o.nativeSidecar);
  const warnings = warning && !present ? [warning] : [];
  const patch: PatchOp[] = [];

  // Env first, with the indexes as they are: inserting the sidecar below shifts them.
  const wanted: EnvVar[] = [
    { name: 'OPENAI_BASE_URL', value: `http://127.0.0.1:${o.proxyPort}/v1` },
    { name: 'OPENAI_API_KEY', value: o.placeholderKey },
  ];
  (spec.containers ?? []).forEach((c, i) => {
    if (c.name === SIDECAR_NAME) return;
    const has = new Set((c.env ?? []).map((e) => e.name));
    const add = wanted.filter((e) => !has.has(e.name));
    if (has.has('OPENAI_API_KEY') && !present) warnings.push(`container ${c.name} sets OPENAI_API_KEY itself; the sidecar drops it and uses the route's key`);
    if (add.length === 0) return;
    if (!c.env) patch.push({ op: 'add', path: pointer('spec', 'containers', i, 'env'), value: add });
    else for (const e of add) patch.push({ op: 'add', path: pointer('spec', 'containers', i, 'env', '-'), value: e });
  });

  const volumes = [
    { name: CONFIG_VOLUME, configMap: { name: configMap } },
    ...secrets.map((s) => ({ name: secretVolumeName(s), secret: { secretName: s } })),
    { name: STATE_VOLUME, emptyDir: {} },
    { name: TMP_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
  ];
  const haveVolumes = new Set((spec.volumes ?? []).map((v) => v.name));
  const addVolumes = volumes.filter((v) => !haveVolumes.has(v.name));
  if (addVolumes.length > 0) {
    if (!spec.volumes) patch.push({ op: 'add', path: '/spec/volumes', value: addVolumes });
    else for (const v of addVolumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: v });
  }

  if (!present) {
    const container = sidecarContainer(o, secrets, native);
    const list = native ? 'initContainers' : 'containers';
    // First: a native sidecar before other init containers so they may call it too; a regular one
    // first so its postStart holds the app containers back until it is ready.
    if (!spec[list]) patch.push({ op: 'add', path: pointer('spec', list), value: [container] });
    else patch.push({ op: 'add', path: pointer('spec', list, 0), value: container });
  }

  return { kind: 'patch', patch, native, configMap, routes: selecting.map((r) => r.metadata.name).sort(), secrets, warnings };
}

/** Applies the subset of RFC 6902 that decide() emits; for tests and for checking idempotence. */
export function applyPatch<T>(doc: T, patch: PatchOp[]): T {
  const out = structuredClone(doc) as Record<string, unknown>;
  for (const op of patch) {
    const parts = op.path
      .split('/')
      .slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop() as string;
    let cur: unknown = out;
    for (const p of parts) cur = Array.isArray(cur) ? cur[Number(p)] : (cur as Record<string, unknown>)[p];
    if (cur === undefined || cur === null) throw new Error(`path ${op.path}: parent does not exist`);
    if (Array.isArray(cur)) {
      if (last === '-') cur.push(structuredClone(op.value));
      else if (op.op === 'add') cur.splice(Number(last), 0, structuredClone(op.value));
      else cur[Number(last)] = structuredClone(op.value);
    } else (cur as Record<string, unknown>)[last] = structuredClone(op.value);
  }
  return out as T;
}
