// The injection webhook: AdmissionReview v1 over HTTPS, served by every operator replica. It reads
// the pod's namespace live (AIRoutes, Secret names) so a pod created right after its route and
// Secret is judged on them, and answers with decide()'s patch, a refusal, or nothing.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { KubeClient, KubeList, KubeObject } from '../kube/client.ts';
import { decide, DEFAULT_INJECT_OPTIONS, parseServerVersion, type InjectOptions, type NamespaceFacts, type ServerVersion } from './inject.ts';
import { DEFAULT_TLS_POLICY, WebhookTls, type TlsPolicy } from './tls.ts';
import { TLS_SECRET_NAME, WEBHOOK_CONFIG_NAME, WEBHOOK_PATH } from './rbac.ts';

/** The API server sends at most 3 MiB objects; an AdmissionReview wraps one (twice on UPDATE). */
const MAX_BODY = 7 * 1024 * 1024;

export interface WebhookOptions {
  client: KubeClient;
  log: Logger;
  /** The operator's namespace: its TLS Secret and its Service live there. */
  namespace: string;
  port: number;
  host?: string;
  /** The MutatingWebhookConfiguration to keep (`--webhook-config`). */
  configName?: string;
  /** `--webhook-url`: base URL at which the API server reaches this server, for an operator outside the cluster. */
  url?: string;
  /** The chart's webhook Service, named in the serving certificate. */
  serviceName?: string;
  secretName?: string;
  isLeader: () => boolean;
  inject?: Partial<InjectOptions>;
  tls?: Partial<Omit<TlsPolicy, 'hosts'>>;
  /** How often each replica rereads the TLS Secret and the leader takes the next step. */
  checkSeconds?: number;
  /** The operator's registry, so webhook metrics appear on its /metrics. */
  registry?: Registry;
}

export interface RunningWebhook {
  port: number;
  server: Server;
  tls: WebhookTls;
  /** The CA bundle the API server should trust right now (PEM). */
  options: InjectOptions;
  stop(): Promise<void>;
}

/** Injection settings the chart passes as JSON in AI_ENVELOPE_INJECT (values `injection.*`). */
const InjectEnv = z
  .object({
    image: z.string().min(1),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']),
    proxyPort: z.number().int().min(1).max(65535),
    adminPort: z.number().int().min(1).max(65535),
    nativeSidecar: z.enum(['auto', 'always', 'never']),
    resources: z.object({ requests: z.record(z.string(), z.string()), limits: z.record(z.string(), z.string()) }),
    runAsUser: z.number().int().min(1),
    placeholderKey: z.string().min(1),
    readyWaitSeconds: z.number().int().min(1),
    redisURL: z.string(),
  })
  .partial()
  .strict();

export function injectOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<InjectOptions> {
  const raw = env.AI_ENVELOPE_INJECT;
  if (!raw) return {};
  const parsed = InjectEnv.safeParse(JSON.parse(raw));
  if (!parsed.success) throw new Error(`AI_ENVELOPE_INJECT: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const out = Object.fromEntries(Object.entries(parsed.data).filter(([, v]) => v !== '' && v !== undefined));
  return out as Partial<InjectOptions>;
}

/** Names the serving certificate must carry: the Service's, and the host of --webhook-url. */
export function servingHosts(serviceName: string, namespace: string, url?: string): string[] {
  const hosts = [`${serviceName}.${namespace}.svc`, `${serviceName}.${namespace}.svc.cluster.local`, `${serviceName}.${namespace}`, serviceName];
  if (url) hosts.push(new URL(url).hostname.replace(/^\[|\]$/g, ''));
  return [...new Set(hosts)];
}

class WebhookMetrics {
  readonly admissions: Counter;
  readonly duration: Histogram;
  readonly certExpiry: Gauge;
  constructor(registry: Registry | undefined) {
    const registers = registry ? [registry] : [];
    this.admissions = new Counter({ name: 'ai_envelope_operator_webhook_admissions_total', help: 'Pod admissions by result (injected, unchanged, skipped, refused, error)', labelNames: ['result'], registers });
    this.duration = new Histogram({ name: 'ai_envelope_operator_webhook_duration_seconds', help: 'Time to answer one AdmissionReview', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers });
    this.certExpiry = new Gauge({ name: 'ai_envelope_operator_webhook_certificate_expiry_timestamp_seconds', help: 'When the served webhook certificate expires (Unix seconds)', registers });
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw Object.assign(new Error('AdmissionReview too large'), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

interface AdmissionRequest {
  uid: string;
  kind?: { kind?: string };
  operation?: string;
  namespace?: string;
  object?: KubeObject;
  dryRun?: boolean;
}

export async function startWebhook(opts: WebhookOptions): Promise<RunningWebhook> {
  const { client, log } = opts;
  const configName = opts.configName ?? WEBHOOK_CONFIG_NAME;
  const serviceName = opts.serviceName ?? 'ai-envelope-webhook';
  const checkMs = (opts.checkSeconds ?? 30) * 1000;
  const policyBase = { ...DEFAULT_TLS_POLICY, ...opts.tls };
  // A replica that has not reloaded yet must still be trusted: the overlap spans several checks.
  const policy: TlsPolicy = { ...policyBase, overlapSeconds: Math.max(policyBase.overlapSeconds, (3 * checkMs) / 1000), hosts: servingHosts(serviceName, opts.namespace, opts.url) };
  const metrics = new WebhookMetrics(opts.registry);

  let serving: ServingSink | undefined;
  let pending: { cert: string; key: string } | undefined;
  const tls = new WebhookTls({
    client,
    log,
    namespace: opts.namespace,
    secretName: opts.secretName ?? TLS_SECRET_NAME,
    policy,
    isLeader: opts.isLeader,
    config: { name: configName, ...(opts.url ? { url: `${opts.url.replace(/\/+$/, '')}${WEBHOOK_PATH}` } : {}) },
    onServing: (s) => {
      metrics.certExpiry.set(Date.parse(new X509Certificate(s.certPem).validTo) / 1000);
      const ctx = { cert: s.certPem, key: s.keyPem };
      if (serving) serving(ctx);
      else pending = ctx;
    },
  });
  await tls.start();
  const running = await serve(opts, metrics, pending as { cert: string; key: string }, (sink) => (serving = sink), () => tls.check(), checkMs);
  log.info({ event: 'webhook_started', port: running.port, config: configName, url: opts.url ?? null }, 'injection webhook listening');
  return { ...running, tls };
}

/**
 * The webhook with a certificate from files (`tls.crt`, `tls.key` in `certDir`): a Secret that
 * cert-manager keeps, mounted into the operator. cert-manager's CA injector fills the caBundle, so
 * this replica writes nothing; it rereads the files at every check, which picks up a renewal
 * without a restart (the kubelet swaps the mounted files).
 */
export async function startWebhookFromFiles(opts: Omit<WebhookOptions, 'url' | 'tls' | 'secretName' | 'configName' | 'serviceName'> & { certDir: string }): Promise<Omit<RunningWebhook, 'tls'>> {
  const checkMs = (opts.checkSeconds ?? 30) * 1000;
  const metrics = new WebhookMetrics(opts.registry);
  const read = async () => {
    const [cert, key] = await Promise.all([readFile(join(opts.certDir, 'tls.crt'), 'utf8'), readFile(join(opts.certDir, 'tls.key'), 'utf8')]);
    return { cert, key };
  };
  let current = await read();
  let sink: ServingSink | undefined;
  const load = (ctx: { cert: string; key: string }) => {
    metrics.certExpiry.set(Date.parse(new X509Certificate(ctx.cert).validTo) / 1000);
    sink?.(ctx);
  };
  load(current);
  const running = await serve(
    opts,
    metrics,
    current,
    (s) => (sink = s),
    async () => {
      const next = await read();
      if (next.cert === current.cert && next.key === current.key) return;
      current = next;
      load(next);
      opts.log.info({ event: 'webhook_certificate_loaded', not_after: new X509Certificate(next.cert).validTo, source: opts.certDir }, 'webhook serving certificate reloaded from files');
    },
    checkMs,
  );
  opts.log.info({ event: 'webhook_started', port: running.port, cert_dir: opts.certDir }, 'injection webhook listening');
  return running;
}

type ServingSink = (ctx: { cert: string; key: string }) => void;

/** The HTTPS server and the periodic certificate check, whatever keeps the certificate. */
async function serve(
  opts: Pick<WebhookOptions, 'client' | 'log' | 'port' | 'host' | 'inject'>,
  metrics: WebhookMetrics,
  initial: { cert: string; key: string },
  onSink: (sink: ServingSink) => void,
  check: () => Promise<void>,
  checkMs: number,
): Promise<Omit<RunningWebhook, 'tls'>> {
  const { client, log } = opts;
  const inject: InjectOptions = { ...DEFAULT_INJECT_OPTIONS, ...opts.inject };
  let server: Server | undefined;

  let version: { value: ServerVersion; at: number } | undefined;
  const serverVersion = async (): Promise<ServerVersion> => {
    // Control planes are upgraded under running operators; an hour-old answer is recent enough.
    if (!version || Date.now() - version.at > 3600_000) {
      version = { value: parseServerVersion(await client.get<{ major?: string; minor?: string; gitVersion?: string }>('/version', { timeoutMs: 5000 })), at: Date.now() };
    }
    return version.value;
  };

  const factsFor = async (namespace: string): Promise<NamespaceFacts> => {
    const ns = encodeURIComponent(namespace);
    const [routes, secrets, server] = await Promise.all([
      client.get<KubeList<KubeObject>>(`/apis/ai-envelope.dev/v1alpha1/namespaces/${ns}/airoutes`, { timeoutMs: 5000 }),
      // Names only: the metadata-only form never carries a Secret's data to this process.
      client.get<KubeList<KubeObject>>(`/api/v1/namespaces/${ns}/secrets`, { timeoutMs: 5000, accept: 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io' }),
      serverVersion(),
    ]);
    return { namespace, routes: routes.items, secrets: new Set(secrets.items.map((s) => s.metadata.name)), server };
  };

  const review = async (request: AdmissionRequest) => {
    const base = { uid: request.uid };
    if (request.kind?.kind !== 'Pod' || request.operation !== 'CREATE' || !request.object || !request.namespace) {
      metrics.admissions.inc({ result: 'skipped' });
      return { ...base, allowed: true };
    }
    const pod = request.object;
    const name = pod.metadata?.name || `${pod.metadata?.generateName ?? ''}<generated>`;
    let facts: NamespaceFacts;
    try {
      facts = await factsFor(request.namespace);
    } catch (err) {
      metrics.admissions.inc({ result: 'error' });
      log.error({ event: 'webhook_lookup_failed', namespace: request.namespace, pod: name, err: (err as Error).message }, 'cannot read the namespace for injection');
      return { ...base, allowed: false, status: { code: 500, reason: 'InternalError', message: `ai-envelope: cannot read AIRoutes and Secrets of namespace ${request.namespace}: ${(err as Error).message}` } };
    }
    const d = decide(pod, facts, inject);
    if (d.kind === 'skip') {
      metrics.admissions.inc({ result: 'skipped' });
      return { ...base, allowed: true };
    }
    if (d.kind === 'refuse') {
      metrics.admissions.inc({ result: 'refused' });
      log.info({ event: 'injection_refused', namespace: request.namespace, pod: name, reason: d.message }, 'pod refused');
      return { ...base, allowed: false, status: { code: 403, reason: 'Forbidden', message: `ai-envelope: ${d.message}` } };
    }
    metrics.admissions.inc({ result: d.patch.length > 0 ? 'injected' : 'unchanged' });
    if (d.patch.length > 0) {
      log.info({ event: 'injected', namespace: request.namespace, pod: name, native: d.native, config_map: d.configMap, routes: d.routes, dry_run: !!request.dryRun }, 'sidecar injected');
    }
    return {
      ...base,
      allowed: true,
      ...(d.patch.length > 0 ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(d.patch)).toString('base64') } : {}),
      ...(d.warnings.length > 0 ? { warnings: d.warnings.map((w) => `ai-envelope: ${w}`) } : {}),
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (req.method !== 'POST' || path !== WEBHOOK_PATH) {
      res.writeHead(404).end();
      return;
    }
    const stop = metrics.duration.startTimer();
    try {
      const body = JSON.parse(await readBody(req)) as { apiVersion?: string; request?: AdmissionRequest };
      if (!body.request?.uid) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('not an AdmissionReview\n');
        return;
      }
      const response = await review(body.request);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
    } catch (err) {
      const status = (err as { status?: number }).status ?? 400;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`);
    } finally {
      stop();
    }
  };

  server = createServer({ ...initial, minVersion: 'TLSv1.2' }, (req, res) => void handle(req, res));
  onSink((ctx) => (server as Server).setSecureContext(ctx));
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const port = await new Promise<number>((resolve, reject) => {
    (server as Server).once('error', reject);
    (server as Server).listen(opts.port, opts.host ?? '0.0.0.0', () => resolve(((server as Server).address() as AddressInfo).port));
  });
  let checking: Promise<void> | undefined;
  const timer = setInterval(() => {
    checking ??= check()
      .catch((err: Error) => log.warn({ event: 'webhook_tls_check_failed', err: err.message }, 'webhook TLS check failed; retrying at the next one'))
      .finally(() => (checking = undefined));
  }, checkMs);
  timer.unref();

  return {
    port,
    server,
    options: inject,
    stop: async () => {
      clearInterval(timer);
      await checking;
      await new Promise<void>((resolve) => (server as Server).close(() => resolve()));
      (server as Server).closeAllConnections();
    },
  };
}
