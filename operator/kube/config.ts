// Where the API server is and how to authenticate to it: a kubeconfig file (token, token file,
// client certificate, exec plugin; CA from file or data) or, inside a pod, the ServiceAccount's
// mounted token and CA. Read here directly rather than through @kubernetes/client-node, whose
// import alone costs ~75 MB of resident memory (it loads every generated API), half the
// operator's budget (docs/adr/0011-operator-client-and-watches.md).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';

const run = promisify(execFile);

export interface Credentials {
  /** Sent as `Authorization: Bearer ...`, read again when it may have rotated. */
  token?: () => Promise<string | undefined>;
  cert?: string;
  key?: string;
}

export interface ClusterConfig {
  server: string;
  ca?: string;
  insecure: boolean;
  credentials: Credentials;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Projected ServiceAccount tokens rotate; re-reading the file this often follows them. */
const TOKEN_FILE_TTL_MS = 60_000;

function fileToken(path: string): () => Promise<string> {
  let cached: { value: string; at: number } | undefined;
  return async () => {
    if (!cached || Date.now() - cached.at > TOKEN_FILE_TTL_MS) cached = { value: readFileSync(path, 'utf8').trim(), at: Date.now() };
    return cached.value;
  };
}

export function inClusterConfig(): ClusterConfig {
  const host = process.env.KUBERNETES_SERVICE_HOST as string;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ca: readFileSync(join(SA_DIR, 'ca.crt'), 'utf8'),
    insecure: false,
    credentials: { token: fileToken(join(SA_DIR, 'token')) },
  };
}

interface Named<T> {
  name: string;
  [k: string]: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}

type Raw = Record<string, unknown>;

interface ExecConfig {
  command: string;
  args?: string[];
  env?: Array<{ name: string; value: string }>;
  apiVersion?: string;
}

/** Runs a client-go credential plugin (`users[].user.exec`) and caches its token until it expires. */
function execToken(exec: ExecConfig, base: string): () => Promise<string | undefined> {
  let cached: { token: string; until: number } | undefined;
  return async () => {
    if (cached && Date.now() < cached.until) return cached.token;
    const env = { ...process.env, ...Object.fromEntries((exec.env ?? []).map((e) => [e.name, e.value])) };
    env.KUBERNETES_EXEC_INFO = JSON.stringify({ apiVersion: exec.apiVersion ?? 'client.authentication.k8s.io/v1', kind: 'ExecCredential', spec: { interactive: false } });
    const command = exec.command.includes('/') && !isAbsolute(exec.command) ? join(base, exec.command) : exec.command;
    const { stdout } = await run(command, exec.args ?? [], { env, timeout: 30_000 });
    const status = (JSON.parse(stdout) as { status?: { token?: string; expirationTimestamp?: string } }).status ?? {};
    if (!status.token) return undefined;
    const expires = status.expirationTimestamp ? Date.parse(status.expirationTimestamp) - 30_000 : Date.now() + 5 * 60_000;
    cached = { token: status.token, until: expires };
    return status.token;
  };
}

/** Reads a kubeconfig file: its current context's cluster and user. */
export function kubeconfigFile(path: string): ClusterConfig {
  const base = dirname(path);
  const doc = parse(readFileSync(path, 'utf8')) as Raw;
  const find = <T>(list: unknown, name: unknown, what: string): T => {
    const found = ((list ?? []) as Array<Named<T>>).find((x) => x.name === name);
    if (!found) throw new Error(`${path}: ${what} '${String(name)}' not found`);
    return (found[what] ?? {}) as T;
  };
  const ctx = find<Raw>(doc.contexts, doc['current-context'], 'context');
  const cluster = find<Raw>(doc.clusters, ctx.cluster, 'cluster');
  const user = ctx.user === undefined ? {} : find<Raw>(doc.users, ctx.user, 'user');
  const file = (p: unknown) => readFileSync(isAbsolute(String(p)) ? String(p) : join(base, String(p)), 'utf8');
  const b64 = (s: unknown) => Buffer.from(String(s), 'base64').toString('utf8');
  const pem = (data: unknown, p: unknown) => (data ? b64(data) : p ? file(p) : undefined);
  const credentials: Credentials = {};
  if (typeof user.token === 'string') {
    const token = user.token;
    credentials.token = async () => token;
  } else if (typeof user.tokenFile === 'string') {
    credentials.token = fileToken(isAbsolute(user.tokenFile) ? user.tokenFile : join(base, user.tokenFile));
  } else if (user.exec) {
    credentials.token = execToken(user.exec as ExecConfig, base);
  }
  const cert = pem(user['client-certificate-data'], user['client-certificate']);
  const key = pem(user['client-key-data'], user['client-key']);
  if (cert) credentials.cert = cert;
  if (key) credentials.key = key;
  const ca = pem(cluster['certificate-authority-data'], cluster['certificate-authority']);
  if (typeof cluster.server !== 'string') throw new Error(`${path}: cluster '${String(ctx.cluster)}' has no server`);
  return { server: cluster.server, ...(ca ? { ca } : {}), insecure: cluster['insecure-skip-tls-verify'] === true, credentials };
}

/** --kubeconfig, else the pod's ServiceAccount, else KUBECONFIG or ~/.kube/config. */
export function loadClusterConfig(kubeconfig?: string): ClusterConfig {
  if (kubeconfig) return kubeconfigFile(kubeconfig);
  if (process.env.KUBERNETES_SERVICE_HOST) return inClusterConfig();
  const fromEnv = process.env.KUBECONFIG?.split(':').find((p) => p);
  return kubeconfigFile(fromEnv ?? join(homedir(), '.kube', 'config'));
}
