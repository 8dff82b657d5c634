// A real Kubernetes control plane for tests: etcd, kube-apiserver and, on request,
// kube-controller-manager, started from the folder named by KUBEBUILDER_ASSETS (the envtest
// convention: it holds `etcd`, `kube-apiserver` and `kube-controller-manager`).
//
// To run the Kubernetes tests locally, unpack the binaries with the control-plane script of the
// shared kube folder and point the variable at them:
//
//   KUBEBUILDER_ASSETS=$(../shared/kube/control-plane assets /tmp/kube-bin) npm test
//
// (etcd comes from Debian: `apt-get install -y etcd-server`.) Without the binaries the Kubernetes
// suites print this advice and are skipped; under CI=true they fail instead, so a CI machine that
// lost its binaries cannot pass by testing less.
//
// Everything binds 127.0.0.1 on free ports and lives in one temp folder. Each process runs under a
// small shell watchdog that holds a pipe from this process: when the test process ends in any way
// (even SIGKILL) the pipe closes and the watchdog stops its process, so no run leaves servers behind.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { describe, it } from 'vitest';
import { freePort } from './redis.ts';

const run = promisify(execFile);

export interface StaticTokenUser {
  token: string;
  user: string;
  uid: string;
  groups: string[];
}

export interface ControlPlaneOptions {
  /** Also run kube-controller-manager: garbage collection, namespace deletion, ServiceAccounts. */
  withControllerManager?: boolean;
  /** Extra kube-apiserver flags, e.g. `--min-request-timeout=5` so every watch ends within seconds. */
  apiserverArgs?: string[];
  /** More static-token users, e.g. an operator's ServiceAccount, so RBAC is checked for real. */
  tokens?: StaticTokenUser[];
}

export interface KubeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body, or the raw text when it is not JSON. */
  body: unknown;
}

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  server: string;
  caFile: string;
  caPem: string;
  /** A user in group system:masters. */
  adminToken: string;
  /** An admin kubeconfig (token auth). */
  kubeconfigPath: string;
  /** Writes a kubeconfig file for another static-token user and returns its path. */
  kubeconfigFor(token: string): Promise<string>;
  /** Stops kube-apiserver alone and starts it again on the same port: etcd data survives, watches break. */
  restartApiserver(downMs?: number): Promise<void>;
  /** One HTTP call to the API server, as the admin unless `token` says otherwise. */
  request(method: string, path: string, opts?: { body?: unknown; token?: string; headers?: Record<string, string> }): Promise<KubeResponse>;
  /** Where the processes' logs and data live (removed by stop). */
  dir: string;
  /** The tail of a process's log, for test failure messages. */
  logTail(process: 'etcd' | 'kube-apiserver' | 'kube-controller-manager', lines?: number): string;
  stop(): Promise<void>;
}

const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager'] as const;

/** KUBEBUILDER_ASSETS, when that folder holds the three binaries. */
export function kubeAssets(): string | undefined {
  const dir = process.env.KUBEBUILDER_ASSETS;
  if (!dir) return undefined;
  try {
    for (const b of BINARIES) accessSync(join(dir, b), constants.X_OK);
  } catch {
    return undefined;
  }
  return dir;
}

const HOW_TO_GET =
  'The Kubernetes tests need etcd, kube-apiserver and kube-controller-manager in the folder named by KUBEBUILDER_ASSETS.\n' +
  '  Locally: apt-get install -y etcd-server, then\n' +
  '  KUBEBUILDER_ASSETS=$(../shared/kube/control-plane assets /tmp/kube-bin) npm test';

function inCI(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

let adviceShown = false;

/**
 * A describe block that needs the control plane. Without the binaries: outside CI it says how to
 * get them and skips; under CI it fails, so missing binaries never pass as a green run.
 */
export function describeWithKube(name: string, fn: () => void): void {
  if (kubeAssets()) {
    describe(name, fn);
    return;
  }
  const found = process.env.KUBEBUILDER_ASSETS ? `KUBEBUILDER_ASSETS=${process.env.KUBEBUILDER_ASSETS} does not hold them.\n` : 'KUBEBUILDER_ASSETS is not set.\n';
  if (inCI()) {
    describe(name, () => {
      it('has the Kubernetes control-plane binaries (required under CI)', () => {
        throw new Error(`${found}${HOW_TO_GET}`);
      });
    });
    return;
  }
  if (!adviceShown) {
    adviceShown = true;
    process.stderr.write(`\nskipping Kubernetes tests: ${found}${HOW_TO_GET}\n\n`);
  }
  describe.skip(name, fn);
}

// The watchdog forwards the signals named on its stdin to the process; end of input (this process
// closed the pipe or died) means TERM, then KILL if the process has not gone within 10 s.
const WATCHDOG = `
log=$1; shift
exec 3<&0 </dev/null
"$@" >>"$log" 2>&1 3<&- &
pid=$!
( while read -r sig <&3; do kill -s "$sig" "$pid" 2>/dev/null; done
  kill "$pid" 2>/dev/null
  i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  kill -9 "$pid" 2>/dev/null ) &
watcher=$!
wait "$pid"; code=$?
kill "$watcher" 2>/dev/null
exit $code
`;

const guarded = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of guarded) child.stdin?.destroy();
});

interface Guarded {
  exited: Promise<void>;
  running(): boolean;
  /** TERM, then KILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

function startGuarded(binary: string, args: string[], log: string): Guarded {
  const child = spawn('sh', ['-c', WATCHDOG, 'kube-watchdog', log, binary, ...args], { stdio: ['pipe', 'ignore', 'ignore'] });
  guarded.add(child);
  let gone = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => {
    gone = true;
    guarded.delete(child);
  });
  return {
    exited,
    running: () => !gone,
    stop: async (graceMs = 5000) => {
      if (!gone) {
        child.stdin?.write('TERM\n');
        let timer: NodeJS.Timeout | undefined;
        const graceOver = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)));
        if (await Promise.race([exited.then(() => false), graceOver])) child.stdin?.write('KILL\n');
        clearTimeout(timer);
        child.stdin?.end();
      }
      await exited;
    },
  };
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd });
}

// ECDSA keys: a fraction of the time RSA takes, and both the serving certificate and
// ServiceAccount token signing accept them.
async function makePki(pki: string): Promise<void> {
  mkdirSync(pki, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-days', '3650', '-subj', '/CN=ai-envelope-test-ca', '-keyout', 'ca.key', '-out', 'ca.crt'], pki);
  await openssl(['req', ...ec, '-subj', '/CN=kube-apiserver', '-keyout', 'apiserver.key', '-out', 'apiserver.csr'], pki);
  writeFileSync(
    join(pki, 'san.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1\n',
  );
  await openssl(['x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '3650', '-extfile', 'san.ext', '-out', 'apiserver.crt'], pki);
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'sa.key'], pki);
  await openssl(['ec', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], pki);
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function kubeconfig(server: string, caFile: string, user: string, token: string): string {
  // JSON is YAML, and it spares quoting rules for paths and tokens.
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'local', cluster: { server, 'certificate-authority': caFile } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: 'local', context: { cluster: 'local', user, namespace: 'default' } }],
      'current-context': 'local',
    },
    null,
    2,
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const assets = kubeAssets();
  if (!assets) throw new Error(HOW_TO_GET);
  const dir = mkdtempSync(join(tmpdir(), 'ai-envelope-kube-'));
  const pki = join(dir, 'pki');
  const logs = { etcd: join(dir, 'etcd.log'), 'kube-apiserver': join(dir, 'apiserver.log'), 'kube-controller-manager': join(dir, 'kcm.log') };
  const procs: { etcd?: Guarded; apiserver?: Guarded; kcm?: Guarded } = {};
  let agent: Agent | undefined;

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // Dependents first: the controller manager needs the API server, which needs etcd.
      for (const key of ['kcm', 'apiserver', 'etcd'] as const) await procs[key]?.stop();
      await agent?.close();
      rmSync(dir, { recursive: true, force: true });
    })());

  try {
    await makePki(pki);
    const caFile = join(pki, 'ca.crt');
    const caPem = readFileSync(caFile, 'utf8');
    const adminToken = `admin-${randomBytes(16).toString('hex')}`;
    const users: StaticTokenUser[] = [{ token: adminToken, user: 'admin', uid: 'admin', groups: ['system:masters'] }, ...(opts.tokens ?? [])];
    writeFileSync(join(pki, 'tokens.csv'), users.map((u) => [u.token, u.user, u.uid, u.groups.join(',')].map(csvField).join(',')).join('\n') + '\n');

    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdURL = `http://127.0.0.1:${etcdPort}`;
    const peerURL = `http://127.0.0.1:${peerPort}`;
    procs.etcd = startGuarded(
      join(assets, 'etcd'),
      ['--data-dir', join(dir, 'etcd-data'), '--listen-client-urls', etcdURL, '--advertise-client-urls', etcdURL, '--listen-peer-urls', peerURL, '--initial-advertise-peer-urls', peerURL, '--initial-cluster', `default=${peerURL}`],
      logs.etcd,
    );

    const server = `https://127.0.0.1:${apiPort}`;
    const apiserverArgs = [
      `--etcd-servers=${etcdURL}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${join(pki, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
      `--client-ca-file=${caFile}`,
      `--token-auth-file=${join(pki, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      // No Endpoints for the `kubernetes` Service: nothing here would reach it, and it needs a real node IP.
      '--endpoint-reconciler-type=none',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(pki, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      // CEL rules on CRDs are beta from 1.25; this 1.24 server needs the gate.
      '--feature-gates=CustomResourceValidationExpressions=true',
      // Without the controller manager no ServiceAccount is ever created, and the plugin would refuse every Pod.
      ...(opts.withControllerManager ? [] : ['--disable-admission-plugins=ServiceAccount']),
      ...(opts.apiserverArgs ?? []),
    ];
    const kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfig(server, caFile, 'admin', adminToken));

    agent = new Agent({ connect: { ca: caPem }, keepAliveTimeout: 1000 });
    const dispatcher = agent;
    const call: ControlPlane['request'] = async (method, path, o = {}) => {
      const headers: Record<string, string> = { authorization: `Bearer ${o.token ?? adminToken}`, accept: 'application/json', ...o.headers };
      let body: string | undefined;
      if (o.body !== undefined) {
        body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await request(`${server}${path}`, { method: method as 'GET', headers, body, dispatcher });
      const text = await res.body.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: res.statusCode, headers: res.headers, body: parsed };
    };

    const waitReady = async (timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (!procs.apiserver?.running()) throw new Error(`kube-apiserver exited:\n${tail(logs['kube-apiserver'], 20)}`);
        if (!procs.etcd?.running()) throw new Error(`etcd exited:\n${tail(logs.etcd, 20)}`);
        try {
          // readyz alone can pass before the bootstrap controller has made the `default` namespace.
          if ((await call('GET', '/readyz')).status === 200 && (await call('GET', '/api/v1/namespaces/default')).status === 200) return;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) throw new Error(`kube-apiserver not ready within ${timeoutMs} ms:\n${tail(logs['kube-apiserver'], 20)}`);
        await sleep(100);
      }
    };

    const startApiserver = async () => {
      procs.apiserver = startGuarded(join(assets, 'kube-apiserver'), apiserverArgs, logs['kube-apiserver']);
      await waitReady(60_000);
    };
    await startApiserver();

    if (opts.withControllerManager) {
      procs.kcm = startGuarded(
        join(assets, 'kube-controller-manager'),
        [
          `--kubeconfig=${kubeconfigPath}`,
          '--bind-address=127.0.0.1',
          '--secure-port=0',
          `--service-account-private-key-file=${join(pki, 'sa.key')}`,
          `--root-ca-file=${caFile}`,
          '--use-service-account-credentials=false',
          // Controllers that need nodes, clouds or volumes have nothing to do here and only log errors.
          '--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service,-route,-attachdetach,-persistentvolume-binder,-pv-protection,-pvc-protection',
          '--leader-elect=false',
        ],
        logs['kube-controller-manager'],
      );
      // The ServiceAccount controller creating `default/default` shows the controllers are running.
      const deadline = Date.now() + 60_000;
      while ((await call('GET', '/api/v1/namespaces/default/serviceaccounts/default')).status !== 200) {
        if (!procs.kcm.running() || Date.now() > deadline) throw new Error(`kube-controller-manager did not start:\n${tail(logs['kube-controller-manager'], 20)}`);
        await sleep(200);
      }
    }

    const tokenUsers = new Map(users.map((u) => [u.token, u.user]));
    return {
      server,
      caFile,
      caPem,
      adminToken,
      kubeconfigPath,
      dir,
      request: call,
      logTail: (p, lines = 40) => tail(logs[p], lines),
      kubeconfigFor: async (token) => {
        const user = tokenUsers.get(token);
        if (!user) throw new Error('kubeconfigFor: not a static token of this control plane (pass it in ControlPlaneOptions.tokens)');
        const path = join(dir, `kubeconfig-${user.replace(/[^A-Za-z0-9_.-]/g, '_')}`);
        writeFileSync(path, kubeconfig(server, caFile, user, token));
        return path;
      },
      restartApiserver: async (downMs = 0) => {
        // A graceful stop waits for open watches for a long time; a short grace keeps restarts quick.
        await procs.apiserver?.stop(2000);
        if (downMs > 0) await sleep(downMs);
        await startApiserver();
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
